//! What every panel request carries before a handler sees it: the caller's IP (the TCP peer,
//! or the right-most untrusted hop a trusted proxy reports), its language, the anonymous
//! CSRF seed cookie, and whether it came over TLS. Also the security headers put on every
//! answer, and the CSRF check on every POST.

use std::net::{IpAddr, SocketAddr};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use ipnet::IpNet;
use sha2::Sha256;

use super::i18n::Lang;
use super::AppState;

pub const SESSION_COOKIE: &str = "ebok_session";
pub const CSRF_COOKIE: &str = "ebok_csrf";
pub const LANG_COOKIE: &str = "ebok_lang";
/// Form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
/// Largest form body accepted.
pub const MAX_FORM: usize = 64 * 1024;

/// The caller as the panel sees it.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub ip: IpAddr,
    pub lang: Lang,
    /// Cookies should be `Secure`.
    pub secure: bool,
    /// Value of the anonymous CSRF cookie (set on the answer when `new_seed`).
    pub csrf_seed: String,
    pub new_seed: bool,
    /// Value of the session cookie, if any.
    pub session_cookie: Option<String>,
}

/// Unwrap `::ffff:a.b.c.d` so IPv4 callers on a dual-stack socket are looked up as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The caller's address: the TCP peer, unless the peer is a trusted proxy; then the
/// right-most hop of `Forwarded` (or, without it, `X-Forwarded-For`) that is not itself a
/// trusted proxy. A header that does not parse is ignored (the peer stays the caller).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops = forwarded_hops(headers).or_else(|| xff_hops(headers));
    let Some(hops) = hops else {
        return peer;
    };
    let mut caller = peer;
    for hop in hops.into_iter().rev() {
        caller = canonical(hop);
        if !is_trusted(&caller) {
            return caller;
        }
    }
    caller
}

fn forwarded_hops(headers: &HeaderMap) -> Option<Vec<IpAddr>> {
    let mut hops = Vec::new();
    let mut any = false;
    for v in headers.get_all("forwarded") {
        any = true;
        let v = v.to_str().ok()?;
        for element in v.split(',') {
            for pair in element.split(';') {
                let Some((k, val)) = pair.trim().split_once('=') else {
                    continue;
                };
                if !k.trim().eq_ignore_ascii_case("for") {
                    continue;
                }
                hops.push(parse_node(val.trim().trim_matches('"'))?);
            }
        }
    }
    any.then_some(hops).filter(|h| !h.is_empty())
}

/// `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711`.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    s.parse::<SocketAddr>().ok().map(|a| a.ip())
}

fn xff_hops(headers: &HeaderMap) -> Option<Vec<IpAddr>> {
    let mut hops = Vec::new();
    for v in headers.get_all("x-forwarded-for") {
        for part in v.to_str().ok()?.split(',') {
            hops.push(parse_node(part.trim())?);
        }
    }
    (!hops.is_empty()).then_some(hops)
}

/// The address a rate limit counts under: IPv4 as is, IPv6 by its /64 (one subscriber's
/// line usually gets a whole /64 or more, and can pick any address in it).
pub fn limit_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let net = ipnet::Ipv6Net::new(v6, 64)
                .expect("64 is a valid length")
                .trunc();
            net.to_string()
        }
    }
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, Secure when `secure`;
/// `max_age` None = session cookie, Some(0) = delete.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<i64>) -> HeaderValue {
    let mut s = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if secure {
        s.push_str("; Secure");
    }
    if let Some(age) = max_age {
        s.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&s).expect("cookie values are hex or ascii words")
}

/// The CSRF token a form must carry: HMAC of the session token (logged in) or of the
/// anonymous seed cookie, under the server's key.
pub fn csrf_token(key: &[u8], info: &RequestInfo, session_token: Option<&str>) -> String {
    match session_token {
        Some(s) => mac(key, "s", s),
        None => mac(key, "a", &info.csrf_seed),
    }
}

fn mac(key: &[u8], kind: &str, value: &str) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    m.update(kind.as_bytes());
    m.update(b":");
    m.update(value.as_bytes());
    let out = m.finalize().into_bytes();
    out.iter().map(|b| format!("{b:02x}")).collect()
}

fn csrf_valid(key: &[u8], info: &RequestInfo, given: &str) -> bool {
    use subtle::ConstantTimeEq;
    let eq = |t: String| bool::from(t.as_bytes().ct_eq(given.as_bytes()));
    (!info.new_seed && eq(mac(key, "a", &info.csrf_seed)))
        | info
            .session_cookie
            .as_deref()
            .is_some_and(|s| eq(mac(key, "s", s)))
}

