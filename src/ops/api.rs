//! The operators' JSON API (`/api/v1/…`), authenticated by bearer tokens whose SHA-256
//! digests are in the configuration: upserts pushed by the billing system (the same ones
//! `ebok import` does), the IP → session → subscriber lookup, the customer office's work
//! (tickets, service orders, news), and an unauthenticated health check.
//!
//! Every response body is JSON. Errors are `{"error": "…"}`; a record that cannot be stored
//! adds its position in the request and the offending field:
//! `{"error": "…", "index": 3, "field": "pesel"}`. Database details stay in the log.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use futures_util::future::BoxFuture;
use rand::RngCore;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{Date, OffsetDateTime};

use crate::config::OpsToken;
use crate::sessions::LiveSession;
use crate::store::auth::{base64url, token_hash};
use crate::store::billing::{upsert_invoice_keeping, upsert_payment, InvoiceRecord, PaymentRecord};
use crate::store::content::{
    self, upsert_faq, upsert_news, upsert_service, FaqRecord, NewsRecord, OrderStatus,
    ServiceOrder, ServiceRecord,
};
use crate::store::money::Money;
use crate::store::panel::{self, Author, Ticket, TicketMessage, TicketStatus};
use crate::store::repo::Absent;
use crate::store::repo::{
    iso_date, Entity, Page, Paged, StoreError, UniqueField, UpsertSummary, Upserted,
};
use crate::store::subscribers::{
    upsert_contract_keeping, upsert_ip_assignment_keeping, upsert_pppoe_account_keeping,
    upsert_subscriber_keeping, Address, Contract, ContractRecord, ContractStatus,
    IpAssignmentRecord, PppoeAccountRecord, Subscriber, SubscriberKind, SubscriberRecord,
};
use crate::store::{audit, Db, DbTx};
use crate::web::i18n::{Lang, Tr};
use crate::web::AppState;

mod live;
#[cfg(test)]
mod tests;

#[path = "attribution.rs"]
pub mod attribution;

/// Largest request body accepted by the upsert endpoints; bigger pushes are split by the
/// sender (or go through `ebok import`, which streams).
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// How long `/health` waits for each store.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

/// Routes under `/api/v1`.
pub fn router() -> Router<AppState> {
    let writes = Router::new();
    let writes = upsert_route::<SubscriberRecord>(writes);
    let writes = upsert_route::<ContractRecord>(writes);
    let writes = upsert_route::<PppoeAccountRecord>(writes);
    let writes = upsert_route::<IpAssignmentRecord>(writes);
    let writes = upsert_route::<InvoiceRecord>(writes);
    let writes = upsert_route::<PaymentRecord>(writes);
    let writes = upsert_route::<ServiceRecord>(writes);
    let writes = upsert_route::<NewsRecord>(writes);
    let writes = upsert_route::<FaqRecord>(writes);
    Router::new()
        .merge(writes.layer(DefaultBodyLimit::max(MAX_BODY)))
        .merge(live::router())
        .route("/sessions/lookup", get(lookup))
        .route("/attribution", get(attribution::lookup))
        .route("/attribution/export.csv", get(attribution::export))
        .route("/tickets", get(tickets))
        .route("/tickets/{id}", get(ticket))
        .route("/tickets/{id}/answer", post(answer_ticket))
        .route("/tickets/{id}/close", post(close_ticket))
        .route("/orders", get(orders))
        .route("/orders/{id}/status", put(order_status))
        .route("/news/{ext_id}", delete(delete_news))
        .route("/health", get(health))
        .fallback(not_found)
}

// ---------------------------------------------------------------------------------------------
// Tokens and authentication
// ---------------------------------------------------------------------------------------------

/// Prefix of generated tokens, so that secret scanners and people recognise them.
const TOKEN_PREFIX: &str = "ebok_";

/// A fresh random token (256 bits from the OS, base64url, `ebok_` prefix) and the SHA-256
/// hex digest that goes into `[ops] tokens`. Only the digest is stored; the token is shown
/// once to whoever configures the billing system.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = format!("{TOKEN_PREFIX}{}", base64url(&bytes));
    let digest = token_hash(&token);
    (token, digest)
}

