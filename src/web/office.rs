//! Contact with the customer office (BOK): the ISP's contact block, tickets written from the
//! panel with their threads and replies; the service catalogue with orders from subscribers
//! and enquiries from visitors; news and FAQ, whose Markdown is rendered here with raw HTML
//! and unsafe links neutralised.

use std::time::Duration;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use pulldown_cmark::{Alignment, CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use super::auth::limited_message;
use super::i18n::{Lang, Tr};
use super::pages::{error_page, internal, render, Authed, Chrome, Ctx, FormErrors};
use super::paging::{clamped, PageQuery, Pager};
use super::ratelimit::Rule;
use super::register::valid_email;
use super::AppState;
use crate::store::content::{self, NewServiceOrder, OrderStatus};
use crate::store::panel::{self, Author, TicketStatus};
use crate::store::repo::{Page, StoreError};
use crate::tz::{format_date, format_datetime, warsaw_date};

/// Enquiries (orders without an account) from one IP.
pub const ENQUIRY_IP: Rule = Rule {
    limit: 5,
    window: Duration::from_secs(3600),
};
/// Messages to the office (new tickets and replies) and orders of one panel account.
pub const MESSAGE_ACCOUNT: Rule = Rule {
    limit: 20,
    window: Duration::from_secs(3600),
};

const TICKETS_PER_PAGE: u32 = 10;
const ORDERS_PER_PAGE: u32 = 10;
const NEWS_PER_PAGE: u32 = 10;
const FAQ_PER_PAGE: u32 = 50;

const MAX_SUBJECT: usize = 200;
const MAX_MESSAGE: usize = 5000;
const MAX_NOTE: usize = 2000;
const MAX_CONTACT: usize = 200;

/// The routes of this page group.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/kontakt", get(contact).post(write))
        .route("/kontakt/{id}", get(ticket).post(reply))
        .route("/kontakt/{id}/zamknij", post(close_ticket))
        .route("/zamawianie", get(orders).post(order))
        .route("/aktualnosci", get(news))
        .route("/aktualnosci/{id}", get(news_item))
        .route("/faq", get(faq))
}

// ---------------------------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------------------------

/// `?strona=N` (page number) and `?wyslano=1` (the notice after a form was sent).
#[derive(serde::Deserialize, Default)]
pub struct ListQuery {
    #[serde(flatten)]
    page: PageQuery,
    #[serde(default)]
    wyslano: String,
    /// `?zamkniete=1`: the notice after a ticket was closed.
    #[serde(default)]
    zamkniete: String,
}

impl ListQuery {
    fn page(&self, size: u32) -> Page {
        self.page.page(size)
    }

    fn sent(&self) -> bool {
        !self.wyslano.is_empty()
    }
}

/// A text of at most `max` characters, or the message for the field; `required` names the
/// message for an empty one (none: the field may stay empty).
fn check_text(t: Tr, value: &str, max: usize, required: Option<&str>) -> Option<String> {
    let n = value.trim().chars().count();
    if let (Some(key), 0) = (required, n) {
        Some(t.t(key).to_owned())
    } else if n > max {
        Some(t.f("office.too_long", &[("max", &max.to_string())]))
    } else {
        None
    }
}

/// A phone number as people type it: digits with spaces, dashes, dots, brackets, a leading
/// plus; 9 to 15 digits.
fn valid_phone(phone: &str) -> bool {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    (9..=15).contains(&digits)
        && phone.chars().enumerate().all(|(i, c)| {
            c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')') || (c == '+' && i == 0)
        })
}

/// Count an attempt against `rule`; the page's message when over the limit.
async fn over_limit(
    state: &AppState,
    ctx: &Ctx,
    key: &str,
    rule: Rule,
) -> Result<Option<String>, Response> {
    match state.panel.limiter.hit(key, rule).await {
        Ok(d) => Ok(limited_message(ctx, &d)),
        Err(e) => Err(internal(state, ctx, e).await),
    }
}

/// Mail the customer office (in Polish) when its address is configured.
fn mail_office(state: &AppState, subject_key: &str, body_key: &str, args: &[(&str, &str)]) {
    let to = state.config.isp.email.trim();
    if !to.is_empty() {
        state.mail(Tr::new(Lang::Pl), to, subject_key, body_key, args);
    }
}

/// Mail the subscriber (in the language of the page they used) at their account's address,
/// when that address is confirmed: an unconfirmed one may be a typo, someone else's.
fn mail_subscriber(
    state: &AppState,
    t: Tr,
    a: &Authed,
    subject_key: &str,
    body_key: &str,
    args: &[(&str, &str)],
) {
    if a.account.email_confirmed_at.is_some() {
        state.mail(t, &a.account.email, subject_key, body_key, args);
    }
}

/// Who is writing, for the office's mail: "Jan Kowalski (login jan.kowalski)".
async fn who(state: &AppState, a: &Authed) -> String {
    let name = match crate::store::subscribers::subscriber(&state.db, a.account.subscriber_id).await
    {
        Ok(Some(s)) => s.display_name(),
        _ => String::new(),
    };
    format!("{name} ({})", a.account.login).trim().to_owned()
}

// ---------------------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------------------

/// Whether a link target may be followed: http(s), mailto, or relative (no scheme at all).
/// Anything else — `javascript:`, `data:`, `vbscript:`, schemes disguised with control
/// characters — is refused.
pub fn safe_url(url: &str) -> bool {
    let u = url.trim();
    if u.chars().any(char::is_control) {
        return false;
    }
    match u.find([':', '/', '?', '#']) {
        Some(i) if u.as_bytes()[i] == b':' => {
            matches!(
                u[..i].to_ascii_lowercase().as_str(),
                "http" | "https" | "mailto"
            )
        }
        _ => true,
    }
}

/// Headings inside a news item or an answer sit below the page's own `h1`/`h2`.
fn demote(level: HeadingLevel) -> HeadingLevel {
    match level {
        HeadingLevel::H1 => HeadingLevel::H3,
        HeadingLevel::H2 => HeadingLevel::H4,
        HeadingLevel::H3 => HeadingLevel::H5,
        _ => HeadingLevel::H6,
    }
}

