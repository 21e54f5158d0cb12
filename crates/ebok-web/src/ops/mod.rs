//! Operations: the JSON ops API, import from the billing system, Prometheus metrics.

pub mod api;
pub use ebok_store::import;
pub mod metrics;
