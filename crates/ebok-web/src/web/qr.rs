//! QR codes: as a PNG image for mail attachments.

/// Pixels per module of [`qr_png`].
const PNG_SCALE: usize = 8;
/// The quiet zone around a code, in modules.
const QUIET: usize = 4;

/// `data` as a QR code (error correction M, as the page's SVG) in a grayscale PNG: 8 pixels
/// per module with the 4-module quiet zone. `None` for data too long for any QR version.
pub(crate) fn qr_png(data: &str) -> Option<Vec<u8>> {
    use qrcode::{Color, EcLevel, QrCode};

    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).ok()?;
    let width = code.width();
    let colors = code.to_colors();
    let side = (width + 2 * QUIET) * PNG_SCALE;
    let mut pixels = vec![0xffu8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c != Color::Dark {
            continue;
        }
        let (mx, my) = (i % width + QUIET, i / width + QUIET);
        for y in my * PNG_SCALE..(my + 1) * PNG_SCALE {
            pixels[y * side + mx * PNG_SCALE..y * side + (mx + 1) * PNG_SCALE].fill(0);
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

#[cfg(test)]
mod tests {
    use super::*;

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
