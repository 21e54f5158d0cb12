//! Embedded live-session store: memory for lookups, a SQLite file for durability.
//!
//! Lookups read in-memory maps (sessions by key, an IPv4 index, an IPv6 longest-prefix trie)
//! under a lock held only for the read. Every change goes through one writer task, which
//! drains many pending requests at once (group commit): it plans each one with [`rules`]
//! against the current state plus the earlier changes of the same batch (so per-key order is
//! the arrival order, and merges are serialized), writes the whole batch in one SQLite
//! transaction (WAL, `synchronous=FULL`), and only after the commit publishes it to memory
//! and answers each caller. A failed commit answers every caller of the batch with the
//! error and leaves memory untouched.
//!
//! The file holds only this map's own state (records, IP index owners, NAS restart times,
//! and notes a caller commits with its changes: where in the shared log the map stands, see
//! [`super::stream`]), in tables the store creates itself; `open` loads it all back, so a
//! restart loses nothing.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use ipnet::Ipv6Net;
use prefix_trie::PrefixMap;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, Row, SqliteConnection};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::record::{check_record_times as check_times, decode_record, encode_record, time_ord};
use super::rules::{self, IpKey, Record, Step, Tombstone};
use super::{Applied, ClosedSession, LiveSession, LiveSessions, StoreError};
use ebok_radius::event::{AccountingEvent, StatusType};

/// Requests drained into one transaction at most.
const MAX_BATCH: usize = 2048;
/// Pending requests before `apply` waits for the writer.
const QUEUE: usize = 8192;
/// SQLite page cache of the store file, KiB (grows only as pages are touched; the file
/// holds ≈ 150 bytes per session).
const CACHE_KIB: u32 = 65_536;

type Key = (String, String);
/// The sessions holding one IP (almost always one).
type Holders = Vec<Key>;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS live_record (
        nas TEXT NOT NULL,
        session_id TEXT NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (nas, session_id)
    ) WITHOUT ROWID",
    // The IP index is rebuilt from the live records when the file is opened.
    "DROP TABLE IF EXISTS ip_owner",
    "CREATE TABLE IF NOT EXISTS nas_reset (
        nas TEXT PRIMARY KEY NOT NULL,
        at_ns INTEGER NOT NULL
    ) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS live_note (
        key TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    ) WITHOUT ROWID",
];

/// Hash maps of the store: keys come from authenticated NAS packets, and foldhash (keyed
/// per process) costs a fraction of SipHash on every event of the replay.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The in-memory map, as committed.
#[derive(Default)]
struct State {
    /// Live sessions and tombstones, by key. Boxed: a record is ~270 bytes, and the table
    /// (slots included) is copied whole each time it grows; with boxes that is 56 bytes a
    /// slot (perf of a run from empty: the growth's copying and fresh pages were ~6 % of the
    /// replay thread).
    records: Map<Key, Box<Record>>,
    /// How many of `records` are live sessions.
    live: usize,
    resets: Map<String, OffsetDateTime>,
    /// The live sessions holding each IPv4 address / IPv6 prefix; [`lookup`] picks the one
    /// that ranks first ([`rules::rank`]).
    v4: Map<Ipv4Addr, Holders>,
    v6: PrefixMap<Ipv6Net, Holders>,
    /// Notes committed with the changes ([`EmbeddedSessions::apply_batch_noting`]).
    notes: Map<String, String>,
}

impl State {
    fn session(&self, key: &Key) -> Option<&LiveSession> {
        self.records.get(key).and_then(|r| r.live())
    }

    fn sessions(&self) -> impl Iterator<Item = &LiveSession> {
        self.records.values().filter_map(|r| r.live())
    }

    fn holders_mut(&mut self, ip: IpKey) -> Option<&mut Holders> {
        match ip {
            IpKey::V4(a) => self.v4.get_mut(&a),
            IpKey::V6(n) => self.v6.get_mut(&n),
        }
    }

