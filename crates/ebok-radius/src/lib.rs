//! ebok's RADIUS side: it turns accounting datagrams into plain [`event::AccountingEvent`]
//! values and hands them to a [`journal::Journal`]; it knows nothing of storage.
//!
//! Modules: [`packet`] (framing, authenticators, Status-Server, replies), [`decode`]
//! (attributes to an event, with [`dict`]'s FreeRADIUS-format dictionaries and
//! [`line_address`]'s checks of the addresses a NAS claims), [`nas`] (who may send, by
//! source prefix, and with which secret), [`dedup`] (retransmissions answered from the
//! cache), [`listener`] (UDP sockets, `recvmmsg`/`sendmmsg` in `mmsg.rs`), [`capture`]
//! (passive capture of accounting meant for another server), [`coa`] (Disconnect and CoA
//! requests, RFC 5176), [`throttle`] (rate-limited logging), [`journal`] (the seam).
//!
//! The path of an accounting packet: bytes (`listener.rs`, or `capture.rs` from the wire) →
//! source and authenticators (`nas.rs`, `packet.rs`) → retransmission? (`dedup.rs`) →
//! event (`decode.rs`, `dict.rs`, `line_address.rs`) → journal (the [`journal::Journal`]
//! the binary wires in: ebok-live's ingest) → reply (`packet.rs`, `listener.rs`).

// The module maps in these docs name private rooms and constants on purpose: they are
// written for whoever works on the code (`cargo doc --document-private-items`).
#![allow(rustdoc::private_intra_doc_links)]

pub mod capture;
pub mod coa;
pub mod decode;
pub mod dedup;
pub mod dict;
pub mod event;
#[cfg(any(test, feature = "fake-nas"))]
pub mod fake_nas;
pub mod journal;
pub mod line_address;
pub mod listener;
mod mmsg;
pub mod nas;
pub mod packet;
pub mod throttle;
