//! Panel sessions in the SQL database (SQLite or PostgreSQL).

use std::net::IpAddr;
use std::sync::LazyLock;

use async_trait::async_trait;

// The SHA-256 hex a token is stored under (as every other token of the panel).
use super::{
    listed, new_token, system_clock, token_hash, Clock, ListedSession, SessionPolicy, Stored,
    WebSession, WebSessionError, WebSessionStore,
};
use ebok_store::panel::{self, AccountView};
use ebok_store::repo::{Cols, RowGet};
use ebok_store::Db;
use ebok_store::{on_pool, on_tx};

/// Sessions in the `web_sessions` table (SQLite or PostgreSQL), for deployments without
/// Redis. Call [`WebSessionStore::purge_expired`] periodically.
#[derive(Clone)]
pub struct SqlWebSessions {
    db: Db,
    policy: SessionPolicy,
    now: Clock,
}

impl std::fmt::Debug for SqlWebSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlWebSessions")
            .field("backend", &self.db.backend())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

const SESSION_COLS: &str = "account_id, created_at, last_seen_at, second_factor_pending, ip";

fn read_stored<R: RowGet>(c: &Cols<'_, R>) -> Result<Stored, sqlx::Error> {
    Ok(Stored {
        account_id: c.i64("account_id")?,
        created: c.i64("created_at")?,
        last_seen: c.i64("last_seen_at")?,
        pending: c.boolean("second_factor_pending")?,
        ip: c.opt_parse("ip")?,
    })
}

impl SqlWebSessions {
    pub fn new(db: Db, policy: SessionPolicy) -> Self {
        SqlWebSessions {
            db,
            policy,
            now: system_clock(),
        }
    }

    /// Take "now" from `now` instead of the system clock (tests).
    pub fn with_clock(mut self, now: Clock) -> Self {
        self.now = now;
        self
    }

    fn now(&self) -> i64 {
        (self.now)().unix_timestamp()
    }

    /// A stored session as read at this moment: `None` (and deleted) when expired;
    /// `last_seen_at` written when due.
    async fn settle(&self, hash: &str, mut s: Stored) -> Result<Option<Stored>, WebSessionError> {
        let now = self.now();
        if self.policy.expired(&s, now) {
            self.delete_hash(hash).await?;
            return Ok(None);
        }
        if s.needs_touch(now) {
            let sql = "UPDATE web_sessions SET last_seen_at = $1 \
                       WHERE id_hash = $2 AND last_seen_at < $1";
            on_pool!(&self.db, pool => {
                sqlx::query(sql).bind(now).bind(hash).execute(pool).await?;
            });
            s.last_seen = now;
        }
        Ok(Some(s))
    }

    /// [`WebSessionStore::get`] and the session's [`AccountView`] for a caller on the line
    /// with PPPoE login `line_login` (with `overview`, the subscriber's too) in one query;
    /// `None` beside the session when the account is gone. The same expiry, deletion and
    /// touching as `get`.
    pub(crate) async fn get_with_account(
        &self,
        token: &str,
        line_login: Option<&str>,
        overview: bool,
    ) -> Result<Option<(WebSession, Option<AccountView>)>, WebSessionError> {
        static SQL: LazyLock<[String; 2]> = LazyLock::new(|| {
            let session = SESSION_COLS
                .split(", ")
                .map(|c| format!("ws.{c} AS {c},"))
                .collect::<Vec<_>>()
                .join(" ");
            [false, true].map(|o| {
                panel::account_view_sql(
                    &session,
                    "web_sessions ws LEFT JOIN panel_accounts a ON a.id = ws.account_id",
                    "ws.id_hash = $1",
                    o,
                )
            })
        });
        let Some(hash) = token_hash(token) else {
            return Ok(None);
        };
        let found = on_pool!(&self.db, pool => {
            let rows = sqlx::query(SQL[usize::from(overview)].as_str())
                .bind(&hash)
                .bind(line_login)
                .fetch_all(pool)
                .await?;
            match rows.first() {
                None => None,
                Some(first) => Some((
                    read_stored(&Cols::new(first))?,
                    panel::read_account_view(&rows, overview)?,
                )),
            }
        });
        let Some((stored, view)) = found else {
            return Ok(None);
        };
        Ok(self
            .settle(&hash, stored)
            .await?
            .map(|s| (s.public(), view)))
    }

    async fn delete_hash(&self, hash: &str) -> Result<u64, WebSessionError> {
        let sql = "DELETE FROM web_sessions WHERE id_hash = $1";
        Ok(on_pool!(&self.db, pool => sqlx::query(sql)
            .bind(hash)
            .execute(pool)
            .await?
            .rows_affected()))
    }
}