/// 64 hex digits (either case) as 32 bytes.
fn decode_digest(text: &str) -> Option<[u8; 32]> {
    let text = text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let nibble = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 32];
    for (i, pair) in text.chunks(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// The name of the configured token whose digest matches `presented`. Every configured
/// digest is compared, each in constant time, so the answer's timing says nothing about
/// how close a guess came or which entry matched.
fn authenticate<'a>(tokens: &'a [OpsToken], presented: &str) -> Option<&'a str> {
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let mut found = None;
    for t in tokens {
        let Some(expected) = decode_digest(&t.sha256) else {
            continue;
        };
        let hit: bool = expected.ct_eq(&digest).into();
        if hit && found.is_none() {
            found = Some(t.name.as_str());
        }
    }
    found
}

/// The token of an `Authorization: Bearer …` header (scheme case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// An authenticated caller of the ops API: the name of the token it presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpsCaller {
    pub name: String,
    /// The peer address, when the server was started with connect info.
    pub ip: Option<IpAddr>,
}

impl OpsCaller {
    /// The audit log's actor: `ops:<token name>`.
    pub fn actor(&self) -> String {
        format!("ops:{}", self.name)
    }
}

impl FromRequestParts<AppState> for OpsCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let tokens = &state.config.ops.tokens;
        let refused = |reason: &str| {
            tracing::warn!(
                method = %parts.method,
                path = %parts.uri.path(),
                client = ?ip,
                reason,
                "ops API call refused"
            );
            ApiError::unauthorized()
        };
        if tokens.is_empty() {
            return Err(refused("no tokens configured: the ops API is disabled"));
        }
        let Some(presented) = bearer_token(&parts.headers) else {
            return Err(refused("no bearer token"));
        };
        let Some(name) = authenticate(tokens, presented) else {
            return Err(refused("unknown token"));
        };
        tracing::info!(
            token = name,
            method = %parts.method,
            path = %parts.uri.path(),
            query = parts.uri.query().unwrap_or(""),
            client = ?ip,
            "ops API call"
        );
        Ok(OpsCaller {
            name: name.to_owned(),
            ip,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Errors and JSON responses
// ---------------------------------------------------------------------------------------------

/// An error answer of the ops API.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

#[derive(Debug, Serialize)]
struct ErrorBody {
    error: String,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    record: Option<RecordPosition>,
}

/// Which record of a request failed: its index (from 0) and field, when known.
#[derive(Debug, Serialize)]
struct RecordPosition {
    index: usize,
    field: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: message.into(),
                record: None,
            },
        }
    }

    /// The same answer for a missing, malformed or unknown token, and for a disabled API.
    fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "a valid bearer token is required")
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    fn record(index: usize, field: Option<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: ErrorBody {
                error: message.into(),
                record: Some(RecordPosition { index, field }),
            },
        }
    }

    /// A failure of ours: logged in full, answered with a generic 500.
    fn internal(context: &str, error: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %error, "ops API: {context}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = json_response(self.status, &self.body);
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A JSON body; never cached (lookups carry personal data).
fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            status,
            [
                (CONTENT_TYPE, HeaderValue::from_static("application/json")),
                (CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "ops API: response not serializable");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")
}

// ---------------------------------------------------------------------------------------------
// Upserts
// ---------------------------------------------------------------------------------------------

/// A billing record the API takes in, and the repository upsert that stores it.
trait Upsert: DeserializeOwned + Send + Sync + 'static {
    /// The path under `/api/v1`, also the word used in logs and the audit log.
    const KIND: &'static str;

    /// Store `rec`; the optional fields `absent` names (keys the object did not carry)
    /// keep their stored values.
    fn upsert<'a>(
        tx: &'a mut DbTx,
        rec: &'a Self,
        absent: &'a Absent,
    ) -> BoxFuture<'a, Result<Upserted, StoreError>>;

    /// Work to start once the records are committed, given each record's outcome (new
    /// invoices: the mail to subscribers who accepted e-invoices).
    fn after_commit(_state: &AppState, _records: &[Self], _outcomes: &[Upserted]) {}
}

