//! The mail to consenting subscribers about a new invoice: sent at once after the ops API
//! stored invoices, and every minute for invoices added by any other route.

use crate::web::i18n::{Lang, Tr};
use crate::web::AppState;
use ebok_store::billing::{self, InvoiceStatus};
use ebok_store::panel;
use ebok_store::tz::format_date;

/// Tell the subscribers who consent to electronic invoices that these (new) invoices are in
/// the panel: one mail per invoice to the subscriber's panel account e-mail, only when it
/// is confirmed and the account is not blocked. Failures are logged; gives the number of
/// mails handed to the mailer.
pub(crate) async fn notify_new_invoices(state: &AppState, invoice_ids: &[i64]) -> usize {
    let t = Tr::new(Lang::Pl);
    let mut sent = 0;
    for &id in invoice_ids {
        let r = async {
            let Some(inv) = billing::invoice_by_id(&state.db, id).await? else {
                return Ok::<_, anyhow::Error>(false);
            };
            if inv.status == InvoiceStatus::Cancelled {
                return Ok(false);
            }
            let consents = panel::current_consent(&state.db, inv.subscriber_id).await?;
            if !consents.is_some_and(|c| c.given) {
                return Ok(false);
            }
            let Some(account) =
                panel::panel_account_of_subscriber(&state.db, inv.subscriber_id).await?
            else {
                return Ok(false);
            };
            if account.email_confirmed_at.is_none() || account.disabled {
                return Ok(false);
            }
            let link = state.link(&format!("/e-faktury/{}", inv.id));
            // The KSeF number, when the invoice has one, names it in KSeF too.
            let ksef = inv.ksef_number.clone().unwrap_or_default();
            let body = if ksef.is_empty() {
                "einvoice.mail_body"
            } else {
                "einvoice.mail_body_ksef"
            };
            state.mail(
                t,
                &account.email,
                "einvoice.mail_subject",
                body,
                &[
                    ("number", &inv.number),
                    ("gross", &inv.gross.to_string()),
                    ("due", &format_date(inv.due_on)),
                    ("link", &link),
                    ("ksef", &ksef),
                ],
            );
            Ok(true)
        }
        .await;
        match r {
            Ok(true) => sent += 1,
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, invoice = id, "new invoice mail"),
        }
    }
    sent
}

/// The shared setting holding the highest invoice id already considered for mail.
const MAIL_WATERMARK: &str = "invoice_mail_watermark";

/// Start counting new invoices from now (the first instance to start fixes the point;
/// invoices that existed before are never mailed about).
pub(crate) async fn init_invoice_mail(db: &ebok_store::Db) -> anyhow::Result<()> {
    let max = billing::max_invoice_id(db).await?;
    ebok_store::auth::setting_or_init(db, MAIL_WATERMARK, &max.to_string()).await?;
    Ok(())
}

/// Mail consenting subscribers about invoices added since the last call, whichever way they
/// came (`ebok import`, the ops API, the billing system writing to the database). Instances
/// sharing the database take each range once: the watermark moves by compare-and-set and
/// only the instance that moved it mails. Gives the number of mails.
pub(crate) async fn notify_pending_invoices(state: &AppState) -> anyhow::Result<usize> {
    let db = &state.db;
    let max = billing::max_invoice_id(db).await?;
    let seen = ebok_store::auth::setting_or_init(db, MAIL_WATERMARK, &max.to_string()).await?;
    let after: i64 = seen.parse().unwrap_or(max);
    if max <= after {
        return Ok(0);
    }
    if !ebok_store::auth::setting_swap(db, MAIL_WATERMARK, &seen, &max.to_string()).await? {
        return Ok(0);
    }
    let ids = billing::invoice_ids_between(db, after, max).await?;
    let sent = notify_new_invoices(state, &ids).await;
    tracing::info!(invoices = ids.len(), mails = sent, "new invoice mails");
    Ok(sent)
}

/// After the ops API committed invoices (`PUT /api/v1/invoices`): mail about the new ones
/// at once, in the background (the periodic pass would find them within a minute anyway).
pub(crate) fn invoices_stored(
    state: &AppState,
    _records: &[billing::InvoiceRecord],
    outcomes: &[ebok_store::repo::Upserted],
) {
    if !outcomes.contains(&ebok_store::repo::Upserted::Inserted) {
        return;
    }
    let state = state.clone();
    let work = state.panel.mail_work.clone();
    work.spawn(async move {
        if let Err(e) = notify_pending_invoices(&state).await {
            tracing::error!(error = %e, "new invoice mails");
        }
    });
}

/// Every minute: mail about invoices imported by any route.
pub async fn run_invoice_mail(state: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let every = std::time::Duration::from_secs(60);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = notify_pending_invoices(&state).await {
            tracing::warn!(error = %e, "new invoice mails");
        }
    }
}
