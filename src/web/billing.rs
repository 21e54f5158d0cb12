//! Płatności (balance, charges and payments with the running balance, the subscriber's own
//! bank account and a transfer QR code for what is due) and e-Faktury (the consent to
//! electronic invoices, the invoice list, each invoice as a print page and as a PDF made
//! here with an embedded font), plus the mail to consenting subscribers about a new invoice.

use std::sync::LazyLock;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use time::{Date, OffsetDateTime};

use super::i18n::{Lang, Tr};
use super::line::Addr;
use super::pages::{error_page, internal, render, Chrome, Ctx};
use super::paging::{clamped, PageQuery, Pager};
use super::AppState;
use crate::store::billing::{self, Invoice, InvoiceLine, InvoiceStatus, LedgerItem, VatTotal};
use crate::store::money::Money;
use crate::store::panel;
use crate::store::subscribers::{self, Subscriber};
use crate::tz::{format_date, format_datetime};

/// Rows per page of the ledger and of the invoice list.
pub const PAGE_SIZE: u32 = 20;

/// The routes of this page group.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/platnosci", get(payments))
        .route("/e-faktury", get(invoices))
        .route("/e-faktury/zgoda", post(consent))
        .route("/e-faktury/{id}", get(invoice))
}

fn today() -> Date {
    crate::tz::warsaw_date(OffsetDateTime::now_utc())
}

/// The logged-in subscriber, or the answer to give instead (login page, 404, 500).
async fn subscriber_of(state: &AppState, ctx: &Ctx) -> Result<Subscriber, Response> {
    let Some(auth) = &ctx.auth else {
        return Err(super::pages::to_login());
    };
    match subscribers::subscriber(&state.db, auth.account.subscriber_id).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(error_page(state, &ctx.info, StatusCode::NOT_FOUND).await),
        Err(e) => Err(internal(state, ctx, e).await),
    }
}

// ---------------------------------------------------------------------------------------------
// Płatności
// ---------------------------------------------------------------------------------------------

/// One line of the ledger as the page shows it.
pub struct LedgerRow {
    pub date: String,
    pub what: String,
    pub link: Option<String>,
    pub charge: String,
    pub payment: String,
    pub balance: String,
    pub owing: bool,
}

/// The transfer QR code and what it says.
pub struct TransferQr {
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

/// The transfer title: the oldest unpaid invoice's number, else the first contract's.
async fn transfer_title(state: &AppState, t: Tr, sub: &Subscriber) -> anyhow::Result<String> {
    if let Some(inv) = billing::oldest_unpaid_invoice(&state.db, sub.id).await? {
        let title = t.f("payments.qr_title_invoice", &[("number", &inv.number)]);
        return Ok(if title.chars().count() <= billing::QR_TITLE_MAX {
            title
        } else {
            inv.number
        });
    }
    let contracts = subscribers::contracts_of(&state.db, sub.id).await?;
    Ok(match contracts.first() {
        Some(c) => t.f("payments.qr_title_contract", &[("contract", &c.number)]),
        None => sub.display_name(),
    })
}

/// Płatności: the balance, the account to pay to with a QR code for the amount due, and the
/// ledger newest first with the balance after each line.
pub async fn payments(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<PageQuery>,
) -> Response {
    let sub = match subscriber_of(&state, &ctx).await {
        Ok(s) => s,
        Err(r) => return r,
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
                let recipient = billing::qr_text(&state.config.isp.name, billing::QR_RECIPIENT_MAX);
                let nip = state
                    .config
                    .isp
                    .nip
                    .parse::<crate::store::validate::Nip>()
                    .ok();
                let payload = billing::transfer_qr_payload(
                    nip.as_ref().map(|n| n.as_str()),
                    nrb,
                    due,
                    &recipient,
                    &title,
                );
                Some(TransferQr {
                    svg: super::totp::qr_svg(&payload, t.t("payments.qr_label")),
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
    let (balance_state, balance, qr, rows, ledger) = match page {
        Ok(p) => p,
        Err(e) => return internal(&state, &ctx, e).await,
    };
    let c = Chrome::new(&state, &ctx, "/platnosci").await;
    render(
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
    )
}

// ---------------------------------------------------------------------------------------------
// e-Faktury: consent and list
// ---------------------------------------------------------------------------------------------

/// The consent wording's version as recorded: the catalogue's version id and the language
/// the wording was shown in (`2026-2/pl`).
pub fn consent_version(t: Tr) -> String {
    format!("{}/{}", t.t("einvoice.consent_version"), t.code())
}

/// Paid, cancelled, overdue (past due and not paid) or unpaid: the catalogue key.
pub fn status_key(inv: &Invoice, today: Date) -> &'static str {
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
}

pub struct ConsentRow {
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
) -> Response {
    let sub = match subscriber_of(&state, &ctx).await {
        Ok(s) => s,
        Err(r) => return r,
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
    let (history, list) = match data {
        Ok(d) => d,
        Err(e) => return internal(&state, &ctx, e).await,
    };
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
            }
        })
        .collect();
    let c = Chrome::new(&state, &ctx, "/e-faktury").await;
    render(
        StatusCode::OK,
        &InvoicesPage {
            c,
            consent: history.first().map(consent_row),
            history: history.iter().take(10).map(consent_row).collect(),
            rows,
            total: list.total,
            pager: Pager::of(&list, "/e-faktury"),
        },
    )
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
) -> Response {
    let sub = match subscriber_of(&state, &ctx).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let given = match f.decision.as_str() {
        "give" => true,
        "revoke" => false,
        _ => return Redirect::to("/e-faktury").into_response(),
    };
    let version = consent_version(ctx.t);
    let current = match panel::current_consent(&state.db, sub.id).await {
        Ok(c) => c,
        Err(e) => return internal(&state, &ctx, e).await,
    };
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
        if let Err(e) = done {
            return internal(&state, &ctx, e).await;
        }
    }
    Redirect::to("/e-faktury").into_response()
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
    config: &crate::config::IspConfig,
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
    inv.to_record(sub.ext_id.clone(), lines.to_vec())
        .check()
        .map_err(|e| mismatch(e.to_string()))?;
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
            .parse::<crate::store::validate::Nip>()
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

/// `/e-faktury/{id}`: the print page; `/e-faktury/{id}.pdf`: the PDF. Another subscriber's
/// invoice is a 404 like a missing one; an invoice whose totals do not match its lines is
/// refused (logged, and a calm page).
pub async fn invoice(State(state): State<AppState>, ctx: Ctx, Path(raw): Path<String>) -> Response {
    let sub = match subscriber_of(&state, &ctx).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (id, pdf) = match raw.strip_suffix(".pdf") {
        Some(id) => (id, true),
        None => (raw.as_str(), false),
    };
    let Ok(id) = id.parse::<i64>() else {
        return error_page(&state, &ctx.info, StatusCode::NOT_FOUND).await;
    };
    let (inv, lines) = match billing::invoice_for(&state.db, sub.id, id).await {
        Ok(Some(x)) => x,
        Ok(None) => return error_page(&state, &ctx.info, StatusCode::NOT_FOUND).await,
        Err(e) => return internal(&state, &ctx, e).await,
    };
    let contracts = match subscribers::contracts_of(&state.db, sub.id).await {
        Ok(c) => c,
        Err(e) => return internal(&state, &ctx, e).await,
    };
    let t = ctx.t;
    let isp = &state.config.isp;
    let doc = match invoice_doc(t, isp, &sub, &contracts, &inv, &lines, today()) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "invoice totals do not match its lines; not shown");
            let c = Chrome::new(&state, &ctx, "/e-faktury").await;
            return render(
                StatusCode::INTERNAL_SERVER_ERROR,
                &RefusedPage {
                    c,
                    message: t.t("einvoice.totals_refused").to_owned(),
                },
            );
        }
    };
    if !pdf {
        let c = Chrome::new(&state, &ctx, &format!("/e-faktury/{id}")).await;
        return render(StatusCode::OK, &InvoicePage { c, d: doc });
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
        Ok(Err(e)) => return internal(&state, &ctx, e).await,
        Err(e) => return internal(&state, &ctx, e).await,
    };
    metrics::histogram!("ebok_invoice_pdf_seconds").record(started.elapsed().as_secs_f64());
    let file: String = number
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"faktura-{file}.pdf\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    resp
}

