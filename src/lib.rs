//! ebok: RADIUS accounting server keeping a live IP → PPPoE session → subscriber map, and the
//! subscribers' self-service panel.

pub mod background;
pub mod config;
pub mod dead_letter;
pub mod demo;
pub mod history_writer;
pub mod identify;
pub mod ingest;
pub mod mail;
pub mod ops;
pub use ebok_radius as radius;
pub mod server;
pub mod sessions;
pub mod spool;
pub mod store;
pub mod systemd;
pub mod terminal;
#[cfg(test)]
mod testkit;
pub mod tz;
pub mod web;
