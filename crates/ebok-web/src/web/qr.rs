//! QR codes: as inline SVG for pages (the TOTP enrolment code, the transfer code on payments,
//! the KSeF verification code on invoices) through [`qr_svg`], as PNG for mail attachments
//! through [`qr_png`]; both draw the runs of [`qr_runs`].

use std::fmt::Write as _;

/// A horizontal run of dark modules: `(x, y, length)` from the top left.
pub(crate) type Run = (usize, usize, usize);

/// Pixels per module of [`qr_png`].
const PNG_SCALE: usize = 8;
/// The quiet zone around a code, in modules.
const QUIET: usize = 4;

/// `data` as a QR code in an inline `<svg>` element: no XML prolog, no scripts, styles or
/// external references (fine under a strict CSP), a `viewBox` with the 4-module quiet zone so
/// CSS can size it, `role="img"` with an `aria-label` and a `<title>`. Dark modules are one
/// path of horizontal runs. `label` (in the page's language) is its accessible name. Data too
/// long for any QR version gives an empty string.
pub(crate) fn qr_svg(data: &str, label: &str) -> String {
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

/// `data` as a QR code (error correction M, as the page's SVG) in a grayscale PNG: 8 pixels
/// per module with the 4-module quiet zone. `None` for data too long for any QR version.
pub(crate) fn qr_png(data: &str) -> Option<Vec<u8>> {
    let (width, runs) = qr_runs(data)?;
    let side = (width + 2 * QUIET) * PNG_SCALE;
    let mut pixels = vec![0xffu8; side * side];
    for (x, y, len) in runs {
        let (x0, x1) = ((x + QUIET) * PNG_SCALE, (x + len + QUIET) * PNG_SCALE);
        for row in (y + QUIET) * PNG_SCALE..(y + QUIET + 1) * PNG_SCALE {
            pixels[row * side + x0..row * side + x1].fill(0);
        }
    }
    let mut out = Vec::new();
    let side = u32::try_from(side).ok()?;
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().ok()?;
    writer.write_image_data(&pixels).ok()?;
    writer.finish().ok()?;
    Some(out)
}

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

    #[test]
    fn png_has_the_code_and_quiet_zone() {
        let png = qr_png("0000000000|PL|61109010140000071219812874|123456|Testnet|FV 1|||")
            .expect("fits");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let decoder = png::Decoder::new(std::io::Cursor::new(&png));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.width, info.height);
        assert_eq!(info.width as usize % PNG_SCALE, 0);
        // The corner is quiet zone (white); the finder pattern starts dark just inside it.
        assert_eq!(buf[0], 0xff);
        let edge = QUIET * PNG_SCALE;
        assert_eq!(buf[edge * info.width as usize + edge], 0);
        assert!(qr_png(&"x".repeat(10_000)).is_none());
    }
}