    /// Add or remove `key` as a holder of `ip`.
    fn index(&mut self, ip: IpKey, key: Key, holds: bool) {
        match (self.holders_mut(ip), holds) {
            (Some(h), true) => {
                if !h.contains(&key) {
                    h.push(key);
                }
            }
            (None, true) => match ip {
                IpKey::V4(a) => {
                    self.v4.insert(a, vec![key]);
                }
                IpKey::V6(n) => {
                    self.v6.insert(n, vec![key]);
                }
            },
            (Some(h), false) => {
                h.retain(|k| *k != key);
                if h.is_empty() {
                    match ip {
                        IpKey::V4(a) => {
                            self.v4.remove(&a);
                        }
                        IpKey::V6(n) => {
                            self.v6.remove(&n);
                        }
                    }
                }
            }
            (None, false) => {}
        }
    }

    /// Store `record` under `key` (`None` removes it), keeping the live count.
    fn put(&mut self, key: Key, record: Option<Record>) {
        use std::collections::hash_map::Entry;
        let now_live = matches!(record, Some(Record::Live(_)));
        let was_live = match (record, self.records.entry(key)) {
            // A replaced record reuses its box.
            (Some(r), Entry::Occupied(mut o)) => {
                std::mem::replace(&mut **o.get_mut(), r).live().is_some()
            }
            (Some(r), Entry::Vacant(v)) => {
                v.insert(Box::new(r));
                false
            }
            (None, Entry::Occupied(o)) => o.remove().live().is_some(),
            (None, Entry::Vacant(_)) => false,
        };
        if was_live {
            self.live -= 1;
        }
        if now_live {
            self.live += 1;
        }
    }

    fn publish(&mut self, changes: Changes) {
        for (key, rec) in changes.records {
            self.put(key, rec);
        }
        self.resets.extend(changes.resets);
        self.notes.extend(changes.notes);
        for (ip, key, holds) in changes.index {
            self.index(ip, key, holds);
        }
    }
}

/// Changes of one batch, not yet committed. `None` values delete. Records are encoded only
/// when the batch is written (a session's later events in the same batch replace them).
#[derive(Default)]
struct Changes {
    /// Final record per key.
    records: Map<Key, Option<Record>>,
    resets: Map<String, OffsetDateTime>,
    /// IP index changes in order: (IP, session, holds it).
    index: Vec<(IpKey, Key, bool)>,
    notes: Vec<(String, String)>,
}

/// The committed state seen through the batch's changes.
struct Txn<'a> {
    base: &'a State,
    ch: Changes,
}

