//! Twoje dane: the subscriber's dashboard, as Polish telecom panels open. First what a
//! subscriber comes for: what is due and by when (with the way to pay), the line's state
//! now (connected since, with which addresses), the latest invoice, open tickets and the
//! latest notices; then the subscriber's data (address, correspondence address, phone,
//! e-mail) and each contract with its IPs.

use crate::web::error::PanelError;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use time::OffsetDateTime;

use super::i18n::Tr;
use super::pages::{error_page, render, Chrome, WithOverview};
use super::AppState;
use ebok_live::sessions::LiveSession;
use ebok_store::subscribers::{Address, Contract, Overview, Subscriber};
use ebok_store::tz::{format_date as day, format_datetime as moment};
use ebok_store::{billing, content, panel, subscribers};

/// One contract as Twoje dane shows it.
pub(crate) struct ContractView {
    pub number: String,
    pub period: String,
    pub fee: String,
    pub tariff: String,
    pub installation: String,
    /// "Informacje dla poszczególnych IP".
    pub ips: Vec<IpView>,
}

/// One IP (or prefix) assigned to a contract.
pub(crate) struct IpView {
    pub holder: String,
    pub address: super::line::Addr,
    pub activated: String,
    pub installation: String,
}

/// What is due: the amount, by when, and whether that day has passed.
pub(crate) struct Due {
    pub amount: String,
    pub due_on: Option<String>,
    pub overdue: bool,
}

/// One live session of the subscriber's lines.
pub struct LineView {
    pub since: String,
    pub addresses: Vec<String>,
}

/// The newest invoice.
pub(crate) struct InvoiceView {
    pub id: i64,
    pub number: String,
    pub issued_on: String,
    pub gross: String,
}

/// A notice (news item) headline.
pub(crate) struct NoticeView {
    pub id: i64,
    pub title: String,
    pub date: String,
}

#[derive(Template)]
#[template(path = "panel.html")]
struct PanelPage {
    c: Chrome,
    name: String,
    street: String,
    postcode_city: String,
    correspondence: Option<String>,
    phone: Option<String>,
    email: String,
    /// `None` when nothing is due.
    due: Option<Due>,
    /// Whether a bank account to pay to is known (the Płatności page shows it and a QR code).
    can_pay: bool,
    lines: Vec<LineView>,
    latest_invoice: Option<InvoiceView>,
    open_tickets: i64,
    notices: Vec<NoticeView>,
    contracts: Vec<ContractView>,
}

fn address_line(a: &Address) -> String {
    format!("{}, {} {}", a.street, a.postcode, a.city)
}

pub(crate) fn contract_view(t: Tr, c: &Contract) -> ContractView {
    let end = c
        .ends_on
        .map(day)
        .unwrap_or_else(|| t.t("panel.indefinite").to_owned());
    ContractView {
        number: c.number.clone(),
        period: format!("{} – {}", day(c.starts_on), end),
        fee: c.monthly_fee.to_string(),
        tariff: c.tariff.clone(),
        installation: address_line(&c.installation),
        ips: Vec::new(),
    }
}

/// The dashboard's figures, each read on its own (one failing read fails the page).
struct Figures {
    due: Option<Due>,
    lines: Vec<LineView>,
    latest_invoice: Option<InvoiceView>,
    open_tickets: i64,
    notices: Vec<NoticeView>,
}

