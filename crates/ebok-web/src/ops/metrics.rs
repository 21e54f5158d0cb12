//! Prometheus metrics: one global recorder (the `metrics` facade), rendered as text at
//! `/metrics` on a listener of its own, away from the panel.

use std::collections::BTreeSet;
use std::sync::{OnceLock, RwLock};

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
            register_families();
            handle
        })
        .clone()
}

/// Every counter and gauge family with each of its label sets, at zero: a dashboard or an
/// alert finds the series from the start, not only after the first event of its kind.
fn register_families() {
    use ebok_radius::event::StatusType;
    use ebok_radius::line_address::Refused;
    use ebok_radius::packet::DropReason;
    for status in [
        StatusType::Start,
        StatusType::Stop,
        StatusType::InterimUpdate,
        StatusType::AccountingOn,
        StatusType::AccountingOff,
    ] {
        metrics::counter!("ebok_radius_packets_total", "type" => status.label()).absolute(0);
    }
    metrics::counter!("ebok_radius_packets_total", "type" => "status_server").absolute(0);
    for reason in DropReason::ALL
        .iter()
        .map(DropReason::label)
        .chain(["not_durable", "journal_full"])
    {
        metrics::counter!("ebok_radius_dropped_total", "reason" => reason).absolute(0);
    }
    for action in ["resent", "in_progress"] {
        metrics::counter!("ebok_radius_duplicates_total", "action" => action).absolute(0);
    }
    for attribute in ["Event-Timestamp", "Acct-Delay-Time", "Acct-Session-Time"] {
        metrics::counter!("ebok_radius_times_corrected_total", "attribute" => attribute)
            .absolute(0);
    }
    for reason in [
        Refused::Unspecified,
        Refused::Broadcast,
        Refused::Multicast,
        Refused::Loopback,
        Refused::LinkLocal,
        Refused::Reserved,
        Refused::ShortPrefix,
    ] {
        metrics::counter!("ebok_radius_addresses_refused_total", "reason" => reason.label())
            .absolute(0);
    }
    for kind in ["event", "history"] {
        metrics::counter!("ebok_journal_set_aside_total", "kind" => kind).absolute(0);
    }
    for store in ["live", "sql"] {
        metrics::counter!("ebok_store_errors_total", "store" => store).absolute(0);
    }
    for result in ["ok", "failed", "throttled"] {
        metrics::counter!("ebok_panel_logins_total", "result" => result).absolute(0);
    }
    for result in ["ok", "mismatch"] {
        metrics::counter!("ebok_panel_registrations_total", "result" => result).absolute(0);
    }
    for name in [
        "ebok_radius_replies_total",
        "ebok_radius_journaled_total",
        "ebok_radius_stale_events_total",
        "ebok_sessions_closed_total",
        "ebok_sessions_expired_total",
        "ebok_journal_appended_total",
        "ebok_journal_replayed_total",
        "ebok_journal_segments_removed_total",
        "ebok_log_reappended_total",
        "ebok_log_read_errors_total",
        "ebok_log_entries_refused_total",
        "ebok_panel_csrf_refused_total",
        "ebok_panel_password_checks_refused_total",
        "ebok_http_wrong_host_total",
        "ebok_http_timeouts_total",
    ] {
        metrics::counter!(name).absolute(0);
    }
    for name in [
        "ebok_live_sessions",
        "ebok_radius_in_flight",
        "ebok_journal_depth",
        "ebok_journal_bytes",
        "ebok_journal_max_bytes",
        "ebok_http_connections",
        "ebok_notices_active",
    ] {
        metrics::gauge!(name).increment(0.0);
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    crate::mail::describe_metrics();
    describe_counter!(
        "ebok_http_requests_total",
        "HTTP requests of the panel and the ops API, by matched route pattern (unmatched for 404s), method and status class"
    );
    describe_histogram!(
        "ebok_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request handling time, by matched route pattern and method"
    );
    describe_counter!(
        "ebok_capture_frames_total",
        "Frames read by passive capture (before any check)"
    );
    describe_counter!(
        "ebok_capture_reassembled_total",
        "IP datagrams reassembled from fragments by passive capture"
    );
    describe_counter!(
        "ebok_capture_dropped_total",
        "Captured frames or fragments not turned into a RADIUS request, by reason"
    );
    describe_histogram!(
        "ebok_invoice_pdf_seconds",
        Unit::Seconds,
        "Time to render one invoice PDF"
    );
    describe_counter!(
        "ebok_payment_reminders_total",
        "Invoices a payment reminder was mailed about, by kind (before, after the due date)"
    );
    describe_counter!(
        "ebok_coa_requests_total",
        "RFC 5176 requests sent to NAS devices, by action (Disconnect, CoA) and result (ack, nak, timeout)"
    );
    describe_gauge!(
        "ebok_nas_last_seen_timestamp_seconds",
        Unit::Seconds,
        "Unix time of the last accounting event this instance received per NAS entry"
    );
    describe_counter!(
        "ebok_panel_logins_total",
        "Panel login attempts by result (ok, failed, throttled)."
    );
    describe_counter!(
        "ebok_panel_registrations_total",
        "Panel registrations by result (ok, mismatch)."
    );
    describe_counter!(
        "ebok_panel_password_checks_refused_total",
        "Password checks refused with 503 because as many as the machine has cores were running and the queue behind them was full"
    );
    describe_gauge!(
        "ebok_http_connections",
        "Panel and ops API connections open now (at most [web] max_connections)"
    );
    describe_counter!(
        "ebok_http_timeouts_total",
        "Requests answered 408 because they were not complete within [web] request_timeout_secs"
    );
    describe_counter!(
        "ebok_http_wrong_host_total",
        "HTTP requests refused with 421 because their Host is not one of the panel's names (public_url, host_aliases)"
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
        "ebok_radius_journaled_total",
        "Accounting events answered once in the local journal, before the stores took them: every event with ack_after = journal; with ack_after = store, those the stores did not take in time"
    );
    describe_counter!(
        "ebok_radius_stale_events_total",
        "Events older than the stored state of their session, or repeating it, ignored"
    );
    describe_counter!(
        "ebok_radius_times_corrected_total",
        "Events recorded with an impossible time bounded at the door, by attribute (Event-Timestamp, Acct-Delay-Time, Acct-Session-Time)"
    );
    describe_counter!(
        "ebok_radius_addresses_refused_total",
        "Addresses taken out of events because they cannot identify a subscriber's line, by reason (multicast, broadcast, unspecified, loopback, link_local, reserved, short_prefix)"
    );
    describe_counter!(
        "ebok_journal_set_aside_total",
        "Journal records that can never be applied, set aside in dead-letter.jsonl so the replay goes on, by kind (event, history)"
    );
    describe_gauge!("ebok_live_sessions", "Live PPPoE sessions in the live map");
    describe_gauge!(
        "ebok_notices_active",
        "Outage and maintenance notices shown now (started, not resolved)"
    );
    describe_gauge!("ebok_radius_in_flight", "RADIUS requests being processed");
    describe_gauge!(
        "ebok_journal_depth",
        "Events waiting in the spool for replay"
    );
    describe_gauge!(
        "ebok_journal_bytes",
        "Bytes of spool records waiting for replay (what radius.journal_max_bytes caps)"
    );
    describe_gauge!(
        "ebok_journal_max_bytes",
        "The cap on ebok_journal_bytes past which events are refused (radius.journal_max_bytes; 0: none)"
    );
    describe_counter!(
        "ebok_journal_segments_removed_total",
        "Journal segment files deleted once replayed"
    );
    describe_counter!(
        "ebok_journal_appended_total",
        "Records appended to the journal"
    );
    describe_counter!(
        "ebok_journal_replayed_total",
        "Journal records replayed into the stores"
    );
    describe_counter!(
        "ebok_log_reappended_total",
        "Entries appended to the shared live-session log again after a Redis connection failed"
    );
    describe_counter!(
        "ebok_log_read_errors_total",
        "Failed reads of the shared live-session log (each followed by a reconnect)"
    );
    describe_counter!(
        "ebok_log_entries_refused_total",
        "Entries of the shared live-session log passed over as not decodable"
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

/// Marks a response whose request matched a route (and was counted under it).
#[derive(Clone, Copy)]
struct Routed;

/// Route layer: count the request and its duration under its matched route pattern
/// (`/faktury/{id}`, never the raw path: ids would explode the label set).
pub(crate) async fn track_route(
    route: axum::extract::MatchedPath,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = request.method().clone();
    let started = std::time::Instant::now();
    let mut response = next.run(request).await;
    record_http(
        route_label(route.as_str()),
        &method,
        response.status(),
        started,
    );
    response.extensions_mut().insert(Routed);
    response
}

/// Outer layer: requests no route matched (404 fallbacks) are counted as `unmatched`.
pub(crate) async fn track_unmatched(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = request.method().clone();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    if response.extensions().get::<Routed>().is_none() {
        record_http("unmatched", &method, response.status(), started);
    }
    response
}

/// A matched route pattern as a `&'static str` label: the patterns are the router's own, a
/// small fixed set, so each is leaked once and no request allocates its label.
fn route_label(route: &str) -> &'static str {
    static ROUTES: RwLock<BTreeSet<&'static str>> = RwLock::new(BTreeSet::new());
    if let Some(known) = ROUTES.read().ok().and_then(|r| r.get(route).copied()) {
        return known;
    }
    let mut routes = ROUTES.write().unwrap_or_else(|e| e.into_inner());
    match routes.get(route) {
        Some(known) => known,
        None => {
            let leaked: &'static str = Box::leak(route.into());
            routes.insert(leaked);
            leaked
        }
    }
}

fn record_http(
    route: &'static str,
    method: &axum::http::Method,
    status: axum::http::StatusCode,
    started: std::time::Instant,
) {
    let method = method_label(method);
    metrics::histogram!("ebok_http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    let class = match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    metrics::counter!("ebok_http_requests_total", "route" => route, "method" => method, "status" => class)
        .increment(1);
}

/// A fixed label for the method, so a client cannot invent label values.
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    /// Every metric the Grafana dashboard queries is one ebok describes (so a renamed
    /// metric cannot leave an empty panel behind).
    #[test]
    fn the_dashboard_queries_only_described_metrics() {
        let dashboard = include_str!("../../../../docs/grafana/ebok.json");
        let described = [include_str!("metrics.rs"), include_str!("../mail/mod.rs")].concat();
        let mut names: Vec<&str> = dashboard
            .match_indices("ebok_")
            .map(|(i, _)| {
                let rest = &dashboard[i..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                    .unwrap_or(rest.len());
                &rest[..end]
            })
            .filter(|n| n.len() > "ebok_".len() && *n != "ebok_overview")
            .collect();
        names.sort_unstable();
        names.dedup();
        assert!(names.len() > 20, "{names:?}");
        for name in names {
            let family = name.strip_suffix("_bucket").unwrap_or(name);
            assert!(
                described.contains(&format!("\"{family}\",")),
                "{family} is on the dashboard but not described"
            );
        }
    }
}
