//! Contact with the customer office (BOK): the ISP's contact block, tickets written from the
//! panel with their threads and replies; the service catalogue with orders from subscribers
//! and enquiries from visitors; news and FAQ, whose Markdown is rendered here with raw HTML
//! and unsafe links neutralised.

use std::time::Duration;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use pulldown_cmark::{Alignment, CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use time::OffsetDateTime;

use super::auth::limited_message;
use super::i18n::{Lang, Tr};
use super::pages::{error_page, internal, render, Authed, Chrome, Ctx, FormErrors};
use super::ratelimit::Rule;
use super::register::valid_email;
use super::AppState;
use crate::store::content::{self, NewServiceOrder, OrderStatus};
use crate::store::panel::{self, Author, TicketStatus};
use crate::store::repo::{Page, Paged, StoreError};

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
    #[serde(default)]
    strona: String,
    #[serde(default)]
    wyslano: String,
}

impl ListQuery {
    fn page(&self, size: u32) -> Page {
        Page::new(self.strona.trim().parse().unwrap_or(1), size)
    }

    fn sent(&self) -> bool {
        !self.wyslano.is_empty()
    }
}

/// Links to the previous and next page of a list.
pub struct Pager {
    pub number: u32,
    pub pages: u32,
    pub prev: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    fn of<T>(p: &Paged<T>, base: &str) -> Pager {
        let link = |n: u32| format!("{base}?strona={n}");
        Pager {
            number: p.page.number,
            pages: p.pages(),
            prev: p.has_prev().then(|| link(p.page.number - 1)),
            next: p.has_next().then(|| link(p.page.number + 1)),
        }
    }

    pub fn shown(&self) -> bool {
        self.pages > 1 || self.number > 1
    }
}

/// A moment as the subscriber reads it: Europe/Warsaw, `2026-05-14 09:30`.
fn when(t: OffsetDateTime) -> String {
    let l = crate::tz::to_warsaw(t);
    format!(
        "{}-{:02}-{:02} {:02}:{:02}",
        l.year(),
        u8::from(l.month()),
        l.day(),
        l.hour(),
        l.minute()
    )
}

fn day(t: OffsetDateTime) -> String {
    crate::tz::warsaw_date(t).to_string()
}

/// A required text of at most `max` characters, or the message for the field.
fn check_text(t: Tr, value: &str, max: usize, required: bool) -> Option<String> {
    let n = value.trim().chars().count();
    if required && n == 0 {
        Some(t.t("field.required").to_owned())
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
        if n.chars().filter(char::is_ascii_digit).count() >= 9 {
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
        Some(a) => match panel::tickets_page(&state.db, a.account.subscriber_id, page).await {
            Ok(p) => (
                p.items
                    .iter()
                    .map(|k| TicketRow {
                        id: k.id,
                        subject: k.subject.clone(),
                        status: ticket_status(ctx.t, k.status),
                        created: when(k.created_at),
                        updated: when(k.updated_at),
                    })
                    .collect(),
                Pager::of(&p, "/kontakt"),
            ),
            Err(e) => return internal(state, ctx, e).await,
        },
        None => (
            Vec::new(),
            Pager {
                number: 1,
                pages: 1,
                prev: None,
                next: None,
            },
        ),
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
        return Redirect::to("/logowanie").into_response();
    };
    let t = ctx.t;
    let mut errors = FormErrors::default();
    if let Some(m) = check_text(t, &f.subject, MAX_SUBJECT, true) {
        errors.add("subject", m);
    }
    if let Some(m) = check_text(t, &f.message, MAX_MESSAGE, true) {
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
        return Err(Redirect::to("/logowanie").into_response());
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
            created: when(k.created_at),
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
                    at: when(m.created_at),
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
    let notice = q.sent().then(|| ctx.t.t("office.sent").to_owned());
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
    if let Some(m) = check_text(t, &f.message, MAX_MESSAGE, true) {
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
            match content::service_orders_page(&state.db, a.account.subscriber_id, page).await {
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
                            created: when(o.created_at),
                        });
                    }
                    (rows, Pager::of(&p, "/zamawianie"))
                }
                Err(e) => return internal(state, ctx, e).await,
            }
        }
        None => (
            Vec::new(),
            Pager {
                number: 1,
                pages: 1,
                prev: None,
                next: None,
            },
        ),
    };
    let mut c = Chrome::new(state, ctx, "/zamawianie").await;
    c.notice = notice;
    render(
        status,
        &OrdersPage {
            c,
            services: services
                .into_iter()
                .map(|s| ServiceRow {
                    id: s.id,
                    name: s.name,
                    description: s.description,
                    price: s.price.to_string(),
                })
                .collect(),
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
    if let Some(m) = check_text(t, &f.note, MAX_NOTE, false) {
        errors.add("note", m);
    }
    let visitor = ctx.auth.is_none();
    let (email, phone) = (f.email.trim().to_owned(), f.phone.trim().to_owned());
    if visitor {
        if let Some(m) = check_text(t, &f.name, MAX_CONTACT, true) {
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
    Redirect::to("/zamawianie?wyslano=1").into_response()
}

// ---------------------------------------------------------------------------------------------
// Aktualności, FAQ
// ---------------------------------------------------------------------------------------------

pub struct NewsView {
    pub id: i64,
    pub title: String,
    pub date: String,
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
    NewsView {
        id: n.id,
        title: n.title,
        date: day(n.published_at),
        html: markdown_html(&n.body_md),
    }
}

/// Aktualności: published news, newest first.
pub async fn news(State(state): State<AppState>, ctx: Ctx, Query(q): Query<ListQuery>) -> Response {
    let p = match content::published_news(&state.db, q.page(NEWS_PER_PAGE)).await {
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
            pager: Pager {
                number: 1,
                pages: 1,
                prev: None,
                next: None,
            },
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
    let p = match content::faq_page(&state.db, q.page(FAQ_PER_PAGE)).await {
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
