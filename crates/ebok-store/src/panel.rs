//! What the panel itself records about a subscriber: e-invoice consents, the panel account
//! (login, argon2 hash, e-mail), and tickets to the customer office (BOK) with their
//! messages.

use std::fmt;
use std::net::IpAddr;

use time::OffsetDateTime;

use super::repo::{
    ensure_exists, now, paged_by, select_list, text_enum, Cols, Entity, Page, Paged, RowGet,
    StoreError, UniqueField,
};
use super::subscribers::{
    overview_select_list, read_overview, Overview, OVERVIEW_JOINS, OVERVIEW_ORDER,
};
use super::{Db, DbTx};
use crate::{on_pool, on_tx};

/// Run an INSERT … RETURNING id on a transaction and give the id.
macro_rules! insert_returning_id {
    ($conn:ident, $sql:expr, $($v:expr),+ $(,)?) => {{
        let q = sqlx::query($sql)$(.bind($v))+;
        Cols::new(&q.fetch_one(&mut **$conn).await?).i64("id")?
    }};
}

/// Run an UPDATE on a transaction; [`StoreError::NotFound`] when no row matched.
macro_rules! update_one {
    ($conn:ident, $kind:expr, $id:expr, $sql:expr, $($v:expr),+ $(,)?) => {{
        let done = sqlx::query($sql)$(.bind($v))+.execute(&mut **$conn).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { kind: $kind, id: $id });
        }
    }};
}

fn ip_text(ip: Option<IpAddr>) -> Option<String> {
    ip.map(|ip| ip.to_string())
}

fn parse_ip<R: RowGet>(c: &Cols<'_, R>, col: &str) -> Result<Option<IpAddr>, sqlx::Error> {
    c.opt_parse(col)
}

// ---------------------------------------------------------------------------------------------
// E-invoice consents
// ---------------------------------------------------------------------------------------------

/// One recorded decision about electronic invoices: given or revoked, when, from where, and
/// which consent wording was shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consent {
    pub id: i64,
    pub subscriber_id: i64,
    pub given: bool,
    pub at: OffsetDateTime,
    pub ip: Option<IpAddr>,
    pub text_version: String,
}

const CONSENT_COLS: &[&str] = &["id", "subscriber_id", "given", "at", "ip", "text_version"];

fn read_consent<R: RowGet>(c: &Cols<'_, R>) -> Result<Consent, sqlx::Error> {
    Ok(Consent {
        id: c.i64("id")?,
        subscriber_id: c.i64("subscriber_id")?,
        given: c.boolean("given")?,
        at: c.ts("at")?,
        ip: parse_ip(c, "ip")?,
        text_version: c.text("text_version")?,
    })
}

/// Record that a subscriber gave (`given = true`) or revoked e-invoice consent now. Records
/// are only appended: the history is the evidence.
pub async fn record_consent(
    tx: &mut DbTx,
    subscriber_id: i64,
    given: bool,
    ip: Option<IpAddr>,
    text_version: &str,
) -> Result<i64, StoreError> {
    let sql = "INSERT INTO einvoice_consents (subscriber_id, given, at, ip, text_version) \
               VALUES ($1, $2, $3, $4, $5) RETURNING id";
    let at = now().unix_timestamp();
    Ok(on_tx!(tx, conn => {
        ensure_exists!(conn, Entity::Subscriber, subscriber_id);
        insert_returning_id!(conn, sql, subscriber_id, given, at, ip_text(ip), text_version)
    }))
}

/// The latest consent record of a subscriber (`None`: never asked; `given == false`:
/// revoked or refused).
pub async fn current_consent(db: &Db, subscriber_id: i64) -> Result<Option<Consent>, StoreError> {
    let sql = format!(
        "SELECT {} FROM einvoice_consents e WHERE e.subscriber_id = $1 \
         ORDER BY e.at DESC, e.id DESC LIMIT 1",
        select_list("e", "", CONSENT_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(subscriber_id)
        .fetch_optional(pool)
        .await?
        .map(|r| read_consent(&Cols::new(&r)))
        .transpose()?))
}

/// All consent records of a subscriber, newest first.
pub async fn consent_history(db: &Db, subscriber_id: i64) -> Result<Vec<Consent>, StoreError> {
    let sql = format!(
        "SELECT {} FROM einvoice_consents e WHERE e.subscriber_id = $1 \
         ORDER BY e.at DESC, e.id DESC",
        select_list("e", "", CONSENT_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(subscriber_id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| read_consent(&Cols::new(r)))
        .collect::<Result<Vec<_>, _>>()?))
}