impl Txn<'_> {
    fn record(&self, key: &Key) -> Option<&Record> {
        match self.ch.records.get(key) {
            Some(r) => r.as_ref(),
            None => self.base.records.get(key).map(Box::as_ref),
        }
    }

    fn reset(&self, nas: &str) -> Option<OffsetDateTime> {
        self.ch
            .resets
            .get(nas)
            .or_else(|| self.base.resets.get(nas))
            .copied()
    }

    /// The records (live or tombstone) the batch sees that match the predicates; only those
    /// are cloned.
    fn select(
        &self,
        live: impl Fn(&LiveSession) -> bool,
        tomb: impl Fn(&Tombstone) -> bool,
    ) -> Vec<Record> {
        let wanted = |r: &Record| match r {
            Record::Live(s) => live(s),
            Record::Closed(t) => tomb(t),
        };
        let mut out: Vec<Record> = self
            .base
            .records
            .iter()
            .filter(|(k, r)| !self.ch.records.contains_key(*k) && wanted(r))
            .map(|(_, r)| (**r).clone())
            .collect();
        out.extend(
            self.ch
                .records
                .values()
                .flatten()
                .filter(|r| wanted(r))
                .cloned(),
        );
        out
    }

    /// Execute a planned step for `key`: write the record, release, then claim.
    fn run(&mut self, key: Key, step: Step) -> Result<Applied, StoreError> {
        if !step.write {
            return Ok(step.applied);
        }
        if let Some(r) = &step.record {
            check_times(r)?;
        }
        for ip in &step.releases {
            self.ch.index.push((*ip, key.clone(), false));
        }
        if let Some(Record::Live(_)) = &step.record {
            for ip in &step.claims {
                self.ch.index.push((*ip, key.clone(), true));
            }
        }
        self.ch.records.insert(key, step.record);
        Ok(step.applied)
    }

    fn apply(
        &mut self,
        event: &AccountingEvent,
        expires_at: OffsetDateTime,
    ) -> Result<Applied, StoreError> {
        match event.status {
            StatusType::AccountingOn | StatusType::AccountingOff => self.nas_restart(event),
            _ => {
                let key = (event.nas.clone(), event.session_id.clone());
                let step =
                    rules::step_event(self.record(&key), self.reset(&event.nas), event, expires_at);
                self.run(key, step)
            }
        }
    }

    fn nas_restart(&mut self, event: &AccountingEvent) -> Result<Applied, StoreError> {
        let at = event.event_time;
        if rules::restart_is_stale(self.reset(&event.nas), at) {
            return Ok(Applied {
                stale: true,
                ..Applied::default()
            });
        }
        // Validate the time before recording it (it is stored as nanoseconds).
        time_ord(at)?;
        self.ch.resets.insert(event.nas.clone(), at);
        let victims = self.select(|s| rules::restart_closes(s, &event.nas, at), |_| false);
        let mut applied = Applied::default();
        for s in victims.iter().filter_map(Record::live) {
            let key = (s.nas.clone(), s.session_id.clone());
            let done = self.run(key, rules::step_restart(s, at))?;
            applied.closed.extend(done.closed);
        }
        Ok(applied)
    }

    fn expire(&mut self, now: OffsetDateTime) -> Result<Vec<ClosedSession>, StoreError> {
        let mut closed = Vec::new();
        for r in self.select(|s| s.expires_at <= now, |t| t.until <= now) {
            if let Some(step) = rules::step_deadline(&r, now) {
                let (nas, sid) = r.key();
                let key = (nas.to_owned(), sid.to_owned());
                closed.extend(self.run(key, step)?.closed);
            }
        }
        Ok(closed)
    }
}

enum Command {
    Apply {
        event: Box<AccountingEvent>,
        expires_at: OffsetDateTime,
        reply: oneshot::Sender<Result<Applied, StoreError>>,
    },
    Expire {
        now: OffsetDateTime,
        reply: oneshot::Sender<Result<Vec<ClosedSession>, StoreError>>,
    },
    /// Several events, applied in order within one group commit, with notes committed
    /// alongside.
    ApplyBatch {
        events: Vec<(Arc<AccountingEvent>, OffsetDateTime)>,
        notes: Vec<(String, String)>,
        reply: oneshot::Sender<Vec<Result<Applied, StoreError>>>,
    },
}

enum Outcome {
    Applied(Result<Applied, StoreError>),
    Expired(Result<Vec<ClosedSession>, StoreError>),
    Batch(Vec<Result<Applied, StoreError>>),
}

/// The embedded live-session store (the default on a single machine).
pub struct EmbeddedSessions {
    state: Arc<RwLock<State>>,
    tx: mpsc::Sender<Command>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for EmbeddedSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedSessions").finish_non_exhaustive()
    }
}