async fn figures(state: &AppState, sub: &Subscriber) -> anyhow::Result<Figures> {
    let today = ebok_store::tz::warsaw_date(OffsetDateTime::now_utc());
    let balance = billing::balance(&state.db, sub.id).await?;
    let due = if balance.is_negative() {
        let oldest = billing::oldest_unpaid_invoice(&state.db, sub.id).await?;
        Some(Due {
            amount: (-balance).to_string(),
            due_on: oldest.as_ref().map(|i| day(i.due_on)),
            overdue: oldest.is_some_and(|i| i.due_on < today),
        })
    } else {
        None
    };
    let logins: Vec<String> = subscribers::pppoe_accounts_of_subscriber(&state.db, sub.id)
        .await?
        .into_iter()
        .map(|a| a.login)
        .collect();
    let mut live: Vec<LiveSession> = if logins.is_empty() {
        Vec::new()
    } else {
        let users: Vec<&str> = logins.iter().map(String::as_str).collect();
        state.live.sessions_of_users(&users).await?
    };
    live.sort_by_key(|s| s.started_at);
    let lines = live
        .iter()
        .map(|s| LineView {
            since: moment(s.started_at),
            addresses: s
                .framed_ip
                .map(|ip| ip.to_string())
                .into_iter()
                .chain(s.ipv6_prefixes.iter().map(|p| p.to_string()))
                .collect(),
        })
        .collect();
    let latest_invoice = billing::latest_invoice(&state.db, sub.id)
        .await?
        .map(|i| InvoiceView {
            id: i.id,
            number: i.number,
            issued_on: day(i.issued_on),
            gross: i.gross.to_string(),
        });
    let open_tickets = panel::open_ticket_count(&state.db, sub.id).await?;
    let notices = content::latest_news(&state.db, 3)
        .await?
        .into_iter()
        .map(|n| NoticeView {
            id: n.id,
            title: n.title,
            date: day(ebok_store::tz::warsaw_date(n.published_at)),
        })
        .collect();
    Ok(Figures {
        due,
        lines,
        latest_invoice,
        open_tickets,
        notices,
    })
}