// ---------------------------------------------------------------------------------------------
// Panel accounts
// ---------------------------------------------------------------------------------------------

/// The key logins are unique by: `Jan.Kowalski` and `jan.kowalski` are the same login.
pub fn login_key(login: &str) -> String {
    login.trim().to_lowercase()
}

pub(crate) fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A subscriber's panel account. `Debug` hides the password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct PanelAccount {
    pub id: i64,
    pub subscriber_id: i64,
    /// As the subscriber typed it at registration.
    pub login: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub email: String,
    pub email_confirmed_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub disabled: bool,
    pub password_changed_at: Option<OffsetDateTime>,
    /// Base32 TOTP secret once the second factor is on.
    pub totp_secret: Option<String>,
    /// Secret shown during enrolment, before the first code confirmed it.
    pub totp_pending_secret: Option<String>,
    /// Last TOTP time step accepted (replay protection).
    pub totp_last_step: Option<i64>,
}

impl PanelAccount {
    /// Whether logging in needs a second factor.
    pub fn totp_enabled(&self) -> bool {
        self.totp_secret.is_some()
    }
}

impl fmt::Debug for PanelAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PanelAccount")
            .field("id", &self.id)
            .field("subscriber_id", &self.subscriber_id)
            .field("login", &self.login)
            .field("password_hash", &"***")
            .field("email", &self.email)
            .field("email_confirmed_at", &self.email_confirmed_at)
            .field("created_at", &self.created_at)
            .field("disabled", &self.disabled)
            .field("password_changed_at", &self.password_changed_at)
            .field("totp_enabled", &self.totp_enabled())
            .finish_non_exhaustive()
    }
}

const ACCOUNT_COLS: &[&str] = &[
    "id",
    "subscriber_id",
    "login",
    "password_hash",
    "email",
    "email_confirmed_at",
    "created_at",
    "disabled",
    "password_changed_at",
    "totp_secret",
    "totp_pending_secret",
    "totp_last_step",
];

fn read_account<R: RowGet>(c: &Cols<'_, R>) -> Result<PanelAccount, sqlx::Error> {
    Ok(PanelAccount {
        id: c.i64("id")?,
        subscriber_id: c.i64("subscriber_id")?,
        login: c.text("login")?,
        password_hash: c.text("password_hash")?,
        email: c.text("email")?,
        email_confirmed_at: c.opt_ts("email_confirmed_at")?,
        created_at: c.ts("created_at")?,
        disabled: c.boolean("disabled")?,
        password_changed_at: c.opt_ts("password_changed_at")?,
        totp_secret: c.opt_text("totp_secret")?,
        totp_pending_secret: c.opt_text("totp_pending_secret")?,
        totp_last_step: c.opt_i64("totp_last_step")?,
    })
}

/// The select list of a panel account joined as `alias`, its columns named `prefix…`, for
/// queries of other modules that fetch an account along with something else (the SQL
/// session store: session and account in one round trip).
pub(crate) fn account_select_list(alias: &str, prefix: &str) -> String {
    select_list(alias, prefix, ACCOUNT_COLS)
}

/// The account selected with [`account_select_list`] under `prefix`; `None` when the join
/// found none (its id is NULL).
pub(crate) fn read_account_prefixed<R: RowGet>(
    row: &R,
    prefix: &'static str,
) -> Result<Option<PanelAccount>, sqlx::Error> {
    let c = Cols::prefixed(row, prefix);
    if c.opt_i64("id")?.is_none() {
        return Ok(None);
    }
    read_account(&c).map(Some)
}

/// Create the panel account of a subscriber who has none yet. A login taken by anyone
/// (ignoring case) is [`StoreError::Duplicate`] with [`UniqueField::PanelLogin`]; a
/// subscriber who already has an account gives [`UniqueField::PanelAccountOfSubscriber`].
/// The transaction stays usable after either (nothing is attempted that the database would
/// reject).
pub async fn create_panel_account(
    tx: &mut DbTx,
    subscriber_id: i64,
    login: &str,
    password_hash: &str,
    email: &str,
) -> Result<i64, StoreError> {
    create_panel_account_limited(tx, subscriber_id, login, password_hash, email, 1).await
}

