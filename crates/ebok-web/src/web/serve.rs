//! The panel's HTTP/1 server: our own accept loop, so that no client can hold a connection
//! for free. An idle keep-alive connection and a half-sent header are closed after
//! `[web] header_timeout_secs` (the timer runs from the moment the server waits for a
//! request head), a request that has not been answered within `request_timeout_secs`
//! (a body sent a byte a second) gets 408 and its connection is closed, and at most
//! `max_connections` are open at once (the kernel's backlog holds the rest).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

/// How the connections are bounded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    pub fn from_config(web: &crate::web::settings::WebConfig) -> Self {
        Limits {
            header_timeout: Duration::from_secs(web.header_timeout_secs),
            request_timeout: Duration::from_secs(web.request_timeout_secs),
            max_connections: web.max_connections,
        }
    }
}

/// Serve `app` on `listener` until `shutdown` turns true, then let the open connections
/// finish their requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("never closed"),
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and the like: wait a little instead of spinning.
                    tracing::warn!(error = %e, "web: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        metrics::gauge!("ebok_http_connections").increment(1.0);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let app = app.clone();
            async move {
                let answer = app.oneshot(req.map(axum::body::Body::new));
                Ok::<Response, Infallible>(
                    match tokio::time::timeout(limits.request_timeout, answer).await {
                        Ok(Ok(resp)) => resp,
                        Ok(Err(never)) => match never {},
                        Err(_) => too_slow(),
                    },
                )
            }
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = conn.await;
            metrics::gauge!("ebok_http_connections").decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// 408, and the connection closes (its request was not read in time).
fn too_slow() -> Response {
    metrics::counter!("ebok_http_timeouts_total").increment(1);
    let mut resp = (
        StatusCode::REQUEST_TIMEOUT,
        "408 Request Timeout: the request took too long to arrive.\n",
    )
        .into_response();
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}
