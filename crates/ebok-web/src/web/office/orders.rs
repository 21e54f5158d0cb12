//! Zamawianie usług: the service catalogue, orders from subscribers and enquiries from
//! visitors.

use crate::web::error::PanelError;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;

use super::{
    check_text, mail_office, mail_subscriber, over_limit, valid_phone, who, ListQuery, ENQUIRY_IP,
    MAX_CONTACT, MAX_NOTE, MESSAGE_ACCOUNT, ORDERS_PER_PAGE,
};
use crate::web::i18n::Tr;
use crate::web::pages::{render, Chrome, Ctx, FormErrors};
use crate::web::paging::{clamped, Pager};
use crate::web::register::valid_email;
use crate::web::AppState;
use ebok_store::content::{self, NewServiceOrder, OrderStatus};
use ebok_store::repo::{Page, StoreError};
use ebok_store::tz::format_datetime;

pub struct ServiceRow {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub price: String,
}

pub(crate) struct OrderRow {
    pub id: i64,
    pub service: String,
    pub note: String,
    pub status: String,
    pub created: String,
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct OrderForm {
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
) -> Result<Response, PanelError> {
    let t = ctx.t;
    let services = content::active_services(&state.db).await?;
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
                                Err(e) => return Err(e.into()),
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
                Err(e) => return Err(e.into()),
            }
        }
        None => (Vec::new(), Pager::single()),
    };
    let mut c = Chrome::new(state, ctx, "/zamawianie").await;
    c.notice = notice;
    Ok(render(
        status,
        &OrdersPage {
            c,
            services: services.into_iter().map(|s| service_row(t, s)).collect(),
            form,
            errors,
            orders,
            pager,
        },
    ))
}

/// Zamawianie usług: the catalogue, the order form (or the enquiry form for visitors), and
/// the subscriber's orders with their status.
pub async fn orders(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Query<ListQuery>,
) -> Result<Response, PanelError> {
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
pub async fn order(
    State(state): State<AppState>,
    ctx: Ctx,
    Form(f): Form<OrderForm>,
) -> Result<Response, PanelError> {
    let t = ctx.t;
    let mut errors = FormErrors::default();
    let service = match f.service.trim().parse::<i64>() {
        Ok(id) => match content::service(&state.db, id).await {
            Ok(Some(s)) if s.active => Some(s),
            Ok(_) => None,
            Err(e) => return Err(e.into()),
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
        None => format!(
            "office:enquiry:{}",
            crate::web::request::limit_key(ctx.info.ip)
        ),
    };
    let rule = if visitor { ENQUIRY_IP } else { MESSAGE_ACCOUNT };
    if errors.is_empty() {
        match over_limit(&state, &ctx, &key, rule).await {
            Ok(Some(m)) => errors.form = Some(m),
            Ok(None) => {}
            Err(r) => return Ok(r),
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
        return Ok(render(StatusCode::OK, &page));
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
        Err(e) => return Err(e.into()),
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
    Ok(Redirect::to("/zamawianie?wyslano=1").into_response())
}
