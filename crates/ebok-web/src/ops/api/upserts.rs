//! Upserts pushed by the billing system (`PUT /api/v1/<records>`): the same records as
//! `ebok import`, stored in one transaction, each refused record named by its position and
//! field.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::put;
use axum::Router;
use futures_util::future::BoxFuture;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, Visitor};
use serde::Serialize;
use serde_json::Value;

use super::auth::OpsCaller;
use super::{json_response, ApiError, MAX_BODY};
use crate::state::AppState;
use ebok_store::billing::{upsert_invoice_keeping, upsert_payment, InvoiceRecord, PaymentRecord};
use ebok_store::content::{
    upsert_faq, upsert_news, upsert_service, FaqRecord, NewsRecord, ServiceRecord,
};
use ebok_store::repo::Absent;
use ebok_store::repo::{Entity, StoreError, UniqueField, UpsertSummary, Upserted};
use ebok_store::subscribers::{
    upsert_contract_keeping, upsert_ip_assignment_keeping, upsert_pppoe_account_keeping,
    upsert_subscriber_keeping, ContractRecord, IpAssignmentRecord, PppoeAccountRecord,
    SubscriberRecord,
};
use ebok_store::{audit, Db, DbTx};

/// A billing record the API takes in, and the repository upsert that stores it.
pub(super) trait Upsert: DeserializeOwned + Send + Sync + 'static {
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

pub(super) fn upsert_route<R: Upsert>(router: Router<AppState>) -> Router<AppState> {
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
