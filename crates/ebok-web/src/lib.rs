//! ebok's web side: the subscribers' panel (e-BOK) and the operators' JSON API, two routers
//! over one application state ([`web::AppState`]), built from [`web::settings::PanelConfig`]
//! and put side by side by [`app()`] (`app.rs`).
//!
//! Modules:
//! - [`web`]: the panel — pages by concern (`dashboard.rs`, `line.rs`, `stats.rs`,
//!   `billing/`, `office/`, `account/`, `register.rs`, `auth.rs`), the request layer
//!   (`request.rs`: who is calling, CSRF, language), host names (`host.rs`), rate limits
//!   (`ratelimit.rs`), panel sessions (`session_store/`), the HTTP server (`serve.rs`) and
//!   the one catalogue per language (`i18n.rs`, `templates/i18n/`);
//! - [`ops`]: the JSON API under `/api/v1` (`ops/api/`) and Prometheus metrics
//!   (`ops/metrics.rs`);
//! - [`mail`]: configuration, SMTP or file transport, the retry queue;
//! - [`terminal`]: text for a terminal, control characters escaped.
//!
//! The path of a panel request: `host.rs` (a known host name, else nothing) →
//! `ops/metrics.rs` (route counted) → `request.rs` (caller's address behind trusted proxies,
//! line identified through `ebok_store::identify`, session, CSRF) → the page's handler →
//! `ebok_store` (SQL) and `ebok_live` (live map) → an askama template from `templates/`.

// The module maps in these docs name private rooms and constants on purpose: they are
// written for whoever works on the code (`cargo doc --document-private-items`).
#![allow(rustdoc::private_intra_doc_links)]

mod app;
pub mod mail;
pub mod ops;
pub mod state;
pub mod terminal;
pub mod web;
pub use app::app;
#[cfg(test)]
use ebok_store::testkit;