impl EmbeddedSessions {
    /// Open (or create) the store file at `path` and load every live session back.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            // Events of many sessions interleave, so upserts land all over the table: with
            // SQLite's default 2 MiB page cache most of them read their leaf page again.
            .pragma("cache_size", format!("-{}", CACHE_KIB))
            // Statement journals in memory, not a temporary file written page by page.
            .pragma("temp_store", "memory")
            .busy_timeout(StdDuration::from_secs(10));
        let mut conn = options.connect().await?;
        for stmt in SCHEMA {
            sqlx::query(stmt).execute(&mut conn).await?;
        }
        let state = load(&mut conn).await?;
        let state = Arc::new(RwLock::new(state));
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer = tokio::spawn(writer(rx, conn, state.clone()));
        Ok(EmbeddedSessions {
            state,
            tx,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Finish pending writes and close the file. Dropping the store does the same in the
    /// background.
    pub async fn close(self) {
        let EmbeddedSessions { tx, writer, .. } = self;
        drop(tx);
        let handle = writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
    }

    /// Apply `events` as [`LiveSessions::apply_batch`] does and commit `notes` (key, value)
    /// in the same transaction, so that a note never gets ahead of the changes it describes.
    pub async fn apply_batch_noting(
        &self,
        events: &[(Arc<AccountingEvent>, OffsetDateTime)],
        notes: Vec<(String, String)>,
    ) -> Vec<Result<Applied, StoreError>> {
        let (reply, answer) = oneshot::channel();
        let sent = self.tx.send(Command::ApplyBatch {
            events: events.to_vec(),
            notes,
            reply,
        });
        match sent.await {
            Ok(()) => match answer.await {
                Ok(rs) => rs,
                Err(_) => events.iter().map(|_| Err(closed_error())).collect(),
            },
            Err(_) => events.iter().map(|_| Err(closed_error())).collect(),
        }
    }

    /// Live sessions held now.
    pub fn live_count(&self) -> usize {
        self.read().live
    }

    /// The note committed under `key`, if any.
    pub fn note(&self, key: &str) -> Option<String> {
        self.read().notes.get(key).cloned()
    }

    /// Copy the store file at `path` (which another process may be writing) to `to` as one
    /// consistent snapshot, for a reader that must not write the original.
    pub async fn copy_file(path: &Path, to: &Path) -> Result<(), StoreError> {
        let mut conn = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .busy_timeout(StdDuration::from_secs(10))
            .connect()
            .await?;
        sqlx::query("VACUUM INTO $1")
            .bind(to.to_string_lossy().into_owned())
            .execute(&mut conn)
            .await?;
        let _ = conn.close().await;
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }
}

fn closed_error() -> StoreError {
    StoreError::Sql(sqlx::Error::PoolClosed)
}

async fn load(conn: &mut SqliteConnection) -> Result<State, StoreError> {
    let mut state = State::default();
    for row in sqlx::query("SELECT nas, session_id, data FROM live_record")
        .fetch_all(&mut *conn)
        .await?
    {
        let key: Key = (row.try_get(0)?, row.try_get(1)?);
        let data: Vec<u8> = row.try_get(2)?;
        let record = decode_record(&data)?;
        if record.key() != (key.0.as_str(), key.1.as_str()) {
            return Err(StoreError::Corrupt(format!(
                "record stored under {key:?} names {:?}",
                record.key()
            )));
        }
        state.put(key, Some(record));
    }
    for row in sqlx::query("SELECT nas, at_ns FROM nas_reset")
        .fetch_all(&mut *conn)
        .await?
    {
        let nas: String = row.try_get(0)?;
        let ns: i64 = row.try_get(1)?;
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        state.resets.insert(nas, at);
    }
    for row in sqlx::query("SELECT key, value FROM live_note")
        .fetch_all(&mut *conn)
        .await?
    {
        state.notes.insert(row.try_get(0)?, row.try_get(1)?);
    }
    let holdings: Vec<(Key, Vec<IpKey>)> = state
        .sessions()
        .map(|s| ((s.nas.clone(), s.session_id.clone()), rules::ip_keys(s)))
        .collect();
    for (key, ips) in holdings {
        for ip in ips {
            state.index(ip, key.clone(), true);
        }
    }
    Ok(state)
}

/// Rows per multi-row statement: few statements per group commit (each statement is a round
/// trip to sqlx's SQLite worker thread), well under SQLite's variable limit.
const ROWS_PER_STATEMENT: usize = 400;

/// `INSERT OR REPLACE INTO {table} ({cols}) VALUES (?,?), (?,?)` for `rows` rows of `width`
/// anonymous parameters.
fn multi_row_sql(head: &str, rows: usize, width: usize) -> String {
    let row = format!("({})", vec!["?"; width].join(","));
    format!("{head} VALUES {}", vec![row; rows].join(","))
}

async fn persist(conn: &mut SqliteConnection, ch: &Changes) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    let (upserts, deletes): (Vec<_>, Vec<_>) = ch.records.iter().partition(|(_, r)| r.is_some());
    for chunk in upserts.chunks(ROWS_PER_STATEMENT) {
        let sql = multi_row_sql(
            "INSERT OR REPLACE INTO live_record (nas, session_id, data)",
            chunk.len(),
            3,
        );
        let mut q = sqlx::query(&sql);
        for ((nas, sid), rec) in chunk {
            let data = encode_record(rec.as_ref().expect("partitioned"))
                .map_err(|e| sqlx::Error::Encode(e.into()))?;
            q = q.bind(nas).bind(sid).bind(data);
        }
        q.execute(&mut *tx).await?;
    }
    for chunk in deletes.chunks(ROWS_PER_STATEMENT) {
        let keys = (0..chunk.len())
            .map(|_| "(?, ?)")
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!("DELETE FROM live_record WHERE (nas, session_id) IN (VALUES {keys})");
        let mut q = sqlx::query(&sql);
        for ((nas, sid), _) in chunk {
            q = q.bind(nas).bind(sid);
        }
        q.execute(&mut *tx).await?;
    }
    for (key, value) in &ch.notes {
        sqlx::query("INSERT OR REPLACE INTO live_note (key, value) VALUES ($1, $2)")
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await?;
    }
    for (nas, at) in &ch.resets {
        // Range checked by `time_ord` before the time was recorded.
        let ns = i64::try_from(at.unix_timestamp_nanos()).unwrap_or(i64::MAX);
        sqlx::query("INSERT OR REPLACE INTO nas_reset (nas, at_ns) VALUES ($1, $2)")
            .bind(nas)
            .bind(ns)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// The single writer: batch, plan, commit, publish, answer.
async fn writer(
    mut rx: mpsc::Receiver<Command>,
    mut conn: SqliteConnection,
    state: Arc<RwLock<State>>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (changes, outcomes) = {
            let guard = state.read().unwrap_or_else(|e| e.into_inner());
            let mut txn = Txn {
                base: &guard,
                ch: Changes::default(),
            };
            let outcomes: Vec<Outcome> = batch
                .iter()
                .map(|cmd| match cmd {
                    Command::Apply {
                        event, expires_at, ..
                    } => Outcome::Applied(txn.apply(event, *expires_at)),
                    Command::Expire { now, .. } => Outcome::Expired(txn.expire(*now)),
                    Command::ApplyBatch { events, notes, .. } => {
                        txn.ch.notes.extend(notes.iter().cloned());
                        Outcome::Batch(events.iter().map(|(e, at)| txn.apply(e, *at)).collect())
                    }
                })
                .collect();
            // Removals of what the committed state does not hold (a record created and
            // dropped within this batch) change nothing: neither the file nor memory needs
            // them.
            let Txn { base, mut ch } = txn;
            ch.records
                .retain(|key, record| record.is_some() || base.records.contains_key(key));
            (ch, outcomes)
        };
        let committed = if changes.records.is_empty()
            && changes.resets.is_empty()
            && changes.notes.is_empty()
        {
            Ok(())
        } else {
            persist(&mut conn, &changes).await
        };
        let failure = match committed {
            Ok(()) => {
                state
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .publish(changes);
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "live-session store: group commit failed");
                Some(e.to_string())
            }
        };
        for (cmd, outcome) in batch.drain(..).zip(outcomes) {
            let err = || {
                StoreError::Sql(sqlx::Error::Protocol(format!(
                    "group commit failed: {}",
                    failure.as_deref().unwrap_or_default()
                )))
            };
            match (cmd, outcome) {
                (Command::Apply { reply, .. }, Outcome::Applied(r)) => {
                    let _ = reply.send(if failure.is_some() { Err(err()) } else { r });
                }
                (Command::Expire { reply, .. }, Outcome::Expired(r)) => {
                    let _ = reply.send(if failure.is_some() { Err(err()) } else { r });
                }
                (Command::ApplyBatch { reply, .. }, Outcome::Batch(rs)) => {
                    let _ = reply.send(if failure.is_some() {
                        rs.into_iter().map(|_| Err(err())).collect()
                    } else {
                        rs
                    });
                }
                _ => unreachable!("outcomes follow their commands"),
            }
        }
    }
    let _ = conn.close().await;
}

#[async_trait]
impl LiveSessions for EmbeddedSessions {
    async fn apply(
        &self,
        event: &AccountingEvent,
        expires_at: OffsetDateTime,
    ) -> Result<Applied, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Apply {
                event: Box::new(event.clone()),
                expires_at,
                reply,
            })
            .await
            .map_err(|_| closed_error())?;
        answer.await.map_err(|_| closed_error())?
    }

    async fn apply_batch(
        &self,
        events: &[(Arc<AccountingEvent>, OffsetDateTime)],
    ) -> Vec<Result<Applied, StoreError>> {
        self.apply_batch_noting(events, Vec::new()).await
    }

    fn batches(&self) -> bool {
        true
    }

    async fn lookup(&self, ip: IpAddr) -> Result<Option<LiveSession>, StoreError> {
        let state = self.read();
        let holders = match ip {
            IpAddr::V4(a) => state.v4.get(&a),
            IpAddr::V6(a) => {
                let host = Ipv6Net::new(a, 128).expect("128 is a valid length");
                state.v6.get_lpm(&host).map(|(_, h)| h)
            }
        };
        Ok(holders
            .into_iter()
            .flatten()
            .filter_map(|k| state.session(k))
            .filter(|s| s.holds(ip))
            .max_by(|a, b| rules::rank(a).cmp(&rules::rank(b)))
            .cloned())
    }

    async fn get(&self, nas: &str, session_id: &str) -> Result<Option<LiveSession>, StoreError> {
        Ok(self
            .read()
            .session(&(nas.to_owned(), session_id.to_owned()))
            .cloned())
    }

    async fn list(&self, nas: Option<&str>) -> Result<Vec<LiveSession>, StoreError> {
        Ok(self
            .read()
            .sessions()
            .filter(|s| nas.is_none_or(|n| s.nas == n))
            .cloned()
            .collect())
    }

    async fn sessions_of_users(&self, users: &[&str]) -> Result<Vec<LiveSession>, StoreError> {
        // Filter under the read lock, clone only the matches.
        Ok(self
            .read()
            .sessions()
            .filter(|s| s.user_name.as_deref().is_some_and(|u| users.contains(&u)))
            .cloned()
            .collect())
    }

    async fn expire(&self, now: OffsetDateTime) -> Result<Vec<ClosedSession>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Command::Expire { now, reply })
            .await
            .map_err(|_| closed_error())?;
        answer.await.map_err(|_| closed_error())?
    }

    async fn count(&self) -> Result<u64, StoreError> {
        Ok(self.read().live as u64)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if self.tx.is_closed() {
            return Err(closed_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    /// Sessions that expire leave tombstones for one more window (their late Interims
    /// must not bring them back); after it, nothing of them is left in memory or the file.
    #[tokio::test]
    async fn expired_sessions_leave_nothing_behind_after_their_tombstone_window() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.sqlite");
        let store = EmbeddedSessions::open(&path).await.unwrap();
        let t0 = datetime!(2026-07-01 10:00 UTC);
        let window = time::Duration::minutes(11);
        let events: Vec<_> = (0..2000)
            .map(|i| {
                let mut e = AccountingEvent::new(StatusType::Start, "nas1", &format!("s{i}"), t0);
                e.framed_ip = Some(Ipv4Addr::from(0x0a00_0000 + i));
                (Arc::new(e), t0 + window)
            })
            .collect();
        assert!(store.apply_batch(&events).await.iter().all(Result::is_ok));
        let closed = store.expire(t0 + window).await.unwrap();
        assert_eq!(closed.len(), 2000);
        assert_eq!(closed[0].stopped_at, t0, "the last sign of life");
        let rows = |path: std::path::PathBuf| async move {
            let mut conn = SqliteConnectOptions::new()
                .filename(&path)
                .connect()
                .await
                .unwrap();
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM live_record")
                .fetch_one(&mut conn)
                .await
                .unwrap();
            n
        };
        assert_eq!(rows(path.clone()).await, 2000, "tombstones for one window");
        assert!(store.expire(t0 + window + window).await.unwrap().is_empty());
        assert_eq!(rows(path.clone()).await, 0);
        assert!(store.read().records.is_empty());
        store.close().await;
    }
}
