//! e-Faktury: the consent to electronic invoices, the invoice list, and each invoice as a
//! print page (or, on request, the PDF from [`super::invoice_pdf`]).

use crate::web::download::attachment;
use crate::web::error::PanelError;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use time::Date;

use super::invoice_pdf::{invoice_pdf, load_logo};
use super::ksef::KsefCode;
use super::{subscriber_of, today, PAGE_SIZE};
use crate::web::i18n::Tr;
use crate::web::line::Addr;
use crate::web::pages::{error_page, render, Chrome, Ctx};
use crate::web::paging::{clamped, PageQuery, Pager};
use crate::web::AppState;
use ebok_store::billing::{self, Invoice, InvoiceLine, InvoiceStatus, VatTotal};
use ebok_store::money::Money;
use ebok_store::panel;
use ebok_store::subscribers::{self, Subscriber};
use ebok_store::tz::{format_date, format_datetime};

// ---------------------------------------------------------------------------------------------
// e-Faktury: consent and list
// ---------------------------------------------------------------------------------------------

/// The consent wording's version as recorded: the catalogue's version id and the language
/// the wording was shown in (`2026-2/pl`).
pub(crate) fn consent_version(t: Tr) -> String {
    format!("{}/{}", t.t("einvoice.consent_version"), t.code())
}

/// Paid, cancelled, overdue (past due and not paid) or unpaid: the catalogue key.
pub(crate) fn status_key(inv: &Invoice, today: Date) -> &'static str {
    match inv.status {
        InvoiceStatus::Paid => "einvoice.status_paid",
        InvoiceStatus::Cancelled => "einvoice.status_cancelled",
        InvoiceStatus::Overdue => "einvoice.status_overdue",
        InvoiceStatus::Issued if inv.due_on < today => "einvoice.status_overdue",
        InvoiceStatus::Issued => "einvoice.status_unpaid",
    }
}

fn status_class(key: &str) -> &'static str {
    match key {
        "einvoice.status_paid" => "st-paid",
        "einvoice.status_overdue" => "st-overdue",
        "einvoice.status_cancelled" => "st-cancelled",
        _ => "st-unpaid",
    }
}

pub struct InvoiceRow {
    pub id: i64,
    pub number: String,
    pub issued_on: String,
    pub sold_on: String,
    pub due_on: String,
    pub gross: String,
    pub status: String,
    pub status_class: &'static str,
    pub ksef: String,
    /// The FA(3) XML file is stored: the list links to it.
    pub xml: bool,
}

pub(crate) struct ConsentRow {
    pub given: bool,
    pub at: String,
    pub ip: Addr,
    pub version: String,
}

#[derive(Template)]
#[template(path = "invoices.html")]
struct InvoicesPage {
    c: Chrome,
    consent: Option<ConsentRow>,
    history: Vec<ConsentRow>,
    rows: Vec<InvoiceRow>,
    total: u64,
    pager: Pager,
}

fn consent_row(c: &panel::Consent) -> ConsentRow {
    ConsentRow {
        given: c.given,
        at: format_datetime(c.at),
        ip: Addr(c.ip.map(|ip| ip.to_string()).unwrap_or_default()),
        version: c.text_version.clone(),
    }
}

/// e-Faktury: the consent (with its history) and the invoices, newest first.
pub async fn invoices(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<PageQuery>,
) -> Result<Response, PanelError> {
    let sub = match subscriber_of(&state, &ctx).await {
        Ok(s) => s,
        Err(r) => return Ok(r),
    };
    let t = ctx.t;
    let data = async {
        let history = panel::consent_history(&state.db, sub.id).await?;
        let list = clamped(q.page(PAGE_SIZE), |p| {
            billing::invoices_of(&state.db, sub.id, p)
        })
        .await?;
        Ok::<_, anyhow::Error>((history, list))
    }
    .await;
    let (history, list) = data?;
    let ids: Vec<i64> = list.items.iter().map(|i| i.id).collect();
    let with_xml = ebok_store::ksef::with_xml(&state.db, &ids).await?;
    let today = today();
    let rows = list
        .items
        .iter()
        .map(|i| {
            let key = status_key(i, today);
            InvoiceRow {
                id: i.id,
                number: i.number.clone(),
                issued_on: format_date(i.issued_on),
                sold_on: format_date(i.sold_on),
                due_on: format_date(i.due_on),
                gross: i.gross.to_string(),
                status: t.t(key).to_owned(),
                status_class: status_class(key),
                ksef: i.ksef_number.clone().unwrap_or_default(),
                xml: with_xml.contains(&i.id),
            }
        })
        .collect();
    let c = Chrome::new(&state, &ctx, "/e-faktury").await;
    Ok(render(
        StatusCode::OK,
        &InvoicesPage {
            c,
            consent: history.first().map(consent_row),
            history: history.iter().take(10).map(consent_row).collect(),
            rows,
            total: list.total,
            pager: Pager::of(&list, "/e-faktury"),
        },
    ))
}