/// Markdown from the billing system or the office as HTML that is safe to insert: raw HTML
/// becomes visible text, links other than http(s)/mailto/relative become their text, images
/// become their alt text, no attributes but `href` and `title` (escaped) are produced.
pub fn markdown_html(md: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    // One entry per open link: whether it is kept.
    let mut links: Vec<bool> = Vec::new();
    let events = Parser::new_ext(md, options).filter_map(|event| match event {
        Event::Html(s) | Event::InlineHtml(s) => Some(Event::Text(s)),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let keep = safe_url(&dest_url);
            links.push(keep);
            keep.then_some(Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }))
        }
        Event::End(TagEnd::Link) => links
            .pop()
            .unwrap_or(false)
            .then_some(Event::End(TagEnd::Link)),
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        Event::Start(Tag::Heading { level, .. }) => Some(Event::Start(Tag::Heading {
            level: demote(level),
            id: None,
            classes: Vec::new(),
            attrs: Vec::new(),
        })),
        Event::End(TagEnd::Heading(level)) => Some(Event::End(TagEnd::Heading(demote(level)))),
        // No inline styles (the CSP refuses them) and no classes from the text.
        Event::Start(Tag::Table(align)) => {
            Some(Event::Start(Tag::Table(vec![Alignment::None; align.len()])))
        }
        Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(_))) => {
            Some(Event::Start(Tag::CodeBlock(CodeBlockKind::Indented)))
        }
        other => Some(other),
    });
    let mut out = String::with_capacity(md.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

// ---------------------------------------------------------------------------------------------
// Kontakt
// ---------------------------------------------------------------------------------------------

/// One line of the contact block; `href` empty when it is not a link.
pub struct ContactLine {
    pub label: String,
    pub value: String,
    pub href: String,
}

fn contact_block(state: &AppState, t: Tr) -> Vec<ContactLine> {
    let isp = &state.config.isp;
    let tel = |v: &str| {
        let n: String = v
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect();
        // One number only: a field with several numbers stays text.
        if (9..=12).contains(&n.chars().filter(char::is_ascii_digit).count()) {
            format!("tel:{n}")
        } else {
            String::new()
        }
    };
    let mut out = Vec::new();
    for (key, value, href) in [
        (
            "office.office_phone",
            &isp.office_phone,
            tel(&isp.office_phone),
        ),
        (
            "office.technical_phone",
            &isp.technical_phone,
            tel(&isp.technical_phone),
        ),
        ("office.hours", &isp.hours, String::new()),
        ("office.address", &isp.address, String::new()),
        (
            "office.email",
            &isp.email,
            if valid_email(isp.email.trim()) {
                format!("mailto:{}", isp.email.trim())
            } else {
                String::new()
            },
        ),
    ] {
        if !value.trim().is_empty() {
            out.push(ContactLine {
                label: t.t(key).to_owned(),
                value: value.trim().to_owned(),
                href,
            });
        }
    }
    out
}

fn ticket_status(t: Tr, s: TicketStatus) -> String {
    t.t(match s {
        TicketStatus::Open => "office.status_open",
        TicketStatus::Answered => "office.status_answered",
        TicketStatus::Closed => "office.status_closed",
    })
    .to_owned()
}

pub struct TicketRow {
    pub id: i64,
    pub subject: String,
    pub status: String,
    pub created: String,
    pub updated: String,
}

#[derive(Template)]
#[template(path = "contact.html")]
struct ContactPage {
    c: Chrome,
    block: Vec<ContactLine>,
    subject: String,
    message: String,
    errors: FormErrors,
    tickets: Vec<TicketRow>,
    pager: Pager,
}

#[derive(serde::Deserialize)]
pub struct TicketForm {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    message: String,
}

async fn contact_page(
    state: &AppState,
    ctx: &Ctx,
    page: Page,
    form: TicketForm,
    errors: FormErrors,
    status: StatusCode,
) -> Response {
    let (tickets, pager) = match &ctx.auth {
        Some(a) => match clamped(page, |p| {
            panel::tickets_page(&state.db, a.account.subscriber_id, p)
        })
        .await
        {
            Ok(p) => (
                p.items
                    .iter()
                    .map(|k| TicketRow {
                        id: k.id,
                        subject: k.subject.clone(),
                        status: ticket_status(ctx.t, k.status),
                        created: format_datetime(k.created_at),
                        updated: format_datetime(k.updated_at),
                    })
                    .collect(),
                Pager::of(&p, "/kontakt"),
            ),
            Err(e) => return internal(state, ctx, e).await,
        },
        None => (Vec::new(), Pager::single()),
    };
    let c = Chrome::new(state, ctx, "/kontakt").await;
    render(
        status,
        &ContactPage {
            c,
            block: contact_block(state, ctx.t),
            subject: form.subject,
            message: form.message,
            errors,
            tickets,
            pager,
        },
    )
}

/// Kontakt: the contact block for everyone; for a subscriber the form to the office and
/// their tickets.
pub async fn contact(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<ListQuery>,
) -> Response {
    let form = TicketForm {
        subject: String::new(),
        message: String::new(),
    };
    contact_page(
        &state,
        &ctx,
        q.page(TICKETS_PER_PAGE),
        form,
        FormErrors::default(),
        StatusCode::OK,
    )
    .await
}

/// A new ticket: stored, audited (with the language, so that the office's answer is mailed
/// in it), mailed to the office.
pub async fn write(State(state): State<AppState>, ctx: Ctx, Form(f): Form<TicketForm>) -> Response {
    let Some(a) = ctx.auth.clone() else {
        return super::pages::to_login();
    };
    let t = ctx.t;
    let mut errors = FormErrors::default();
    if let Some(m) = check_text(t, &f.subject, MAX_SUBJECT, Some("required.subject")) {
        errors.add("subject", m);
    }
    if let Some(m) = check_text(t, &f.message, MAX_MESSAGE, Some("required.message")) {
        errors.add("message", m);
    }
    if errors.is_empty() {
        let key = format!("office:account:{}", a.account.id);
        match over_limit(&state, &ctx, &key, MESSAGE_ACCOUNT).await {
            Ok(Some(m)) => {
                errors.form = Some(m);
                return contact_page(
                    &state,
                    &ctx,
                    Page::first(TICKETS_PER_PAGE),
                    f,
                    errors,
                    StatusCode::TOO_MANY_REQUESTS,
                )
                .await;
            }
            Ok(None) => {}
            Err(r) => return r,
        }
    }
    if !errors.is_empty() {
        return contact_page(
            &state,
            &ctx,
            Page::first(TICKETS_PER_PAGE),
            f,
            errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let subject = f.subject.trim().to_owned();
    let message = f.message.trim().to_owned();
    let created = in_tx!(state.db, |tx| {
        let id = panel::create_ticket(
            &mut tx,
            Some(a.account.subscriber_id),
            None,
            &subject,
            &message,
        )
        .await?;
        ctx.audit(
            &mut tx,
            "ticket_created",
            &format!("ticket {id}; lang {}", t.code()),
        )
        .await?;
        id
    });
    let id = match created {
        Ok(id) => id,
        Err(e) => return internal(&state, &ctx, e).await,
    };
    let from = who(&state, &a).await;
    mail_office(
        &state,
        "office.mail_ticket_subject",
        "office.mail_ticket_body",
        &[
            ("id", &id.to_string()),
            ("from", &from),
            ("subject", &subject),
            ("message", &message),
        ],
    );
    mail_subscriber(
        &state,
        t,
        &a,
        "office.mail_ticket_confirm_subject",
        "office.mail_ticket_confirm_body",
        &[
            ("id", &id.to_string()),
            ("subject", &subject),
            ("link", &state.link(&format!("/kontakt/{id}"))),
        ],
    );
    Redirect::to(&format!("/kontakt/{id}?wyslano=1")).into_response()
}

pub struct MessageView {
    pub office: bool,
    pub author: String,
    pub at: String,
    pub body: String,
}

#[derive(Template)]
#[template(path = "ticket.html")]
struct TicketPage {
    c: Chrome,
    id: i64,
    subject: String,
    status: String,
    closed: bool,
    created: String,
    messages: Vec<MessageView>,
    message: String,
    errors: FormErrors,
}

/// The ticket `id` if it is the logged-in subscriber's; otherwise the response to give.
async fn own_ticket(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
) -> Result<(Authed, panel::Ticket), Response> {
    let Some(a) = ctx.auth.clone() else {
        return Err(super::pages::to_login());
    };
    let Ok(id) = id.parse::<i64>() else {
        return Err(error_page(state, &ctx.info, StatusCode::NOT_FOUND).await);
    };
    match panel::ticket_for(&state.db, a.account.subscriber_id, id).await {
        Ok(Some(k)) => Ok((a, k)),
        Ok(None) => Err(error_page(state, &ctx.info, StatusCode::NOT_FOUND).await),
        Err(e) => Err(internal(state, ctx, e).await),
    }
}

async fn ticket_page(
    state: &AppState,
    ctx: &Ctx,
    k: panel::Ticket,
    notice: Option<String>,
    message: String,
    errors: FormErrors,
    status: StatusCode,
) -> Response {
    let t = ctx.t;
    let messages = match panel::ticket_messages(&state.db, k.id).await {
        Ok(m) => m,
        Err(e) => return internal(state, ctx, e).await,
    };
    let mut c = Chrome::new(state, ctx, &format!("/kontakt/{}", k.id)).await;
    c.notice = notice;
    render(
        status,
        &TicketPage {
            c,
            id: k.id,
            subject: k.subject.clone(),
            status: ticket_status(t, k.status),
            closed: k.status == TicketStatus::Closed,
            created: format_datetime(k.created_at),
            messages: messages
                .into_iter()
                .map(|m| MessageView {
                    office: m.author == Author::Office,
                    author: t
                        .t(match m.author {
                            Author::Office => "office.author_office",
                            Author::Subscriber => "office.author_you",
                        })
                        .to_owned(),
                    at: format_datetime(m.created_at),
                    body: m.body,
                })
                .collect(),
            message,
            errors,
        },
    )
}

/// One ticket's thread and the reply form (another subscriber's ticket: 404).
pub async fn ticket(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    let (_, k) = match own_ticket(&state, &ctx, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let notice = if !q.zamkniete.is_empty() {
        Some(ctx.t.t("office.ticket_closed").to_owned())
    } else {
        q.sent().then(|| ctx.t.t("office.sent").to_owned())
    };
    ticket_page(
        &state,
        &ctx,
        k,
        notice,
        String::new(),
        FormErrors::default(),
        StatusCode::OK,
    )
    .await
}

#[derive(serde::Deserialize)]
pub struct ReplyForm {
    #[serde(default)]
    message: String,
}

/// The subscriber's reply: (re)opens the ticket and tells the office.
pub async fn reply(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(f): Form<ReplyForm>,
) -> Response {
    let (a, k) = match own_ticket(&state, &ctx, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let t = ctx.t;
    let mut errors = FormErrors::default();
    if let Some(m) = check_text(t, &f.message, MAX_MESSAGE, Some("required.message")) {
        errors.add("message", m);
        return ticket_page(
            &state,
            &ctx,
            k,
            None,
            f.message,
            errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let key = format!("office:account:{}", a.account.id);
    match over_limit(&state, &ctx, &key, MESSAGE_ACCOUNT).await {
        Ok(Some(m)) => {
            errors.form = Some(m);
            return ticket_page(
                &state,
                &ctx,
                k,
                None,
                f.message,
                errors,
                StatusCode::TOO_MANY_REQUESTS,
            )
            .await;
        }
        Ok(None) => {}
        Err(r) => return r,
    }
    let message = f.message.trim().to_owned();
    let done = in_tx!(state.db, |tx| {
        panel::add_ticket_message(&mut tx, k.id, Author::Subscriber, &message).await?;
        ctx.audit(
            &mut tx,
            "ticket_reply",
            &format!("ticket {}; lang {}", k.id, t.code()),
        )
        .await?;
    });
    if let Err(e) = done {
        return internal(&state, &ctx, e).await;
    }
    let from = who(&state, &a).await;
    mail_office(
        &state,
        "office.mail_reply_subject",
        "office.mail_ticket_body",
        &[
            ("id", &k.id.to_string()),
            ("from", &from),
            ("subject", &k.subject),
            ("message", &message),
        ],
    );
    Redirect::to(&format!("/kontakt/{}?wyslano=1", k.id)).into_response()
}

/// The subscriber closes their own ticket (the matter is settled); a reply opens it again.
pub async fn close_ticket(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Response {
    let (_, k) = match own_ticket(&state, &ctx, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if k.status != TicketStatus::Closed {
        let done = in_tx!(state.db, |tx| {
            panel::set_ticket_status(&mut tx, k.id, TicketStatus::Closed).await?;
            ctx.audit(&mut tx, "ticket_closed", &format!("ticket {}", k.id))
                .await?;
        });
        if let Err(e) = done {
            return internal(&state, &ctx, e).await;
        }
    }
    Redirect::to(&format!("/kontakt/{}?zamkniete=1", k.id)).into_response()
}

// ---------------------------------------------------------------------------------------------
// Zamawianie usług
// ---------------------------------------------------------------------------------------------

pub struct ServiceRow {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub price: String,
}

pub struct OrderRow {
    pub id: i64,
    pub service: String,
    pub note: String,
    pub status: String,
    pub created: String,
}

#[derive(serde::Deserialize, Default)]
pub struct OrderForm {
    #[serde(default)]
    service: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    phone: String,
    /// Sent by the confirmation step's button: the subscriber has seen the price and terms.
    #[serde(default)]
    confirmed: String,
}

#[derive(Template)]
#[template(path = "order_confirm.html")]
struct OrderConfirmPage {
    c: Chrome,
    service: ServiceRow,
    form: OrderForm,
}

#[derive(Template)]
#[template(path = "orders.html")]
struct OrdersPage {
    c: Chrome,
    services: Vec<ServiceRow>,
    form: OrderForm,
    errors: FormErrors,
    orders: Vec<OrderRow>,
    pager: Pager,
}

/// A service as the catalogue shows it: the price is monthly.
fn service_row(t: Tr, s: content::Service) -> ServiceRow {
    ServiceRow {
        id: s.id,
        name: s.name,
        description: s.description,
        price: t.f("office.monthly", &[("price", &s.price.to_string())]),
    }
}

fn order_status(t: Tr, s: OrderStatus) -> String {
    t.t(match s {
        OrderStatus::New => "office.order_new",
        OrderStatus::InProgress => "office.order_in_progress",
        OrderStatus::Done => "office.order_done",
        OrderStatus::Rejected => "office.order_rejected",
    })
    .to_owned()
}

#[allow(clippy::too_many_arguments)] // one page, many independent parts
async fn orders_page(
    state: &AppState,
    ctx: &Ctx,
    page: Page,
    notice: Option<String>,
    form: OrderForm,
    errors: FormErrors,
    status: StatusCode,
) -> Response {
    let t = ctx.t;
    let services = match content::active_services(&state.db).await {
        Ok(s) => s,
        Err(e) => return internal(state, ctx, e).await,
    };
    let (orders, pager) = match &ctx.auth {
        Some(a) => {
            match clamped(page, |p| {
                content::service_orders_page(&state.db, a.account.subscriber_id, p)
            })
            .await
            {
                Ok(p) => {
                    let mut rows = Vec::with_capacity(p.items.len());
                    for o in &p.items {
                        let name = match services.iter().find(|s| s.id == o.service_id) {
                            Some(s) => s.name.clone(),
                            None => match content::service(&state.db, o.service_id).await {
                                Ok(Some(s)) => s.name,
                                Ok(None) => String::new(),
                                Err(e) => return internal(state, ctx, e).await,
                            },
                        };
                        rows.push(OrderRow {
                            id: o.id,
                            service: name,
                            note: o.note.clone(),
                            status: order_status(t, o.status),
                            created: format_datetime(o.created_at),
                        });
                    }
                    (rows, Pager::of(&p, "/zamawianie"))
                }
                Err(e) => return internal(state, ctx, e).await,
            }
        }
        None => (Vec::new(), Pager::single()),
    };
    let mut c = Chrome::new(state, ctx, "/zamawianie").await;
    c.notice = notice;
    render(
        status,
        &OrdersPage {
            c,
            services: services.into_iter().map(|s| service_row(t, s)).collect(),
            form,
            errors,
            orders,
            pager,
        },
    )
}

/// Zamawianie usług: the catalogue, the order form (or the enquiry form for visitors), and
/// the subscriber's orders with their status.
pub async fn orders(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<ListQuery>,
) -> Response {
    let notice = q.sent().then(|| {
        ctx.t
            .t(if ctx.auth.is_some() {
                "office.order_sent"
            } else {
                "office.enquiry_sent"
            })
            .to_owned()
    });
    orders_page(
        &state,
        &ctx,
        q.page(ORDERS_PER_PAGE),
        notice,
        OrderForm::default(),
        FormErrors::default(),
        StatusCode::OK,
    )
    .await
}

/// An order from a subscriber, or an enquiry from a visitor (limited per IP).
pub async fn order(State(state): State<AppState>, ctx: Ctx, Form(f): Form<OrderForm>) -> Response {
    let t = ctx.t;
    let mut errors = FormErrors::default();
    let service = match f.service.trim().parse::<i64>() {
        Ok(id) => match content::service(&state.db, id).await {
            Ok(Some(s)) if s.active => Some(s),
            Ok(_) => None,
            Err(e) => return internal(&state, &ctx, e).await,
        },
        Err(_) => None,
    };
    if service.is_none() {
        errors.add("service", t.t("office.choose_service"));
    }
    if let Some(m) = check_text(t, &f.note, MAX_NOTE, None) {
        errors.add("note", m);
    }
    let visitor = ctx.auth.is_none();
    let (email, phone) = (f.email.trim().to_owned(), f.phone.trim().to_owned());
    if visitor {
        if let Some(m) = check_text(t, &f.name, MAX_CONTACT, Some("required.name")) {
            errors.add("name", m);
        }
        if email.is_empty() && phone.is_empty() {
            errors.add("email", t.t("office.email_or_phone"));
        }
        if !email.is_empty() && !valid_email(&email) {
            errors.add("email", t.t("field.email_format"));
        }
        if !phone.is_empty() && !valid_phone(&phone) {
            errors.add("phone", t.t("office.phone_format"));
        }
    }
    let key = match &ctx.auth {
        Some(a) => format!("office:account:{}", a.account.id),
        None => format!("office:enquiry:{}", super::request::limit_key(ctx.info.ip)),
    };
    let rule = if visitor { ENQUIRY_IP } else { MESSAGE_ACCOUNT };
    if errors.is_empty() {
        match over_limit(&state, &ctx, &key, rule).await {
            Ok(Some(m)) => errors.form = Some(m),
            Ok(None) => {}
            Err(r) => return r,
        }
    }
    let Some(service) = service.filter(|_| errors.is_empty()) else {
        let status = if errors.form.is_some() {
            StatusCode::TOO_MANY_REQUESTS
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        return orders_page(
            &state,
            &ctx,
            Page::first(ORDERS_PER_PAGE),
            None,
            f,
            errors,
            status,
        )
        .await;
    };
    // A paid service is ordered only after its price and terms were shown (the visitor's
    // enquiry orders nothing).
    if !visitor && service.price.grosze() > 0 && f.confirmed.is_empty() {
        let c = Chrome::new(&state, &ctx, "/zamawianie").await;
        let page = OrderConfirmPage {
            c,
            service: service_row(t, service),
            form: f,
        };
        return render(StatusCode::OK, &page);
    }
    let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
    let new = NewServiceOrder {
        subscriber_id: ctx.auth.as_ref().map(|a| a.account.subscriber_id),
        service_id: service.id,
        contact_name: if visitor { opt(&f.name) } else { None },
        contact_email: if visitor { opt(&email) } else { None },
        contact_phone: if visitor { opt(&phone) } else { None },
        note: f.note.trim().to_owned(),
    };
    let action = if visitor {
        "service_enquiry"
    } else {
        "service_ordered"
    };
    let placed = in_tx!(state.db, |tx| {
        match content::create_service_order(&mut tx, &new).await {
            Ok(id) => {
                ctx.audit(
                    &mut tx,
                    action,
                    &format!("order {id}; service {}", service.ext_id),
                )
                .await?;
                Ok(id)
            }
            Err(e @ (StoreError::Invalid { .. } | StoreError::NotFound { .. })) => Err(e),
            Err(e) => return Err(e.into()),
        }
    });
    let id = match placed {
        Ok(Ok(id)) => id,
        Ok(Err(_)) => {
            errors.add("service", t.t("office.choose_service"));
            return orders_page(
                &state,
                &ctx,
                Page::first(ORDERS_PER_PAGE),
                None,
                f,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
        Err(e) => return internal(&state, &ctx, e).await,
    };
    let from = match &ctx.auth {
        Some(a) => who(&state, a).await,
        None => [f.name.trim(), &email, &phone]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", "),
    };
    mail_office(
        &state,
        "office.mail_order_subject",
        "office.mail_order_body",
        &[
            ("id", &id.to_string()),
            ("from", &from),
            ("service", &service.name),
            ("note", &new.note),
        ],
    );
    if let Some(a) = &ctx.auth {
        let price = t.f("office.monthly", &[("price", &service.price.to_string())]);
        mail_subscriber(
            &state,
            t,
            a,
            "office.mail_order_confirm_subject",
            "office.mail_order_confirm_body",
            &[
                ("id", &id.to_string()),
                ("service", &service.name),
                ("price", &price),
                ("link", &state.link("/zamawianie")),
            ],
        );
    }
    Redirect::to("/zamawianie?wyslano=1").into_response()
}

// ---------------------------------------------------------------------------------------------
// Aktualności, FAQ
// ---------------------------------------------------------------------------------------------

pub struct NewsView {
    pub id: i64,
    pub title: String,
    /// `15.01.2026`, in Europe/Warsaw.
    pub date: String,
    /// `2026-01-15`, for `<time datetime>`.
    pub iso_date: String,
    /// Sanitised by [`markdown_html`].
    pub html: String,
}

#[derive(Template)]
#[template(path = "news.html")]
struct NewsPage {
    c: Chrome,
    items: Vec<NewsView>,
    single: bool,
    pager: Pager,
}

fn news_view(n: crate::store::content::NewsItem) -> NewsView {
    let day = warsaw_date(n.published_at);
    NewsView {
        id: n.id,
        title: n.title,
        date: format_date(day),
        iso_date: day.to_string(),
        html: markdown_html(&n.body_md),
    }
}

/// Aktualności: published news, newest first.
pub async fn news(State(state): State<AppState>, ctx: Ctx, Query(q): Query<ListQuery>) -> Response {
    let p = match clamped(q.page(NEWS_PER_PAGE), |p| {
        content::published_news(&state.db, p)
    })
    .await
    {
        Ok(p) => p,
        Err(e) => return internal(&state, &ctx, e).await,
    };
    let pager = Pager::of(&p, "/aktualnosci");
    let c = Chrome::new(&state, &ctx, "/aktualnosci").await;
    render(
        StatusCode::OK,
        &NewsPage {
            c,
            items: p.items.into_iter().map(news_view).collect(),
            single: false,
            pager,
        },
    )
}

/// One news item (not yet published or unknown: 404).
pub async fn news_item(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return error_page(&state, &ctx.info, StatusCode::NOT_FOUND).await;
    };
    let item = match content::news_item(&state.db, id).await {
        Ok(Some(n)) => n,
        Ok(None) => return error_page(&state, &ctx.info, StatusCode::NOT_FOUND).await,
        Err(e) => return internal(&state, &ctx, e).await,
    };
    let c = Chrome::new(&state, &ctx, &format!("/aktualnosci/{id}")).await;
    render(
        StatusCode::OK,
        &NewsPage {
            c,
            items: vec![news_view(item)],
            single: true,
            pager: Pager::single(),
        },
    )
}

pub struct FaqView {
    pub id: i64,
    pub question: String,
    /// Sanitised by [`markdown_html`].
    pub html: String,
}

#[derive(Template)]
#[template(path = "faq.html")]
struct FaqPage {
    c: Chrome,
    items: Vec<FaqView>,
    pager: Pager,
}

/// FAQ: the questions in their display order.
pub async fn faq(State(state): State<AppState>, ctx: Ctx, Query(q): Query<ListQuery>) -> Response {
    let p = match clamped(q.page(FAQ_PER_PAGE), |p| content::faq_page(&state.db, p)).await {
        Ok(p) => p,
        Err(e) => return internal(&state, &ctx, e).await,
    };
    let pager = Pager::of(&p, "/faq");
    let c = Chrome::new(&state, &ctx, "/faq").await;
    render(
        StatusCode::OK,
        &FaqPage {
            c,
            items: p
                .items
                .into_iter()
                .map(|f| FaqView {
                    id: f.id,
                    question: f.question,
                    html: markdown_html(&f.answer_md),
                })
                .collect(),
            pager,
        },
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::{header, Method, Request};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::config::IspConfig;
    use crate::store::content::{
        upsert_faq, upsert_news, upsert_service, FaqRecord, NewsRecord, ServiceRecord,
    };
    use crate::store::money::Money;
    use crate::web::tests::*;

    fn isp() -> IspConfig {
        IspConfig {
            name: "Testnet".into(),
            nip: String::new(),
            office_phone: "12 633-55-50".into(),
            technical_phone: "12 294-45-49, kom. 696-445-536".into(),
            hours: "pon–pt 9.00–17.00".into(),
            address: "ul. Wrocławska 48-50, 30-011 Kraków".into(),
            email: "bok@testnet.example".into(),
            logo: None,
        }
    }

    /// The harness's application with the `[isp]` block of [`isp`] (the harness has none).
    fn app_with_isp(h: &Harness) -> Router {
        let mut config = (*h.state.config).clone();
        config.isp = isp();
        crate::web::router(AppState {
            config: Arc::new(config),
            ..h.state.clone()
        })
    }

    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    /// What [`Browser`] does, through another application: its cookies and CSRF token.
    async fn via(app: &Router, b: &mut Browser, path: &str, form: Option<&[(&str, &str)]>) -> Resp {
        let mut req = Request::builder()
            .method(if form.is_some() {
                Method::POST
            } else {
                Method::GET
            })
            .uri(path)
            .header(header::HOST, "ebok.example.pl");
        if !b.cookies.is_empty() {
            let c: Vec<String> = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header(header::COOKIE, c.join("; "));
        }
        let body = match form {
            Some(fields) => {
                req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                let mut parts: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
                    .collect();
                if let Some(t) = &b.csrf {
                    parts.push(format!("csrf={}", enc(t)));
                }
                Body::from(parts.join("&"))
            }
            None => Body::empty(),
        };
        let mut req = req.body(body).unwrap();
        req.extensions_mut().insert(ConnectInfo(b.peer));
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        for sc in headers.get_all(header::SET_COOKIE) {
            let sc = sc.to_str().unwrap();
            let kv = sc.split(';').next().unwrap();
            let (k, v) = kv.split_once('=').unwrap();
            b.cookies.insert(k.to_owned(), v.to_owned());
        }
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(bytes.to_vec()).unwrap();
        if let Some(t) = body.split("name=\"csrf\" value=\"").nth(1) {
            b.csrf = Some(t.split('"').next().unwrap().to_owned());
        }
        Resp {
            status,
            headers,
            body,
        }
    }

    /// A logged-in browser of `login` on `ip`: registered the first time, else logged in.
    /// The first mail to `to` containing `needle` (waits up to 5 s).
    async fn mail_with(h: &Harness, to: &str, needle: &str) -> String {
        for _ in 0..100 {
            let mails = h.mails_to(to, 0).await;
            if let Some(m) = mails.into_iter().find(|m| m.contains(needle)) {
                return m;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no mail to {to} with {needle}");
    }

    async fn jan(h: &Harness) -> Browser {
        logged_in(h, "jan.kowalski", JAN_IP).await
    }

    async fn anna(h: &Harness) -> Browser {
        logged_in(h, "anna.nowak", ANNA_IP).await
    }

    async fn subscriber_of(h: &Harness, login: &str) -> i64 {
        panel::panel_account_by_login(&h.state.db, login)
            .await
            .unwrap()
            .unwrap()
            .subscriber_id
    }

    async fn services(h: &Harness) -> (i64, i64) {
        let mut tx = h.state.db.begin().await.unwrap();
        for (ext, name, active) in [("tv", "Telewizja", true), ("old", "Modem 56k", false)] {
            upsert_service(
                &mut tx,
                &ServiceRecord {
                    ext_id: ext.into(),
                    name: name.into(),
                    description: format!("Opis: {name}"),
                    price: Money::from_grosze(123_456),
                    active,
                },
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        let active = content::active_services(&h.state.db).await.unwrap();
        let tv = active.iter().find(|s| s.ext_id == "tv").unwrap().id;
        let mut old = 0;
        for id in 1..10 {
            if let Some(s) = content::service(&h.state.db, id).await.unwrap() {
                if s.ext_id == "old" {
                    old = s.id;
                }
            }
        }
        (tv, old)
    }

    // -----------------------------------------------------------------------------------------
    // Markdown
    // -----------------------------------------------------------------------------------------

    #[test]
    fn markdown_is_rendered_and_made_inert() {
        let html = markdown_html(
            "# Awaria\n\n**Uwaga**: [status](https://status.example.pl \"Status\") i \
             [mail](mailto:bok@example.pl), [cennik](/zamawianie).\n\n\
             <script>alert(1)</script>\n\n\
             Tekst <img src=x onerror=alert(1)> dalej <b onclick=\"x()\">b</b>.\n\n\
             [a](javascript:alert(1)) [b](JaVaScRiPt:alert(2)) [c](jav&#x61;script:alert(3)) \
             [d](data:text/html;base64,PHNjcmlwdD4=) [e](vbscript:msgbox) <javascript:alert(4)>\n\n\
             ![obrazek](https://tracker.example/x.png)\n\n[ref][r]\n\n[r]: javascript:alert(5)\n",
        );
        assert!(html.contains("<h3>Awaria</h3>"), "{html}");
        assert!(html.contains("<strong>Uwaga</strong>"));
        assert!(html.contains("<a href=\"https://status.example.pl\" title=\"Status\">status</a>"));
        assert!(html.contains("<a href=\"mailto:bok@example.pl\">mail</a>"));
        assert!(html.contains("<a href=\"/zamawianie\">cennik</a>"));
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{html}"
        );
        let lower = html.to_lowercase();
        for bad in [
            "<script",
            "<img",
            "<b ",
            "onerror=\"",
            "href=\"javascript",
            "href=\"data",
            "href=\"vbscript",
            "src=\"",
        ] {
            assert!(!lower.contains(bad), "{bad} in {html}");
        }
        for text in ["a", "b", "c", "d", "e", "ref", "obrazek"] {
            assert!(html.contains(text));
        }
        assert_eq!(html.matches("<a ").count(), 3, "{html}");
    }

    #[test]
    fn link_targets() {
        for ok in [
            "https://a.pl/x?y#z",
            "HTTP://a.pl",
            "mailto:x@y.pl",
            "/faq",
            "faq#a",
            "?strona=2",
            "#top",
            "",
        ] {
            assert!(safe_url(ok), "{ok}");
        }
        for bad in [
            "javascript:x",
            " javascript:x",
            "java\tscript:x",
            "data:x",
            "file:///etc/passwd",
            "ftp://a",
        ] {
            assert!(!safe_url(bad), "{bad}");
        }
    }

    // -----------------------------------------------------------------------------------------
    // Kontakt
    // -----------------------------------------------------------------------------------------

    #[tokio::test]
    async fn contact_block_comes_from_the_configuration() {
        let h = Harness::sqlite().await;
        let app = app_with_isp(&h);
        let mut visitor = h.browser(STRANGER_IP);
        let r = via(&app, &mut visitor, "/kontakt", None).await;
        assert_eq!(r.status, StatusCode::OK);
        for text in [
            "12 633-55-50",
            "href=\"tel:126335550\"",
            "12 294-45-49, kom. 696-445-536",
            "<dd>12 294-45-49, kom. 696-445-536</dd>",
            "pon–pt 9.00–17.00",
            "ul. Wrocławska 48-50, 30-011 Kraków",
            "href=\"mailto:bok@testnet.example\"",
            "Serwis techniczny",
            "zaloguj się do panelu",
        ] {
            assert!(r.body.contains(text), "{text} missing: {}", r.body);
        }
        assert!(!r.body.contains("name=\"subject\""), "no form for visitors");
        // In English.
        visitor.cookies.insert("ebok_lang".into(), "en".into());
        let r = via(&app, &mut visitor, "/kontakt", None).await;
        assert!(r.body.contains("Technical service, phone"), "{}", r.body);
        // Without configuration: a calm note, not an empty list.
        let r = h.browser(STRANGER_IP).get("/kontakt").await;
        assert!(r
            .body
            .contains("Dane kontaktowe nie zostały jeszcze podane"));
        // Writing needs an account.
        let mut visitor = h.browser(STRANGER_IP);
        let r = visitor
            .submit(
                "/logowanie",
                "/kontakt",
                &[("subject", "x"), ("message", "y")],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(r.location(), "/logowanie");
        h.finish().await;
    }

    async fn ticket_flow(h: &Harness) {
        let app = app_with_isp(h);
        let mut jan = jan(h).await;
        let page = via(&app, &mut jan, "/kontakt", None).await;
        assert!(page.body.contains("name=\"subject\""), "{}", page.body);
        assert!(page.body.contains("Nie masz jeszcze żadnych zgłoszeń"));
        // Validation re-renders with messages and keeps what was typed.
        let r = via(
            &app,
            &mut jan,
            "/kontakt",
            Some(&[("subject", ""), ("message", "Brak internetu")]),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.body.contains("aria-invalid=\"true\""));
        assert!(r.body.contains("Brak internetu"));
        let long = "x".repeat(MAX_MESSAGE + 1);
        let r = via(
            &app,
            &mut jan,
            "/kontakt",
            Some(&[("subject", "Temat"), ("message", &long)]),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.body.contains("Najwyżej 5000 znaków"));
        // Sent: a ticket, the thread, a mail to the office, an audit entry.
        let r = via(
            &app,
            &mut jan,
            "/kontakt",
            Some(&[
                ("subject", "Brak internetu <b>"),
                ("message", "Od rana nie działa.\nRouter miga."),
            ]),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let jan_id = subscriber_of(h, "jan.kowalski").await;
        let tickets = panel::tickets_of(&h.state.db, jan_id).await.unwrap();
        assert_eq!(tickets.len(), 1);
        let id = tickets[0].id;
        assert_eq!(r.location(), format!("/kontakt/{id}?wyslano=1"));
        let thread = jan.get(r.location()).await;
        assert_eq!(thread.status, StatusCode::OK);
        assert!(thread.body.contains("Wiadomość wysłana"));
        assert!(
            thread.body.contains("Brak internetu &#60;b&#62;"),
            "{}",
            thread.body
        );
        assert!(thread.body.contains("Od rana nie działa.\nRouter miga."));
        assert!(thread.body.contains("oczekuje na odpowiedź"));
        let mail = mail_with(h, "bok@testnet.example", "Router miga.").await;
        assert!(mail.contains("Nowe zgłoszenie"), "{mail}");
        assert!(mail.contains(&format!(
            "zgłoszenie nr {id} od: Jan Kowalski (jan.kowalski)"
        )));
        let log = crate::store::audit::recent_by_actor(&h.state.db, "panel:jan.kowalski", 10)
            .await
            .unwrap();
        assert!(log
            .iter()
            .any(|e| e.action == "ticket_created" && e.detail == format!("ticket {id}; lang pl")));
        // The office answers; the subscriber sees it and replies.
        let mut tx = h.state.db.begin().await.unwrap();
        panel::add_ticket_message(&mut tx, id, Author::Office, "Proszę zrestartować router.")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let thread = jan.get(&format!("/kontakt/{id}")).await;
        assert!(thread.body.contains("Proszę zrestartować router."));
        assert!(thread.body.contains("office-msg-office"));
        assert!(thread.body.contains("odpowiedziano"));
        let list = jan.get("/kontakt").await;
        assert!(list.body.contains(&format!("href=\"/kontakt/{id}\"")));
        assert!(list.body.contains("odpowiedziano"));
        let r = via(
            &app,
            &mut jan,
            &format!("/kontakt/{id}"),
            Some(&[("message", "Pomogło, dziękuję.")]),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let msgs = panel::ticket_messages(&h.state.db, id).await.unwrap();
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[2].author, Author::Subscriber);
        mail_with(h, "bok@testnet.example", "Pomogło, dziękuję.").await;
        // Another subscriber's ticket does not exist for Anna; visitors are sent to log in.
        let mut anna = anna(h).await;
        assert_eq!(
            anna.get(&format!("/kontakt/{id}")).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(anna.get("/kontakt/abc").await.status, StatusCode::NOT_FOUND);
        anna.get("/kontakt").await;
        let r = anna
            .post(&format!("/kontakt/{id}"), &[("message", "cudze")])
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(
            panel::ticket_messages(&h.state.db, id).await.unwrap().len(),
            3
        );
        assert!(!anna.get("/kontakt").await.body.contains("Brak internetu"));
        let r = h.browser(STRANGER_IP).get(&format!("/kontakt/{id}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
    }

    #[tokio::test]
    async fn tickets_thread_and_ownership() {
        let h = Harness::sqlite().await;
        ticket_flow(&h).await;
        h.finish().await;
    }

    #[tokio::test]
    async fn tickets_are_paginated() {
        let h = Harness::sqlite().await;
        let mut jan = jan_registered(&h).await;
        let jan_id = subscriber_of(&h, "jan.kowalski").await;
        let mut tx = h.state.db.begin().await.unwrap();
        for i in 1..=12 {
            panel::create_ticket(
                &mut tx,
                Some(jan_id),
                None,
                &format!("Sprawa-{i:02}"),
                "treść",
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        let first = jan.get("/kontakt").await;
        assert_eq!(first.body.matches("<th scope=\"row\">").count(), 10);
        assert!(first.body.contains("Strona 1 z 2"));
        assert!(first.body.contains("href=\"/kontakt?strona=2\""));
        let second = jan.get("/kontakt?strona=2").await;
        assert_eq!(second.body.matches("<th scope=\"row\">").count(), 2);
        assert!(second.body.contains("href=\"/kontakt?strona=1\""));
        assert!(!second.body.contains("strona=3"));
        // Nonsense page numbers are the first page; past the end, the last.
        let odd = jan.get("/kontakt?strona=zero").await;
        assert!(odd.body.contains("Strona 1 z 2"));
        let past = jan.get("/kontakt?strona=99").await;
        assert!(past.body.contains("Strona 2 z 2"), "{}", past.body);
        assert_eq!(past.body.matches("<th scope=\"row\">").count(), 2);
        assert!(!past.body.contains("strona=98") && !past.body.contains("strona=100"));
        h.finish().await;
    }

    /// A new ticket is confirmed to its author by mail (in the page's language); the
    /// author can close it (audited), nobody else can.
    #[tokio::test]
    async fn ticket_confirmed_by_mail_and_closed_by_its_author() {
        let h = Harness::sqlite().await;
        let mut jan = jan(&h).await;
        jan.cookies.insert("ebok_lang".into(), "en".into());
        let r = jan
            .submit(
                "/kontakt",
                "/kontakt",
                &[("subject", "Slow line"), ("message", "Since Monday.")],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let jan_id = subscriber_of(&h, "jan.kowalski").await;
        let id = panel::tickets_of(&h.state.db, jan_id).await.unwrap()[0].id;
        let mail = mail_with(&h, "jan@example.pl", "We have received your request").await;
        assert!(
            mail.contains(&format!("no. {id}")) && mail.contains("Slow line"),
            "{mail}"
        );
        assert!(mail.contains(&format!("https://ebok.example.pl/kontakt/{id}")));

        let path = format!("/kontakt/{id}");
        let close = format!("/kontakt/{id}/zamknij");
        let mut anna = anna(&h).await;
        anna.get("/kontakt").await;
        assert_eq!(anna.post(&close, &[]).await.status, StatusCode::NOT_FOUND);
        let still = panel::ticket(&h.state.db, id).await.unwrap().unwrap();
        assert_eq!(still.status, TicketStatus::Open);

        jan.cookies.remove("ebok_lang");
        let page = jan.get(&path).await;
        assert!(page.body.contains(&format!("action=\"{close}\"")));
        let r = jan.post(&close, &[]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let page = jan.get(r.location()).await;
        assert!(page.body.contains("Zgłoszenie zamknięte"), "{}", page.body);
        assert!(page.body.contains("zamknięte"));
        assert!(!page.body.contains(&format!("action=\"{close}\"")));
        let closed = panel::ticket(&h.state.db, id).await.unwrap().unwrap();
        assert_eq!(closed.status, TicketStatus::Closed);
        let log = crate::store::audit::recent_by_actor(&h.state.db, "panel:jan.kowalski", 10)
            .await
            .unwrap();
        assert!(log.iter().any(|e| e.action == "ticket_closed"));
        // Without a CSRF token nothing happens.
        let r = jan.post_raw(&close, &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        h.finish().await;
    }

    // -----------------------------------------------------------------------------------------
    // Zamawianie usług
    // -----------------------------------------------------------------------------------------

    async fn order_flow(h: &Harness) {
        let (tv, old) = services(h).await;
        let app = app_with_isp(h);
        let mut jan = jan(h).await;
        let page = via(&app, &mut jan, "/zamawianie", None).await;
        assert!(page.body.contains("Telewizja"));
        assert!(
            page.body.contains("1\u{a0}234,56\u{a0}zł") || page.body.contains("1 234,56 zł"),
            "{}",
            page.body
        );
        assert!(
            !page.body.contains("Modem 56k"),
            "inactive services are not offered"
        );
        assert!(
            !page.body.contains("name=\"phone\""),
            "a subscriber is known: no contact fields"
        );
        let r = via(
            &app,
            &mut jan,
            "/zamawianie",
            Some(&[("service", &old.to_string()), ("note", "")]),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.body.contains("Wybierz usługę z listy"));
        // A paid service: first its monthly price and the terms, nothing ordered yet.
        let r = via(
            &app,
            &mut jan,
            "/zamawianie",
            Some(&[("service", &tv.to_string()), ("note", "Po 17:00")]),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert!(r.body.contains("Potwierdź zamówienie"), "{}", r.body);
        assert!(r.body.contains("zł/mies."), "{}", r.body);
        assert!(r.body.contains("Warunki"));
        assert!(r.body.contains("name=\"confirmed\" value=\"1\""));
        assert!(r.body.contains("value=\"Po 17:00\""), "the note goes along");
        let jan_id = subscriber_of(h, "jan.kowalski").await;
        let none = content::service_orders_of(&h.state.db, jan_id).await;
        assert!(none.unwrap().is_empty(), "not ordered before confirming");
        let r = via(
            &app,
            &mut jan,
            "/zamawianie",
            Some(&[
                ("service", &tv.to_string()),
                ("note", "Po 17:00"),
                ("confirmed", "1"),
            ]),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let orders = content::service_orders_of(&h.state.db, jan_id)
            .await
            .unwrap();
        assert_eq!(orders.len(), 1);
        // Jan is told, in his language, with the price.
        let mail = mail_with(h, "jan@example.pl", "Przyjęliśmy Twoje zamówienie").await;
        assert!(
            mail.contains("Telewizja") && mail.contains("zł/mies."),
            "{mail}"
        );
        let page = jan.get("/zamawianie?wyslano=1").await;
        assert!(page.body.contains("Zamówienie przyjęte"));
        assert!(page.body.contains("Po 17:00"));
        assert!(page.body.contains(">nowe<"));
        let mut tx = h.state.db.begin().await.unwrap();
        content::set_service_order_status(&mut tx, orders[0].id, OrderStatus::InProgress)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert!(jan.get("/zamawianie").await.body.contains(">w realizacji<"));
        let mail = mail_with(h, "bok@testnet.example", "Usługa: Telewizja").await;
        assert!(mail.contains("Jan Kowalski"), "{mail}");
        // Anna does not see Jan's orders.
        let mut anna = anna(h).await;
        assert!(!anna.get("/zamawianie").await.body.contains("Po 17:00"));

        // A visitor's enquiry: contact required, then stored without a subscriber.
        let mut visitor = h.browser(STRANGER_IP);
        let page = visitor.get("/zamawianie").await;
        assert!(page.body.contains("name=\"phone\""));
        let r = visitor
            .post(
                "/zamawianie",
                &[
                    ("service", &tv.to_string()),
                    ("name", ""),
                    ("email", ""),
                    ("phone", ""),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        // Summary and field, each once; the help does not say the same again.
        let either = "Podaj e-mail lub numer telefonu";
        assert_eq!(r.body.matches(either).count(), 2, "{}", r.body);
        assert!(r.body.contains(&format!("<a href=\"#email\">{either}")));
        assert!(r.body.contains("<a href=\"#name\">Wpisz imię i nazwisko"));
        assert!(r.body.contains("role=\"alert\""));
        let r = visitor
            .post(
                "/zamawianie",
                &[
                    ("service", &tv.to_string()),
                    ("name", "Ola"),
                    ("email", "zły"),
                    ("phone", "12"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.body.contains("value=\"Ola\""));
        let r = visitor
            .post(
                "/zamawianie",
                &[
                    ("service", &tv.to_string()),
                    ("name", "Ola Nowa"),
                    ("email", ""),
                    ("phone", "+48 600 100 200"),
                    ("note", "Blok 5"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let page = visitor.get(r.location()).await;
        assert!(page.body.contains("zapytanie zostało wysłane"));
        let new = content::service_orders_by_status(&h.state.db, OrderStatus::New)
            .await
            .unwrap();
        let enquiry = new.iter().find(|o| o.subscriber_id.is_none()).unwrap();
        assert_eq!(enquiry.contact_name.as_deref(), Some("Ola Nowa"));
        assert_eq!(enquiry.contact_phone.as_deref(), Some("+48 600 100 200"));
        assert_eq!(enquiry.contact_email, None);
        assert_eq!(enquiry.note, "Blok 5");
        let log = crate::store::audit::recent_by_actor(&h.state.db, "visitor", 10)
            .await
            .unwrap();
        assert!(log.iter().any(|e| e.action == "service_enquiry"));
    }

    #[tokio::test]
    async fn orders_by_subscribers_and_enquiries_by_visitors() {
        let h = Harness::sqlite().await;
        order_flow(&h).await;
        h.finish().await;
    }

    #[tokio::test]
    async fn visitor_enquiries_are_rate_limited_per_ip() {
        let h = Harness::sqlite().await;
        let (tv, _) = services(&h).await;
        let mut visitor = h.browser(STRANGER_IP);
        visitor.get("/zamawianie").await;
        let tv = tv.to_string();
        let fields = [
            ("service", tv.as_str()),
            ("name", "Spamer"),
            ("email", "s@example.pl"),
        ];
        for _ in 0..ENQUIRY_IP.limit {
            assert_eq!(
                visitor.post("/zamawianie", &fields).await.status,
                StatusCode::SEE_OTHER
            );
            visitor.get("/zamawianie").await;
        }
        let r = visitor.post("/zamawianie", &fields).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(
            r.body.contains("Spróbuj ponownie za") || r.body.contains("Zbyt wiele"),
            "{}",
            r.body
        );
        let all = content::service_orders_by_status(&h.state.db, OrderStatus::New)
            .await
            .unwrap();
        assert_eq!(all.len(), ENQUIRY_IP.limit as usize);
        // Another address is not affected.
        let mut other = h.browser("198.51.100.10");
        other.get("/zamawianie").await;
        assert_eq!(
            other.post("/zamawianie", &fields).await.status,
            StatusCode::SEE_OTHER
        );
        h.finish().await;
    }

    // -----------------------------------------------------------------------------------------
    // Aktualności, FAQ
    // -----------------------------------------------------------------------------------------

    async fn news_flow(h: &Harness) {
        let now = time::OffsetDateTime::now_utc();
        let mut tx = h.state.db.begin().await.unwrap();
        for i in 1..=12i64 {
            upsert_news(
                &mut tx,
                &NewsRecord {
                    ext_id: format!("n{i}"),
                    title: format!("Komunikat {i:02}"),
                    body_md: format!("Treść **{i}**."),
                    published_at: now - time::Duration::days(20 - i),
                },
            )
            .await
            .unwrap();
        }
        upsert_news(
            &mut tx,
            &NewsRecord {
                ext_id: "evil".into(),
                title: "Przerwa <techniczna>".into(),
                body_md: "<script>alert(1)</script>\n\n[kliknij](javascript:alert(2)) \
                          <iframe src=\"https://evil.example\"></iframe> *ważne*"
                    .into(),
                published_at: now - time::Duration::hours(1),
            },
        )
        .await
        .unwrap();
        upsert_news(
            &mut tx,
            &NewsRecord {
                ext_id: "future".into(),
                title: "Jeszcze nie".into(),
                body_md: "x".into(),
                published_at: now + time::Duration::days(3),
            },
        )
        .await
        .unwrap();
        for (ext, q, a, pos) in [
            ("f2", "Jak zmienić hasło?", "W *Ustawieniach konta*.", 2),
            (
                "f1",
                "Jak się zarejestrować?",
                "Z łącza domowego: <a href=\"javascript:x()\">tu</a>",
                1,
            ),
        ] {
            upsert_faq(
                &mut tx,
                &FaqRecord {
                    ext_id: ext.into(),
                    question: q.into(),
                    answer_md: a.into(),
                    position: pos,
                },
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();

        let mut b = h.browser(STRANGER_IP);
        let first = b.get("/aktualnosci").await;
        assert_eq!(first.status, StatusCode::OK);
        assert_eq!(first.body.matches("<article").count(), 10);
        assert!(
            first.body.contains("Przerwa &#60;techniczna&#62;"),
            "{}",
            first.body
        );
        assert!(first.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(first.body.contains("&lt;iframe"));
        assert!(first.body.contains("<em>ważne</em>"));
        assert!(first.body.contains("kliknij"));
        assert!(!first.body.contains("<script"));
        assert!(!first.body.contains("<iframe"));
        assert!(!first.body.contains("javascript:"));
        assert!(!first.body.contains("Jeszcze nie"), "not yet published");
        assert!(first.body.contains("Komunikat 12"));
        assert!(first.body.contains("<strong>12</strong>"));
        assert!(first.body.contains("href=\"/aktualnosci?strona=2\""));
        let second = b.get("/aktualnosci?strona=2").await;
        assert_eq!(second.body.matches("<article").count(), 3);
        assert!(second.body.contains("Komunikat 01"));
        let future = content::published_news(&h.state.db, Page::first(100))
            .await
            .unwrap();
        assert_eq!(future.total, 13);
        let one = &future.items[0];
        let page = b.get(&format!("/aktualnosci/{}", one.id)).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("<h1>Przerwa &#60;techniczna&#62;</h1>"));
        assert_eq!(
            b.get("/aktualnosci/999999").await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(b.get("/aktualnosci/x").await.status, StatusCode::NOT_FOUND);

        let faq = b.get("/faq").await;
        assert_eq!(faq.status, StatusCode::OK);
        let reg = faq.body.find("Jak się zarejestrować?").unwrap();
        let pwd = faq.body.find("Jak zmienić hasło?").unwrap();
        assert!(reg < pwd, "display order");
        assert!(faq.body.contains("<em>Ustawieniach konta</em>"));
        assert!(
            faq.body
                .contains("&lt;a href=&quot;javascript:x()&quot;&gt;")
                || faq.body.contains("&lt;a href=\"javascript:x()\"&gt;"),
            "{}",
            faq.body
        );
        assert!(!faq.body.contains("<a href=\"javascript"));
        // English frame around the same content.
        b.cookies.insert("ebok_lang".into(), "en".into());
        assert!(b
            .get("/faq")
            .await
            .body
            .contains("frequently asked questions"));
        assert!(b.get("/aktualnosci").await.body.contains("<h1>News</h1>"));
    }

    #[tokio::test]
    async fn news_and_faq_rendered_safely_and_paginated() {
        let h = Harness::sqlite().await;
        news_flow(&h).await;
        h.finish().await;
    }

    #[tokio::test]
    async fn office_pages_on_postgres() {
        let Some(h) = Harness::postgres_redis("web::office::office_pages_on_postgres").await else {
            return;
        };
        ticket_flow(&h).await;
        order_flow(&h).await;
        news_flow(&h).await;
        h.finish().await;
    }
}