/// [`create_panel_account`] for a subscriber who may hold up to `max_accounts` accounts
/// (`[web] accounts_per_subscriber`). Concurrent registrations of one subscriber are
/// serialised (PostgreSQL: row lock on the subscriber; SQLite: one writer at a time).
pub async fn create_panel_account_limited(
    tx: &mut DbTx,
    subscriber_id: i64,
    login: &str,
    password_hash: &str,
    email: &str,
    max_accounts: u32,
) -> Result<i64, StoreError> {
    let login = login.trim();
    if login.is_empty() {
        return Err(StoreError::invalid("login", "must not be empty"));
    }
    let key = login_key(login);
    let insert = "INSERT INTO panel_accounts (subscriber_id, login, login_key, password_hash, \
               email, email_key, created_at, disabled) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING id";
    let lock = match tx {
        DbTx::Sqlite(_) => "SELECT id FROM subscribers WHERE id = $1",
        DbTx::Postgres(_) => "SELECT id FROM subscribers WHERE id = $1 FOR UPDATE",
    };
    let count = "SELECT COUNT(*) AS n FROM panel_accounts WHERE subscriber_id = $1";
    let created = now().unix_timestamp();
    on_tx!(tx, conn => {
        if sqlx::query(lock).bind(subscriber_id).fetch_optional(&mut **conn).await?.is_none() {
            return Err(StoreError::NotFound { kind: Entity::Subscriber, id: subscriber_id });
        }
        let held = Cols::new(&sqlx::query(count).bind(subscriber_id).fetch_one(&mut **conn).await?)
            .i64("n")?;
        if held >= i64::from(max_accounts) {
            return Err(StoreError::Duplicate {
                field: UniqueField::PanelAccountOfSubscriber,
                value: subscriber_id.to_string(),
            });
        }
        let row = sqlx::query(insert)
            .bind(subscriber_id)
            .bind(login)
            .bind(&key)
            .bind(password_hash)
            .bind(email.trim())
            .bind(email_key(email))
            .bind(created)
            .bind(false)
            .fetch_optional(&mut **conn)
            .await?;
        match row {
            Some(r) => Ok(Cols::new(&r).i64("id")?),
            None => Err(StoreError::Duplicate {
                field: UniqueField::PanelLogin,
                value: login.to_owned(),
            }),
        }
    })
}

async fn account_where(
    db: &Db,
    condition: &str,
    value: PanelKey<'_>,
) -> Result<Option<PanelAccount>, StoreError> {
    let sql = format!(
        "SELECT {} FROM panel_accounts a WHERE {condition}",
        select_list("a", "", ACCOUNT_COLS)
    );
    Ok(on_pool!(db, pool => {
        let q = sqlx::query(&sql);
        let q = match value {
            PanelKey::Id(id) => q.bind(id),
            PanelKey::Text(t) => q.bind(t),
        };
        q.fetch_optional(pool)
            .await?
            .map(|r| read_account(&Cols::new(&r)))
            .transpose()?
    }))
}

enum PanelKey<'a> {
    Id(i64),
    Text(&'a str),
}

/// The account with this login, ignoring case.
pub async fn panel_account_by_login(
    db: &Db,
    login: &str,
) -> Result<Option<PanelAccount>, StoreError> {
    let key = login_key(login);
    account_where(db, "a.login_key = $1", PanelKey::Text(&key)).await
}

pub async fn panel_account(db: &Db, id: i64) -> Result<Option<PanelAccount>, StoreError> {
    account_where(db, "a.id = $1", PanelKey::Id(id)).await
}

/// What the panel knows of a logged-in account on every page: the account, and whether
/// the caller's live line is one of its subscriber's; on "Twój panel" also the subscriber's
/// [`Overview`].
#[derive(Debug, Clone)]
pub struct AccountView {
    pub account: PanelAccount,
    /// The number of the contract holding the line's PPPoE login, when that contract is
    /// this subscriber's: the "this is your line" of the connection note. No other
    /// subscriber's row is read to answer it.
    pub line_contract: Option<String>,
    /// Read when asked for (one row per contract and IP).
    pub overview: Option<Overview>,
}

/// A query of an [`AccountView`]: `head` (columns of other tables, each followed by a
/// comma, or nothing), the account `a` under `a_`, `line_contract` for the PPPoE login bound
/// as `$2` (NULL: no live line), and with `overview` the subscriber's; `from` ends with
/// `panel_accounts a` (or a join to it), `filter` is the WHERE condition.
pub fn account_view_sql(head: &str, from: &str, filter: &str, overview: bool) -> String {
    let account = account_select_list("a", "a_");
    let line = "(SELECT c2.number FROM pppoe_accounts p2 \
                JOIN contracts c2 ON c2.id = p2.contract_id \
                WHERE p2.login = $2 AND c2.subscriber_id = a.subscriber_id) AS line_contract";
    if overview {
        format!(
            "SELECT {head} {account}, {line}, {} FROM {from} \
             LEFT JOIN subscribers s ON s.id = a.subscriber_id {OVERVIEW_JOINS} \
             WHERE {filter} {OVERVIEW_ORDER}",
            overview_select_list()
        )
    } else {
        format!("SELECT {head} {account}, {line} FROM {from} WHERE {filter}")
    }
}

