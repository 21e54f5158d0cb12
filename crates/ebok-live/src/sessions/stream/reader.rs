//! Reading one stream of the log into the local map: blocking reads on a connection of the
//! reader's own, each batch applied in one commit together with the position it reached.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::Value;
use time::OffsetDateTime;
use tokio::sync::{oneshot, watch};

use super::log::{decode_entry, EntryId, Origin, FIELD};
use super::Shared;
use crate::redis_link::{LinkOptions, RedisLink, RedisTarget};
use crate::sessions::embedded::EmbeddedSessions;
use crate::sessions::{Applied, StoreError};

/// Entries read per call at most.
const READ_COUNT: usize = 4096;
/// How long a read waits for new entries.
const BLOCK: Duration = Duration::from_secs(1);
/// Longest pause between attempts after a failure.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The note under which the local snapshot keeps how far it has read stream `key`.
pub(super) fn position_note(key: &str) -> String {
    format!("log:{key}")
}

/// One stream's reader.
pub(super) struct Reader {
    pub stream: usize,
    pub key: String,
    pub target: RedisTarget,
    pub local: Arc<EmbeddedSessions>,
    pub shared: Arc<Shared>,
    pub stop: watch::Receiver<bool>,
    /// Told once the stream has been read to its end.
    pub ready: Option<oneshot::Sender<()>>,
}

/// What `XINFO STREAM` says of a stream's ids; `None` when the stream does not exist.
struct StreamIds {
    last_generated: EntryId,
    /// The oldest entry still held; `None` when all were trimmed.
    first: Option<EntryId>,
}

async fn stream_ids(link: &RedisLink, key: &str) -> Result<Option<StreamIds>, StoreError> {
    let mut link = link.clone();
    let info: Value = match redis::cmd("XINFO")
        .arg("STREAM")
        .arg(key)
        .query_async(&mut link)
        .await
    {
        Ok(v) => v,
        Err(e) if e.to_string().contains("no such key") => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let fields: HashMap<String, Value> = match info {
        Value::Array(items) => items
            .chunks(2)
            .filter_map(|kv| match kv {
                [Value::BulkString(k), v] => {
                    Some((String::from_utf8_lossy(k).into_owned(), v.clone()))
                }
                [Value::SimpleString(k), v] => Some((k.clone(), v.clone())),
                _ => None,
            })
            .collect(),
        Value::Map(items) => items
            .into_iter()
            .filter_map(|(k, v)| match k {
                Value::BulkString(k) => Some((String::from_utf8_lossy(&k).into_owned(), v)),
                Value::SimpleString(k) => Some((k, v)),
                _ => None,
            })
            .collect(),
        other => {
            return Err(StoreError::Protocol(format!(
                "XINFO STREAM answered {other:?}"
            )))
        }
    };
    let id = |name: &str| -> EntryId {
        match fields.get(name) {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(b).parse().unwrap_or_default(),
            Some(Value::SimpleString(s)) => s.parse().unwrap_or_default(),
            _ => EntryId::default(),
        }
    };
    let first = match fields.get("first-entry") {
        Some(Value::Array(entry)) => match entry.first() {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(b).parse().ok(),
            Some(Value::SimpleString(s)) => s.parse().ok(),
            _ => None,
        },
        _ => None,
    };
    Ok(Some(StreamIds {
        last_generated: id("last-generated-id"),
        first,
    }))
}

/// The id of the newest entry in stream `key`, if it has any.
pub(super) async fn last_id(link: &RedisLink, key: &str) -> Result<Option<EntryId>, StoreError> {
    let mut link = link.clone();
    let newest: Value = redis::cmd("XREVRANGE")
        .arg(key)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut link)
        .await?;
    let stream = Value::Array(vec![Value::SimpleString(key.to_owned()), newest]);
    Ok(entries_of(Value::Array(vec![stream]))?
        .last()
        .map(|(id, _)| *id))
}

/// The first stream whose entries after the snapshot's position may have been trimmed away
/// (the snapshot missed them), if any: trimming removes the oldest entries, so when entries
/// newer than the position were added and the oldest one left is newer still, some may be
/// gone. (Starting afresh from the retained log is always safe, only slower: every live
/// session has an event in it.)
pub(super) async fn snapshot_gap(
    link: &RedisLink,
    keys: &[String],
    local: &EmbeddedSessions,
) -> Result<Option<String>, StoreError> {
    for key in keys {
        let Some(pos) = local.note(&position_note(key)) else {
            continue;
        };
        let pos: EntryId = pos.parse().unwrap_or_default();
        if let Some(ids) = stream_ids(link, key).await? {
            let missed = match ids.first {
                Some(first) => first > pos,
                None => ids.last_generated > pos,
            };
            if pos > EntryId::default() && pos <= ids.last_generated && missed {
                return Ok(Some(key.clone()));
            }
        }
    }
    Ok(None)
}

