//! ebok's live side: what accounting does to the live map, durably.
//!
//! Modules:
//! - [`sessions`]: the domain — [`sessions::LiveSession`], [`sessions::ClosedSession`],
//!   what an apply changed ([`sessions::Applied`]) — the rules every store applies
//!   (`sessions/rules.rs`), and the two live-map stores: embedded (`sessions/embedded.rs`,
//!   one machine) and shared (`sessions/stream/`: each instance's embedded map, kept in
//!   step with the others through an event log in Redis).
//! - [`redis_link`]: where Redis is (one server, Cluster, Sentinel) and a link to it.
//! - [`journal`]: the journal on disk — events fsync'd before a NAS is answered, replayed into
//!   the stores; history records the SQL database could not take.
//! - [`ingest`]: the accounting handler behind the RADIUS listener's journal seam: decides
//!   when a NAS is answered ([`ingest::AckAfter`]), replays the journal, sweeps expiry.
//! - [`history_writer`]: closed sessions and traffic to a [`history_writer::HistoryStore`]
//!   (the SQL history, in ebok-store) in group commits, or to the journal when it fails.
//! - [`dead_letter`]: journal records that can never apply, set aside with their reason.
//! - [`background`]: the low-priority runtime the replay and the history writer run on.
//! - [`redis_link`]: where Redis is (one server, a Cluster, or Sentinel) and the link every
//!   Redis store talks through.
//!
//! The path of an accounting packet: bytes → checks and event (ebok-radius: `listener.rs`,
//! `packet.rs`, `decode.rs`, `dedup.rs`) → journal (`ingest.rs` through the `Journal` seam,
//! `journal/writer.rs`) → reply (`listener.rs`); then journal → stores (`ingest.rs`,
//! `journal/replay.rs`, `sessions/rules.rs`, `sessions/embedded.rs`; shared: the append in
//! `sessions/stream/mod.rs`, read back by `sessions/stream/reader.rs` into the embedded map) →
//! history (`history_writer.rs`, then ebok-store's `store/history.rs`).

// The module maps in these docs name private rooms and constants on purpose: they are
// written for whoever works on the code (`cargo doc --document-private-items`).
#![allow(rustdoc::private_intra_doc_links)]

pub mod background;
pub mod dead_letter;
pub mod history_writer;
pub mod ingest;
pub mod journal;
pub mod redis_link;
pub mod sessions;
