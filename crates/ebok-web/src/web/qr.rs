//! QR codes as inline SVG: the TOTP enrolment code, the transfer code on payments and the
//! KSeF verification code on invoices all draw through [`qr_svg`].

use std::fmt::Write as _;

/// `data` as a QR code in an inline `<svg>` element: no XML prolog, no scripts, styles or
/// external references (fine under a strict CSP), a `viewBox` with the 4-module quiet zone so
/// CSS can size it, `role="img"` with an `aria-label` and a `<title>`. Dark modules are one
/// path of horizontal runs. `label` (in the page's language) is its accessible name. Data too
/// long for any QR version gives an empty string.
pub(crate) fn qr_svg(data: &str, label: &str) -> String {
    const QUIET: usize = 4;
    let Some((width, runs)) = qr_runs(data) else {
        return String::new();
    };
    let size = width + 2 * QUIET;
    let mut path = String::new();
    for (x, y, len) in runs {
        let _ = write!(path, "M{} {}h{len}v1h-{len}z", x + QUIET, y + QUIET);
    }
    let label = escape_xml(label);
    format!(
        concat!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {s} {s}" "#,
            r#"width="{px}" height="{px}" role="img" aria-label="{l}" shape-rendering="crispEdges">"#,
            r#"<title>{l}</title>"#,
            r##"<rect width="{s}" height="{s}" fill="#fff"/>"##,
            r##"<path fill="#000" d="{p}"/></svg>"##
        ),
        s = size,
        px = size * 4,
        l = label,
        p = path
    )
}

/// A horizontal run of dark modules: `(x, y, length)`.
pub(crate) type Run = (usize, usize, usize);

/// `data` as a QR code (error correction M): its width in modules and its dark modules as
/// horizontal runs `(x, y, length)` from the top left, without the quiet zone. `None` when
/// the data is too long for any QR version.
pub(crate) fn qr_runs(data: &str) -> Option<(usize, Vec<Run>)> {
    use qrcode::{Color, EcLevel, QrCode};

    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).ok()?;
    let width = code.width();
    let colors = code.to_colors();
    let mut runs = Vec::new();
    for y in 0..width {
        let row = &colors[y * width..(y + 1) * width];
        let mut x = 0;
        while x < width {
            if row[x] == Color::Dark {
                let start = x;
                while x < width && row[x] == Color::Dark {
                    x += 1;
                }
                runs.push((start, y, x - start));
            } else {
                x += 1;
            }
        }
    }
    Some((width, runs))
}

fn escape_xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::totp::{otpauth_uri, TotpSecret};

    #[test]
    fn qr_svg_is_well_formed() {
        let secret = TotpSecret::generate();
        let svg = qr_svg(&otpauth_uri("ebok", "jan", &secret), "QR");
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.ends_with("</svg>"));
        assert!(!svg.contains("<?xml"));
        assert!(svg.contains("viewBox=\"0 0 "));
        assert!(svg.contains("aria-label=") && svg.contains("<title>"));
        // Nothing a CSP would block or that reaches outside: the namespace is the only URL.
        let rest = svg.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        for banned in ["<script", "style", "href", "://", " on"] {
            assert!(!rest.contains(banned), "{banned} in {svg}");
        }
        // Tags balance: every opened element is closed or self-closed.
        let opens = svg.matches('<').count();
        let closes_tags = svg.matches("</").count();
        let self_closed = svg.matches("/>").count();
        assert_eq!(opens, 2 * closes_tags + self_closed, "{svg}");
        assert_eq!(svg.matches('"').count() % 2, 0);
        // Dark modules are drawn: a finder pattern's top row (7 modules at the quiet zone).
        assert!(svg.contains("M4 4h7v1h-7z"), "{svg}");
        assert_eq!(qr_svg(&"x".repeat(10_000), "QR"), "");
    }
}