/// Read the stream until stopped, reconnecting after failures.
pub(super) async fn run(mut r: Reader) {
    let mut backoff = Duration::from_millis(50);
    loop {
        if *r.stop.borrow() {
            return;
        }
        let options = LinkOptions {
            response_timeout: Some(BLOCK + Duration::from_secs(5)),
            ..LinkOptions::default()
        };
        let outcome = match r.target.connect(options).await {
            Ok(link) => read(&mut r, &link, &mut backoff).await,
            Err(e) => Err(e.into()),
        };
        match outcome {
            Ok(()) => return,
            Err(e) => {
                r.shared.connection_failed();
                metrics::counter!("ebok_log_read_errors_total").increment(1);
                tracing::warn!(stream = %r.key, error = %e, "reading the live-session log failed; retrying");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = r.stop.changed() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Read on one connection until stopped (`Ok`) or the connection fails.
async fn read(r: &mut Reader, link: &RedisLink, backoff: &mut Duration) -> Result<(), StoreError> {
    let note = position_note(&r.key);
    let mut pos: EntryId = r
        .local
        .note(&note)
        .and_then(|p| p.parse().ok())
        .unwrap_or_default();
    // A log that restarted below our position (Redis lost it, or a failover lost its
    // newest entries) is read from its start again: applying an entry twice changes nothing.
    if let Some(ids) = stream_ids(link, &r.key).await? {
        if ids.last_generated < pos {
            tracing::warn!(stream = %r.key, position = %pos, last = %ids.last_generated,
                "the log is behind this instance's position; reading it again from its start");
            pos = EntryId::default();
        }
    }
    let mut link = link.clone();
    loop {
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&r.key)
            .arg(pos.to_string());
        let answer: Value = tokio::select! {
            a = cmd.query_async(&mut link) => a?,
            _ = r.stop.changed() => return Ok(()),
        };
        let received_at = OffsetDateTime::now_utc();
        *backoff = Duration::from_millis(50);
        let entries = entries_of(answer)?;
        let n = entries.len();
        let mut outcomes = Vec::new();
        if let Some((last, _)) = entries.last() {
            r.shared.set_behind(r.stream);
            let last = *last;
            outcomes = apply(r, &note, last, entries).await?;
            pos = last;
        }
        // An answer with room to spare held everything there was when it left Redis.
        if n < READ_COUNT {
            r.shared.set_caught_up(r.stream, received_at);
            if let Some(ready) = r.ready.take() {
                let _ = ready.send(());
            }
        }
        for (origin, result) in outcomes {
            r.shared.resolve(origin, result);
        }
    }
}

/// An entry as read: its id and its bytes (`None`: it has no `e` field).
type RawEntry = (EntryId, Option<Vec<u8>>);

/// The entries of an `XREAD` answer for one stream.
fn entries_of(answer: Value) -> Result<Vec<RawEntry>, StoreError> {
    let bad = |what: &str| StoreError::Protocol(format!("XREAD answer: {what}"));
    let streams = match answer {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(s) => s,
        Value::Map(m) => m
            .into_iter()
            .map(|(k, v)| Value::Array(vec![k, v]))
            .collect(),
        _ => return Err(bad("not a list of streams")),
    };
    let mut out = Vec::new();
    for stream in streams {
        let Value::Array(mut kv) = stream else {
            return Err(bad("not a stream"));
        };
        let Some(Value::Array(items)) = kv.pop() else {
            return Err(bad("no entries"));
        };
        for item in items {
            let Value::Array(parts) = item else {
                return Err(bad("not an entry"));
            };
            let mut parts = parts.into_iter();
            let id = match parts.next() {
                Some(Value::BulkString(b)) => String::from_utf8_lossy(&b).parse::<EntryId>(),
                Some(Value::SimpleString(s)) => s.parse::<EntryId>(),
                _ => return Err(bad("no id")),
            }
            .map_err(|e| bad(&e))?;
            let fields = match parts.next() {
                Some(Value::Array(f)) => f,
                Some(Value::Map(m)) => m.into_iter().flat_map(|(k, v)| [k, v]).collect(),
                _ => Vec::new(),
            };
            let mut bytes = None;
            let mut fields = fields.into_iter();
            while let (Some(k), Some(v)) = (fields.next(), fields.next()) {
                if matches!(&k, Value::BulkString(k) if k == FIELD.as_bytes()) {
                    if let Value::BulkString(b) = v {
                        bytes = Some(b);
                    }
                }
            }
            out.push((id, bytes));
        }
    }
    Ok(out)
}

/// Apply read entries in one commit that also moves the position to `last`; each entry's
/// outcome, for the instance's waiting appender. An entry that is not one (another
/// version's, damaged) is counted and passed over.
async fn apply(
    r: &Reader,
    note: &str,
    last: EntryId,
    entries: Vec<RawEntry>,
) -> Result<Vec<(Origin, Result<Applied, StoreError>)>, StoreError> {
    let mut origins = Vec::with_capacity(entries.len());
    let mut events = Vec::with_capacity(entries.len());
    for (id, bytes) in entries {
        match bytes.as_deref().and_then(decode_entry) {
            Some((origin, event, expires_at)) => {
                origins.push(origin);
                events.push((Arc::new(event), expires_at));
            }
            None => {
                metrics::counter!("ebok_log_entries_refused_total").increment(1);
                tracing::warn!(stream = %r.key, entry = %id, "passing over a log entry that is not one");
            }
        }
    }
    loop {
        let results = r
            .local
            .apply_batch_noting(&events, vec![(note.to_owned(), last.to_string())])
            .await;
        // A failed commit fails every event alike; a permanent refusal concerns one event.
        if let Some(Err(e)) = results
            .iter()
            .find(|x| matches!(x, Err(e) if !e.is_permanent()))
        {
            tracing::error!(stream = %r.key, error = %e, "the local snapshot did not take a batch of the log; retrying");
            tokio::time::sleep(Duration::from_millis(500)).await;
            if *r.stop.borrow() {
                return Err(StoreError::Protocol("stopped".into()));
            }
            continue;
        }
        return Ok(origins.into_iter().zip(results).collect());
    }
}