/// Twoje dane.
pub async fn panel(
    State(state): State<AppState>,
    WithOverview(ctx): WithOverview,
) -> Result<Response, PanelError> {
    let Some(auth) = &ctx.auth else {
        return Ok(super::pages::to_login());
    };
    // Subscriber, contracts and their IPs came with the session (no query of its own).
    let Some(Overview {
        subscriber: sub,
        contracts,
    }) = &auth.overview
    else {
        return Ok(error_page(&state, &ctx.info, StatusCode::NOT_FOUND).await);
    };
    let figures = figures(&state, sub).await?;
    let holder = sub.display_name();
    let views = contracts
        .iter()
        .map(|(k, ips)| {
            let mut v = contract_view(ctx.t, k);
            v.ips = ips
                .iter()
                .map(|ip| IpView {
                    holder: holder.clone(),
                    address: super::line::Addr(ip.address_text()),
                    activated: ip.activated_on.map(day).unwrap_or_default(),
                    installation: address_line(ip.installation.as_ref().unwrap_or(&k.installation)),
                })
                .collect();
            v
        })
        .collect();
    let mut c = Chrome::new(&state, &ctx, "/panel").await;
    if let Some(key) = ctx.flash {
        c.notice = Some(ctx.t.f(key, &[("email", &auth.account.email)]));
    }
    let page = PanelPage {
        name: sub.display_name(),
        street: sub.home.street.clone(),
        postcode_city: format!("{} {}", sub.home.postcode, sub.home.city),
        correspondence: sub.correspondence.as_ref().map(address_line),
        phone: sub.phone.clone(),
        email: auth.account.email.clone(),
        due: figures.due,
        can_pay: sub.bank_account.is_some(),
        lines: figures.lines,
        latest_invoice: figures.latest_invoice,
        open_tickets: figures.open_tickets,
        notices: figures.notices,
        contracts: views,
        c,
    };
    Ok(render(StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use time::macros::{date, datetime};

    use crate::web::tests::*;
    use ebok_store::billing::{upsert_invoice, InvoiceLine, InvoiceRecord, InvoiceStatus};
    use ebok_store::money::{Money, Quantity, VatRate};

    /// Jan: one unpaid invoice of 61,50 zł due on 15.01.2026, an open ticket, a notice.
    async fn jans_month(h: &Harness) {
        let db = &h.state.db;
        let (net, vat) = VatRate::R23.split_gross(Money::from_grosze(6150));
        let line = InvoiceLine {
            position: 1,
            name: "Abonament".into(),
            unit: "mies.".into(),
            quantity: Quantity::ONE,
            unit_net: net,
            net,
            vat_rate: VatRate::R23,
            vat,
            gross: Money::from_grosze(6150),
        };
        let mut tx = db.begin().await.unwrap();
        upsert_invoice(
            &mut tx,
            &InvoiceRecord {
                ext_id: "d1".into(),
                subscriber_ext_id: "s1".into(),
                number: "FV/2026/01/001".into(),
                issued_on: date!(2026 - 01 - 02),
                sold_on: date!(2026 - 01 - 02),
                due_on: date!(2026 - 01 - 15),
                net,
                vat,
                gross: Money::from_grosze(6150),
                status: InvoiceStatus::Issued,
                ksef_number: None,
                ksef_xml: None,
                lines: vec![line],
            },
        )
        .await
        .unwrap();
        let (jan, _) = ebok_store::subscribers::subscriber_by_login(db, "jan@isp")
            .await
            .unwrap()
            .unwrap();
        ebok_store::panel::create_ticket(&mut tx, Some(jan.id), None, "Wolny internet", "…")
            .await
            .unwrap();
        ebok_store::content::upsert_news(
            &mut tx,
            &ebok_store::content::NewsRecord {
                ext_id: "n1".into(),
                title: "Prace serwisowe w Krakowie".into(),
                body_md: "W nocy…".into(),
                published_at: datetime!(2026-01-10 23:30 UTC),
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn twoje_dane_is_a_dashboard() {
        let h = Harness::sqlite().await;
        let mut b = jan_registered(&h).await;
        jans_month(&h).await;
        let p = b.get("/panel").await;
        assert_eq!(p.status, StatusCode::OK);
        let body = &p.body;
        for part in [
            "Do zapłaty",
            "61,50\u{a0}zł",
            "Termin płatności minął 15.01.2026.",
            "href=\"/platnosci\"",
            "Połączenie trwa od",
            "83.1.2.3",
            "FV/2026/01/001 z 02.01.2026",
            "Otwarte zgłoszenia: 1",
            "Prace serwisowe w Krakowie",
            // 23:30 UTC on 10 January is 11 January in Warsaw.
            "11.01.2026",
        ] {
            assert!(body.contains(part), "{part:?} not on the dashboard: {body}");
        }
        // The menu marks the page, and keeps what everyone sees.
        assert!(
            body.contains("<a href=\"/panel\" aria-current=\"page\">"),
            "{body}"
        );
        for path in ["/zamawianie", "/aktualnosci", "/faq"] {
            assert!(body.contains(&format!("<a href=\"{path}\">")), "{path}");
        }
        h.finish().await;
    }

    /// A link from a mail to a ticket, opened logged out, comes back to the ticket after
    /// the login (and through the second factor); a foreign target never.
    #[tokio::test]
    async fn deep_links_survive_the_login() {
        let h = Harness::sqlite().await;
        drop(jan_registered(&h).await);
        let mut b = h.browser(STRANGER_IP);
        let r = b.get("/e-faktury?strona=2").await;
        assert_eq!(r.location(), "/logowanie?wroc=/e-faktury%3Fstrona%3D2");
        let page = b.get(r.location()).await;
        assert!(page
            .body
            .contains("name=\"wroc\" value=\"/e-faktury?strona=2\""));
        let r = b
            .post(
                "/logowanie",
                &[
                    ("login", "jan.kowalski"),
                    ("password", GOOD_PASSWORD),
                    ("wroc", "/e-faktury?strona=2"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(r.location(), "/e-faktury?strona=2");
        // Elsewhere: the panel.
        let mut e = h.browser(STRANGER_IP);
        e.get("/logowanie").await;
        let r = e
            .post(
                "/logowanie",
                &[
                    ("login", "jan.kowalski"),
                    ("password", GOOD_PASSWORD),
                    ("wroc", "//evil.example/x"),
                ],
            )
            .await;
        assert_eq!(r.location(), "/panel");
        h.finish().await;
    }
}
