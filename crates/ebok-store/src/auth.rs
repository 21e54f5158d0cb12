//! What panel authentication keeps in SQL besides the account row: single-use tokens sent
//! by mail (e-mail confirmation, password reset), the TOTP second factor and its recovery
//! codes, and server secrets shared by every instance (the CSRF key).
//!
//! Tokens are random, and only their SHA-256 is stored: a copy of the database does not
//! let anyone reset a password.

use rand::RngCore;
use sha2::{Digest, Sha256};
use time::Duration;

use super::repo::{now, text_enum, Cols, Entity, StoreError};
use super::{Db, DbTx};
use crate::{on_pool, on_tx};

text_enum! {
    /// What a mailed token is good for.
    pub enum TokenPurpose {
        /// Confirms `email` as the account's address (registration or change).
        ConfirmEmail = "confirm_email",
        /// Sets a new password (recovery).
        ResetPassword = "reset_password",
    }
}

/// 32 random bytes as 64 hex digits: the text put in links and cookies.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex(&b)
}

/// SHA-256 of a token, hex: the form tokens are stored and looked up in.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Lower-case hex of `bytes` (tokens, their hashes, CSRF MACs; no formatter per byte).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// RFC 4648 §5 base64url without padding: the text of random tokens in cookies and of the
/// ops API's generated tokens.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// A valid (unused, unexpired) token's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub account_id: i64,
    /// The address being confirmed ([`TokenPurpose::ConfirmEmail`]).
    pub email: Option<String>,
}

/// Issue a token for `account_id`, valid for `ttl`. Earlier unused tokens of the same
/// purpose for the account stop working: only the latest link counts.
pub async fn issue_token(
    tx: &mut DbTx,
    account_id: i64,
    purpose: TokenPurpose,
    email: Option<&str>,
    ttl: Duration,
) -> Result<String, StoreError> {
    let token = random_token();
    let at = now().unix_timestamp();
    let expires = at + ttl.whole_seconds();
    let retire = "UPDATE account_tokens SET used_at = $1 \
                  WHERE account_id = $2 AND purpose = $3 AND used_at IS NULL";
    let insert = "INSERT INTO account_tokens \
                  (id_hash, account_id, purpose, email, created_at, expires_at) \
                  VALUES ($1, $2, $3, $4, $5, $6)";
    on_tx!(tx, conn => {
        sqlx::query(retire)
            .bind(at)
            .bind(account_id)
            .bind(purpose.as_str())
            .execute(&mut **conn)
            .await?;
        sqlx::query(insert)
            .bind(token_hash(&token))
            .bind(account_id)
            .bind(purpose.as_str())
            .bind(email)
            .bind(at)
            .bind(expires)
            .execute(&mut **conn)
            .await?;
    });
    Ok(token)
}

/// What a token would grant, without using it (to show the form a link leads to).
pub async fn peek_token(
    db: &Db,
    token: &str,
    purpose: TokenPurpose,
) -> Result<Option<TokenGrant>, StoreError> {
    let sql = "SELECT account_id, email FROM account_tokens \
               WHERE id_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3";
    let at = now().unix_timestamp();
    Ok(on_pool!(db, pool => match sqlx::query(sql)
        .bind(token_hash(token))
        .bind(purpose.as_str())
        .bind(at)
        .fetch_optional(pool)
        .await?
    {
        Some(r) => {
            let c = Cols::new(&r);
            Some(TokenGrant { account_id: c.i64("account_id")?, email: c.opt_text("email")? })
        }
        None => None,
    }))
}

/// Use a token: gives what it grants and marks it used, once. A second use, an expired or
/// unknown token give `None`.
pub async fn take_token(
    tx: &mut DbTx,
    token: &str,
    purpose: TokenPurpose,
) -> Result<Option<TokenGrant>, StoreError> {
    let sql = "UPDATE account_tokens SET used_at = $1 \
               WHERE id_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1 \
               RETURNING account_id, email";
    let at = now().unix_timestamp();
    Ok(on_tx!(tx, conn => match sqlx::query(sql)
        .bind(at)
        .bind(token_hash(token))
        .bind(purpose.as_str())
        .fetch_optional(&mut **conn)
        .await?
    {
        Some(r) => {
            let c = Cols::new(&r);
            Some(TokenGrant { account_id: c.i64("account_id")?, email: c.opt_text("email")? })
        }
        None => None,
    }))
}

