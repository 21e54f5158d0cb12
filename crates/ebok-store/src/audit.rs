//! The audit log: who did what, when, from which address — logins, registrations, consent
//! changes, operator actions. Append-only.

use std::net::IpAddr;

use time::OffsetDateTime;

use super::repo::{now, select_list, Cols, RowGet, StoreError};
use super::{Db, DbTx};
use crate::{on_pool, on_tx};

/// One audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: OffsetDateTime,
    /// `subscriber:42`, `panel:jan.kowalski`, `ops:token-name`, `system` …
    pub actor: String,
    /// A short verb such as `login`, `login_failed`, `register`, `consent_given`.
    pub action: String,
    pub ip: Option<IpAddr>,
    pub detail: String,
}

const AUDIT_COLS: &[&str] = &["id", "at", "actor", "action", "ip", "detail"];

fn read_entry<R: RowGet>(c: &Cols<'_, R>) -> Result<AuditEntry, sqlx::Error> {
    Ok(AuditEntry {
        id: c.i64("id")?,
        at: c.ts("at")?,
        actor: c.text("actor")?,
        action: c.text("action")?,
        ip: c.opt_parse("ip")?,
        detail: c.text("detail")?,
    })
}

/// Append a record stamped now; gives its id.
pub async fn append(
    tx: &mut DbTx,
    actor: &str,
    action: &str,
    ip: Option<IpAddr>,
    detail: &str,
) -> Result<i64, StoreError> {
    let sql = "INSERT INTO audit_log (at, actor, action, ip, detail) \
               VALUES ($1, $2, $3, $4, $5) RETURNING id";
    let at = now().unix_timestamp();
    let ip = ip.map(|ip| ip.to_string());
    Ok(on_tx!(tx, conn => {
        let row = sqlx::query(sql)
            .bind(at)
            .bind(actor)
            .bind(action)
            .bind(&ip)
            .bind(detail)
            .fetch_one(&mut **conn)
            .await?;
        Cols::new(&row).i64("id")?
    }))
}

/// The latest `limit` records, newest first.
pub async fn recent(db: &Db, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
    let sql = format!(
        "SELECT {} FROM audit_log a ORDER BY a.at DESC, a.id DESC LIMIT $1",
        select_list("a", "", AUDIT_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| read_entry(&Cols::new(r)))
        .collect::<Result<Vec<_>, _>>()?))
}

/// The latest `limit` records of one actor, newest first.
pub async fn recent_by_actor(
    db: &Db,
    actor: &str,
    limit: u32,
) -> Result<Vec<AuditEntry>, StoreError> {
    let sql = format!(
        "SELECT {} FROM audit_log a WHERE a.actor = $1 ORDER BY a.at DESC, a.id DESC LIMIT $2",
        select_list("a", "", AUDIT_COLS)
    );
    Ok(on_pool!(db, pool => sqlx::query(&sql)
        .bind(actor)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| read_entry(&Cols::new(r)))
        .collect::<Result<Vec<_>, _>>()?))
}