macro_rules! upsertable {
    ($($rec:ty => $kind:literal, $upsert:path $([$keeping:ident])? $(, then $after:path)?;)+) => {
        $(
            impl Upsert for $rec {
                const KIND: &'static str = $kind;

                fn upsert<'a>(
                    tx: &'a mut DbTx,
                    rec: &'a Self,
                    absent: &'a Absent,
                ) -> BoxFuture<'a, Result<Upserted, StoreError>> {
                    upsertable!(@call $($keeping)? $upsert, tx, rec, absent)
                }

                $(
                    fn after_commit(state: &AppState, records: &[Self], outcomes: &[Upserted]) {
                        $after(state, records, outcomes)
                    }
                )?
            }
        )+
    };
    // Kinds with optional fields keep the absent ones; the others have none to keep.
    (@call keeping $upsert:path, $tx:ident, $rec:ident, $absent:ident) => {
        Box::pin($upsert($tx, $rec, $absent))
    };
    (@call $upsert:path, $tx:ident, $rec:ident, $absent:ident) => {{
        let _ = $absent;
        Box::pin($upsert($tx, $rec))
    }};
}

upsertable! {
    SubscriberRecord => "subscribers", upsert_subscriber_keeping [keeping];
    ContractRecord => "contracts", upsert_contract_keeping [keeping];
    PppoeAccountRecord => "pppoe-accounts", upsert_pppoe_account_keeping [keeping];
    IpAssignmentRecord => "ips", upsert_ip_assignment_keeping [keeping];
    InvoiceRecord => "invoices", upsert_invoice_keeping [keeping],
        then crate::web::billing::invoices_stored;
    PaymentRecord => "payments", upsert_payment;
    ServiceRecord => "services", upsert_service;
    NewsRecord => "news", upsert_news;
    FaqRecord => "faq", upsert_faq;
}

fn upsert_route<R: Upsert>(router: Router<AppState>) -> Router<AppState> {
    router.route(&format!("/{}", R::KIND), put(upsert::<R>))
}

#[derive(Debug, Serialize)]
struct SummaryBody {
    inserted: u64,
    updated: u64,
    unchanged: u64,
}

/// `PUT /api/v1/<kind>`: one record object or an array of them, all stored in one
/// transaction or none.
async fn upsert<R: Upsert>(
    caller: OpsCaller,
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the body is larger than {} MiB: split the records into several requests",
                    MAX_BODY / (1024 * 1024)
                ),
            )
        } else {
            ApiError::new(e.status(), "the request body could not be read")
        }
    })?;
    let parsed: Vec<(R, Absent)> = parse_records(&body, R::KIND)?;
    let (records, absents): (Vec<R>, Vec<Absent>) = parsed.into_iter().unzip();
    let (summary, outcomes) = store_records(&state.db, &caller, &records, &absents).await?;
    R::after_commit(&state, &records, &outcomes);
    tracing::info!(
        token = %caller.name,
        kind = R::KIND,
        records = records.len(),
        inserted = summary.inserted,
        updated = summary.updated,
        unchanged = summary.unchanged,
        "ops API upsert"
    );
    Ok(json_response(
        StatusCode::OK,
        &SummaryBody {
            inserted: summary.inserted,
            updated: summary.updated,
            unchanged: summary.unchanged,
        },
    ))
}

/// Upsert every record and write the audit entry in one transaction; on any failure roll
/// back so that nothing of the request is stored.
async fn store_records<R: Upsert>(
    db: &Db,
    caller: &OpsCaller,
    records: &[R],
    absents: &[Absent],
) -> Result<(UpsertSummary, Vec<Upserted>), ApiError> {
    let mut tx = db
        .begin()
        .await
        .map_err(|e| ApiError::internal("cannot begin a transaction", &e))?;
    let mut summary = UpsertSummary::default();
    let mut outcomes = Vec::with_capacity(records.len());
    for (index, (rec, absent)) in records.iter().zip(absents).enumerate() {
        match R::upsert(&mut tx, rec, absent).await {
            Ok(outcome) => {
                summary.add(outcome);
                outcomes.push(outcome);
            }
            Err(e) => {
                if let Err(rb) = tx.rollback().await {
                    tracing::warn!(error = %rb, "ops API: rollback failed");
                }
                return Err(store_error(index, e));
            }
        }
    }
    let detail = format!(
        "{}: {} records (inserted {}, updated {}, unchanged {})",
        R::KIND,
        records.len(),
        summary.inserted,
        summary.updated,
        summary.unchanged
    );
    if let Err(e) = audit::append(&mut tx, &caller.actor(), "ops_upsert", caller.ip, &detail).await
    {
        let _ = tx.rollback().await;
        return Err(ApiError::internal("cannot write the audit log", &e));
    }
    tx.commit()
        .await
        .map_err(|e| ApiError::internal("cannot commit an upsert", &e))?;
    Ok((summary, outcomes))
}