#[derive(serde::Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    decision: String,
}

/// Give (`decision=give`) or revoke (`decision=revoke`) the consent: recorded with the time,
/// the caller's IP and the wording's version, and audited, in one transaction. Giving it
/// again with the same wording records nothing new.
pub async fn consent(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<ConsentForm>,
) -> Result<Response, PanelError> {
    let sub = match subscriber_of(&state, &ctx).await {
        Ok(s) => s,
        Err(r) => return Ok(r),
    };
    let given = match f.decision.as_str() {
        "give" => true,
        "revoke" => false,
        _ => return Ok(Redirect::to("/e-faktury").into_response()),
    };
    let version = consent_version(ctx.t);
    let current = panel::current_consent(&state.db, sub.id).await?;
    let unchanged = match &current {
        Some(c) => c.given == given && (!given || c.text_version == version),
        None => !given,
    };
    if !unchanged {
        let done = in_tx!(state.db, |tx| {
            panel::record_consent(&mut tx, sub.id, given, Some(ctx.info.ip), &version).await?;
            let action = if given {
                "einvoice_consent_given"
            } else {
                "einvoice_consent_revoked"
            };
            ctx.audit(&mut tx, action, &format!("wording {version}"))
                .await?;
        });
        done?;
    }
    Ok(Redirect::to("/e-faktury").into_response())
}

// ---------------------------------------------------------------------------------------------
// One invoice: print page and PDF
// ---------------------------------------------------------------------------------------------

pub struct LineView {
    pub position: u32,
    pub name: String,
    pub unit: String,
    pub quantity: String,
    pub unit_net: String,
    pub net: String,
    pub rate: String,
    pub vat: String,
    pub gross: String,
}

pub struct RateView {
    pub rate: String,
    pub net: String,
    pub vat: String,
    pub gross: String,
}

/// Everything a VAT invoice shows, formatted once for the print page and the PDF.
pub struct InvoiceDoc {
    pub id: i64,
    pub number: String,
    pub issued_on: String,
    pub sold_on: String,
    pub due_on: String,
    pub seller_name: String,
    pub seller_address: String,
    /// Not in the configuration yet: shown when known.
    pub seller_nip: Option<String>,
    pub buyer_name: String,
    pub buyer_street: String,
    pub buyer_city: String,
    /// The buyer's number in the billing system (the subscriber's `ext_id`).
    pub customer_number: String,
    /// The buyer's contract numbers (usually one).
    pub contracts: String,
    pub buyer_nip: Option<String>,
    pub lines: Vec<LineView>,
    pub rates: Vec<RateView>,
    pub net: String,
    pub vat: String,
    /// With the currency, for "to pay".
    pub gross: String,
    /// Without it, for the totals row.
    pub gross_total: String,
    pub status: String,
    pub status_class: &'static str,
    pub ksef: Option<String>,
    /// KOD I, when the invoice's FA(3) file is stored (set by the handler).
    pub kod: Option<KsefCode>,
    pub account: Option<String>,
}

/// A stored invoice whose lines do not add up to its totals.
#[derive(Debug, thiserror::Error)]
#[error("invoice {id} ({number}): {detail}")]
pub struct TotalsMismatch {
    pub id: i64,
    pub number: String,
    pub detail: String,
}

