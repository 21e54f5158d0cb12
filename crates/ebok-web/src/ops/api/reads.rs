//! Reads: the IP → session → subscriber lookup and the health check.

use std::net::IpAddr;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::auth::OpsCaller;
use super::{json_response, ApiError, HEALTH_TIMEOUT};
use crate::state::AppState;
use ebok_live::sessions::LiveSession;
use ebok_store::audit;
use ebok_store::money::Money;
use ebok_store::repo::iso_date;
use ebok_store::subscribers::{Address, Contract, ContractStatus, Subscriber, SubscriberKind};

#[derive(Debug, Deserialize)]
pub(super) struct LookupParams {
    ip: Option<String>,
}

#[derive(Debug, Serialize)]
struct LookupBody {
    ip: IpAddr,
    session: SessionView,
    /// `null` when the session has no login or the login is not a known PPPoE account.
    subscriber: Option<SubscriberView>,
    contract: Option<ContractView>,
}

#[derive(Debug, Serialize)]
pub(super) struct SessionView {
    nas: String,
    nas_client: String,
    session_id: String,
    user_name: Option<String>,
    framed_ip: Option<std::net::Ipv4Addr>,
    ipv6_prefixes: Vec<ipnet::Ipv6Net>,
    calling_station_id: Option<String>,
    nas_port: Option<u32>,
    nas_port_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    input_octets: u64,
    output_octets: u64,
    session_time: Option<u32>,
}

impl From<LiveSession> for SessionView {
    fn from(s: LiveSession) -> SessionView {
        SessionView {
            nas: s.nas,
            nas_client: s.nas_client,
            session_id: s.session_id,
            user_name: s.user_name,
            framed_ip: s.framed_ip,
            ipv6_prefixes: s.ipv6_prefixes,
            calling_station_id: s.calling_station_id,
            nas_port: s.nas_port,
            nas_port_id: s.nas_port_id,
            started_at: s.started_at,
            updated_at: s.updated_at,
            expires_at: s.expires_at,
            input_octets: s.input_octets,
            output_octets: s.output_octets,
            session_time: s.session_time,
        }
    }
}

/// What an operator needs to identify a subscriber; identity numbers and the bank account
/// stay out.
#[derive(Debug, Serialize)]
pub(super) struct SubscriberView {
    id: i64,
    ext_id: String,
    kind: SubscriberKind,
    name: String,
    home: Address,
    correspondence: Option<Address>,
    phone: Option<String>,
    email: Option<String>,
}

impl From<Subscriber> for SubscriberView {
    fn from(s: Subscriber) -> SubscriberView {
        SubscriberView {
            name: s.display_name(),
            id: s.id,
            ext_id: s.ext_id,
            kind: s.kind,
            home: s.home,
            correspondence: s.correspondence,
            phone: s.phone,
            email: s.email,
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct ContractView {
    id: i64,
    ext_id: String,
    number: String,
    status: ContractStatus,
    #[serde(with = "iso_date")]
    starts_on: Date,
    #[serde(with = "iso_date::option")]
    ends_on: Option<Date>,
    tariff: String,
    download_kbps: u32,
    upload_kbps: u32,
    monthly_fee: Money,
    installation: Address,
}

impl From<Contract> for ContractView {
    fn from(c: Contract) -> ContractView {
        ContractView {
            id: c.id,
            ext_id: c.ext_id,
            number: c.number,
            status: c.status,
            starts_on: c.starts_on,
            ends_on: c.ends_on,
            tariff: c.tariff,
            download_kbps: c.download_kbps,
            upload_kbps: c.upload_kbps,
            monthly_fee: c.monthly_fee,
            installation: c.installation,
        }
    }
}

/// `GET /api/v1/sessions/lookup?ip=IP`: the live session holding the address (IPv4 exact,
/// IPv6 by prefix), joined through its PPPoE login to the subscriber and contract.
pub(super) async fn lookup(
    caller: OpsCaller,
    State(state): State<AppState>,
    Query(params): Query<LookupParams>,
) -> Result<Response, ApiError> {
    let text = params
        .ip
        .ok_or_else(|| ApiError::bad_request("the query parameter ip is required"))?;
    let ip = text
        .trim()
        .parse::<IpAddr>()
        .map_err(|_| ApiError::bad_request(format!("{text:?} is not an IP address")))?
        .to_canonical();
    // Who held an address is personal data: every lookup is audited.
    let mut tx = state
        .db
        .begin()
        .await
        .map_err(|e| ApiError::internal("cannot write the audit log", &e))?;
    audit::append(
        &mut tx,
        &caller.actor(),
        "ops_lookup",
        caller.ip,
        &format!("ip {ip}"),
    )
    .await
    .map_err(|e| ApiError::internal("cannot write the audit log", &e))?;
    tx.commit()
        .await
        .map_err(|e| ApiError::internal("cannot write the audit log", &e))?;
    let found = ebok_store::identify::identify(state.live.as_ref(), &state.db, ip)
        .await
        .map_err(|e| match e {
            ebok_store::identify::IdentifyError::Live(e) => {
                tracing::error!(error = %e, "ops API: live session lookup failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the live session store is unavailable",
                )
            }
            ebok_store::identify::IdentifyError::Db(e) => {
                ApiError::internal("subscriber lookup failed", &e)
            }
        })?;
    let Some(found) = found else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no live session holds {ip}"),
        ));
    };
    let (subscriber, contract) = match found.holder {
        Some((s, c)) => (Some(s.into()), Some(c.into())),
        None => (None, None),
    };
    Ok(json_response(
        StatusCode::OK,
        &LookupBody {
            ip,
            session: found.session.into(),
            subscriber,
            contract,
        },
    ))
}

#[derive(Debug, Serialize)]
struct HealthBody {
    /// `ok`, or `unavailable` when a store does not answer.
    status: &'static str,
    database: DatabaseHealth,
    sessions: SessionsHealth,
}

#[derive(Debug, Serialize)]
struct DatabaseHealth {
    backend: &'static str,
    ok: bool,
}

#[derive(Debug, Serialize)]
struct SessionsHealth {
    ok: bool,
}

/// `GET /api/v1/health` (no token): can the SQL database and the live session store be
/// reached? 200 when both answer, else 503. Details of a failure go to the log only.
pub(super) async fn health(State(state): State<AppState>) -> Response {
    let (db, live) = tokio::join!(
        tokio::time::timeout(HEALTH_TIMEOUT, state.db.ping()),
        tokio::time::timeout(HEALTH_TIMEOUT, state.live.ping()),
    );
    let db_ok = match db {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health: database unreachable");
            false
        }
        Err(_) => {
            tracing::warn!("health: database timed out");
            false
        }
    };
    let live_ok = match live {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health: live session store unreachable");
            false
        }
        Err(_) => {
            tracing::warn!("health: live session store timed out");
            false
        }
    };
    let ok = db_ok && live_ok;
    json_response(
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        &HealthBody {
            status: if ok { "ok" } else { "unavailable" },
            database: DatabaseHealth {
                backend: state.db.backend(),
                ok: db_ok,
            },
            sessions: SessionsHealth { ok: live_ok },
        },
    )
}