#[async_trait]
impl WebSessionStore for SqlWebSessions {
    async fn create(
        &self,
        account_id: i64,
        second_factor_pending: bool,
        ip: Option<IpAddr>,
    ) -> Result<String, WebSessionError> {
        let (token, hash) = new_token();
        let now = self.now();
        let sql = format!(
            "INSERT INTO web_sessions (id_hash, {SESSION_COLS}) VALUES ($1, $2, $3, $3, $4, $5)"
        );
        let ip = ip.map(|ip| ip.to_string());
        on_pool!(&self.db, pool => {
            sqlx::query(&sql)
                .bind(&hash)
                .bind(account_id)
                .bind(now)
                .bind(second_factor_pending)
                .bind(&ip)
                .execute(pool)
                .await?;
        });
        Ok(token)
    }

    async fn get(&self, token: &str) -> Result<Option<WebSession>, WebSessionError> {
        let Some(hash) = token_hash(token) else {
            return Ok(None);
        };
        let sql = format!("SELECT {SESSION_COLS} FROM web_sessions WHERE id_hash = $1");
        let stored = on_pool!(&self.db, pool => sqlx::query(&sql)
            .bind(&hash)
            .fetch_optional(pool)
            .await?
            .map(|r| read_stored(&Cols::new(&r)))
            .transpose()?);
        let Some(s) = stored else {
            return Ok(None);
        };
        Ok(self.settle(&hash, s).await?.map(|s| s.public()))
    }

    async fn promote(&self, token: &str) -> Result<Option<String>, WebSessionError> {
        let Some(old_hash) = token_hash(token) else {
            return Ok(None);
        };
        let now = self.now();
        let (new, new_hash) = new_token();
        let delete =
            format!("DELETE FROM web_sessions WHERE id_hash = $1 RETURNING {SESSION_COLS}");
        let insert = format!(
            "INSERT INTO web_sessions (id_hash, {SESSION_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"
        );
        let mut tx = self.db.begin().await?;
        // Deleting first makes the old token single-use: a concurrent promote finds no row.
        let promoted = on_tx!(&mut tx, conn => {
            let old = sqlx::query(&delete)
                .bind(&old_hash)
                .fetch_optional(&mut **conn)
                .await?
                .map(|r| read_stored(&Cols::new(&r)))
                .transpose()?;
            match old {
                Some(s) if !self.policy.expired(&s, now) => {
                    sqlx::query(&insert)
                        .bind(&new_hash)
                        .bind(s.account_id)
                        .bind(s.created)
                        .bind(now)
                        .bind(false)
                        .bind(s.ip.map(|ip| ip.to_string()))
                        .execute(&mut **conn)
                        .await?;
                    true
                }
                _ => false,
            }
        });
        tx.commit().await?;
        Ok(promoted.then_some(new))
    }

    async fn delete(&self, token: &str) -> Result<(), WebSessionError> {
        if let Some(hash) = token_hash(token) {
            self.delete_hash(&hash).await?;
        }
        Ok(())
    }

    async fn delete_all(
        &self,
        account_id: i64,
        keep: Option<&str>,
    ) -> Result<u64, WebSessionError> {
        let keep = keep.and_then(token_hash).unwrap_or_default();
        let sql = "DELETE FROM web_sessions WHERE account_id = $1 AND id_hash <> $2";
        Ok(on_pool!(&self.db, pool => sqlx::query(sql)
            .bind(account_id)
            .bind(&keep)
            .execute(pool)
            .await?
            .rows_affected()))
    }

    async fn list(&self, account_id: i64) -> Result<Vec<ListedSession>, WebSessionError> {
        let sql = format!("SELECT id_hash, {SESSION_COLS} FROM web_sessions WHERE account_id = $1");
        let found = on_pool!(&self.db, pool => {
            let mut found = Vec::new();
            for r in sqlx::query(&sql).bind(account_id).fetch_all(pool).await? {
                let c = Cols::new(&r);
                found.push((c.text("id_hash")?, read_stored(&c)?));
            }
            found
        });
        Ok(listed(&self.policy, self.now(), found))
    }

    async fn end(&self, account_id: i64, id: &str) -> Result<bool, WebSessionError> {
        let sql = "DELETE FROM web_sessions WHERE account_id = $1 AND id_hash = $2";
        Ok(on_pool!(&self.db, pool => sqlx::query(sql)
            .bind(account_id)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected())
            > 0)
    }

    async fn purge_expired(&self) -> Result<u64, WebSessionError> {
        let now = self.now();
        let sql = "DELETE FROM web_sessions WHERE last_seen_at <= $1 OR created_at <= $2";
        Ok(on_pool!(&self.db, pool => sqlx::query(sql)
            .bind(now.saturating_sub(self.policy.idle_secs()))
            .bind(now.saturating_sub(self.policy.absolute_secs()))
            .execute(pool)
            .await?
            .rows_affected()))
    }

    fn as_sql(&self) -> Option<&SqlWebSessions> {
        Some(self)
    }
}