/// Check the stored totals against the lines (each line net + VAT = gross; the sums per
/// VAT rate add up to the invoice's net, VAT and gross) and format the invoice.
#[allow(clippy::too_many_arguments)] // the parts of one document
pub fn invoice_doc(
    t: Tr,
    config: &crate::web::settings::IspConfig,
    sub: &Subscriber,
    contracts: &[subscribers::Contract],
    inv: &Invoice,
    lines: &[InvoiceLine],
    today: Date,
) -> Result<InvoiceDoc, TotalsMismatch> {
    let mismatch = |detail: String| TotalsMismatch {
        id: inv.id,
        number: inv.number.clone(),
        detail,
    };
    let mut stored = inv.to_record(sub.ext_id.clone(), lines.to_vec());
    // The totals are what is checked here: a KSeF number stored before numbers were checked
    // on the way in does not hide the invoice.
    stored.ksef_number = None;
    stored.check().map_err(|e| mismatch(e.to_string()))?;
    let rates: Vec<VatTotal> = billing::vat_totals(lines);
    let sum = |f: fn(&VatTotal) -> Money| rates.iter().map(f).sum::<Money>();
    if (sum(|r| r.net), sum(|r| r.vat), sum(|r| r.gross)) != (inv.net, inv.vat, inv.gross) {
        return Err(mismatch(
            "the totals per VAT rate differ from the invoice totals".into(),
        ));
    }
    let key = status_key(inv, today);
    let m = |v: Money| format!("{v:#}");
    Ok(InvoiceDoc {
        id: inv.id,
        number: inv.number.clone(),
        issued_on: format_date(inv.issued_on),
        sold_on: format_date(inv.sold_on),
        due_on: format_date(inv.due_on),
        seller_name: config.name.clone(),
        seller_address: config.address.clone(),
        seller_nip: config
            .nip
            .parse::<ebok_store::validate::Nip>()
            .ok()
            .map(|n| n.as_str().to_owned()),
        buyer_name: sub.display_name(),
        buyer_street: sub.home.street.clone(),
        buyer_city: format!("{} {}", sub.home.postcode, sub.home.city),
        buyer_nip: sub.nip.as_ref().map(|n| n.to_string()),
        customer_number: sub.ext_id.clone(),
        contracts: contracts
            .iter()
            .map(|c| c.number.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        lines: lines
            .iter()
            .map(|l| LineView {
                position: l.position,
                name: l.name.clone(),
                unit: l.unit.clone(),
                quantity: l.quantity.to_string(),
                unit_net: m(l.unit_net),
                net: m(l.net),
                rate: l.vat_rate.label(),
                vat: m(l.vat),
                gross: m(l.gross),
            })
            .collect(),
        rates: rates
            .iter()
            .map(|r| RateView {
                rate: r.rate.label(),
                net: m(r.net),
                vat: m(r.vat),
                gross: m(r.gross),
            })
            .collect(),
        net: m(inv.net),
        vat: m(inv.vat),
        gross: inv.gross.to_string(),
        gross_total: m(inv.gross),
        status: t.t(key).to_owned(),
        status_class: status_class(key),
        ksef: inv.ksef_number.clone(),
        kod: None,
        account: sub.bank_account.as_ref().map(|n| n.grouped()),
    })
}

#[derive(Template)]
#[template(path = "invoice.html")]
struct InvoicePage {
    c: Chrome,
    d: InvoiceDoc,
}

#[derive(Template)]
#[template(path = "error.html")]
struct RefusedPage {
    c: Chrome,
    message: String,
}

/// `/e-faktury/{id}`: the print page; `/e-faktury/{id}.pdf`: the PDF; `/e-faktury/{id}.xml`:
/// the FA(3) file ([`super::ksef::xml_download`]). Another subscriber's
/// invoice is a 404 like a missing one; an invoice whose totals do not match its lines is
/// refused (logged, and a calm page).
pub async fn invoice(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(raw): Path<String>,
) -> Result<Response, PanelError> {
    let sub = match subscriber_of(&state, &ctx).await {
        Ok(s) => s,
        Err(r) => return Ok(r),
    };
    if let Some(id) = raw.strip_suffix(".xml") {
        return super::ksef::xml_download(&state, &ctx.info, sub.id, id).await;
    }
    let (id, pdf) = match raw.strip_suffix(".pdf") {
        Some(id) => (id, true),
        None => (raw.as_str(), false),
    };
    let Ok(id) = id.parse::<i64>() else {
        return Ok(error_page(&state, &ctx.info, StatusCode::NOT_FOUND).await);
    };
    let (inv, lines) = match billing::invoice_for(&state.db, sub.id, id).await {
        Ok(Some(x)) => x,
        Ok(None) => return Ok(error_page(&state, &ctx.info, StatusCode::NOT_FOUND).await),
        Err(e) => return Err(e.into()),
    };
    let contracts = subscribers::contracts_of(&state.db, sub.id).await?;
    let t = ctx.t;
    let isp = &state.config.isp;
    let kod = super::ksef::code_for(&state, t, sub.id, &inv).await?;
    let doc = match invoice_doc(t, isp, &sub, &contracts, &inv, &lines, today()) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "invoice totals do not match its lines; not shown");
            let c = Chrome::new(&state, &ctx, "/e-faktury").await;
            return Ok(render(
                StatusCode::INTERNAL_SERVER_ERROR,
                &RefusedPage {
                    c,
                    message: t.t("einvoice.totals_refused").to_owned(),
                },
            ));
        }
    };
    let doc = InvoiceDoc { kod, ..doc };
    if !pdf {
        let c = Chrome::new(&state, &ctx, &format!("/e-faktury/{id}")).await;
        return Ok(render(StatusCode::OK, &InvoicePage { c, d: doc }));
    }
    let number = doc.number.clone();
    let started = std::time::Instant::now();
    let logo_path = isp.logo.clone();
    let bytes = match tokio::task::spawn_blocking(move || {
        // Checked at start-up; a file gone since then costs the logo, not the invoice.
        let logo = logo_path.and_then(|p| {
            load_logo(&p)
                .map_err(|e| tracing::warn!(path = %p.display(), error = %e, "isp.logo"))
                .ok()
        });
        invoice_pdf(t, &doc, logo.as_ref())
    })
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return Err(e.into()),
        Err(e) => return Err(e.into()),
    };
    metrics::histogram!("ebok_invoice_pdf_seconds").record(started.elapsed().as_secs_f64());
    Ok(attachment(
        "application/pdf",
        &format!("faktura-{number}.pdf"),
        bytes,
    ))
}
