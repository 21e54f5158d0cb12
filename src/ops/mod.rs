//! Operations: Prometheus metrics (and, later, the ops API and import).

pub mod metrics;
