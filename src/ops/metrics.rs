//! Prometheus metrics: one global recorder (the `metrics` facade), rendered as text at
//! `/metrics` on a listener of its own, away from the panel.

use std::sync::OnceLock;

use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Seconds buckets for latency histograms: 50 µs to 5 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0,
];

/// Install the recorder (once per process) and describe every metric.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .expect("buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // A second install in the same process (tests) keeps the first recorder.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    crate::mail::describe_metrics();
    describe_counter!(
        "ebok_panel_logins_total",
        "Panel login attempts by result (ok, failed, throttled)."
    );
    describe_counter!(
        "ebok_panel_registrations_total",
        "Panel registrations by result (ok, mismatch)."
    );
    describe_counter!(
        "ebok_panel_csrf_refused_total",
        "Panel POSTs refused for a missing or forged CSRF token or a cross-site origin."
    );
    describe_counter!(
        "ebok_radius_packets_total",
        "RADIUS requests received and authenticated, by type (start, stop, interim, accounting_on, accounting_off, status_server)"
    );
    describe_counter!(
        "ebok_radius_dropped_total",
        "RADIUS datagrams dropped without an answer, by reason"
    );
    describe_counter!(
        "ebok_radius_duplicates_total",
        "Retransmitted RADIUS requests, by action (resent: cached reply sent again; in_progress: dropped while the original is processed)"
    );
    describe_counter!(
        "ebok_radius_replies_total",
        "Accounting-Response packets sent (including resent duplicates)"
    );
    describe_counter!(
        "ebok_radius_spooled_total",
        "Accounting events answered after being written to the local spool instead of the stores"
    );
    describe_counter!(
        "ebok_radius_stale_events_total",
        "Events older than the stored state of their session, ignored"
    );
    describe_gauge!("ebok_live_sessions", "Live PPPoE sessions in the live map");
    describe_gauge!("ebok_radius_in_flight", "RADIUS requests being processed");
    describe_gauge!("ebok_spool_depth", "Events waiting in the spool for replay");
    describe_counter!("ebok_spool_appended_total", "Records appended to the spool");
    describe_counter!(
        "ebok_spool_replayed_total",
        "Spool records replayed into the stores"
    );
    describe_histogram!(
        "ebok_store_latency_seconds",
        Unit::Seconds,
        "Latency of store operations, by store (live, sql) and operation"
    );
    describe_counter!(
        "ebok_store_errors_total",
        "Store operations that failed or timed out, by store"
    );
    describe_counter!(
        "ebok_sessions_closed_total",
        "Sessions written to history (stop, NAS restart or expiry)"
    );
    describe_counter!(
        "ebok_sessions_expired_total",
        "Sessions closed because their NAS sent no update in time"
    );
}

/// The `/metrics` route.
pub fn router(handle: PrometheusHandle) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move {
                handle.run_upkeep();
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                )
            }
        }),
    )
}
