//! ebok: RADIUS accounting server keeping a live IP → PPPoE session → subscriber map, and the
//! subscribers' self-service panel.

pub mod config;
pub mod demo;
pub mod mail;
pub mod ops;
pub use ebok_live::{background, dead_letter, history_writer, ingest, sessions, spool};
pub use ebok_radius as radius;
pub use ebok_store as store;
pub use ebok_store::{identify, on_pool, on_tx, tz};
pub mod server;
pub mod systemd;
pub mod terminal;
#[cfg(test)]
use ebok_store::testkit;
pub mod web;