/// The [`AccountView`] in rows of [`account_view_sql`]; `None` when there is no account.
pub fn read_account_view<R: RowGet>(
    rows: &[R],
    overview: bool,
) -> Result<Option<AccountView>, sqlx::Error> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let Some(account) = read_account_prefixed(first, "a_")? else {
        return Ok(None);
    };
    Ok(Some(AccountView {
        account,
        line_contract: Cols::new(first).opt_text("line_contract")?,
        overview: if overview { read_overview(rows)? } else { None },
    }))
}

/// The [`AccountView`] of account `id` for a caller on the line with PPPoE login
/// `line_login`, in one query (what the panel's extractor reads after a session from Redis).
pub async fn account_view(
    db: &Db,
    id: i64,
    line_login: Option<&str>,
    overview: bool,
) -> Result<Option<AccountView>, StoreError> {
    static SQL: std::sync::LazyLock<[String; 2]> = std::sync::LazyLock::new(|| {
        [false, true].map(|o| account_view_sql("", "panel_accounts a", "a.id = $1", o))
    });
    Ok(on_pool!(db, pool => {
        let rows = sqlx::query(SQL[usize::from(overview)].as_str())
            .bind(id)
            .bind(line_login)
            .fetch_all(pool)
            .await?;
        read_account_view(&rows, overview)?
    }))
}

pub async fn panel_account_of_subscriber(
    db: &Db,
    subscriber_id: i64,
) -> Result<Option<PanelAccount>, StoreError> {
    account_where(db, "a.subscriber_id = $1", PanelKey::Id(subscriber_id)).await
}

/// Accounts registered with this e-mail (ignoring case), for password/login recovery.
pub async fn panel_accounts_by_email(
    db: &Db,
    email: &str,
) -> Result<Vec<PanelAccount>, StoreError> {
    let sql = format!(
        "SELECT {} FROM panel_accounts a WHERE a.email_key = $1 ORDER BY a.id",
        select_list("a", "", ACCOUNT_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(email_key(email))
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| read_account(&Cols::new(r)))
        .collect::<Result<Vec<_>, _>>()?))
}

/// Replace the password hash.
pub async fn set_password_hash(
    tx: &mut DbTx,
    account_id: i64,
    password_hash: &str,
) -> Result<(), StoreError> {
    let sql = "UPDATE panel_accounts SET password_hash = $1, password_changed_at = $2 \
               WHERE id = $3";
    let at = now().unix_timestamp();
    on_tx!(tx, conn => update_one!(
        conn, Entity::PanelAccount, account_id, sql, password_hash, at, account_id
    ));
    Ok(())
}

/// Change the e-mail; it counts as unconfirmed until [`confirm_email`].
pub async fn set_email(tx: &mut DbTx, account_id: i64, email: &str) -> Result<(), StoreError> {
    let sql = "UPDATE panel_accounts SET email = $1, email_key = $2, email_confirmed_at = NULL \
               WHERE id = $3";
    on_tx!(tx, conn => update_one!(
        conn, Entity::PanelAccount, account_id, sql, email.trim(), email_key(email), account_id
    ));
    Ok(())
}

/// Mark the current e-mail as confirmed now.
pub async fn confirm_email(tx: &mut DbTx, account_id: i64) -> Result<(), StoreError> {
    let sql = "UPDATE panel_accounts SET email_confirmed_at = $1 WHERE id = $2";
    let at = now().unix_timestamp();
    on_tx!(tx, conn => update_one!(conn, Entity::PanelAccount, account_id, sql, at, account_id));
    Ok(())
}