// ---------------------------------------------------------------------------------------------
// PDF
// ---------------------------------------------------------------------------------------------

/// DejaVu Sans (Bitstream Vera licence, `static/fonts/DejaVuSans-LICENSE.txt`): every Polish
/// letter, embedded as a subset.
static FONT_BYTES: &[u8] = include_bytes!("../../static/fonts/DejaVuSans.ttf");

static FONT: LazyLock<Option<krilla::text::Font>> =
    LazyLock::new(|| krilla::text::Font::new(FONT_BYTES.into(), 0));

static FACE: LazyLock<Option<ttf_parser::Face<'static>>> =
    LazyLock::new(|| ttf_parser::Face::parse(FONT_BYTES, 0).ok());

/// The largest side of the logo on the invoice, in points (about 2.5 cm).
const LOGO_BOX: f32 = 72.0;
/// The largest logo file accepted.
const LOGO_MAX_BYTES: u64 = 1 << 20;

/// The ISP's logo (`[isp] logo`), read and checked.
#[derive(Clone)]
pub struct Logo {
    image: krilla::image::Image,
    width: u32,
    height: u32,
}

impl Logo {
    /// Width and height in points of the logo scaled to fit a `side` × `side` box.
    fn fit(&self, side: f32) -> (f32, f32) {
        let (w, h) = (self.width as f32, self.height as f32);
        let scale = side / w.max(h);
        (w * scale, h * scale)
    }
}

/// Read the logo file: a PNG of at most 1 MiB that decodes. The error says why not, for the
/// start-up check of `isp.logo`.
pub fn load_logo(path: &std::path::Path) -> Result<Logo, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if size > LOGO_MAX_BYTES {
        return Err(format!(
            "{}: {size} bytes; a logo may have at most {LOGO_MAX_BYTES}",
            path.display()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err(format!("{}: not a PNG file", path.display()));
    }
    let image = krilla::image::Image::from_png(bytes.into(), true)
        .map_err(|e| format!("{}: not a readable PNG ({e})", path.display()))?;
    let (width, height) = image.size();
    if width == 0 || height == 0 {
        return Err(format!("{}: the image is empty", path.display()));
    }
    Ok(Logo {
        image,
        width,
        height,
    })
}

/// [`load_logo`], and the logo drawn into a throw-away PDF: a file whose header reads but
/// whose pixels do not decode is refused at start-up, not on the first invoice.
pub fn check_logo(path: &std::path::Path) -> Result<(), String> {
    let logo = load_logo(path)?;
    let mut doc = krilla::Document::new();
    let settings = krilla::page::PageSettings::from_wh(A4_W, A4_H).ok_or("page size")?;
    let mut page = doc.start_page_with(settings);
    let mut surface = page.surface();
    let (w, h) = logo.fit(LOGO_BOX);
    if let Some(size) = krilla::geom::Size::from_wh(w, h) {
        surface.draw_image(logo.image, size);
    }
    surface.finish();
    page.finish();
    doc.finish()
        .map(|_| ())
        .map_err(|e| format!("{}: the image does not decode ({e:?})", path.display()))
}

/// Why a PDF could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("the bundled font does not load")]
    Font,
    #[error("PDF writer: {0}")]
    Write(String),
}

/// Width of `text` at `size` points (advance widths, no kerning: close enough to align
/// columns).
fn text_width(text: &str, size: f32) -> f32 {
    let Some(face) = FACE.as_ref() else {
        return 0.0;
    };
    let upem = f32::from(face.units_per_em());
    let units: f32 = text
        .chars()
        .map(|c| {
            face.glyph_index(c)
                .and_then(|g| face.glyph_hor_advance(g))
                .map(f32::from)
                .unwrap_or(upem / 2.0)
        })
        .sum();
    units * size / upem
}

