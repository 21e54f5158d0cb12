//! What every panel request carries before a handler sees it: the caller's IP (the TCP peer,
//! or the right-most untrusted hop a trusted proxy reports), its language, the anonymous
//! CSRF seed cookie (made only when a page shows a form), and whether it came over TLS. Also
//! the security headers put on every answer, and the CSRF check on every POST.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use ipnet::IpNet;
use sha2::Sha256;

use super::i18n::Lang;
use super::AppState;

pub(crate) const SESSION_COOKIE: &str = "ebok_session";
pub(crate) const CSRF_COOKIE: &str = "ebok_csrf";
pub(crate) const LANG_COOKIE: &str = "ebok_lang";
/// Form field carrying the CSRF token.
pub(crate) const CSRF_FIELD: &str = "csrf";
/// Largest form body accepted.
pub(crate) const MAX_FORM: usize = 64 * 1024;

/// The caller as the panel sees it.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub ip: IpAddr,
    pub lang: Lang,
    /// Cookies should be `Secure`.
    pub secure: bool,
    /// The anonymous CSRF seed; shared by every clone of this request's info.
    pub seed: Arc<Seed>,
    /// Value of the session cookie, if any.
    pub session_cookie: Option<String>,
}

/// The anonymous CSRF seed of one request: the browser's cookie, or one made when a page
/// first shows a form (and [`panel_layer`] sends it as the cookie). Pages without a form
/// never ask, so they cost no random token, MAC or `Set-Cookie`.
#[derive(Debug, Default)]
pub struct Seed {
    /// The seed the browser sent (its cookie, when well-formed).
    cookie: Option<String>,
    made: OnceLock<String>,
}

impl Seed {
    /// The seed this request's anonymous forms are bound to.
    pub fn get(&self) -> &str {
        match &self.cookie {
            Some(seed) => seed,
            None => self.made.get_or_init(ebok_store::auth::random_token),
        }
    }
}

/// The server's CSRF key, keyed once: a token then costs a clone of the keyed state and two
/// SHA-256 blocks. Cheap to clone.
#[derive(Clone)]
pub struct CsrfKey(Arc<Hmac<Sha256>>);

impl std::fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKey(..)")
    }
}

impl CsrfKey {
    pub fn new(key: &[u8]) -> CsrfKey {
        CsrfKey(Arc::new(
            <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length"),
        ))
    }

    /// The CSRF token a logged-in (or half logged-in) page's forms carry: HMAC of the
    /// session token.
    pub(crate) fn for_session(&self, session_token: &str) -> String {
        self.mac("s", session_token)
    }

    /// The CSRF token an anonymous page's forms carry: HMAC of the seed cookie.
    pub(crate) fn for_seed(&self, seed: &Seed) -> String {
        self.mac("a", seed.get())
    }

