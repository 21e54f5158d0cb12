//! Operations: Prometheus metrics (and, later, the ops API and import).

pub mod api;
pub mod metrics;
