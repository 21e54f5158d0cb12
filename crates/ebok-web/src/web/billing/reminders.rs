//! Payment reminders by mail: one some days before an invoice's due date and one some days
//! after it passed unpaid (`[reminders]`; the section absent: none). Each (invoice, kind) is
//! claimed in the database before the mail goes, so instances sharing it send it once. Mails
//! go out only between `from_hour` and `until_hour` Polish time (8:00–20:00 unless set); a pass every 15 minutes catches up at most 7 days.
//! Only to confirmed addresses of accounts that are not disabled, and only while the
//! subscriber owes money; with the amount, the account to pay to and the transfer QR code
//! as a PNG.

use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use super::payments::{invoice_transfer_title, transfer_payload};
use crate::mail::Attachment;
use crate::web::i18n::{Lang, Tr};
use crate::web::AppState;
use ebok_store::reminders::{self, ReminderCandidate, ReminderKind};
use ebok_store::subscribers;
use ebok_store::tz::{format_date, to_warsaw};

/// `[reminders]`: days before and after the due date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemindersConfig {
    /// Days before the due date for the first reminder (1–30).
    pub days_before: u32,
    /// Days after the due date passed unpaid for the second one (1–60).
    pub days_after: u32,
    /// Mails go out from this hour, Polish time (0–23)…
    pub from_hour: u8,
    /// …until this one (1–24, after `from_hour`).
    pub until_hour: u8,
}

impl Default for RemindersConfig {
    fn default() -> Self {
        RemindersConfig {
            days_before: 3,
            days_after: 7,
            from_hour: 8,
            until_hour: 20,
        }
    }
}

impl RemindersConfig {
    /// What is out of range: (key under `reminders.`, reason).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if !(1..=30).contains(&self.days_before) {
            out.push((
                "days_before",
                format!("{} is outside 1..=30", self.days_before),
            ));
        }
        if !(1..=60).contains(&self.days_after) {
            out.push((
                "days_after",
                format!("{} is outside 1..=60", self.days_after),
            ));
        }
        if self.from_hour > 23 {
            out.push(("from_hour", format!("{} is outside 0..=23", self.from_hour)));
        }
        if !(1..=24).contains(&self.until_hour) || self.until_hour <= self.from_hour {
            out.push((
                "until_hour",
                format!(
                    "{} is not an hour after from_hour ({}) up to 24",
                    self.until_hour, self.from_hour
                ),
            ));
        }
        out
    }
}

/// A reminder missed (server down, outside hours) is still sent this many days late.
const CATCH_UP_DAYS: i64 = 7;
/// Candidates read at once; a pass reads at most `MAX_BATCHES` of them per kind.
const BATCH: u32 = 500;
const MAX_BATCHES: usize = 20;
/// Between passes.
const EVERY: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// One pass at instant `now`: claim and mail the reminders due. Gives the number of
/// invoices reminded about (each to every confirmed address of the subscriber).
pub(crate) async fn send_due_reminders(
    state: &AppState,
    cfg: &RemindersConfig,
    now: OffsetDateTime,
) -> anyhow::Result<usize> {
    let local = to_warsaw(now);
    if !(cfg.from_hour..cfg.until_hour).contains(&local.hour()) {
        return Ok(0);
    }
    let today = local.date();
    let before = i64::from(cfg.days_before);
    let after = i64::from(cfg.days_after);
    // Due dates whose reminder day (due − before, due + after) lies in the last 7 days; a
    // "before" reminder never once the due date passed.
    let windows = [
        (
            ReminderKind::Before,
            (today + Duration::days(before - CATCH_UP_DAYS)).max(today),
            today + Duration::days(before),
        ),
        (
            ReminderKind::After,
            today - Duration::days(after + CATCH_UP_DAYS),
            today - Duration::days(after),
        ),
    ];
    let mut sent = 0;
    for (kind, from, to) in windows {
        for _ in 0..MAX_BATCHES {
            let found = reminders::reminder_candidates(&state.db, kind, from, to, BATCH).await?;
            for c in &found {
                if !reminders::claim_reminder(&state.db, c.invoice_id, kind).await? {
                    continue;
                }
                match remind(state, kind, c).await {
                    Ok(()) => {
                        sent += 1;
                        metrics::counter!("ebok_payment_reminders_total", "kind" => kind.as_str())
                            .increment(1);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, invoice = c.invoice_id, "payment reminder")
                    }
                }
            }
            if found.len() < BATCH as usize {
                break;
            }
        }
    }
    if sent > 0 {
        tracing::info!(invoices = sent, "payment reminders");
    }
    Ok(sent)
}

/// Mail one reminder to each of the candidate's addresses.
async fn remind(state: &AppState, kind: ReminderKind, c: &ReminderCandidate) -> anyhow::Result<()> {
    let t = Tr::new(Lang::Pl);
    let sub = subscribers::subscriber(&state.db, c.subscriber_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("subscriber {} is gone", c.subscriber_id))?;
    let amount = c.amount();
    let title = invoice_transfer_title(t, &c.number);
    let (account, qr) = match &sub.bank_account {
        Some(nrb) => {
            let (_, payload) = transfer_payload(state, nrb, amount, &title);
            let png = crate::web::qr::qr_png(&payload).map(|bytes| Attachment {
                file_name: t.t("reminder.qr_file").to_owned(),
                content_type: "image/png",
                bytes,
            });
            (nrb.grouped(), png)
        }
        None => (t.t("reminder.no_account").to_owned(), None),
    };
    let (subject, body) = match kind {
        ReminderKind::Before => ("reminder.before_subject", "reminder.before_body"),
        ReminderKind::After => ("reminder.after_subject", "reminder.after_body"),
    };
    let link = state.link("/platnosci");
    for to in &c.emails {
        state.mail_with(
            t,
            to,
            subject,
            body,
            &[
                ("number", &c.number),
                ("due", &format_date(c.due_on)),
                ("amount", &amount.to_string()),
                ("account", &account),
                ("title", &title),
                ("link", &link),
            ],
            qr.iter().cloned().collect(),
        );
    }
    Ok(())
}

/// Every 15 minutes (the first pass a minute after start): the reminders due.
pub async fn run_payment_reminders(
    state: AppState,
    cfg: RemindersConfig,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let first = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut tick = tokio::time::interval_at(first, EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = send_due_reminders(&state, &cfg, OffsetDateTime::now_utc()).await {
            tracing::warn!(error = %e, "payment reminders");
        }
    }
}

#[cfg(test)]
#[path = "reminders_tests.rs"]
mod tests;