/// A repository error for record `index`: the caller's fault (422, with the field when it can
/// be named) or ours (500).
fn store_error(index: usize, e: StoreError) -> ApiError {
    let field = match &e {
        StoreError::Database(db) => return ApiError::internal("upsert failed", db),
        StoreError::Invalid { field, .. } => Some((*field).to_owned()),
        StoreError::UnknownReference { kind, .. } => match kind {
            Entity::Subscriber => Some("subscriber_ext_id".to_owned()),
            Entity::Contract => Some("contract_ext_id".to_owned()),
            _ => None,
        },
        StoreError::Duplicate { field, .. } => match field {
            UniqueField::ExtId(_) => Some("ext_id".to_owned()),
            UniqueField::ContractNumber | UniqueField::InvoiceNumber => Some("number".to_owned()),
            UniqueField::PppoeLogin => Some("login".to_owned()),
            UniqueField::PanelLogin | UniqueField::PanelAccountOfSubscriber => None,
        },
        StoreError::InvoiceTotals { what, .. } => Some(
            match what.as_str() {
                "net total" => "net",
                "VAT total" => "vat",
                "gross total" => "gross",
                _ => "lines",
            }
            .to_owned(),
        ),
        StoreError::NotFound { .. } => None,
    };
    ApiError::record(index, field, e.to_string())
}

/// The body as records: one JSON object, or an array of objects. Every record is decoded
/// before anything is written.
/// The records of a body, each with the optional fields its object did not carry (see
/// [`crate::ops::import::absent_columns`]; `kind` names the columns).
fn parse_records<R: DeserializeOwned>(
    body: &[u8],
    kind: &str,
) -> Result<Vec<(R, Absent)>, ApiError> {
    let columns = crate::ops::import::ImportKind::ALL
        .iter()
        .find(|k| k.as_str() == kind)
        .map_or(&[][..], |k| k.csv_columns());
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    let items = match value {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        _ => {
            return Err(ApiError::bad_request(
                "the body must be a record object or an array of record objects",
            ))
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            if !item.is_object() {
                return Err(ApiError::record(
                    index,
                    None,
                    "a record must be a JSON object",
                ));
            }
            let absent = match &item {
                Value::Object(map) => {
                    crate::ops::import::absent_columns(columns, map.keys().map(String::as_str))
                }
                _ => Absent::default(),
            };
            decode_record(item)
                .map(|rec| (rec, absent))
                .map_err(|(field, message)| {
                    let message = match &field {
                        Some(f) => format!("{f}: {message}"),
                        None => message,
                    };
                    ApiError::record(index, field, message)
                })
        })
        .collect()
}

/// Decode one record, naming the top-level field whose value failed (or `parent.child` for
/// a missing field of a nested object). Unknown fields are refused: a misspelt optional
/// field would otherwise be silently dropped.
fn decode_record<R: DeserializeOwned>(value: Value) -> Result<R, (Option<String>, String)> {
    let mut current = None;
    R::deserialize(RecordDeserializer {
        value,
        current: &mut current,
    })
    .map_err(|e| {
        let message = e.to_string();
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(name, _)| name.to_owned());
        let field = match (current, missing) {
            (Some(parent), Some(child)) => Some(format!("{parent}.{child}")),
            (parent, child) => parent.or(child),
        };
        let message = match message.strip_prefix("missing field `") {
            Some(_) if field.is_some() => "missing field".to_owned(),
            _ => message,
        };
        (field, message)
    })
}

