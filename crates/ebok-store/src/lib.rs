//! ebok's SQL model (sqlx) on SQLite, the embedded default, or PostgreSQL, chosen by the
//! URL scheme. One vocabulary for both: runtime queries with `$n` placeholders, which SQLite
//! accepts too; a migrations folder per backend (`migrations/` at the workspace root).
//!
//! Modules:
//! - the model: [`subscribers`] (subscriber, contract, PPPoE account, IP assignment),
//!   [`billing`] (with [`ksef`]: KSeF numbers and FA(3) files), [`money`], [`content`]
//!   (news, FAQ, tickets, orders), [`documents`] (the ISP's published PDFs), [`reminders`]
//!   (payment reminders claimed once), [`panel`] and [`auth`] (panel accounts, sessions,
//!   tokens), [`notices`] (outage and maintenance notices and whom they touch), [`audit`],
//!   with [`repo`]'s shared row
//!   reading and paging and [`validate`]'s checks (PESEL, NIP, postcodes…);
//! - [`history`]: closed sessions and daily traffic, the [`ebok_live::history_writer::HistoryStore`]
//!   the live side writes through; [`retention`] prunes it;
//! - [`identify`]: who is on a line now (live map → PPPoE login → subscriber), and
//!   [`attribution`]: who held an address at an instant or over a period (history + live);
//! - [`import`]: files from the billing system, never erasing what they do not carry;
//! - [`tz`]: Europe/Warsaw dates and times.
//!
//! A closed session's path: `ebok_live`'s history writer → [`history`]'s `HistoryStore`
//! impl → `session_history`, `session_history_ipv6`, `traffic_daily` tables.

// The module maps in these docs name private rooms and constants on purpose: they are
// written for whoever works on the code (`cargo doc --document-private-items`).
#![allow(rustdoc::private_intra_doc_links)]

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub mod attribution;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod content;
pub mod documents;
pub mod history;
pub mod identify;
pub mod import;
pub mod ksef;
pub mod money;
pub mod notices;
pub mod panel;
pub mod reminders;
pub mod repo;
pub mod retention;
pub mod subscribers;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
#[cfg(test)]
mod tests;
pub mod tz;
pub mod validate;

/// Run the same body on whichever pool a [`Db`] holds: `on_pool!(db, pool => body)`. The body
/// is compiled once per backend, so one SQL text and one piece of code serve both.
#[macro_export]
#[doc(hidden)]
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::Db::Sqlite($pool) => $body,
            $crate::Db::Postgres($pool) => $body,
        }
    };
}

/// Run the same body on whichever transaction a [`DbTx`] holds: `on_tx!(tx, conn => body)`,
/// where `conn` is `&mut Transaction<…>` (use `&mut **conn` as the executor).
#[macro_export]
#[doc(hidden)]
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::DbTx::Sqlite($conn) => $body,
            $crate::DbTx::Postgres($conn) => $body,
        }
    };
}

/// An open transaction on either backend.
pub enum DbTx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl DbTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            DbTx::Sqlite(t) => t.commit().await,
            DbTx::Postgres(t) => t.commit().await,
        }
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            DbTx::Sqlite(t) => t.rollback().await,
            DbTx::Postgres(t) => t.rollback().await,
        }
    }
}

/// A connection pool to one of the two backends.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    /// Connect by URL (`sqlite://PATH` or `postgres://…`) and run the migrations. A SQLite
    /// file and its directory are created when missing.
    pub async fn connect(url: &str) -> Result<Db, sqlx::Error> {
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                // Per connection (≤ 4): history indexes (IP, login, time) and the daily
                // traffic upserts touch pages all over their trees.
                .pragma("cache_size", "-8192")
                // Statement journals in memory: each multi-row upsert copies every page it
                // changes there first, and in a file that was a pwrite per page (perf: 12%
                // of the replay's CPU).
                .pragma("temp_store", "memory")
                .busy_timeout(Duration::from_secs(5));
            if let Some(dir) = opts.get_filename().parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir)?;
                }
            }
            // No ping before each acquire: a SQLite "connection" is a worker thread of this
            // process, and sqlx pings it on every release anyway. The ping was a second
            // hand-over to that thread per query (perf: futex wake-ups dominated the panel).
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .test_before_acquire(false)
                .connect_with(opts)
                .await?;
            sqlx::migrate!("../../migrations/sqlite").run(&pool).await?;
            Ok(Db::Sqlite(pool))
        } else {
            let opts = PgConnectOptions::from_str(url)?;
            // Ping only a connection that sat idle (the server may have restarted since): sqlx
            // pings every connection on release already, so one in steady use is known to be
            // alive, and a ping per acquire is a round trip to the server per query.
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(5))
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for > Duration::from_secs(5) {
                            sqlx::Connection::ping(conn).await?;
                        }
                        Ok(true)
                    })
                })
                .connect_with(opts)
                .await?;
            sqlx::migrate!("../../migrations/postgres")
                .run(&pool)
                .await?;
            Ok(Db::Postgres(pool))
        }
    }

    /// The database for one long-running writer (the history writer on the replay thread):
    /// SQLite, a pool of its own single connection, opened lazily by the writer, so its
    /// worker thread starts on (and inherits the priority of) the writer's thread and the
    /// panel's connections stay at normal priority. PostgreSQL: the same pool (the work is
    /// the server's).
    pub fn dedicated_writer(&self) -> Db {
        match self {
            Db::Sqlite(p) => Db::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .test_before_acquire(false)
                    .connect_lazy_with((*p.connect_options()).clone()),
            ),
            Db::Postgres(_) => self.clone(),
        }
    }

    /// Begin a transaction.
    pub async fn begin(&self) -> Result<DbTx, sqlx::Error> {
        Ok(match self {
            // Our transactions write: take SQLite's write lock up front (waiting under the
            // busy timeout) instead of failing at once with "database is locked" when a
            // deferred read transaction cannot be upgraded after another writer committed.
            Db::Sqlite(p) => DbTx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(p) => DbTx::Postgres(p.begin().await?),
        })
    }

    /// Round trip to the database.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Db::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await.map(|_| ()),
            Db::Postgres(p) => sqlx::query("SELECT 1").execute(p).await.map(|_| ()),
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }
}
