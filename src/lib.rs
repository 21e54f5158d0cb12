//! ebok: RADIUS accounting server keeping a live IP → PPPoE session → subscriber map, and the
//! subscribers' self-service panel.

pub mod config;
pub mod demo;
pub use ebok_live::{background, dead_letter, history_writer, ingest, journal, sessions};
pub use ebok_radius as radius;
pub use ebok_store as store;
#[cfg(test)]
use ebok_store::testkit;
pub use ebok_store::{identify, on_pool, on_tx, tz};
pub use ebok_web::{mail, ops, terminal, web};
pub mod server;
pub mod systemd;