/// A record's top-level deserializer: a JSON value that remembers, in `current`, the key
/// whose value is being decoded (cleared once decoded, so an error at the end of the object,
/// such as a missing field, names none).
struct RecordDeserializer<'a> {
    value: Value,
    current: &'a mut Option<String>,
}

impl<'de> de::Deserializer<'de> for RecordDeserializer<'_> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.value.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.value {
            Value::Object(map) => visitor.visit_map(RecordFields {
                iter: map.into_iter(),
                pending: None,
                fields,
                current: self.current,
            }),
            other => other.deserialize_struct(name, fields, visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

struct RecordFields<'a> {
    iter: serde_json::map::IntoIter,
    pending: Option<Value>,
    fields: &'static [&'static str],
    current: &'a mut Option<String>,
}

impl<'de> MapAccess<'de> for RecordFields<'_> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.iter.next() else {
            return Ok(None);
        };
        *self.current = Some(key.clone());
        if !self.fields.contains(&key.as_str()) {
            return Err(de::Error::unknown_field(&key, self.fields));
        }
        self.pending = Some(value);
        seed.deserialize(Value::String(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let value = self
            .pending
            .take()
            .ok_or_else(|| de::Error::custom("a value without a key"))?;
        let decoded = seed.deserialize(value)?;
        *self.current = None;
        Ok(decoded)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

// ---------------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct LookupParams {
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
struct SessionView {
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
struct SubscriberView {
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
struct ContractView {
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
async fn lookup(
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
    let found = crate::identify::identify(state.live.as_ref(), &state.db, ip)
        .await
        .map_err(|e| match e {
            crate::identify::IdentifyError::Live(e) => {
                tracing::error!(error = %e, "ops API: live session lookup failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the live session store is unavailable",
                )
            }
            crate::identify::IdentifyError::Db(e) => {
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
async fn health(State(state): State<AppState>) -> Response {
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

// ---------------------------------------------------------------------------------------------
// The customer office: tickets, service orders, news
// ---------------------------------------------------------------------------------------------

/// Default and largest page of the office's lists.
const OFFICE_PAGE: u32 = 50;
const OFFICE_PAGE_MAX: u32 = 200;
/// Longest answer the office may send (the panel's own limit for messages).
const MAX_ANSWER: usize = 20_000;

#[derive(Debug, Deserialize)]
struct ListParams {
    status: Option<String>,
    page: Option<u32>,
    per_page: Option<u32>,
}

impl ListParams {
    fn page(&self) -> Page {
        Page::new(
            self.page.unwrap_or(1),
            self.per_page.unwrap_or(OFFICE_PAGE).min(OFFICE_PAGE_MAX),
        )
    }

    /// The `status` parameter as one of `T`'s texts, `default` when absent.
    fn status<T>(&self, default: T, all: &[T]) -> Result<T, ApiError>
    where
        T: std::str::FromStr + std::fmt::Display + Copy,
    {
        match &self.status {
            None => Ok(default),
            Some(s) => s.parse().map_err(|_| {
                let known: Vec<String> = all.iter().map(|v| v.to_string()).collect();
                ApiError::bad_request(format!("unknown status {s:?}: one of {}", known.join(", ")))
            }),
        }
    }
}

fn list_params(q: Result<Query<ListParams>, QueryRejection>) -> Result<ListParams, ApiError> {
    q.map(|Query(p)| p)
        .map_err(|e| ApiError::bad_request(format!("bad query parameters: {}", e.body_text())))
}

/// A numeric id from the path.
fn path_id(text: &str, what: &str) -> Result<i64, ApiError> {
    text.trim()
        .parse()
        .map_err(|_| ApiError::bad_request(format!("the {what} id must be a number")))
}

/// A small JSON body of the office's endpoints (unknown fields refused).
fn json_body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let body = body.map_err(|e| ApiError::new(e.status(), "the request body could not be read"))?;
    serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("bad JSON body: {e}")))
}

/// Run `change` and the audit entry in one transaction.
async fn audited<T, F>(
    state: &AppState,
    caller: &OpsCaller,
    action: &str,
    detail: &str,
    change: F,
) -> Result<T, ApiError>
where
    F: for<'t> FnOnce(&'t mut DbTx) -> BoxFuture<'t, Result<T, ApiError>>,
{
    let mut tx = state
        .db
        .begin()
        .await
        .map_err(|e| ApiError::internal("cannot begin a transaction", &e))?;
    let out = match change(&mut tx).await {
        Ok(out) => out,
        Err(e) => {
            if let Err(rb) = tx.rollback().await {
                tracing::warn!(error = %rb, "ops API: rollback failed");
            }
            return Err(e);
        }
    };
    if let Err(e) = audit::append(&mut tx, &caller.actor(), action, caller.ip, detail).await {
        let _ = tx.rollback().await;
        return Err(ApiError::internal("cannot write the audit log", &e));
    }
    tx.commit()
        .await
        .map_err(|e| ApiError::internal("cannot commit", &e))?;
    Ok(out)
}

/// Reads of personal data are audited too (as lookups are).
async fn audit_read(
    state: &AppState,
    caller: &OpsCaller,
    action: &str,
    detail: &str,
) -> Result<(), ApiError> {
    audited(state, caller, action, detail, |_| {
        Box::pin(async { Ok(()) })
    })
    .await
}

fn office_store_error(context: &str, e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound { kind, id } => {
            ApiError::new(StatusCode::NOT_FOUND, format!("no {} {id}", kind.as_str()))
        }
        e @ StoreError::Invalid { .. } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        }
        other => ApiError::internal(context, &other),
    }
}

#[derive(Debug, Serialize)]
struct PageBody<T> {
    items: Vec<T>,
    total: u64,
    page: u32,
    pages: u32,
}

impl<T> PageBody<T> {
    fn of<S>(p: Paged<S>, f: impl FnMut(S) -> T) -> PageBody<T> {
        let (page, pages, total) = (p.page.number, p.pages(), p.total);
        PageBody {
            items: p.items.into_iter().map(f).collect(),
            total,
            page,
            pages,
        }
    }
}

#[derive(Debug, Serialize)]
struct TicketView {
    id: i64,
    subscriber_id: Option<i64>,
    contact: Option<String>,
    subject: String,
    status: TicketStatus,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<Ticket> for TicketView {
    fn from(t: Ticket) -> TicketView {
        TicketView {
            id: t.id,
            subscriber_id: t.subscriber_id,
            contact: t.contact,
            subject: t.subject,
            status: t.status,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

#[derive(Debug, Serialize)]
struct MessageView {
    id: i64,
    author: Author,
    body: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl From<TicketMessage> for MessageView {
    fn from(m: TicketMessage) -> MessageView {
        MessageView {
            id: m.id,
            author: m.author,
            body: m.body,
            created_at: m.created_at,
        }
    }
}

#[derive(Debug, Serialize)]
struct TicketBody {
    ticket: TicketView,
    /// Who wrote it, when a subscriber did.
    subscriber: Option<SubscriberView>,
    messages: Vec<MessageView>,
}

async fn load_ticket(state: &AppState, id: i64) -> Result<Ticket, ApiError> {
    panel::ticket(&state.db, id)
        .await
        .map_err(|e| ApiError::internal("ticket lookup failed", &e))?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no ticket {id}")))
}

async fn ticket_body(state: &AppState, t: Ticket) -> Result<TicketBody, ApiError> {
    let messages = panel::ticket_messages(&state.db, t.id)
        .await
        .map_err(|e| ApiError::internal("ticket messages failed", &e))?;
    let subscriber = match t.subscriber_id {
        Some(id) => crate::store::subscribers::subscriber(&state.db, id)
            .await
            .map_err(|e| ApiError::internal("subscriber lookup failed", &e))?
            .map(SubscriberView::from),
        None => None,
    };
    Ok(TicketBody {
        ticket: t.into(),
        subscriber,
        messages: messages.into_iter().map(MessageView::from).collect(),
    })
}

/// `GET /api/v1/tickets?status=open&page=1&per_page=50`: the tickets in one status (`open`
/// by default: waiting for the office), longest waiting first.
async fn tickets(
    caller: OpsCaller,
    State(state): State<AppState>,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = list_params(q)?;
    let status = q.status(TicketStatus::Open, TicketStatus::ALL)?;
    let page = q.page();
    audit_read(
        &state,
        &caller,
        "ops_tickets_list",
        &format!("status {status}, page {}", page.number),
    )
    .await?;
    let found = panel::tickets_by_status(&state.db, status, page)
        .await
        .map_err(|e| ApiError::internal("ticket list failed", &e))?;
    Ok(json_response(
        StatusCode::OK,
        &PageBody::of(found, TicketView::from),
    ))
}

/// `GET /api/v1/tickets/{id}`: one ticket, its author and its messages, oldest first.
async fn ticket(
    caller: OpsCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "ticket")?;
    audit_read(&state, &caller, "ops_ticket_read", &format!("ticket {id}")).await?;
    let t = load_ticket(&state, id).await?;
    Ok(json_response(
        StatusCode::OK,
        &ticket_body(&state, t).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerRequest {
    body: String,
}

#[derive(Debug, Serialize)]
struct AnswerBody {
    #[serde(flatten)]
    ticket: TicketBody,
    /// The subscriber's confirmed panel e-mail the answer was mailed to, if any.
    mailed_to: Option<String>,
}

/// The language a subscriber last wrote to the office in (recorded with each ticket and
/// reply in the audit log); Polish when unknown.
async fn ticket_language(state: &AppState, login: &str, ticket_id: i64) -> Lang {
    let entries = audit::recent_by_actor(&state.db, &format!("panel:{login}"), 200)
        .await
        .unwrap_or_default();
    let prefix = format!("ticket {ticket_id}; lang ");
    let of = |e: &audit::AuditEntry| {
        matches!(e.action.as_str(), "ticket_created" | "ticket_reply")
            .then(|| e.detail.strip_prefix(&prefix).and_then(Lang::from_code))
            .flatten()
    };
    entries.iter().find_map(of).unwrap_or(Lang::Pl)
}

/// `POST /api/v1/tickets/{id}/answer` with `{"body": "…"}`: the office's message (status
/// `answered`), mailed to the subscriber's confirmed panel e-mail in their language.
async fn answer_ticket(
    caller: OpsCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "ticket")?;
    let req: AnswerRequest = json_body(body)?;
    let text = req.body.trim().to_owned();
    if text.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "body: must not be empty",
        ));
    }
    if text.chars().count() > MAX_ANSWER {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("body: at most {MAX_ANSWER} characters"),
        ));
    }
    let message = text.clone();
    let message_id = audited(
        &state,
        &caller,
        "ops_ticket_answer",
        &format!("ticket {id}"),
        move |tx| {
            Box::pin(async move {
                panel::add_ticket_message(tx, id, Author::Office, &message)
                    .await
                    .map_err(|e| office_store_error("answering a ticket failed", e))
            })
        },
    )
    .await?;
    let t = load_ticket(&state, id).await?;
    let mut mailed_to = None;
    if let Some(sub) = t.subscriber_id {
        let account = panel::panel_account_of_subscriber(&state.db, sub)
            .await
            .map_err(|e| ApiError::internal("panel account lookup failed", &e))?;
        if let Some(a) = account.filter(|a| a.email_confirmed_at.is_some() && !a.disabled) {
            let lang = ticket_language(&state, &a.login, id).await;
            let link = state.link(&format!("/kontakt/{id}"));
            state.mail(
                Tr::new(lang),
                &a.email,
                "office.mail_answer_subject",
                "office.mail_answer_body",
                &[
                    ("id", &id.to_string()),
                    ("subject", &t.subject),
                    ("message", &text),
                    ("link", &link),
                ],
            );
            mailed_to = Some(a.email);
        }
    }
    tracing::info!(token = %caller.name, ticket = id, message = message_id, "ops API: ticket answered");
    Ok(json_response(
        StatusCode::OK,
        &AnswerBody {
            ticket: ticket_body(&state, t).await?,
            mailed_to,
        },
    ))
}

/// `POST /api/v1/tickets/{id}/close`: the matter is settled (a reply from the subscriber
/// opens it again).
async fn close_ticket(
    caller: OpsCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "ticket")?;
    audited(
        &state,
        &caller,
        "ops_ticket_close",
        &format!("ticket {id}"),
        move |tx| {
            Box::pin(async move {
                panel::set_ticket_status(tx, id, TicketStatus::Closed)
                    .await
                    .map_err(|e| office_store_error("closing a ticket failed", e))
            })
        },
    )
    .await?;
    let t = load_ticket(&state, id).await?;
    Ok(json_response(
        StatusCode::OK,
        &ticket_body(&state, t).await?,
    ))
}

#[derive(Debug, Serialize)]
struct OrderView {
    id: i64,
    subscriber_id: Option<i64>,
    service_id: i64,
    contact_name: Option<String>,
    contact_email: Option<String>,
    contact_phone: Option<String>,
    note: String,
    status: OrderStatus,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<ServiceOrder> for OrderView {
    fn from(o: ServiceOrder) -> OrderView {
        OrderView {
            id: o.id,
            subscriber_id: o.subscriber_id,
            service_id: o.service_id,
            contact_name: o.contact_name,
            contact_email: o.contact_email,
            contact_phone: o.contact_phone,
            note: o.note,
            status: o.status,
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

/// `GET /api/v1/orders?status=new&page=1&per_page=50`: service orders and enquiries in one
/// status (`new` by default), oldest first.
async fn orders(
    caller: OpsCaller,
    State(state): State<AppState>,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = list_params(q)?;
    let status = q.status(OrderStatus::New, OrderStatus::ALL)?;
    let page = q.page();
    audit_read(
        &state,
        &caller,
        "ops_orders_list",
        &format!("status {status}, page {}", page.number),
    )
    .await?;
    let found = content::service_orders_by_status_page(&state.db, status, page)
        .await
        .map_err(|e| ApiError::internal("order list failed", &e))?;
    Ok(json_response(
        StatusCode::OK,
        &PageBody::of(found, OrderView::from),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusRequest {
    status: String,
}

/// `PUT /api/v1/orders/{id}/status` with `{"status": "in_progress"}` (`new`, `in_progress`,
/// `done`, `rejected`); the subscriber sees it in the panel.
async fn order_status(
    caller: OpsCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, "order")?;
    let req: StatusRequest = json_body(body)?;
    let status: OrderStatus = req.status.parse().map_err(|_| {
        let known: Vec<&str> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("status: one of {}", known.join(", ")),
        )
    })?;
    let before = content::service_order(&state.db, id)
        .await
        .map_err(|e| ApiError::internal("order lookup failed", &e))?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no service order {id}")))?;
    audited(
        &state,
        &caller,
        "ops_order_status",
        &format!("order {id}: {} -> {status}", before.status),
        move |tx| {
            Box::pin(async move {
                content::set_service_order_status(tx, id, status)
                    .await
                    .map_err(|e| office_store_error("changing an order failed", e))
            })
        },
    )
    .await?;
    let order = content::service_order(&state.db, id)
        .await
        .map_err(|e| ApiError::internal("order lookup failed", &e))?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no service order {id}")))?;
    Ok(json_response(StatusCode::OK, &OrderView::from(order)))
}

#[derive(Debug, Serialize)]
struct DeletedBody {
    deleted: bool,
}

/// `DELETE /api/v1/news/{ext_id}`: withdraw a news item (publishing and editing is
/// `PUT /api/v1/news`).
async fn delete_news(
    caller: OpsCaller,
    State(state): State<AppState>,
    Path(ext_id): Path<String>,
) -> Result<Response, ApiError> {
    let key = ext_id.clone();
    audited(
        &state,
        &caller,
        "ops_news_delete",
        &format!("news {ext_id}"),
        move |tx| {
            Box::pin(async move {
                match content::delete_news(tx, &key).await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(ApiError::new(
                        StatusCode::NOT_FOUND,
                        format!("no news item {key:?}"),
                    )),
                    Err(e) => Err(ApiError::internal("deleting news failed", &e)),
                }
            })
        },
    )
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &DeletedBody { deleted: true },
    ))
}
