//! ebok: RADIUS accounting server keeping a live IP → PPPoE session → subscriber map, and the
//! subscribers' self-service panel.

pub mod config;
pub mod demo;
pub mod identify;
pub mod mail;
pub mod ops;
pub use ebok_live::{background, dead_letter, history_writer, ingest, sessions, spool};
pub use ebok_radius as radius;
pub mod server;
pub mod store;
pub mod systemd;
pub mod terminal;
#[cfg(test)]
mod testkit;
pub mod tz;
pub mod web;
