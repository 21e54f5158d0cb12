//! Payment reminders: which unpaid invoices are due a reminder (before the due date, or
//! after it passed), and the claim that makes each (invoice, kind) mailed once however many
//! instances look at the same time.

use time::Date;

use super::money::Money;
use super::repo::{now, text_enum, Cols, StoreError};
use super::Db;
use crate::on_pool;

text_enum! {
    pub enum ReminderKind {
        /// Some days before the due date.
        Before = "before",
        /// Some days after the due date passed unpaid.
        After = "after",
    }
}

/// An invoice due a reminder, with what the mail needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReminderCandidate {
    pub invoice_id: i64,
    pub subscriber_id: i64,
    pub number: String,
    pub due_on: Date,
    pub gross: Money,
    /// The subscriber's balance now (negative: owes).
    pub balance: Money,
    /// Confirmed e-mail addresses of the subscriber's panel accounts that are not disabled.
    pub emails: Vec<String>,
}

impl ReminderCandidate {
    /// What is still to pay of this invoice: its gross, or less when the subscriber owes
    /// less in all.
    pub fn amount(&self) -> Money {
        (-self.balance).min(self.gross)
    }
}

/// Invoices (issued or overdue) due between `from` and `to` (inclusive) without a claimed
/// reminder of `kind`, whose subscriber owes money and has at least one panel account with
/// a confirmed e-mail address that is not disabled; by due date. At most `limit`.
pub async fn reminder_candidates(
    db: &Db,
    kind: ReminderKind,
    from: Date,
    to: Date,
    limit: u32,
) -> Result<Vec<ReminderCandidate>, StoreError> {
    // SUM of BIGINT is NUMERIC in PostgreSQL: cast back.
    let sql = "SELECT x.* FROM (SELECT i.id, i.subscriber_id, i.number, i.due_on, i.gross, CAST(\
               COALESCE((SELECT SUM(p.amount) FROM payments p \
                         WHERE p.subscriber_id = i.subscriber_id), 0) - \
               COALESCE((SELECT SUM(j.gross) FROM invoices j \
                         WHERE j.subscriber_id = i.subscriber_id AND j.status <> 'cancelled'), 0) \
               AS BIGINT) AS balance \
               FROM invoices i \
               WHERE i.due_on >= $1 AND i.due_on <= $2 AND i.status IN ('issued', 'overdue') \
               AND NOT EXISTS (SELECT 1 FROM payment_reminders r \
                               WHERE r.invoice_id = i.id AND r.kind = $3) \
               AND EXISTS (SELECT 1 FROM panel_accounts a WHERE a.subscriber_id = i.subscriber_id \
                           AND a.email_confirmed_at IS NOT NULL AND a.disabled = $4)) x \
               WHERE x.balance < 0 ORDER BY x.due_on, x.id LIMIT $5";
    let emails_sql = "SELECT email FROM panel_accounts WHERE subscriber_id = $1 \
                      AND email_confirmed_at IS NOT NULL AND disabled = $2 ORDER BY id";
    let mut out = Vec::new();
    on_pool!(db, pool => {
        let rows = sqlx::query(sql)
            .bind(from)
            .bind(to)
            .bind(kind.as_str())
            .bind(false)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
        for r in &rows {
            let c = Cols::new(r);
            let candidate = ReminderCandidate {
                invoice_id: c.i64("id")?,
                subscriber_id: c.i64("subscriber_id")?,
                number: c.text("number")?,
                due_on: c.date("due_on")?,
                gross: c.money("gross")?,
                balance: c.money("balance")?,
                emails: Vec::new(),
            };
            let emails = sqlx::query(emails_sql)
                .bind(candidate.subscriber_id)
                .bind(false)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| Cols::new(r).text("email"))
                .collect::<Result<Vec<_>, _>>()?;
            let mut emails_unique: Vec<String> = Vec::with_capacity(emails.len());
            for e in emails {
                if !emails_unique.iter().any(|u| u.eq_ignore_ascii_case(&e)) {
                    emails_unique.push(e);
                }
            }
            out.push(ReminderCandidate {
                emails: emails_unique,
                ..candidate
            });
        }
    });
    Ok(out)
}

/// Claim the reminder of `kind` for an invoice: true for the one caller that inserted the
/// row (and must send), false for everyone after.
pub async fn claim_reminder(
    db: &Db,
    invoice_id: i64,
    kind: ReminderKind,
) -> Result<bool, StoreError> {
    let sql = "INSERT INTO payment_reminders (invoice_id, kind, claimed_at) VALUES ($1, $2, $3) \
               ON CONFLICT (invoice_id, kind) DO NOTHING";
    let done = on_pool!(db, pool => sqlx::query(sql)
        .bind(invoice_id)
        .bind(kind.as_str())
        .bind(now().unix_timestamp())
        .execute(pool)
        .await?
        .rows_affected());
    Ok(done == 1)
}

#[cfg(test)]
#[path = "reminders_tests.rs"]
mod tests;
