//! ebok: RADIUS accounting server keeping a live IP → PPPoE session → subscriber map, and the
//! subscribers' self-service panel. This crate is the binary's: [`config`] (the file, the
//! environment and flags as plain data, checked), [`server`] (wires the crates together:
//! listener → ingest → stores, the panel and the ops API over one state, metrics),
//! [`systemd`] (notify, watchdog, reload), [`notices`] (the `ebok notices` command) and
//! [`demo`]. The other crates' modules are
//! re-exported under their usual names; they depend one way:
//! `ebok-radius` ← `ebok-live` ← `ebok-store` ← `ebok-web` ← `ebok`.

// The module maps in these docs name private rooms and constants on purpose: they are
// written for whoever works on the code (`cargo doc --document-private-items`).
#![allow(rustdoc::private_intra_doc_links)]

pub mod config;
pub mod demo;
pub mod notices;
pub use ebok_live::{
    background, dead_letter, history_writer, ingest, journal, redis_link, sessions,
};
pub use ebok_radius as radius;
pub use ebok_store as store;
#[cfg(test)]
use ebok_store::testkit;
pub use ebok_store::{identify, on_pool, on_tx, tz};
pub use ebok_web::{mail, ops, terminal, web};
pub mod server;
pub mod systemd;
