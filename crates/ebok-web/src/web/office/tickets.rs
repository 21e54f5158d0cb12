//! Kontakt: the ISP's contact block and tickets written from the panel, with their threads,
//! replies and closing.

use crate::web::error::PanelError;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;

use super::{
    check_text, mail_office, mail_subscriber, over_limit, who, ListQuery, MAX_MESSAGE, MAX_SUBJECT,
    MESSAGE_ACCOUNT, TICKETS_PER_PAGE,
};
use crate::web::i18n::Tr;
use crate::web::pages::{error_page, render, Authed, Chrome, Ctx, FormErrors};
use crate::web::paging::{clamped, Pager};
use crate::web::register::valid_email;
use crate::web::AppState;
use ebok_store::panel::{self, Author, TicketStatus};
use ebok_store::repo::Page;
use ebok_store::tz::format_datetime;

/// One line of the contact block; `href` empty when it is not a link.
pub(crate) struct ContactLine {
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

pub(crate) struct TicketRow {
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
pub(crate) struct TicketForm {
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
) -> Result<Response, PanelError> {
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
            Err(e) => return Err(e.into()),
        },
        None => (Vec::new(), Pager::single()),
    };
    let c = Chrome::new(state, ctx, "/kontakt").await;
    Ok(render(
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
    ))
}

/// Kontakt: the contact block for everyone; for a subscriber the form to the office and
/// their tickets.
pub async fn contact(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<ListQuery>,
) -> Result<Response, PanelError> {
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
pub async fn write(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<TicketForm>,
) -> Result<Response, PanelError> {
    let Some(a) = ctx.auth.clone() else {
        return Ok(crate::web::pages::to_login());
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
            Err(r) => return Ok(r),
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
    let id = created?;
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
    Ok(Redirect::to(&format!("/kontakt/{id}?wyslano=1")).into_response())
}

pub(crate) struct MessageView {
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
        return Err(crate::web::pages::to_login());
    };
    let Ok(id) = id.parse::<i64>() else {
        return Err(error_page(state, &ctx.info, StatusCode::NOT_FOUND).await);
    };
    match panel::ticket_for(&state.db, a.account.subscriber_id, id).await {
        Ok(Some(k)) => Ok((a, k)),
        Ok(None) => Err(error_page(state, &ctx.info, StatusCode::NOT_FOUND).await),
        Err(e) => Err(PanelError::from(e).into_response()),
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
) -> Result<Response, PanelError> {
    let t = ctx.t;
    let messages = panel::ticket_messages(&state.db, k.id).await?;
    let mut c = Chrome::new(state, ctx, &format!("/kontakt/{}", k.id)).await;
    c.notice = notice;
    Ok(render(
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
    ))
}

/// One ticket's thread and the reply form (another subscriber's ticket: 404).
pub async fn ticket(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, PanelError> {
    let (_, k) = match own_ticket(&state, &ctx, &id).await {
        Ok(x) => x,
        Err(r) => return Ok(r),
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
pub(crate) struct ReplyForm {
    #[serde(default)]
    message: String,
}

/// The subscriber's reply: (re)opens the ticket and tells the office.
pub async fn reply(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(f): Form<ReplyForm>,
) -> Result<Response, PanelError> {
    let (a, k) = match own_ticket(&state, &ctx, &id).await {
        Ok(x) => x,
        Err(r) => return Ok(r),
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
        Err(r) => return Ok(r),
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
    done?;
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
    Ok(Redirect::to(&format!("/kontakt/{}?wyslano=1", k.id)).into_response())
}

/// The subscriber closes their own ticket (the matter is settled); a reply opens it again.
pub(crate) async fn close_ticket(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, PanelError> {
    let (_, k) = match own_ticket(&state, &ctx, &id).await {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    if k.status != TicketStatus::Closed {
        let done = in_tx!(state.db, |tx| {
            panel::set_ticket_status(&mut tx, k.id, TicketStatus::Closed).await?;
            ctx.audit(&mut tx, "ticket_closed", &format!("ticket {}", k.id))
                .await?;
        });
        done?;
    }
    Ok(Redirect::to(&format!("/kontakt/{}?zamkniete=1", k.id)).into_response())
}
