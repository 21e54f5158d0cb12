//! Which host names the panel answers to.
//!
//! The panel trusts the caller's IP: registration works only from one's own line. A page
//! on another site that rebinds its DNS name to the panel's address (DNS rebinding) makes
//! the victim's browser send requests from the victim's line, under the other site's name,
//! with that site's script reading the answers. Such requests carry the other site's name
//! in `Host`, so every request whose `Host` is not the panel's own (the host of
//! `[web] public_url`, or one of `[web] host_aliases`) is refused with 421 Misdirected
//! Request before any handler sees it. Without `public_url` (allowed only for a panel
//! listening on loopback) the loopback names are the panel's; `ebok run --demo` without
//! `public_url` answers to any name.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::web::settings::{host_name as normalise, WebConfig};

/// The host names the panel answers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedHosts {
    /// `ebok run --demo` without `public_url`: any.
    Any,
    /// Lower-case names and addresses, without port or brackets.
    Names(Vec<String>),
}

impl AllowedHosts {
    pub fn from_config(web: &WebConfig, demo: bool) -> Self {
        let mut names: Vec<String> = web.host_aliases.iter().map(|a| normalise(a)).collect();
        match web.public_host() {
            Some(host) => names.push(host),
            None if demo => return AllowedHosts::Any,
            None => {
                names.extend(["localhost", "127.0.0.1", "::1"].map(str::to_owned));
                if web.listen.ip().is_loopback() {
                    names.push(web.listen.ip().to_string());
                }
            }
        }
        names.sort();
        names.dedup();
        AllowedHosts::Names(names)
    }

    /// Whether a request with this `Host` header value is for the panel.
    pub fn allows(&self, host: Option<&str>) -> bool {
        match self {
            AllowedHosts::Any => true,
            AllowedHosts::Names(names) => {
                host.is_some_and(|h| names.iter().any(|n| *n == normalise(strip_port(h))))
            }
        }
    }
}

/// `name:port` → `name`, `[v6]:port` and `[v6]` → `v6`; a bare IPv6 address stays whole.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// The layer: 421 for a request to any other name.
pub async fn check(
    State(allowed): State<std::sync::Arc<AllowedHosts>>,
    req: Request,
    next: Next,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    if allowed.allows(host) {
        return next.run(req).await;
    }
    metrics::counter!("ebok_http_wrong_host_total").increment(1);
    (
        StatusCode::MISDIRECTED_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "421 Misdirected Request: this server does not serve that host name.\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web(public_url: &str, aliases: &[&str], listen: &str) -> WebConfig {
        WebConfig {
            public_url: public_url.into(),
            host_aliases: aliases.iter().map(|a| a.to_string()).collect(),
            listen: listen.parse().unwrap(),
            ..WebConfig::default()
        }
    }

    #[test]
    fn only_the_panels_own_names() {
        let a = AllowedHosts::from_config(
            &web(
                "https://eBOK.example.pl/",
                &["panel.example.pl", "192.0.2.8"],
                "0.0.0.0:8080",
            ),
            false,
        );
        for ok in [
            "ebok.example.pl",
            "EBOK.example.pl:443",
            "ebok.example.pl.",
            "panel.example.pl:8080",
            "192.0.2.8:8080",
        ] {
            assert!(a.allows(Some(ok)), "{ok}");
        }
        for refused in [
            "evil.example",
            "ebok.example.pl.evil.example",
            "localhost:8080",
            "127.0.0.1",
            "",
        ] {
            assert!(!a.allows(Some(refused)), "{refused}");
        }
        assert!(!a.allows(None));
    }

    #[test]
    fn loopback_panels_answer_to_loopback_names_and_the_demo_to_any() {
        let a = AllowedHosts::from_config(&web("", &[], "127.0.0.1:8080"), false);
        for ok in [
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "LOCALHOST",
        ] {
            assert!(a.allows(Some(ok)), "{ok}");
        }
        assert!(!a.allows(Some("rebound.evil.example:8080")));
        let demo = AllowedHosts::from_config(&web("", &[], "0.0.0.0:8080"), true);
        assert!(demo.allows(Some("anything")));
        // A demo with a public_url still checks.
        let demo =
            AllowedHosts::from_config(&web("http://demo.example.pl", &[], "0.0.0.0:8080"), true);
        assert!(!demo.allows(Some("anything")));
    }

    #[test]
    fn public_hosts() {
        let host = |url: &str| web(url, &[], "0.0.0.0:1").public_host();
        assert_eq!(
            host("https://ebok.example.pl"),
            Some("ebok.example.pl".into())
        );
        assert_eq!(
            host("http://[2001:db8::1]:8080/x"),
            Some("2001:db8::1".into())
        );
        assert_eq!(host("https://user@evil.example"), None);
        assert_eq!(host("ftp://x"), None);
        assert_eq!(host(""), None);
    }
}
