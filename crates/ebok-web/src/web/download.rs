//! File downloads (invoice PDF and XML, the attribution CSV): one safe attachment file name
//! and one set of headers, so no download carries a name a browser could misread or a type
//! it could sniff into something else.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

/// The longest file name [`safe_file_name`] gives, extension included.
const MAX_FILE_NAME: usize = 120;

/// `stem` + `.ext` as an attachment file name of ASCII letters, digits, `-`, `_` and `.`
/// only: anything else (slashes of an invoice number `FV/2026/05/0001`, spaces, Polish
/// letters, quotes) becomes `-`, leading dots are dropped, runs of `-` collapse and the
/// name is at most [`MAX_FILE_NAME`] characters. An empty stem gives `file`.
pub(crate) fn safe_file_name(stem: &str, ext: &str) -> String {
    let mut name = String::with_capacity(stem.len().min(MAX_FILE_NAME));
    for c in stem.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
            c
        } else {
            '-'
        };
        if c == '-' && name.ends_with('-') {
            continue;
        }
        if c == '.' && name.is_empty() {
            continue;
        }
        name.push(c);
    }
    let ext: String = ext.chars().filter(char::is_ascii_alphanumeric).collect();
    let room = MAX_FILE_NAME.saturating_sub(ext.len() + 1);
    name.truncate(room);
    let name = name.trim_matches(|c| c == '-' || c == '.');
    let name = if name.is_empty() { "file" } else { name };
    if ext.is_empty() {
        name.to_owned()
    } else {
        format!("{name}.{ext}")
    }
}

/// The headers of a download: `Content-Type`, `Content-Disposition: attachment` with
/// `file_name` (made safe again with [`safe_file_name`]), `X-Content-Type-Options: nosniff`
/// and `Cache-Control: private, no-store` (downloads are personal data).
pub(crate) fn attachment_headers(content_type: &'static str, file_name: &str) -> HeaderMap {
    let (stem, ext) = file_name.rsplit_once('.').unwrap_or((file_name, ""));
    let name = safe_file_name(stem, ext);
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Only ASCII letters, digits, `-_.` remain: always a valid header value.
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(CONTENT_DISPOSITION, v);
    }
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    h
}

/// `body` as a download named `file_name` (see [`attachment_headers`]).
pub(crate) fn attachment(
    content_type: &'static str,
    file_name: &str,
    body: impl IntoResponse,
) -> Response {
    (attachment_headers(content_type, file_name), body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_only_safe_ascii() {
        assert_eq!(
            safe_file_name("faktura-FV/2026/05/0001", "pdf"),
            "faktura-FV-2026-05-0001.pdf"
        );
        assert_eq!(
            safe_file_name("Faktura 12 – Łódź \"x\"", "xml"),
            "Faktura-12-d-x.xml"
        );
        assert_eq!(safe_file_name("../../etc/passwd", "xml"), "etc-passwd.xml");
        assert_eq!(safe_file_name("a_b.c", "csv"), "a_b.c.csv");
        assert_eq!(safe_file_name("", "pdf"), "file.pdf");
        assert_eq!(safe_file_name("///", "pdf"), "file.pdf");
        assert_eq!(safe_file_name("x", "p\"df"), "x.pdf");
        let long = safe_file_name(&"A".repeat(1000), "pdf");
        assert_eq!(long.len(), MAX_FILE_NAME);
        assert!(long.ends_with("A.pdf"));
    }

    #[test]
    fn attachment_headers_are_complete() {
        let r = attachment("application/xml", "FV/1 ą.xml", "<a/>");
        let h = r.headers();
        assert_eq!(h[CONTENT_TYPE], "application/xml");
        assert_eq!(h[CONTENT_DISPOSITION], "attachment; filename=\"FV-1.xml\"");
        assert_eq!(h[X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[CACHE_CONTROL], "private, no-store");
    }
}