    fn mac(&self, kind: &str, value: &str) -> String {
        let mut m = (*self.0).clone();
        m.update(kind.as_bytes());
        m.update(b":");
        m.update(value.as_bytes());
        ebok_store::auth::hex(&m.finalize().into_bytes())
    }
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
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
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
pub(crate) fn limit_key(ip: IpAddr) -> String {
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
pub(crate) fn set_cookie(
    name: &str,
    value: &str,
    secure: bool,
    max_age: Option<i64>,
) -> HeaderValue {
    let mut s = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if secure {
        s.push_str("; Secure");
    }
    if let Some(age) = max_age {
        s.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&s).expect("cookie values are hex or ascii words")
}

/// Whether `given` is this request's token: bound to the seed cookie the browser sent (a
/// seed made for this answer proves nothing) or to its session cookie.
fn csrf_valid(key: &CsrfKey, info: &RequestInfo, given: &str) -> bool {
    use subtle::ConstantTimeEq;
    let eq = |t: String| bool::from(t.as_bytes().ct_eq(given.as_bytes()));
    info.seed
        .cookie
        .as_deref()
        .is_some_and(|seed| eq(key.mac("a", seed)))
        | info
            .session_cookie
            .as_deref()
            .is_some_and(|s| eq(key.mac("s", s)))
}

/// The value of one field of an `application/x-www-form-urlencoded` body.
pub(crate) fn form_field(body: &[u8], name: &str) -> Option<String> {
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
/// valid CSRF token (or from another site), and puts the security headers and, when the page
/// made one, a new seed cookie on the answer.
pub(crate) async fn panel_layer(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
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
    let seed_cookie = cookie(headers, CSRF_COOKIE)
        .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned);
    let session_cookie = cookie(headers, SESSION_COOKIE)
        .filter(|s| s.len() <= 128 && !s.is_empty())
        .map(str::to_owned);
    let info = RequestInfo {
        ip,
        lang,
        secure,
        seed: Arc::new(Seed {
            cookie: seed_cookie,
            made: OnceLock::new(),
        }),
        session_cookie,
    };

    // Where to come back to after logging in, should this page need it (see below).
    let asked_for = (req.method() == axum::http::Method::GET)
        .then(|| req.uri().path_and_query().map(|p| p.as_str().to_owned()))
        .flatten();
    let mut resp = match refuse_forged_post(&state, &info, req).await {
        Ok(mut req) => {
            req.extensions_mut().insert(info.clone());
            next.run(req).await
        }
        Err(refused) => refused,
    };
    // A handler that failed (see `error::PanelError`, which logged why) gets the calm 500
    // error page in the caller's language.
    if resp.extensions().get::<super::error::Failed>().is_some() {
        resp = super::pages::error_page(&state, &info, StatusCode::INTERNAL_SERVER_ERROR).await;
    }
    // A personal page asked for by a visitor who is not logged in answers by sending the
    // browser to the login; it comes back to the page asked for (a link from a mail to a
    // ticket or an invoice), through `?wroc=`, which only ever names a path of the panel.
    if let Some(asked_for) = asked_for {
        remember_where_to_return(&mut resp, &asked_for);
    }
    if let Some(seed) = info.seed.made.get() {
        resp.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(CSRF_COOKIE, seed, info.secure, None),
        );
    }
    security_headers(resp.headers_mut(), info.secure);
    resp
}

/// Turn a page's [`super::pages::to_login`] answer into a redirect to
/// `/logowanie?wroc=<asked_for>`.
fn remember_where_to_return(resp: &mut Response, asked_for: &str) {
    let to_login = resp
        .extensions()
        .get::<super::pages::NeedsLogin>()
        .is_some();
    let target = super::redirect::local_target(asked_for);
    // The panel is where a login leads anyway.
    if !to_login || matches!(target, "/" | "/panel") || target.starts_with("/logowanie") {
        return;
    }
    let location = format!("/logowanie?wroc={}", urlencode(target));
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
}

/// Percent-encode everything but unreserved characters and `/` (RFC 3986).
pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A GET as it came; a POST with its body read, when it carries this caller's CSRF token and
/// no browser says it came from another site; else the answer refusing it.
async fn refuse_forged_post(
    state: &AppState,
    info: &RequestInfo,
    req: Request,
) -> Result<Request, Response> {
    if req.method() != Method::POST {
        return Ok(req);
    }
    if cross_site(req.headers()) {
        metrics::counter!("ebok_panel_csrf_refused_total").increment(1);
        return Err(super::pages::error_page(state, info, StatusCode::FORBIDDEN).await);
    }
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_FORM).await {
        Ok(b) => b,
        Err(_) => return Err(StatusCode::PAYLOAD_TOO_LARGE.into_response()),
    };
    let given = form_field(&bytes, CSRF_FIELD).unwrap_or_default();
    if !csrf_valid(&state.panel.csrf_key, info, &given) {
        metrics::counter!("ebok_panel_csrf_refused_total").increment(1);
        return Err(super::pages::error_page(state, info, StatusCode::FORBIDDEN).await);
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
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
/// to other sites (reset links must not leak), no caching of personal pages. Names and
/// values are constants: nothing is parsed or allocated per answer.
const SECURITY_HEADERS: [(HeaderName, HeaderValue); 7] = [
    (
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    ),
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ),
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    (
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    ),
    (
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    ),
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    ),
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
];

/// Put [`SECURITY_HEADERS`] (and HSTS behind TLS) on an answer, keeping any the handler set.
pub(crate) fn security_headers(h: &mut HeaderMap, secure: bool) {
    let hsts = (
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    for (name, value) in SECURITY_HEADERS.into_iter().chain(secure.then_some(hsts)) {
        h.entry(name).or_insert(value);
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
