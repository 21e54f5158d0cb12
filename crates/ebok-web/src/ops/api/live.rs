//! Operators' live-session endpoints: list and filter the live map, the NAS overview
//! (sessions, stale sessions, last event per NAS entry), and RFC 5176 Disconnect / CoA of
//! one session. Listing and control are audited (they show or touch personal data).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{audit_read, json_body, json_response, ApiError, OpsCaller, PageBody, SessionView};
use crate::state::AppState;
use ebok_live::sessions::filter::{is_stale, per_nas, NasSessions, SessionFilter};
use ebok_live::sessions::LiveSession;
use ebok_radius::coa::{error_cause_name, Action, CoaError, ControlOutcome};
use ebok_radius::nas::NasSeen;
use ebok_store::repo::{Page, Paged};
use ebok_store::subscribers;

/// Default and largest page of the session list.
const PAGE: u32 = 100;
const PAGE_MAX: u32 = Page::MAX_SIZE;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/sessions", get(list))
        .route("/nas", get(nas_overview))
        // `{"nas": "…", "session_id": "…"}`, and for CoA `"attributes": {…}`.
        .route(
            "/sessions/disconnect",
            post(|caller, State(state), body| control(caller, state, body, Action::Disconnect)),
        )
        .route(
            "/sessions/coa",
            post(|caller, State(state), body| control(caller, state, body, Action::Change)),
        )
}

fn live_unavailable(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "ops API: live session store failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the live session store is unavailable",
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    nas: Option<String>,
    login: Option<String>,
    /// The subscriber's billing id (`ext_id`): their PPPoE logins' sessions.
    subscriber: Option<String>,
    prefix: Option<String>,
    stale: Option<bool>,
    page: Option<u32>,
    per_page: Option<u32>,
}

#[derive(Debug, Serialize)]
struct LiveView {
    #[serde(flatten)]
    session: SessionView,
    /// No update for more than half its expiry window (a missed Interim-Update).
    stale: bool,
}

/// Parse a prefix or a bare address (a host prefix).
fn parse_prefix(text: &str) -> Result<IpNet, ApiError> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| ApiError::bad_request(format!("{text:?} is not an IP prefix")))
}

/// `GET /api/v1/sessions?nas=&login=&subscriber=&prefix=&stale=true&page=&per_page=`.
async fn list(
    caller: OpsCaller,
    State(state): State<AppState>,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) =
        q.map_err(|e| ApiError::bad_request(format!("bad query parameters: {}", e.body_text())))?;
    let mut filter = SessionFilter {
        nas: p.nas.clone(),
        login: p.login.clone(),
        logins: None,
        prefix: p.prefix.as_deref().map(parse_prefix).transpose()?,
        stale: p.stale.unwrap_or(false),
    };
    if let Some(ext_id) = &p.subscriber {
        let subscriber = subscribers::subscriber_by_ext_id(&state.db, ext_id)
            .await
            .map_err(|e| ApiError::internal("subscriber lookup failed", &e))?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("no subscriber with billing id {ext_id:?}"),
                )
            })?;
        let accounts = subscribers::pppoe_accounts_of_subscriber(&state.db, subscriber.id)
            .await
            .map_err(|e| ApiError::internal("PPPoE account lookup failed", &e))?;
        filter.logins = Some(accounts.into_iter().map(|a| a.login).collect());
    }
    let detail = format!(
        "sessions nas={} login={} subscriber={} prefix={} stale={}",
        p.nas.as_deref().unwrap_or("*"),
        p.login.as_deref().unwrap_or("*"),
        p.subscriber.as_deref().unwrap_or("*"),
        p.prefix.as_deref().unwrap_or("*"),
        filter.stale
    );
    audit_read(&state, &caller, "ops_sessions", &detail).await?;
    // The NAS filter narrows the store's own scan; the rest filters in memory.
    let nas = filter
        .nas
        .as_deref()
        .filter(|n| n.parse::<std::net::IpAddr>().is_ok());
    let all = state.live.list(nas).await.map_err(live_unavailable)?;
    let now = OffsetDateTime::now_utc();
    let kept = filter.apply(all, now);
    let page = Page::new(
        p.page.unwrap_or(1),
        p.per_page.unwrap_or(PAGE).clamp(1, PAGE_MAX),
    );
    let total = kept.len() as u64;
    let items: Vec<LiveSession> = kept
        .into_iter()
        .skip(page.offset() as usize)
        .take(page.size as usize)
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &PageBody::of(Paged { items, total, page }, |s| LiveView {
            stale: is_stale(&s, now),
            session: s.into(),
        }),
    ))
}

#[derive(Debug, Serialize)]
struct NasView {
    name: String,
    vendor: String,
    prefixes: Vec<IpNet>,
    coa_port: u16,
    expiry_seconds: u64,
    /// The last accounting event this ebok instance received from the entry, and how many
    /// since it started (`null`: none yet).
    received: Option<NasSeen>,
    #[serde(flatten)]
    live: NasSessions,
}