/// The address the account's latest confirmation link waits for, while that link works.
pub async fn pending_email(db: &Db, account_id: i64) -> Result<Option<String>, StoreError> {
    let sql = "SELECT email FROM account_tokens \
               WHERE account_id = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 \
               ORDER BY created_at DESC LIMIT 1";
    let at = now().unix_timestamp();
    Ok(on_pool!(db, pool => match sqlx::query(sql)
        .bind(account_id)
        .bind(TokenPurpose::ConfirmEmail.as_str())
        .bind(at)
        .fetch_optional(pool)
        .await?
    {
        Some(r) => Cols::new(&r).opt_text("email")?,
        None => None,
    }))
}

/// Accounts for which `email` still waits to be confirmed: an unconfirmed address of the
/// account, or the address of its latest confirmation link not yet used (working or
/// expired: asking again is what an expired link is for). Blocked accounts are left out.
pub async fn awaiting_confirmation(db: &Db, email: &str) -> Result<Vec<i64>, StoreError> {
    let key = super::panel::email_key(email);
    let sql = "SELECT id AS account_id FROM panel_accounts \
               WHERE email_key = $1 AND email_confirmed_at IS NULL AND disabled = $2 \
               UNION \
               SELECT t.account_id FROM account_tokens t \
               JOIN panel_accounts a ON a.id = t.account_id \
               WHERE t.purpose = $3 AND t.used_at IS NULL AND LOWER(t.email) = $1 \
               AND a.disabled = $2 \
               ORDER BY account_id";
    Ok(on_pool!(db, pool => sqlx::query(sql)
        .bind(&key)
        .bind(false)
        .bind(TokenPurpose::ConfirmEmail.as_str())
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| Cols::new(r).i64("account_id"))
        .collect::<Result<Vec<_>, _>>()?))
}

/// Replace the account's recovery codes (stored as hashes; the old ones stop working).
pub async fn replace_recovery_codes(
    tx: &mut DbTx,
    account_id: i64,
    code_hashes: &[String],
) -> Result<(), StoreError> {
    on_tx!(tx, conn => {
        sqlx::query("DELETE FROM totp_recovery_codes WHERE account_id = $1")
            .bind(account_id)
            .execute(&mut **conn)
            .await?;
        for h in code_hashes {
            sqlx::query("INSERT INTO totp_recovery_codes (account_id, code_hash) VALUES ($1, $2)")
                .bind(account_id)
                .bind(h)
                .execute(&mut **conn)
                .await?;
        }
    });
    Ok(())
}

/// Drop tokens that expired more than a day ago.
pub async fn purge_tokens(db: &Db) -> Result<u64, StoreError> {
    let sql = "DELETE FROM account_tokens WHERE expires_at < $1";
    let before = now().unix_timestamp() - 86_400;
    Ok(on_pool!(db, pool => sqlx::query(sql).bind(before).execute(pool).await?.rows_affected()))
}

// ---------------------------------------------------------------------------------------------
// TOTP
// ---------------------------------------------------------------------------------------------

/// Keep a secret shown during enrolment until a first code confirms it (`None` cancels).
pub async fn set_totp_pending(
    tx: &mut DbTx,
    account_id: i64,
    secret: Option<&str>,
) -> Result<(), StoreError> {
    let sql = "UPDATE panel_accounts SET totp_pending_secret = $1 WHERE id = $2";
    exec_one(tx, account_id, sql, secret.map(str::to_owned)).await
}

/// Turn the second factor on with the confirmed secret and replace the recovery codes
/// (stored as hashes). `step` is the time step of the confirming code.
pub async fn enable_totp(
    tx: &mut DbTx,
    account_id: i64,
    secret: &str,
    step: i64,
    recovery_code_hashes: &[String],
) -> Result<(), StoreError> {
    let sql = "UPDATE panel_accounts SET totp_secret = $1, totp_pending_secret = NULL, \
               totp_enabled_at = $2, totp_last_step = $3 WHERE id = $4";
    let at = now().unix_timestamp();
    on_tx!(tx, conn => {
        let done = sqlx::query(sql)
            .bind(secret)
            .bind(at)
            .bind(step)
            .bind(account_id)
            .execute(&mut **conn)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { kind: Entity::PanelAccount, id: account_id });
        }
    });
    replace_recovery_codes(tx, account_id, recovery_code_hashes).await
}

