//! Files handed to the browser as downloads: a safe file name and the
//! `Content-Disposition: attachment` response.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

/// A file name safe in a header and on any file system: letters (Polish ones become their
/// ASCII base), digits, `-`, `_` and `.`; anything else `-`; at most 80 characters.
pub(crate) fn safe_file_name(name: &str) -> String {
    const FROM: &str = "ąćęłńóśźżĄĆĘŁŃÓŚŹŻ";
    const TO: &str = "acelnoszzACELNOSZZ";
    let mut out = String::new();
    for c in name.chars() {
        let c = match FROM.chars().position(|p| p == c) {
            Some(i) => TO.chars().nth(i).unwrap_or('-'),
            None if c.is_ascii_alphanumeric() || "-_.".contains(c) => c,
            None => '-',
        };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    let out: String = out.trim_matches(['-', '.']).chars().take(80).collect();
    if out.is_empty() {
        "plik".to_owned()
    } else {
        out
    }
}

/// `bytes` as a download named `name` (made safe), never cached (personal documents).
pub(crate) fn attachment(bytes: Vec<u8>, content_type: &'static str, name: &str) -> Response {
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        safe_file_name(name)
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    resp
}
