//! Płatności: balance, charges and payments with the running balance, the subscriber's own
//! bank account and a transfer QR code for what is due.

use crate::web::error::PanelError;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{subscriber_of, PAGE_SIZE};
use crate::web::i18n::Tr;
use crate::web::pages::{render, Chrome, Ctx};
use crate::web::paging::{clamped, PageQuery, Pager};
use crate::web::AppState;
use ebok_store::billing::{self, LedgerItem};
use ebok_store::subscribers::{self, Subscriber};
use ebok_store::tz::format_date;

/// One line of the ledger as the page shows it.
pub(crate) struct LedgerRow {
    pub date: String,
    pub what: String,
    pub link: Option<String>,
    pub charge: String,
    pub payment: String,
    pub balance: String,
    pub owing: bool,
}

/// The transfer QR code and what it says.
pub(crate) struct TransferQr {
    pub svg: String,
    pub payload: String,
    pub recipient: String,
    pub title: String,
    pub amount: String,
}

#[derive(Template)]
#[template(path = "payments.html")]
struct PaymentsPage {
    c: Chrome,
    /// `due`, `overpaid` or `settled`.
    balance_state: &'static str,
    balance: String,
    account: Option<String>,
    qr: Option<TransferQr>,
    rows: Vec<LedgerRow>,
    total: u64,
    pager: Pager,
}

/// The transfer title for paying one invoice: "Faktura {number}", or the bare number when
/// that would not fit the QR code's title.
pub(crate) fn invoice_transfer_title(t: Tr, number: &str) -> String {
    let title = t.f("payments.qr_title_invoice", &[("number", number)]);
    if title.chars().count() <= billing::QR_TITLE_MAX {
        title
    } else {
        number.to_owned()
    }
}

/// The transfer title: the oldest unpaid invoice's number, else the first contract's.
async fn transfer_title(state: &AppState, t: Tr, sub: &Subscriber) -> anyhow::Result<String> {
    if let Some(inv) = billing::oldest_unpaid_invoice(&state.db, sub.id).await? {
        return Ok(invoice_transfer_title(t, &inv.number));
    }
    let contracts = subscribers::contracts_of(&state.db, sub.id).await?;
    Ok(match contracts.first() {
        Some(c) => t.f("payments.qr_title_contract", &[("contract", &c.number)]),
        None => sub.display_name(),
    })
}

/// The transfer QR payload for paying `amount` to `account` with `title`, the ISP (by its
/// name and NIP from `[isp]`) as the recipient; gives (recipient as the code has it,
/// payload).
pub(crate) fn transfer_payload(
    state: &AppState,
    account: &ebok_store::validate::Nrb,
    amount: ebok_store::money::Money,
    title: &str,
) -> (String, String) {
    let recipient = billing::qr_text(&state.config.isp.name, billing::QR_RECIPIENT_MAX);
    let nip = state
        .config
        .isp
        .nip
        .parse::<ebok_store::validate::Nip>()
        .ok();
    let payload = billing::transfer_qr_payload(
        nip.as_ref().map(|n| n.as_str()),
        account,
        amount,
        &recipient,
        title,
    );
    (recipient, payload)
}

/// Płatności: the balance, the account to pay to with a QR code for the amount due, and the
/// ledger newest first with the balance after each line.
pub async fn payments(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<PageQuery>,
) -> Result<Response, PanelError> {
    let sub = match subscriber_of(&state, &ctx).await {
        Ok(s) => s,
        Err(r) => return Ok(r),
    };
    let t = ctx.t;
    let page = async {
        let balance = billing::balance(&state.db, sub.id).await?;
        let ledger = clamped(q.page(PAGE_SIZE), |p| {
            billing::ledger_page(&state.db, sub.id, p)
        })
        .await?;
        let qr = match (&sub.bank_account, balance.is_negative()) {
            (Some(nrb), true) => {
                let due = -balance;
                let title = transfer_title(&state, t, &sub).await?;
                let (recipient, payload) = transfer_payload(&state, nrb, due, &title);
                Some(TransferQr {
                    svg: crate::web::qr::qr_svg(&payload, t.t("payments.qr_label")),
                    recipient,
                    title: billing::qr_text(&title, billing::QR_TITLE_MAX),
                    amount: due.to_string(),
                    payload,
                })
            }
            _ => None,
        };
        let rows = ledger
            .items
            .iter()
            .map(|e| {
                let (what, link) = match &e.item {
                    LedgerItem::Invoice { id, number, due_on } => (
                        t.f(
                            "payments.invoice_line",
                            &[("number", number), ("due", &format_date(*due_on))],
                        ),
                        Some(format!("/e-faktury/{id}")),
                    ),
                    LedgerItem::Payment { title, .. } => (
                        if title.trim().is_empty() {
                            t.t("payments.payment_line").to_owned()
                        } else {
                            t.f("payments.payment_titled", &[("title", title)])
                        },
                        None,
                    ),
                };
                let (charge, payment) = if e.amount.is_negative() {
                    ((-e.amount).to_string(), String::new())
                } else {
                    (String::new(), e.amount.to_string())
                };
                LedgerRow {
                    date: format_date(e.date),
                    what,
                    link,
                    charge,
                    payment,
                    balance: e.balance.to_string(),
                    owing: e.balance.is_negative(),
                }
            })
            .collect();
        let balance_state = if balance.is_negative() {
            "due"
        } else if balance.is_zero() {
            "settled"
        } else {
            "overpaid"
        };
        Ok::<_, anyhow::Error>((balance_state, balance.abs(), qr, rows, ledger))
    }
    .await;
    let (balance_state, balance, qr, rows, ledger) = page?;
    let c = Chrome::new(&state, &ctx, "/platnosci").await;
    Ok(render(
        StatusCode::OK,
        &PaymentsPage {
            c,
            balance_state,
            balance: balance.to_string(),
            account: sub.bank_account.as_ref().map(|n| n.grouped()),
            qr,
            rows,
            total: ledger.total,
            pager: Pager::of(&ledger, "/platnosci"),
        },
    ))
}