/// Turn the second factor off and forget its recovery codes.
pub async fn disable_totp(tx: &mut DbTx, account_id: i64) -> Result<(), StoreError> {
    let sql = "UPDATE panel_accounts SET totp_secret = NULL, totp_pending_secret = NULL, \
               totp_enabled_at = NULL, totp_last_step = NULL WHERE id = $1";
    on_tx!(tx, conn => {
        sqlx::query(sql).bind(account_id).execute(&mut **conn).await?;
        sqlx::query("DELETE FROM totp_recovery_codes WHERE account_id = $1")
            .bind(account_id)
            .execute(&mut **conn)
            .await?;
    });
    Ok(())
}

/// Record that the code of `step` was used; `false` when that step (or a later one) was
/// already used — a replayed code. Atomic against a concurrent login.
pub async fn claim_totp_step(
    tx: &mut DbTx,
    account_id: i64,
    step: i64,
) -> Result<bool, StoreError> {
    let sql = "UPDATE panel_accounts SET totp_last_step = $1 \
               WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)";
    Ok(on_tx!(tx, conn => sqlx::query(sql)
        .bind(step)
        .bind(account_id)
        .execute(&mut **conn)
        .await?
        .rows_affected() == 1))
}

/// Use a recovery code (given as its hash); `false` when unknown or already used.
pub async fn use_recovery_code(
    tx: &mut DbTx,
    account_id: i64,
    code_hash: &str,
) -> Result<bool, StoreError> {
    let sql = "UPDATE totp_recovery_codes SET used_at = $1 \
               WHERE account_id = $2 AND code_hash = $3 AND used_at IS NULL";
    let at = now().unix_timestamp();
    Ok(on_tx!(tx, conn => sqlx::query(sql)
        .bind(at)
        .bind(account_id)
        .bind(code_hash)
        .execute(&mut **conn)
        .await?
        .rows_affected() == 1))
}

/// Recovery codes not used yet.
pub async fn recovery_codes_left(db: &Db, account_id: i64) -> Result<i64, StoreError> {
    let sql = "SELECT COUNT(*) AS n FROM totp_recovery_codes \
               WHERE account_id = $1 AND used_at IS NULL";
    Ok(
        on_pool!(db, pool => Cols::new(&sqlx::query(sql).bind(account_id).fetch_one(pool).await?)
        .i64("n")?),
    )
}

async fn exec_one(
    tx: &mut DbTx,
    account_id: i64,
    sql: &str,
    value: Option<String>,
) -> Result<(), StoreError> {
    on_tx!(tx, conn => {
        let done = sqlx::query(sql).bind(value).bind(account_id).execute(&mut **conn).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { kind: Entity::PanelAccount, id: account_id });
        }
    });
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Server secrets
// ---------------------------------------------------------------------------------------------

/// The secret called `name`, created (32 random bytes, hex) by whichever instance asks
/// first; every instance sharing the database gets the same one.
pub async fn server_secret(db: &Db, name: &str) -> Result<String, StoreError> {
    let insert = "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) \
                  ON CONFLICT (name) DO NOTHING";
    let select = "SELECT value FROM server_secrets WHERE name = $1";
    let at = now().unix_timestamp();
    let fresh = random_token();
    Ok(on_pool!(db, pool => {
        sqlx::query(insert).bind(name).bind(&fresh).bind(at).execute(pool).await?;
        Cols::new(&sqlx::query(select).bind(name).fetch_one(pool).await?).text("value")?
    }))
}

/// A shared setting kept beside the secrets: its value, set to `initial` by whichever
/// instance asks first.
pub async fn setting_or_init(db: &Db, name: &str, initial: &str) -> Result<String, StoreError> {
    let insert = "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) \
                  ON CONFLICT (name) DO NOTHING";
    let select = "SELECT value FROM server_secrets WHERE name = $1";
    let at = now().unix_timestamp();
    Ok(on_pool!(db, pool => {
        sqlx::query(insert).bind(name).bind(initial).bind(at).execute(pool).await?;
        Cols::new(&sqlx::query(select).bind(name).fetch_one(pool).await?).text("value")?
    }))
}

/// Move a shared setting from `old` to `new`; `false` when another instance moved it first.
pub async fn setting_swap(db: &Db, name: &str, old: &str, new: &str) -> Result<bool, StoreError> {
    let sql = "UPDATE server_secrets SET value = $1 WHERE name = $2 AND value = $3";
    Ok(on_pool!(db, pool => sqlx::query(sql)
        .bind(new)
        .bind(name)
        .bind(old)
        .execute(pool)
        .await?
        .rows_affected() == 1))
}
