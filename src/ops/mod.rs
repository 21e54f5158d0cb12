//! Operations: the JSON ops API, import from the billing system, Prometheus metrics.

pub mod api;
pub mod import;
pub mod metrics;