/// Split `text` into lines no wider than `width` at `size` (breaking at spaces; a single
/// word that is too long stays whole).
fn wrap(text: &str, size: f32, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        let candidate = if cur.is_empty() {
            word.to_owned()
        } else {
            format!("{cur} {word}")
        };
        if !cur.is_empty() && text_width(&candidate, size) > width {
            lines.push(std::mem::replace(&mut cur, word.to_owned()));
        } else {
            cur = candidate;
        }
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

/// What goes on a page: text (left or right aligned at `x`) and horizontal rules.
enum Op {
    Text {
        x: f32,
        y: f32,
        size: f32,
        text: String,
        right: bool,
    },
    Rule {
        x1: f32,
        x2: f32,
        y: f32,
    },
    /// The ISP's logo, its top left corner at (`x`, `y`).
    Image {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
    },
}

const A4_W: f32 = 595.28;
const A4_H: f32 = 841.89;
const MARGIN: f32 = 42.0;
const BOTTOM: f32 = A4_H - 50.0;

/// Lays out pages top-down; a new page starts when the next block does not fit.
struct Layout {
    pages: Vec<Vec<Op>>,
    y: f32,
}

impl Layout {
    fn new() -> Layout {
        Layout {
            pages: vec![Vec::new()],
            y: MARGIN,
        }
    }

    fn ensure(&mut self, height: f32) {
        if self.y + height > BOTTOM {
            self.pages.push(Vec::new());
            self.y = MARGIN;
        }
    }

    fn ops(&mut self) -> &mut Vec<Op> {
        self.pages.last_mut().expect("a page always exists")
    }

    fn text(&mut self, x: f32, size: f32, text: &str) {
        let y = self.y + size;
        self.ops().push(Op::Text {
            x,
            y,
            size,
            text: text.to_owned(),
            right: false,
        });
    }

    fn right(&mut self, x: f32, size: f32, text: &str) {
        let y = self.y + size;
        self.ops().push(Op::Text {
            x,
            y,
            size,
            text: text.to_owned(),
            right: true,
        });
    }

    fn rule(&mut self) {
        let y = self.y;
        self.ops().push(Op::Rule {
            x1: MARGIN,
            x2: A4_W - MARGIN,
            y,
        });
    }

    fn down(&mut self, by: f32) {
        self.y += by;
    }
}

/// One column of the line table: header, left edge, right edge, right-aligned.
struct Col {
    head: &'static str,
    left: f32,
    right: f32,
    numeric: bool,
}

impl Col {
    fn put(&self, l: &mut Layout, size: f32, text: &str) {
        if self.numeric {
            l.right(self.right, size, text);
        } else {
            l.text(self.left, size, text);
        }
    }
}

/// Column headings, each wrapped to its column's width; moves below the tallest.
fn head_row(l: &mut Layout, t: Tr, cols: &[Col], size: f32) {
    let top = l.y;
    let mut rows = 1;
    for c in cols {
        let parts = wrap(t.t(c.head), size, c.right - c.left - 2.0);
        rows = rows.max(parts.len());
        for (i, part) in parts.iter().enumerate() {
            l.y = top + i as f32 * (size + 2.0);
            c.put(l, size, part);
        }
    }
    l.y = top + rows as f32 * (size + 2.0) + 4.0;
}

/// The invoice as an A4 PDF with the bundled font embedded (subset): the same content as the
/// print page, in the caller's language.
/// An invoice is a document: what it says holds whenever it is read. Whether it has been
/// paid belongs to the page (`/e-faktury`), not to the PDF.
pub fn invoice_pdf(t: Tr, d: &InvoiceDoc, logo: Option<&Logo>) -> Result<Vec<u8>, PdfError> {
    let font = FONT.clone().ok_or(PdfError::Font)?;
    let mut l = Layout::new();
    let (body, small, head) = (9.0_f32, 8.0_f32, 7.0_f32);
    let right_edge = A4_W - MARGIN;
    if let Some(logo) = logo {
        // Top right, at most LOGO_BOX points in either direction, proportions kept.
        let (w, h) = logo.fit(LOGO_BOX);
        l.ops().push(Op::Image {
            x: right_edge - w,
            y: MARGIN,
            w,
            h,
        });
    }

    l.text(
        MARGIN,
        16.0,
        &t.f("invoice.title", &[("number", &d.number)]),
    );
    l.down(26.0);
    for (label, value) in [
        (t.t("invoice.issued_on"), &d.issued_on),
        (t.t("invoice.sold_on"), &d.sold_on),
        (t.t("invoice.due_on"), &d.due_on),
    ] {
        l.text(MARGIN, body, &format!("{label}: {value}"));
        l.down(13.0);
    }
    if let Some(k) = &d.ksef {
        l.text(MARGIN, body, &format!("{}: {k}", t.t("invoice.ksef")));
        l.down(13.0);
    }
    for (key, value) in [
        ("invoice.customer_number", &d.customer_number),
        ("invoice.contract", &d.contracts),
    ] {
        if !value.is_empty() {
            l.text(MARGIN, body, &format!("{}: {value}", t.t(key)));
            l.down(13.0);
        }
    }
    l.down(8.0);
    if let Some(logo) = logo {
        // Below the logo, whatever the header's height.
        l.y = l.y.max(MARGIN + logo.fit(LOGO_BOX).1 + 8.0);
    }

    // Seller and buyer side by side.
    let half = MARGIN + (A4_W - 2.0 * MARGIN) / 2.0;
    let mut seller = vec![d.seller_name.clone()];
    seller.extend(wrap(&d.seller_address, body, half - MARGIN - 10.0));
    if let Some(nip) = &d.seller_nip {
        seller.push(format!("NIP: {nip}"));
    }
    let mut buyer = vec![
        d.buyer_name.clone(),
        d.buyer_street.clone(),
        d.buyer_city.clone(),
    ];
    if let Some(nip) = &d.buyer_nip {
        buyer.push(format!("NIP: {nip}"));
    }
    l.text(MARGIN, small, t.t("invoice.seller"));
    l.text(half, small, t.t("invoice.buyer"));
    l.down(14.0);
    let top = l.y;
    for (i, s) in seller.iter().enumerate() {
        l.y = top + i as f32 * 12.0;
        l.text(MARGIN, body, s);
    }
    for (i, s) in buyer.iter().enumerate() {
        l.y = top + i as f32 * 12.0;
        l.text(half, body, s);
    }
    l.y = top + seller.len().max(buyer.len()) as f32 * 12.0 + 14.0;

    // Lines.
    let col = |head, left, right, numeric| Col {
        head,
        left,
        right,
        numeric,
    };
    let cols = [
        col("invoice.col_pos", MARGIN, MARGIN + 16.0, true),
        col("invoice.col_name", MARGIN + 22.0, 232.0, false),
        col("invoice.col_unit", 236.0, 262.0, false),
        col("invoice.col_qty", 262.0, 290.0, true),
        col("invoice.col_unit_net", 290.0, 345.0, true),
        col("invoice.col_net", 345.0, 400.0, true),
        col("invoice.col_rate", 400.0, 430.0, true),
        col("invoice.col_vat", 430.0, 485.0, true),
        col("invoice.col_gross", 485.0, right_edge, true),
    ];
    let header = |l: &mut Layout, cols: &[Col]| {
        l.rule();
        l.down(3.0);
        head_row(l, t, cols, head);
        l.rule();
        l.down(3.0);
    };
    l.ensure(50.0);
    header(&mut l, &cols);
    for line in &d.lines {
        let name = wrap(&line.name, body, cols[1].right - cols[1].left);
        let height = name.len() as f32 * 12.0 + 3.0;
        if l.y + height > BOTTOM {
            l.ensure(height + 50.0);
            header(&mut l, &cols);
        }
        let top = l.y;
        for (i, part) in name.iter().enumerate() {
            l.y = top + i as f32 * 12.0;
            cols[1].put(&mut l, body, part);
        }
        l.y = top;
        let cells = [
            line.position.to_string(),
            String::new(),
            line.unit.clone(),
            line.quantity.clone(),
            line.unit_net.clone(),
            line.net.clone(),
            line.rate.clone(),
            line.vat.clone(),
            line.gross.clone(),
        ];
        for (c, v) in cols.iter().zip(&cells) {
            if !v.is_empty() {
                c.put(&mut l, body, v);
            }
        }
        l.y = top + height;
    }
    l.rule();
    l.down(10.0);

    // Totals per VAT rate, then the invoice totals.
    l.ensure(30.0 + 13.0 * (d.rates.len() as f32 + 3.0));
    let label_x = cols[4].left - 40.0;
    l.text(label_x, small, t.t("invoice.by_rate"));
    l.down(14.0);
    head_row(&mut l, t, &cols[5..], head);
    for r in &d.rates {
        cols[5].put(&mut l, body, &r.net);
        cols[6].put(&mut l, body, &r.rate);
        cols[7].put(&mut l, body, &r.vat);
        cols[8].put(&mut l, body, &r.gross);
        l.down(13.0);
    }
    l.text(label_x, body, t.t("invoice.total"));
    cols[5].put(&mut l, body, &d.net);
    cols[7].put(&mut l, body, &d.vat);
    cols[8].put(&mut l, body, &d.gross_total);
    l.down(20.0);
    l.text(
        label_x,
        11.0,
        &format!("{}: {}", t.t("invoice.to_pay"), d.gross),
    );
    l.down(24.0);

    // Payment.
    l.ensure(60.0);
    l.text(
        MARGIN,
        body,
        &format!("{}: {}", t.t("invoice.method"), t.t("invoice.transfer")),
    );
    l.down(13.0);
    if let Some(acc) = &d.account {
        l.text(MARGIN, body, &format!("{}: {acc}", t.t("invoice.account")));
        l.down(13.0);
    }

    let mut doc = krilla::Document::new();
    doc.set_metadata(
        krilla::metadata::Metadata::new()
            .title(t.f("invoice.title", &[("number", &d.number)]))
            .language(t.code().to_owned())
            .creator("ebok".to_owned()),
    );
    let black = krilla::paint::Fill {
        paint: krilla::color::luma::Color::black().into(),
        ..Default::default()
    };
    let stroke = krilla::paint::Stroke {
        width: 0.5,
        ..Default::default()
    };
    let n_pages = l.pages.len();
    for (i, ops) in l.pages.iter().enumerate() {
        let settings = krilla::page::PageSettings::from_wh(A4_W, A4_H)
            .ok_or_else(|| PdfError::Write("page size".into()))?;
        let mut page = doc.start_page_with(settings);
        let mut surface = page.surface();
        surface.set_fill(Some(black.clone()));
        surface.set_stroke(Some(stroke.clone()));
        for op in ops {
            match op {
                Op::Text {
                    x,
                    y,
                    size,
                    text,
                    right,
                } => {
                    let x = if *right {
                        x - text_width(text, *size)
                    } else {
                        *x
                    };
                    surface.draw_text(
                        krilla::geom::Point::from_xy(x, *y),
                        font.clone(),
                        *size,
                        text,
                        false,
                        krilla::text::TextDirection::Auto,
                    );
                }
                Op::Image { x, y, w, h } => {
                    if let (Some(logo), Some(size)) = (logo, krilla::geom::Size::from_wh(*w, *h)) {
                        surface.push_transform(&krilla::geom::Transform::from_translate(*x, *y));
                        surface.draw_image(logo.image.clone(), size);
                        surface.pop();
                    }
                }
                Op::Rule { x1, x2, y } => {
                    let mut pb = krilla::geom::PathBuilder::new();
                    pb.move_to(*x1, *y);
                    pb.line_to(*x2, *y);
                    if let Some(path) = pb.finish() {
                        surface.set_fill(None);
                        surface.draw_path(&path);
                        surface.set_fill(Some(black.clone()));
                    }
                }
            }
        }
        if n_pages > 1 {
            let footer = t.f(
                "invoice.page_of",
                &[
                    ("page", &(i + 1).to_string()),
                    ("pages", &n_pages.to_string()),
                ],
            );
            let x = A4_W - MARGIN - text_width(&footer, 7.0);
            surface.draw_text(
                krilla::geom::Point::from_xy(x, A4_H - 25.0),
                font.clone(),
                7.0,
                &footer,
                false,
                krilla::text::TextDirection::Auto,
            );
        }
        surface.finish();
        page.finish();
    }
    doc.finish().map_err(|e| PdfError::Write(format!("{e:?}")))
}

// ---------------------------------------------------------------------------------------------
// Mail about new invoices
// ---------------------------------------------------------------------------------------------

/// Tell the subscribers who consent to electronic invoices that these (new) invoices are in
/// the panel: one mail per invoice to the subscriber's panel account e-mail, only when it
/// is confirmed and the account is not blocked. Failures are logged; gives the number of
/// mails handed to the mailer.
pub async fn notify_new_invoices(state: &AppState, invoice_ids: &[i64]) -> usize {
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
            state.mail(
                t,
                &account.email,
                "einvoice.mail_subject",
                "einvoice.mail_body",
                &[
                    ("number", &inv.number),
                    ("gross", &inv.gross.to_string()),
                    ("due", &format_date(inv.due_on)),
                    ("link", &link),
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
pub async fn init_invoice_mail(db: &crate::store::Db) -> anyhow::Result<()> {
    let max = billing::max_invoice_id(db).await?;
    crate::store::auth::setting_or_init(db, MAIL_WATERMARK, &max.to_string()).await?;
    Ok(())
}

/// Mail consenting subscribers about invoices added since the last call, whichever way they
/// came (`ebok import`, the ops API, the billing system writing to the database). Instances
/// sharing the database take each range once: the watermark moves by compare-and-set and
/// only the instance that moved it mails. Gives the number of mails.
pub async fn notify_pending_invoices(state: &AppState) -> anyhow::Result<usize> {
    let db = &state.db;
    let max = billing::max_invoice_id(db).await?;
    let seen = crate::store::auth::setting_or_init(db, MAIL_WATERMARK, &max.to_string()).await?;
    let after: i64 = seen.parse().unwrap_or(max);
    if max <= after {
        return Ok(0);
    }
    if !crate::store::auth::setting_swap(db, MAIL_WATERMARK, &seen, &max.to_string()).await? {
        return Ok(0);
    }
    let ids = billing::invoice_ids_between(db, after, max).await?;
    let sent = notify_new_invoices(state, &ids).await;
    tracing::info!(invoices = ids.len(), mails = sent, "new invoice mails");
    Ok(sent)
}

/// After the ops API committed invoices (`PUT /api/v1/invoices`): mail about the new ones
/// at once, in the background (the periodic pass would find them within a minute anyway).
pub fn invoices_stored(
    state: &AppState,
    _records: &[billing::InvoiceRecord],
    outcomes: &[crate::store::repo::Upserted],
) {
    if !outcomes.contains(&crate::store::repo::Upserted::Inserted) {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
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

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::{header, Request, StatusCode};
    use http_body_util::BodyExt;
    use time::macros::date;
    use time::{Date, Month};
    use tower::ServiceExt;

    use super::*;
    use crate::store::billing::{upsert_invoice, upsert_payment, InvoiceRecord, PaymentRecord};
    use crate::store::money::{Quantity, VatRate};
    use crate::store::subscribers::upsert_subscriber;
    use crate::store::validate::nrb;
    use crate::web::tests::*;

    const JAN_NRB: &str = "61109010140000071219812874";
    const JAN_LAST: &str = "Kowalski-Łężyński";

    fn line(position: u32, name: &str, gross: i64, rate: VatRate) -> InvoiceLine {
        let (net, vat) = rate.split_gross(Money::from_grosze(gross));
        InvoiceLine {
            position,
            name: name.into(),
            unit: "usł.".into(),
            quantity: Quantity::ONE,
            unit_net: net,
            net,
            vat_rate: rate,
            vat,
            gross: Money::from_grosze(gross),
        }
    }

    fn invoice_rec(
        ext: &str,
        sub: &str,
        number: &str,
        issued: Date,
        status: InvoiceStatus,
        lines: Vec<InvoiceLine>,
    ) -> InvoiceRecord {
        let sum = |f: fn(&InvoiceLine) -> Money| lines.iter().map(f).sum::<Money>();
        InvoiceRecord {
            ext_id: ext.into(),
            subscriber_ext_id: sub.into(),
            number: number.into(),
            issued_on: issued,
            sold_on: issued,
            due_on: issued.replace_day(15).unwrap(),
            net: sum(|l| l.net),
            vat: sum(|l| l.vat),
            gross: sum(|l| l.gross),
            status,
            ksef_number: None,
            lines,
        }
    }

    /// The k-th month from January 2024 (k = 1 → 2024-01-01).
    fn month(k: u32) -> Date {
        let m0 = k - 1;
        let year = 2024 + (m0 / 12) as i32;
        let month = Month::try_from((m0 % 12 + 1) as u8).unwrap();
        Date::from_calendar_date(year, month, 1).unwrap()
    }

    fn number(k: u32) -> String {
        let d = month(k);
        format!("FV/{}/{:02}/{k:03}", d.year(), u8::from(d.month()))
    }

    /// Jan gets an individual account and a surname with Polish letters; 25 monthly invoices
    /// of 50,00 zł (the first 22 paid, on the 10th) and 22 payments: 150,00 zł due. Anna gets
    /// one paid invoice. Gives the ids of Jan's invoices (k = 1…25) and Anna's invoice.
    async fn seed_billing(h: &Harness) -> (Vec<i64>, i64) {
        let db = &h.state.db;
        let (jan, _) = subscribers::subscriber_by_login(db, "jan@isp")
            .await
            .unwrap()
            .unwrap();
        let (anna, _) = subscribers::subscriber_by_login(db, "anna@isp")
            .await
            .unwrap()
            .unwrap();
        let mut rec = jan.to_record();
        rec.bank_account = Some(nrb(JAN_NRB).unwrap());
        rec.last_name = Some(JAN_LAST.into());
        let mut tx = db.begin().await.unwrap();
        upsert_subscriber(&mut tx, &rec).await.unwrap();
        for k in 1..=25u32 {
            let mut r = invoice_rec(
                &format!("i{k}"),
                &jan.ext_id,
                &number(k),
                month(k),
                if k <= 22 {
                    InvoiceStatus::Paid
                } else {
                    InvoiceStatus::Issued
                },
                vec![line(1, "Internet 100 Mb/s — abonament", 5000, VatRate::R23)],
            );
            if k == 25 {
                r.ksef_number = Some("5260250274-20260101-0A1B2C3D4E5F-01".into());
            }
            upsert_invoice(&mut tx, &r).await.unwrap();
            if k <= 22 {
                upsert_payment(
                    &mut tx,
                    &PaymentRecord {
                        ext_id: format!("p{k}"),
                        subscriber_ext_id: jan.ext_id.clone(),
                        paid_on: month(k).replace_day(10).unwrap(),
                        amount: Money::from_grosze(5000),
                        title: format!("Przelew za {}", number(k)),
                        method: "przelew".into(),
                    },
                )
                .await
                .unwrap();
            }
        }
        upsert_invoice(
            &mut tx,
            &invoice_rec(
                "a1",
                &anna.ext_id,
                "FV/2026/01/900",
                date!(2026 - 01 - 01),
                InvoiceStatus::Paid,
                vec![line(1, "Internet", 5000, VatRate::R23)],
            ),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let mut ids = Vec::new();
        for k in 1..=25u32 {
            ids.extend(
                billing::invoice_ids_by_ext(db, &[format!("i{k}").as_str()])
                    .await
                    .unwrap(),
            );
        }
        let anna_invoice = billing::invoice_ids_by_ext(db, &["a1"]).await.unwrap()[0];
        (ids, anna_invoice)
    }

    /// The body with non-breaking spaces (money, thousands) as plain ones.
    fn plain(s: &str) -> String {
        s.replace('\u{a0}', " ")
    }

    /// GET with the browser's cookies and address, the body as bytes (PDF is not text).
    async fn get_bytes(
        h: &Harness,
        b: &Browser,
        path: &str,
    ) -> (StatusCode, HeaderMapOwned, Vec<u8>) {
        let cookies: Vec<String> = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut req = Request::builder()
            .uri(path)
            .header(header::HOST, "ebok.example.pl")
            .header(header::COOKIE, cookies.join("; "))
            .body(Body::empty())
            .unwrap();
        req.extensions_mut().insert(ConnectInfo(b.peer));
        let resp = crate::web::router(h.state.clone())
            .oneshot(req)
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        (status, headers, bytes)
    }

    type HeaderMapOwned = axum::http::HeaderMap;

    /// Keep a page for a look when `EBOK_TEST_ARTIFACTS` names a folder.
    fn artifact(name: &str, bytes: &[u8]) {
        if let Ok(dir) = std::env::var("EBOK_TEST_ARTIFACTS") {
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(std::path::Path::new(&dir).join(name), bytes);
        }
    }

    #[test]
    fn transfer_qr_payload_known_case() {
        let acc = nrb(JAN_NRB).unwrap();
        assert_eq!(
            billing::transfer_qr_payload(
                Some("526-025-02-74"),
                &acc,
                Money::from_grosze(123),
                "Firma | „Net” Sp. z o.o.",
                "Faktura FV/2026/05/001"
            ),
            "5260250274|PL|61109010140000071219812874|000123|Firma Net Sp. z o.o.|Faktura FV/2026/05/001|||"
        );
        // Long texts are cut, Polish letters stay, a bad NIP is left out, amounts above
        // 9999,99 zł get more digits.
        assert_eq!(
            billing::transfer_qr_payload(
                Some("123"),
                &acc,
                Money::from_grosze(1_234_567),
                "Łączność Światłowodowa Żółw",
                "Abonament za styczeń 2026, umowa UM/2013/001 i inne"
            ),
            "|PL|61109010140000071219812874|1234567|Łączność Światłowodo|Abonament za styczeń 2026, umowa|||"
        );
        assert_eq!(billing::qr_text("  a|b\n<c>  ", 10), "a b c");
    }

    #[tokio::test]
    async fn payments_page_shows_balance_ledger_account_and_qr() {
        let h = Harness::sqlite().await;
        payments_scenario(&h).await;
        h.finish().await;
    }

    #[tokio::test]
    async fn payments_page_on_postgres() {
        let Some(h) = Harness::postgres_redis("billing_payments_pg").await else {
            return;
        };
        payments_scenario(&h).await;
        h.finish().await;
    }

    async fn payments_scenario(h: &Harness) {
        let (ids, _) = seed_billing(h).await;
        let mut b = jan_registered(h).await;
        let r = b.get("/platnosci").await;
        assert_eq!(r.status, StatusCode::OK);
        artifact("payments.html", r.body.as_bytes());
        let body = plain(&r.body);
        assert!(body.contains("Do zapłaty: 150,00 zł"), "{body}");
        assert!(body.contains("61 1090 1014 0000 0712 1981 2874"));
        // The QR code for the amount due, titled with the oldest unpaid invoice.
        let payload = "|PL|61109010140000071219812874|015000|Testnet|Faktura FV/2025/11/023|||";
        assert!(body.contains(payload), "{body}");
        assert!(body.contains("<svg") && body.contains("aria-label=\"Kod QR do przelewu\""));
        // Newest first with the running balance: invoices 25, 24, 23 unpaid.
        let i25 = body.find("Faktura FV/2026/01/025").expect("newest invoice");
        let i24 = body.find("Faktura FV/2025/12/024").unwrap();
        let i23 = body.find("Faktura FV/2025/11/023 (").unwrap();
        assert!(i25 < i24 && i24 < i23);
        let row25 = &body[i25..i24];
        assert!(row25.contains("\u{2212}150,00 zł"), "{row25}");
        assert!(body[i24..i23].contains("\u{2212}100,00 zł"));
        assert!(body.contains(&format!("href=\"/e-faktury/{}\"", ids[24])));
        assert!(body.contains("Wpłata: Przelew za FV/2025/10/022"));
        assert!(body.contains("Strona 1 z 3"));
        assert!(!body.contains("FV/2024/01/001"));
        // 47 lines: the third page holds the oldest 7.
        let r = b.get("/platnosci?strona=3").await;
        let body = plain(&r.body);
        assert!(body.contains("Strona 3 z 3"));
        assert!(body.contains("Faktura FV/2024/01/001"));
        assert_eq!(body.matches("<tr>").count(), 1 + 7, "{body}");
        assert!(!body.contains("FV/2026/01/025"));
        // Nonsense page numbers fall back to the first page.
        let r = b.get("/platnosci?strona=abc").await;
        assert!(plain(&r.body).contains("Strona 1 z 3"));
    }

    #[tokio::test]
    async fn settled_balance_has_no_qr_and_pages_need_login() {
        let h = Harness::sqlite().await;
        seed_billing(&h).await;
        let mut visitor = h.browser(STRANGER_IP);
        for path in [
            "/platnosci",
            "/e-faktury",
            "/e-faktury/1",
            "/e-faktury/1.pdf",
        ] {
            let r = visitor.get(path).await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{path}");
            assert_eq!(
                r.location(),
                format!("/logowanie?wroc={}", path.replace('?', "%3F"))
            );
        }
        // Jan pays everything: settled, no code.
        let mut tx = h.state.db.begin().await.unwrap();
        upsert_payment(
            &mut tx,
            &PaymentRecord {
                ext_id: "p-all".into(),
                subscriber_ext_id: "s1".into(),
                paid_on: date!(2026 - 02 - 01),
                amount: Money::from_grosze(20000),
                title: String::new(),
                method: "przelew".into(),
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let mut b = jan_registered(&h).await;
        let body = plain(&b.get("/platnosci").await.body);
        assert!(body.contains("Nadpłata: 50,00 zł"), "{body}");
        assert!(!body.contains("<svg"));
        assert!(body.contains(">Wpłata<"));
        h.finish().await;
    }

    #[tokio::test]
    async fn invoices_page_lists_and_consent_is_recorded() {
        let h = Harness::sqlite().await;
        let (ids, _) = seed_billing(&h).await;
        let mut b = jan_registered(&h).await;
        let r = b.get("/e-faktury").await;
        assert_eq!(r.status, StatusCode::OK);
        artifact("invoices.html", r.body.as_bytes());
        let body = plain(&r.body);
        assert!(body.contains("Zgoda nie została udzielona"));
        assert!(body.contains("FV/2026/01/025"));
        assert!(body.contains("5260250274-20260101-0A1B2C3D4E5F-01"));
        assert!(body.contains("po terminie"), "issued and past due");
        assert!(body.contains("zapłacona"));
        assert!(body.contains("15.01.2026"));
        assert!(body.contains(&format!("/e-faktury/{}.pdf", ids[24])));
        assert!(body.contains("Strona 1 z 2"));
        assert!(!body.contains("FV/2024/01/001"));
        let body = plain(&b.get("/e-faktury?strona=2").await.body);
        assert!(body.contains("FV/2024/01/001") && body.contains("Strona 2 z 2"));

        // Give the consent, then revoke it.
        let r = b
            .submit("/e-faktury", "/e-faktury/zgoda", &[("decision", "give")])
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(r.location(), "/e-faktury");
        let (jan, _) = subscribers::subscriber_by_login(&h.state.db, "jan@isp")
            .await
            .unwrap()
            .unwrap();
        let c = panel::current_consent(&h.state.db, jan.id)
            .await
            .unwrap()
            .unwrap();
        assert!(c.given);
        assert_eq!(c.ip.unwrap().to_string(), JAN_IP);
        assert_eq!(c.text_version, "2026-2/pl");
        let body = plain(&b.get("/e-faktury").await.body);
        assert!(body.contains("Zgoda udzielona"), "{body}");
        assert!(body.contains(JAN_IP) && body.contains("2026-2/pl"));
        assert!(body.contains("value=\"revoke\""));
        // Giving it again with the same wording records nothing new.
        b.submit("/e-faktury", "/e-faktury/zgoda", &[("decision", "give")])
            .await;
        assert_eq!(
            panel::consent_history(&h.state.db, jan.id)
                .await
                .unwrap()
                .len(),
            1
        );
        let r = b
            .submit("/e-faktury", "/e-faktury/zgoda", &[("decision", "revoke")])
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let history = panel::consent_history(&h.state.db, jan.id).await.unwrap();
        assert_eq!(history.len(), 2);
        assert!(!history[0].given && history[1].given);
        assert_eq!(history[0].ip.unwrap().to_string(), JAN_IP);
        let body = plain(&b.get("/e-faktury").await.body);
        assert!(body.contains("Zgoda cofnięta"));
        let audit = crate::store::audit::recent(&h.state.db, 20).await.unwrap();
        let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
        assert!(actions.contains(&"einvoice_consent_given"), "{actions:?}");
        assert!(actions.contains(&"einvoice_consent_revoked"));
        let given = audit
            .iter()
            .find(|a| a.action == "einvoice_consent_given")
            .unwrap();
        assert_eq!(given.ip.unwrap().to_string(), JAN_IP);
        assert!(given.detail.contains("2026-2/pl"));
        // A post without the CSRF token is refused by the panel layer.
        let mut fresh = b;
        fresh.csrf = None;
        let r = fresh
            .post("/e-faktury/zgoda", &[("decision", "give")])
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        h.finish().await;
    }

    #[tokio::test]
    async fn invoice_print_page_and_ownership() {
        let h = Harness::sqlite().await;
        let (ids, anna_invoice) = seed_billing(&h).await;
        let mut b = jan_registered(&h).await;
        let r = b.get(&format!("/e-faktury/{}", ids[24])).await;
        assert!(
            r.body.contains("NIP: 6772445515"),
            "the seller's NIP from [isp] nip"
        );
        assert_eq!(r.status, StatusCode::OK);
        artifact("invoice.html", r.body.as_bytes());
        let body = plain(&r.body);
        for needle in [
            "Faktura VAT nr FV/2026/01/025",
            "Data wystawienia",
            "01.01.2026",
            "Data sprzedaży",
            "Testnet",
            &format!("Jan {JAN_LAST}"),
            "ul. Internetowa 1",
            "30-001 Kraków",
            "Internet 100 Mb/s — abonament",
            "40,65",
            "9,35",
            "23%",
            "Do zapłaty: <strong>50,00 zł</strong>",
            "61 1090 1014 0000 0712 1981 2874",
            "5260250274-20260101-0A1B2C3D4E5F-01",
            "class=\"invoice-doc\"",
        ] {
            assert!(body.contains(needle), "{needle} missing in {body}");
        }
        // Another subscriber's invoice, a missing one and garbage: 404 alike.
        for path in [
            format!("/e-faktury/{anna_invoice}"),
            format!("/e-faktury/{anna_invoice}.pdf"),
            "/e-faktury/999999".to_owned(),
            "/e-faktury/999999.pdf".to_owned(),
            "/e-faktury/abc".to_owned(),
        ] {
            let (status, headers, _) = get_bytes(&h, &b, &path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert_ne!(
                headers.get(header::CONTENT_TYPE).unwrap(),
                "application/pdf"
            );
        }
        h.finish().await;
    }

    #[tokio::test]
    async fn invoice_pdf_text_matches_the_invoice() {
        let h = Harness::sqlite().await;
        seed_billing(&h).await;
        // A two-rate invoice for Jan.
        let rec = invoice_rec(
            "i-two",
            "s1",
            "FV/2026/02/777",
            date!(2026 - 02 - 01),
            InvoiceStatus::Issued,
            vec![
                line(
                    1,
                    "Internet światłowodowy 1 Gb/s — abonament za luty 2026",
                    12300,
                    VatRate::R23,
                ),
                line(2, "Dzierżawa routera Wi-Fi", 1080, VatRate::R8),
            ],
        );
        let mut tx = h.state.db.begin().await.unwrap();
        upsert_invoice(&mut tx, &rec).await.unwrap();
        tx.commit().await.unwrap();
        let id = billing::invoice_ids_by_ext(&h.state.db, &["i-two"])
            .await
            .unwrap()[0];
        let b = jan_registered(&h).await;
        let (status, headers, pdf) = get_bytes(&h, &b, &format!("/e-faktury/{id}.pdf")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers.get(header::CONTENT_TYPE).unwrap(),
            "application/pdf"
        );
        assert!(headers
            .get(header::CONTENT_DISPOSITION)
            .unwrap()
            .to_str()
            .unwrap()
            .contains("faktura-FV-2026-02-777.pdf"));
        assert!(pdf.starts_with(b"%PDF-"));
        artifact("invoice.pdf", &pdf);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.pdf");
        std::fs::write(&file, &pdf).unwrap();
        let out = match tokio::process::Command::new("pdftotext")
            .arg("-layout")
            .arg(&file)
            .arg("-")
            .output()
            .await
        {
            Ok(o) if o.status.success() => o,
            Ok(o) => panic!("pdftotext failed: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => {
                crate::testkit::skip(
                    "invoice_pdf_text_matches_the_invoice",
                    "pdftotext",
                    &e.to_string(),
                );
                return;
            }
        };
        let text = plain(&String::from_utf8(out.stdout).unwrap());
        for needle in [
            "Faktura VAT nr FV/2026/02/777",
            &format!("Jan {JAN_LAST}"),
            "30-001 Kraków",
            "Internet światłowodowy",
            "Dzierżawa routera Wi-Fi",
            "100,00", // net 23%
            "23,00",  // VAT 23%
            "10,00",  // net 8%
            "0,80",   // VAT 8%
            "110,00", // net total
            "23,80",  // VAT total
            "Do zapłaty: 133,80 zł",
            "61 1090 1014 0000 0712 1981 2874",
            "15.02.2026",
        ] {
            assert!(
                text.contains(needle),
                "{needle} missing in PDF text:\n{text}"
            );
        }
        // The font is embedded (a subset), not referenced.
        let raw = String::from_utf8_lossy(&pdf);
        assert!(raw.contains("/FontFile2") || raw.contains("/FontFile3"));
        h.finish().await;
    }

    /// A grey `w` × `h` PNG (8-bit greyscale, one stored deflate block), made here so the
    /// test needs no image file.
    fn tiny_png(w: u32, h: u32) -> Vec<u8> {
        fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let start = out.len();
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            let crc = crc32fast::hash(&out[start..]);
            out.extend_from_slice(&crc.to_be_bytes());
        }
        let mut raw = Vec::new();
        for _ in 0..h {
            raw.push(0); // no filter
            raw.extend(std::iter::repeat_n(0x80u8, w as usize));
        }
        let (mut a, mut b) = (1u32, 0u32);
        for &byte in &raw {
            a = (a + u32::from(byte)) % 65521;
            b = (b + a) % 65521;
        }
        let mut z = vec![0x78, 0x01, 1];
        z.extend_from_slice(&(raw.len() as u16).to_le_bytes());
        z.extend_from_slice(&(!(raw.len() as u16)).to_le_bytes());
        z.extend_from_slice(&raw);
        z.extend_from_slice(&((b << 16) | a).to_be_bytes());
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&w.to_be_bytes());
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(&mut out, b"IDAT", &z);
        chunk(&mut out, b"IEND", &[]);
        out
    }

    async fn pdf_text(pdf: &[u8]) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.pdf");
        std::fs::write(&file, pdf).unwrap();
        match tokio::process::Command::new("pdftotext")
            .arg("-layout")
            .arg(&file)
            .arg("-")
            .output()
            .await
        {
            Ok(o) if o.status.success() => Some(plain(&String::from_utf8(o.stdout).unwrap())),
            Ok(o) => panic!("pdftotext failed: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => {
                crate::testkit::skip("invoice PDF text", "pdftotext", &e.to_string());
                None
            }
        }
    }

    /// The PDF names the customer and the contract, carries the configured logo, and says
    /// nothing about being paid or not (that changes; the document does not).
    #[tokio::test]
    async fn invoice_pdf_has_customer_contract_and_logo_but_no_status() {
        let dir = tempfile::tempdir().unwrap();
        let logo = dir.path().join("logo.png");
        std::fs::write(&logo, tiny_png(40, 20)).unwrap();
        let path = logo.clone();
        let h = Harness::with(move |c| c.isp.logo = Some(path)).await;
        let (ids, _) = seed_billing(&h).await;
        let b = jan_registered(&h).await;
        let (status, _, pdf) = get_bytes(&h, &b, &format!("/e-faktury/{}.pdf", ids[0])).await;
        assert_eq!(status, StatusCode::OK);
        artifact("invoice-logo.pdf", &pdf);
        let raw = String::from_utf8_lossy(&pdf);
        assert!(raw.contains("/Image"), "the logo is drawn");
        let Some(text) = pdf_text(&pdf).await else {
            return;
        };
        for needle in ["Numer klienta: s1", "Numer umowy: UM/2013/001"] {
            assert!(text.contains(needle), "{needle} missing in:\n{text}");
        }
        assert!(!text.contains("Status"), "status in the PDF:\n{text}");
        for word in ["zapłacona", "po terminie"] {
            assert!(!text.contains(word), "{word} in the PDF:\n{text}");
        }
        // The print page keeps the status, and shows the same numbers.
        let mut b = b;
        let page = b.get(&format!("/e-faktury/{}", ids[0])).await;
        assert!(page.body.contains("Numer klienta") && page.body.contains("UM/2013/001"));
        assert!(page.body.contains("Status"));
        h.finish().await;
    }

    /// `[isp] logo` is checked at start-up, and the problem names the key.
    #[test]
    fn a_logo_that_is_not_a_png_is_refused_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let check = |path: std::path::PathBuf| {
            let mut c = crate::config::Config::default();
            c.isp.logo = Some(path);
            c.validate("ebok.toml").err().map(|e| e.to_string())
        };
        let text = dir.path().join("logo.png");
        std::fs::write(&text, "not an image").unwrap();
        for path in [text, dir.path().join("missing.png")] {
            let e = check(path.clone()).unwrap_or_else(|| panic!("{} accepted", path.display()));
            assert!(e.contains("isp.logo"), "{e}");
        }
        let good = dir.path().join("good.png");
        std::fs::write(&good, tiny_png(3, 2)).unwrap();
        let e = check(good);
        assert!(
            e.as_deref().is_none_or(|e| !e.contains("isp.logo")),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn totals_that_do_not_match_the_lines_are_refused() {
        let h = Harness::sqlite().await;
        let (ids, _) = seed_billing(&h).await;
        let id = ids[0];
        crate::on_pool!(&h.state.db, pool => {
            sqlx::query("UPDATE invoices SET gross = gross + 1 WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .unwrap();
        });
        let mut b = jan_registered(&h).await;
        let r = b.get(&format!("/e-faktury/{id}")).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            r.body.contains("jej kwoty wymagają sprawdzenia"),
            "{}",
            r.body
        );
        let (status, headers, _) = get_bytes(&h, &b, &format!("/e-faktury/{id}.pdf")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(headers
            .get(header::CONTENT_TYPE)
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        // The others still show.
        assert_eq!(
            b.get(&format!("/e-faktury/{}", ids[1])).await.status,
            StatusCode::OK
        );
        h.finish().await;
    }

    #[tokio::test]
    async fn new_invoice_mail_goes_to_consenting_subscribers_only() {
        let h = Harness::sqlite().await;
        let (ids, anna_invoice) = seed_billing(&h).await;
        let mut b = jan_registered(&h).await;
        // No consent yet: nothing.
        assert_eq!(notify_new_invoices(&h.state, &[ids[24]]).await, 0);
        b.submit("/e-faktury", "/e-faktury/zgoda", &[("decision", "give")])
            .await;
        // Anna has no panel account; an unknown id is skipped.
        assert_eq!(
            notify_new_invoices(&h.state, &[ids[24], anna_invoice, 999_999]).await,
            1
        );
        let mails = h.mails_to("jan@example.pl", 2).await;
        let mail = mails
            .iter()
            .find(|m| m.contains("Nowa faktura"))
            .expect("mail");
        assert!(mail.contains("FV/2026/01/025"), "{mail}");
        assert!(plain(mail).contains("50,00 zł"));
        assert!(mail.contains(&format!("https://ebok.example.pl/e-faktury/{}", ids[24])));
        // Revoked: nothing again.
        b.submit("/e-faktury", "/e-faktury/zgoda", &[("decision", "revoke")])
            .await;
        assert_eq!(notify_new_invoices(&h.state, &[ids[24]]).await, 0);
        h.finish().await;
    }

    #[tokio::test]
    async fn invoices_added_by_any_route_are_mailed_once() {
        let h = Harness::sqlite().await;
        let (ids, _) = seed_billing(&h).await;
        let mut b = jan_registered(&h).await;
        b.submit("/e-faktury", "/e-faktury/zgoda", &[("decision", "give")])
            .await;
        // The harness started before seeding: everything seeded counts as new, once.
        assert!(notify_pending_invoices(&h.state).await.unwrap() >= 1);
        assert_eq!(notify_pending_invoices(&h.state).await.unwrap(), 0);
        // A second instance sharing the database takes nothing the first already took.
        let other = AppState { ..h.state.clone() };
        assert_eq!(notify_pending_invoices(&other).await.unwrap(), 0);
        let mails = h.mails_to("jan@example.pl", 2).await;
        assert!(mails.iter().any(|m| m.contains("Nowa faktura")));
        assert!(ids.len() >= 25);
        h.finish().await;
    }

    #[tokio::test]
    async fn invoices_put_through_the_ops_api_mail_consenting_subscribers() {
        let h = Harness::sqlite().await;
        seed_billing(&h).await;
        let mut b = jan_registered(&h).await;
        b.submit("/e-faktury", "/e-faktury/zgoda", &[("decision", "give")])
            .await;
        let token = "billing-test-token";
        let mut config = (*h.state.config).clone();
        config.ops.tokens.push(crate::config::OpsToken {
            name: "billing".into(),
            sha256: crate::ops::api::token_digest(token),
        });
        let state = AppState {
            config: std::sync::Arc::new(config),
            ..h.state.clone()
        };
        let app = crate::web::router(state);
        let put = |body: String| {
            let mut req = Request::builder()
                .method("PUT")
                .uri("/api/v1/invoices")
                .header(header::HOST, "ebok.example.pl")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .unwrap();
            req.extensions_mut()
                .insert(ConnectInfo(std::net::SocketAddr::from((
                    [127, 0, 0, 1],
                    5000,
                ))));
            app.clone().oneshot(req)
        };
        let invoice = |gross: &str, net: &str, vat: &str| {
            format!(
                r#"{{"ext_id":"i-api","subscriber_ext_id":"s1","number":"FV/2026/03/555",
                "issued_on":"2026-03-01","sold_on":"2026-03-01","due_on":"2026-03-15",
                "net":"{net}","vat":"{vat}","gross":"{gross}","status":"issued","ksef_number":null,
                "lines":[{{"position":1,"name":"Internet","unit":"usł.","quantity":"1",
                "unit_net":"{net}","net":"{net}","vat_rate":"23","vat":"{vat}","gross":"{gross}"}}]}}"#
            )
        };
        let r = put(invoice("61.50", "50.00", "11.50")).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let mails = h.mails_with("jan@example.pl", "FV/2026/03/555").await;
        assert!(
            mails.iter().any(|m| m.contains("FV/2026/03/555")),
            "{mails:?}"
        );
        // An update of the same invoice mails nothing more.
        let r = put(invoice("123.00", "100.00", "23.00")).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let mails = h.mails_to("jan@example.pl", 3).await;
        assert_eq!(
            mails
                .iter()
                .filter(|m| m.contains("FV/2026/03/555"))
                .count(),
            1
        );
        h.finish().await;
    }
}