#[derive(Debug, Serialize)]
struct NasBody {
    nas: Vec<NasView>,
    /// Live sessions whose NAS entry is no longer configured (after a reload).
    unconfigured: std::collections::BTreeMap<String, NasSessions>,
}

/// `GET /api/v1/nas`: each configured NAS entry with its live and stale session counts, the
/// newest update of its sessions and the last event received.
async fn nas_overview(
    _caller: OpsCaller,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let Some(radius) = state.radius.as_ref() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the accounting listener is not running in this process",
        ));
    };
    let all = state.live.list(None).await.map_err(live_unavailable)?;
    let mut counts = per_nas(&all, OffsetDateTime::now_utc());
    let nas = radius
        .nas_table()
        .clients()
        .into_iter()
        .map(|(client, prefixes)| NasView {
            live: counts.remove(&client.name).unwrap_or(NasSessions {
                sessions: 0,
                stale: 0,
                newest_update: None,
            }),
            received: radius.activity.get(&client.name),
            name: client.name.clone(),
            vendor: client.vendor.clone(),
            prefixes,
            coa_port: client.coa_port,
            expiry_seconds: client.expiry.as_secs(),
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &NasBody {
            nas,
            unconfigured: counts,
        },
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlBody {
    /// The session's NAS key, as the session list shows it.
    nas: String,
    session_id: String,
    /// CoA only: attribute name → value (or list of values), named as in the dictionaries.
    #[serde(default)]
    attributes: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize)]
struct ControlAnswer {
    /// `ack` or `nak`.
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_cause: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_cause_name: Option<&'static str>,
}

/// The CoA attributes of a request body, encoded with the dictionary in force.
fn encode_attributes(
    state: &AppState,
    attributes: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<Vec<u8>>, ApiError> {
    let dict = state
        .radius
        .as_ref()
        .map(|r| r.dict)
        .unwrap_or_else(ebok_radius::dict::Dictionary::builtin);
    let mut out = Vec::new();
    for (name, value) in attributes {
        let values = match value {
            serde_json::Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for v in values {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "attribute {name}: give a string or a number"
                    )))
                }
            };
            out.push(
                dict.encode_attribute(name, &text)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?,
            );
        }
    }
    Ok(out)
}

async fn control(
    caller: OpsCaller,
    state: AppState,
    body: Result<Bytes, BytesRejection>,
    action: Action,
) -> Result<Response, ApiError> {
    let req: ControlBody = json_body(body)?;
    let attributes = encode_attributes(&state, &req.attributes)?;
    if action == Action::Change && attributes.is_empty() {
        return Err(ApiError::bad_request(
            "a CoA-Request needs at least one attribute to change",
        ));
    }
    if action == Action::Disconnect && !req.attributes.is_empty() {
        return Err(ApiError::bad_request(
            "a Disconnect-Request takes no attributes",
        ));
    }
    let Some(control) = state.session_control.as_ref() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the RFC 5176 client is not running in this process",
        ));
    };
    let session = state
        .live
        .get(&req.nas, &req.session_id)
        .await
        .map_err(live_unavailable)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no live session {} on {}", req.session_id, req.nas),
            )
        })?;
    let result = match action {
        Action::Disconnect => control.disconnect(&session.control_target()).await,
        Action::Change => control.change(&session.control_target(), &attributes).await,
    };
    let summary = match &result {
        Ok(ControlOutcome::Ack) => "ack".to_owned(),
        Ok(ControlOutcome::Nak { error_cause }) => format!("nak {error_cause:?}"),
        Err(e) => format!("error: {e}"),
    };
    let names: Vec<&str> = req.attributes.keys().map(String::as_str).collect();
    audit_read(
        &state,
        &caller,
        if action == Action::Disconnect {
            "ops_disconnect"
        } else {
            "ops_coa"
        },
        &format!(
            "{} {} login {} attributes [{}]: {summary}",
            req.nas,
            req.session_id,
            session.user_name.as_deref().unwrap_or("-"),
            names.join(",")
        ),
    )
    .await?;
    match result {
        Ok(ControlOutcome::Ack) => Ok(json_response(
            StatusCode::OK,
            &ControlAnswer {
                result: "ack",
                error_cause: None,
                error_cause_name: None,
            },
        )),
        // The NAS refused: a gateway's answer, with its reason.
        Ok(ControlOutcome::Nak { error_cause }) => Ok(json_response(
            StatusCode::BAD_GATEWAY,
            &ControlAnswer {
                result: "nak",
                error_cause,
                error_cause_name: error_cause.map(error_cause_name),
            },
        )),
        Err(CoaError::Timeout(tries)) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!("no answer from the NAS after {tries} tries"),
        )),
        Err(e) => Err(ApiError::new(StatusCode::BAD_GATEWAY, e.to_string())),
    }
}