/// Block or unblock logging in.
pub async fn set_disabled(
    tx: &mut DbTx,
    account_id: i64,
    disabled: bool,
) -> Result<(), StoreError> {
    let sql = "UPDATE panel_accounts SET disabled = $1 WHERE id = $2";
    on_tx!(tx, conn => update_one!(
        conn, Entity::PanelAccount, account_id, sql, disabled, account_id
    ));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Tickets
// ---------------------------------------------------------------------------------------------

text_enum! {
    pub enum TicketStatus {
        /// Waiting for the office.
        Open = "open",
        /// The office replied; waiting for the subscriber.
        Answered = "answered",
        Closed = "closed",
    }
}

text_enum! {
    /// Who wrote a ticket message: the customer side or the customer office.
    pub enum Author { Subscriber = "subscriber", Office = "office" }
}

/// A conversation with the customer office.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub id: i64,
    /// `None` for a visitor's message from the contact form.
    pub subscriber_id: Option<i64>,
    /// How to reach a visitor (name, e-mail or phone as typed).
    pub contact: Option<String>,
    pub subject: String,
    pub status: TicketStatus,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketMessage {
    pub id: i64,
    pub ticket_id: i64,
    pub author: Author,
    pub body: String,
    pub created_at: OffsetDateTime,
}

const TICKET_COLS: &[&str] = &[
    "id",
    "subscriber_id",
    "contact",
    "subject",
    "status",
    "created_at",
    "updated_at",
];

const MESSAGE_COLS: &[&str] = &["id", "ticket_id", "author", "body", "created_at"];

fn read_ticket<R: RowGet>(c: &Cols<'_, R>) -> Result<Ticket, sqlx::Error> {
    Ok(Ticket {
        id: c.i64("id")?,
        subscriber_id: c.opt_i64("subscriber_id")?,
        contact: c.opt_text("contact")?,
        subject: c.text("subject")?,
        status: c.parse("status")?,
        created_at: c.ts("created_at")?,
        updated_at: c.ts("updated_at")?,
    })
}

fn read_message<R: RowGet>(c: &Cols<'_, R>) -> Result<TicketMessage, sqlx::Error> {
    Ok(TicketMessage {
        id: c.i64("id")?,
        ticket_id: c.i64("ticket_id")?,
        author: c.parse("author")?,
        body: c.text("body")?,
        created_at: c.ts("created_at")?,
    })
}

/// Open a ticket with its first message (from the subscriber or visitor). Gives the ticket
/// id.
pub async fn create_ticket(
    tx: &mut DbTx,
    subscriber_id: Option<i64>,
    contact: Option<&str>,
    subject: &str,
    body: &str,
) -> Result<i64, StoreError> {
    if subject.trim().is_empty() {
        return Err(StoreError::invalid("subject", "must not be empty"));
    }
    if body.trim().is_empty() {
        return Err(StoreError::invalid("body", "must not be empty"));
    }
    let at = now().unix_timestamp();
    let ticket_sql = "INSERT INTO tickets (subscriber_id, contact, subject, status, created_at, \
                      updated_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING id";
    let message_sql = "INSERT INTO ticket_messages (ticket_id, author, body, created_at) \
                       VALUES ($1, $2, $3, $4) RETURNING id";
    Ok(on_tx!(tx, conn => {
        if let Some(id) = subscriber_id {
            ensure_exists!(conn, Entity::Subscriber, id);
        }
        let ticket_id = insert_returning_id!(
            conn, ticket_sql, subscriber_id, contact, subject.trim(),
            TicketStatus::Open.as_str(), at
        );
        let _: i64 = insert_returning_id!(
            conn, message_sql, ticket_id, Author::Subscriber.as_str(), body, at
        );
        ticket_id
    }))
}

/// Add a message. A subscriber's message (re)opens the ticket, the office's marks it
/// answered. Gives the message id.
pub async fn add_ticket_message(
    tx: &mut DbTx,
    ticket_id: i64,
    author: Author,
    body: &str,
) -> Result<i64, StoreError> {
    if body.trim().is_empty() {
        return Err(StoreError::invalid("body", "must not be empty"));
    }
    let at = now().unix_timestamp();
    let status = match author {
        Author::Subscriber => TicketStatus::Open,
        Author::Office => TicketStatus::Answered,
    };
    let ticket_sql = "UPDATE tickets SET status = $1, updated_at = $2 WHERE id = $3";
    let message_sql = "INSERT INTO ticket_messages (ticket_id, author, body, created_at) \
                       VALUES ($1, $2, $3, $4) RETURNING id";
    Ok(on_tx!(tx, conn => {
        update_one!(conn, Entity::Ticket, ticket_id, ticket_sql, status.as_str(), at, ticket_id);
        insert_returning_id!(conn, message_sql, ticket_id, author.as_str(), body, at)
    }))
}

/// Set a ticket's status (e.g. closed by the office).
pub async fn set_ticket_status(
    tx: &mut DbTx,
    ticket_id: i64,
    status: TicketStatus,
) -> Result<(), StoreError> {
    let sql = "UPDATE tickets SET status = $1, updated_at = $2 WHERE id = $3";
    let at = now().unix_timestamp();
    on_tx!(tx, conn => update_one!(
        conn, Entity::Ticket, ticket_id, sql, status.as_str(), at, ticket_id
    ));
    Ok(())
}

/// A subscriber's tickets, most recently active first.
pub async fn tickets_of(db: &Db, subscriber_id: i64) -> Result<Vec<Ticket>, StoreError> {
    let sql = format!(
        "SELECT {} FROM tickets t WHERE t.subscriber_id = $1 \
         ORDER BY t.updated_at DESC, t.id DESC",
        select_list("t", "", TICKET_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(subscriber_id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| read_ticket(&Cols::new(r)))
        .collect::<Result<Vec<_>, _>>()?))
}

/// How many of the subscriber's tickets are not closed (one COUNT; the dashboard shows it).
pub async fn open_ticket_count(db: &Db, subscriber_id: i64) -> Result<i64, StoreError> {
    let sql = "SELECT COUNT(*) AS n FROM tickets WHERE subscriber_id = $1 AND status <> $2";
    Ok(on_pool!(db, pool => Cols::new(
        &sqlx::query(sql)
            .bind(subscriber_id)
            .bind(TicketStatus::Closed.as_str())
            .fetch_one(pool)
            .await?
    )
    .i64("n")?))
}

/// A ticket, only if it belongs to `subscriber_id`.
pub async fn ticket_for(
    db: &Db,
    subscriber_id: i64,
    ticket_id: i64,
) -> Result<Option<Ticket>, StoreError> {
    let sql = format!(
        "SELECT {} FROM tickets t WHERE t.id = $1 AND t.subscriber_id = $2",
        select_list("t", "", TICKET_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(ticket_id)
        .bind(subscriber_id)
        .fetch_optional(pool)
        .await?
        .map(|r| read_ticket(&Cols::new(&r)))
        .transpose()?))
}

/// The messages of a ticket, oldest first. Check ownership with [`ticket_for`] first.
pub async fn ticket_messages(db: &Db, ticket_id: i64) -> Result<Vec<TicketMessage>, StoreError> {
    let sql = format!(
        "SELECT {} FROM ticket_messages m WHERE m.ticket_id = $1 \
         ORDER BY m.created_at, m.id",
        select_list("m", "", MESSAGE_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(ticket_id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| read_message(&Cols::new(r)))
        .collect::<Result<Vec<_>, _>>()?))
}

/// One page of a subscriber's tickets, most recently active first.
pub async fn tickets_page(
    db: &Db,
    subscriber_id: i64,
    page: Page,
) -> Result<Paged<Ticket>, StoreError> {
    let sql = format!(
        "SELECT {} FROM tickets t WHERE t.subscriber_id = $1 \
         ORDER BY t.updated_at DESC, t.id DESC LIMIT $2 OFFSET $3",
        select_list("t", "", TICKET_COLS)
    );
    let count = "SELECT COUNT(*) AS n FROM tickets WHERE subscriber_id = $1";
    paged_by!(db, count, &sql, subscriber_id, page, read_ticket)
}

/// One page of the tickets in one status, longest waiting first (the office's queue).
pub async fn tickets_by_status(
    db: &Db,
    status: TicketStatus,
    page: Page,
) -> Result<Paged<Ticket>, StoreError> {
    let sql = format!(
        "SELECT {} FROM tickets t WHERE t.status = $1 \
         ORDER BY t.updated_at, t.id LIMIT $2 OFFSET $3",
        select_list("t", "", TICKET_COLS)
    );
    let count = "SELECT COUNT(*) AS n FROM tickets WHERE status = $1";
    paged_by!(db, count, &sql, status.as_str(), page, read_ticket)
}

/// Any ticket by id, whoever it belongs to (for the office; the panel uses [`ticket_for`]).
pub async fn ticket(db: &Db, ticket_id: i64) -> Result<Option<Ticket>, StoreError> {
    let sql = format!(
        "SELECT {} FROM tickets t WHERE t.id = $1",
        select_list("t", "", TICKET_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(ticket_id)
        .fetch_optional(pool)
        .await?
        .map(|r| read_ticket(&Cols::new(&r)))
        .transpose()?))
}