/// The value of one field of an `application/x-www-form-urlencoded` body.
pub fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded_pairs(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn form_urlencoded_pairs(body: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    body.split(|b| *b == b'&').filter_map(|pair| {
        let mut it = pair.splitn(2, |b| *b == b'=');
        let k = decode(it.next()?)?;
        let v = decode(it.next().unwrap_or(b""))?;
        Some((k, v))
    })
}

fn decode(s: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                if i + 2 >= s.len() {
                    return None;
                }
                let h = std::str::from_utf8(&s[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Middleware on every panel route: works out [`RequestInfo`], refuses a POST without a
/// valid CSRF token (or from another site), and puts the security headers and a new seed
/// cookie on the answer.
pub async fn panel_layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let panel = &state.panel;
    let headers = req.headers();
    let ip = client_ip(peer, headers, &panel.trusted);
    let proxied_tls = panel.trusted.iter().any(|n| n.contains(&canonical(peer)))
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let secure = state
        .config
        .web
        .secure_cookies
        .unwrap_or(state.config.web.public_url.starts_with("https://") || proxied_tls);
    let lang = Lang::of_request(headers, cookie(headers, LANG_COOKIE));
    let seed = cookie(headers, CSRF_COOKIE)
        .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned);
    let new_seed = seed.is_none();
    let session_cookie = cookie(headers, SESSION_COOKIE)
        .filter(|s| s.len() <= 128 && !s.is_empty())
        .map(str::to_owned);
    let info = RequestInfo {
        ip,
        lang,
        secure,
        csrf_seed: seed.unwrap_or_else(crate::store::auth::random_token),
        new_seed,
        session_cookie,
    };

    if req.method() == Method::POST {
        if cross_site(req.headers()) {
            metrics::counter!("ebok_panel_csrf_refused_total").increment(1);
            return super::pages::error_page(&state, &info, StatusCode::FORBIDDEN).await;
        }
        let (parts, body) = req.into_parts();
        let bytes: Bytes = match axum::body::to_bytes(body, MAX_FORM).await {
            Ok(b) => b,
            Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        };
        let given = form_field(&bytes, CSRF_FIELD).unwrap_or_default();
        if !csrf_valid(&panel.csrf_key, &info, &given) {
            metrics::counter!("ebok_panel_csrf_refused_total").increment(1);
            return super::pages::error_page(&state, &info, StatusCode::FORBIDDEN).await;
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }

    req.extensions_mut().insert(info.clone());
    let mut resp = next.run(req).await;
    if info.new_seed {
        resp.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(CSRF_COOKIE, &info.csrf_seed, info.secure, None),
        );
    }
    security_headers(resp.headers_mut(), info.secure);
    resp
}

/// A POST a browser tells us came from another site. `Sec-Fetch-Site` decides when the
/// browser sends it (every current one does); otherwise an `Origin` naming another host.
/// `Origin: null` alone proves nothing (privacy settings send it for same-site forms): the
/// CSRF token still has to match.
fn cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site");
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        host,
    ) {
        (Some("null"), _) | (None, _) | (_, None) => false,
        (Some(origin), Some(host)) => {
            let o = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
            !o.eq_ignore_ascii_case(host)
        }
    }
}

/// Headers on every panel answer: no scripts at all, no framing, no sniffing, no referrer
/// to other sites (reset links must not leak), no caching of personal pages.
pub fn security_headers(h: &mut HeaderMap, secure: bool) {
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.entry(k).or_insert(HeaderValue::from_static(v));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "same-origin");
    set(
        h,
        "permissions-policy",
        "camera=(), microphone=(), geolocation=()",
    );
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "cache-control", "no-store");
    if secure {
        set(h, "strict-transport-security", "max-age=31536000");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        m
    }

    #[test]
    fn caller_ip() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Untrusted peer: headers ignored.
        let spoof = h(&[("x-forwarded-for", "83.1.2.3")]);
        assert_eq!(
            client_ip(ip("198.51.100.7"), &spoof, &trusted),
            ip("198.51.100.7")
        );
        // Trusted proxy: the right-most untrusted hop.
        let chain = h(&[("x-forwarded-for", "1.1.1.1, 83.1.2.3, 10.0.0.9")]);
        assert_eq!(client_ip(ip("10.0.0.5"), &chain, &trusted), ip("83.1.2.3"));
        let fwd = h(&[(
            "forwarded",
            "for=1.1.1.1, for=\"[2001:db8::7]:4711\";proto=https",
        )]);
        assert_eq!(client_ip(ip("::1"), &fwd, &trusted), ip("2001:db8::7"));
        // Mapped IPv4 peer.
        assert_eq!(
            client_ip(ip("::ffff:83.1.2.3"), &HeaderMap::new(), &trusted),
            ip("83.1.2.3")
        );
        // Garbage from a trusted proxy: the proxy itself.
        let bad = h(&[("x-forwarded-for", "not-an-ip")]);
        assert_eq!(client_ip(ip("10.0.0.5"), &bad, &trusted), ip("10.0.0.5"));
    }

    #[test]
    fn limit_keys() {
        assert_eq!(limit_key("83.1.2.3".parse().unwrap()), "83.1.2.3");
        assert_eq!(
            limit_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
    }

    #[test]
    fn forms_and_cookies() {
        assert_eq!(
            form_field(b"a=1&csrf=ab%2Bc+d&x", "csrf").as_deref(),
            Some("ab+c d")
        );
        assert_eq!(form_field(b"csrf=%zz", "csrf"), None);
        assert_eq!(form_field(b"csrf=%4", "csrf"), None);
        assert_eq!(
            form_field(b"name=Wis%C5%82a", "name").as_deref(),
            Some("Wisła")
        );
        let hm = h(&[("cookie", "a=1; ebok_session=xyz; b=2")]);
        assert_eq!(cookie(&hm, SESSION_COOKIE), Some("xyz"));
        assert!(cross_site(&h(&[("sec-fetch-site", "cross-site")])));
        assert!(cross_site(&h(&[
            ("origin", "https://evil.example"),
            ("host", "ebok.example")
        ])));
        assert!(!cross_site(&h(&[
            ("origin", "https://ebok.example"),
            ("host", "ebok.example")
        ])));
        assert!(!cross_site(&h(&[("sec-fetch-site", "same-origin")])));
        // What Chromium sends for a same-origin form: decided by Sec-Fetch-Site.
        assert!(!cross_site(&h(&[
            ("sec-fetch-site", "same-origin"),
            ("origin", "null")
        ])));
        assert!(cross_site(&h(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "null")
        ])));
    }
}
