//! The invoice as a PDF made here: a small layout engine (text measured with the embedded
//! font, wrapped, paged) over krilla, and the ISP's logo.

use std::sync::LazyLock;

use super::invoices::InvoiceDoc;
use crate::web::i18n::Tr;

/// DejaVu Sans (Bitstream Vera licence, `static/fonts/DejaVuSans-LICENSE.txt`): every Polish
/// letter, embedded as a subset.
static FONT_BYTES: &[u8] = include_bytes!("../../../../../static/fonts/DejaVuSans.ttf");

static FONT: LazyLock<Option<krilla::text::Font>> =
    LazyLock::new(|| krilla::text::Font::new(FONT_BYTES.into(), 0));

static FACE: LazyLock<Option<ttf_parser::Face<'static>>> =
    LazyLock::new(|| ttf_parser::Face::parse(FONT_BYTES, 0).ok());

/// The largest side of the logo on the invoice, in points (about 2.5 cm).
const LOGO_BOX: f32 = 72.0;
/// The largest logo file accepted.
const LOGO_MAX_BYTES: u64 = 1 << 20;

/// The ISP's logo (`[isp] logo`), read and checked.
#[derive(Clone)]
pub struct Logo {
    image: krilla::image::Image,
    width: u32,
    height: u32,
}

impl Logo {
    /// Width and height in points of the logo scaled to fit a `side` × `side` box.
    fn fit(&self, side: f32) -> (f32, f32) {
        let (w, h) = (self.width as f32, self.height as f32);
        let scale = side / w.max(h);
        (w * scale, h * scale)
    }
}

/// Read the logo file: a PNG of at most 1 MiB that decodes. The error says why not, for the
/// start-up check of `isp.logo`.
pub(crate) fn load_logo(path: &std::path::Path) -> Result<Logo, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if size > LOGO_MAX_BYTES {
        return Err(format!(
            "{}: {size} bytes; a logo may have at most {LOGO_MAX_BYTES}",
            path.display()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err(format!("{}: not a PNG file", path.display()));
    }
    let image = krilla::image::Image::from_png(bytes.into(), true)
        .map_err(|e| format!("{}: not a readable PNG ({e})", path.display()))?;
    let (width, height) = image.size();
    if width == 0 || height == 0 {
        return Err(format!("{}: the image is empty", path.display()));
    }
    Ok(Logo {
        image,
        width,
        height,
    })
}

/// [`load_logo`], and the logo drawn into a throw-away PDF: a file whose header reads but
/// whose pixels do not decode is refused at start-up, not on the first invoice.
pub fn check_logo(path: &std::path::Path) -> Result<(), String> {
    let logo = load_logo(path)?;
    let mut doc = krilla::Document::new();
    let settings = krilla::page::PageSettings::from_wh(A4_W, A4_H).ok_or("page size")?;
    let mut page = doc.start_page_with(settings);
    let mut surface = page.surface();
    let (w, h) = logo.fit(LOGO_BOX);
    if let Some(size) = krilla::geom::Size::from_wh(w, h) {
        surface.draw_image(logo.image, size);
    }
    surface.finish();
    page.finish();
    doc.finish()
        .map(|_| ())
        .map_err(|e| format!("{}: the image does not decode ({e:?})", path.display()))
}

/// Why a PDF could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("the bundled font does not load")]
    Font,
    #[error("PDF writer: {0}")]
    Write(String),
}

/// Width of `text` at `size` points (advance widths, no kerning: close enough to align
/// columns).
fn text_width(text: &str, size: f32) -> f32 {
    let Some(face) = FACE.as_ref() else {
        return 0.0;
    };
    let upem = f32::from(face.units_per_em());
    let units: f32 = text
        .chars()
        .map(|c| {
            face.glyph_index(c)
                .and_then(|g| face.glyph_hor_advance(g))
                .map(f32::from)
                .unwrap_or(upem / 2.0)
        })
        .sum();
    units * size / upem
}

/// Split `text` into lines no wider than `width` at `size` (breaking at spaces; a single
/// word that is too long stays whole).
fn wrap(text: &str, size: f32, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        let candidate = if cur.is_empty() {
            word.to_owned()
        } else {
            format!("{cur} {word}")
        };
        if !cur.is_empty() && text_width(&candidate, size) > width {
            lines.push(std::mem::replace(&mut cur, word.to_owned()));
        } else {
            cur = candidate;
        }
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

/// What goes on a page: text (left or right aligned at `x`) and horizontal rules.
enum Op {
    Text {
        x: f32,
        y: f32,
        size: f32,
        text: String,
        right: bool,
    },
    Rule {
        x1: f32,
        x2: f32,
        y: f32,
    },
    /// A QR code's dark modules (runs `(x, y, length)` in modules), its top left corner
    /// at (`x`, `y`), each module `module` points wide.
    Qr {
        x: f32,
        y: f32,
        module: f32,
        runs: Vec<crate::web::qr::Run>,
    },
    /// The ISP's logo, its top left corner at (`x`, `y`).
    Image {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
    },
}

const A4_W: f32 = 595.28;
const A4_H: f32 = 841.89;
const MARGIN: f32 = 42.0;
const BOTTOM: f32 = A4_H - 50.0;

/// Lays out pages top-down; a new page starts when the next block does not fit.
struct Layout {
    pages: Vec<Vec<Op>>,
    y: f32,
}

impl Layout {
    fn new() -> Layout {
        Layout {
            pages: vec![Vec::new()],
            y: MARGIN,
        }
    }

    fn ensure(&mut self, height: f32) {
        if self.y + height > BOTTOM {
            self.pages.push(Vec::new());
            self.y = MARGIN;
        }
    }

    fn ops(&mut self) -> &mut Vec<Op> {
        self.pages.last_mut().expect("a page always exists")
    }

    fn text(&mut self, x: f32, size: f32, text: &str) {
        let y = self.y + size;
        self.ops().push(Op::Text {
            x,
            y,
            size,
            text: text.to_owned(),
            right: false,
        });
    }

    fn right(&mut self, x: f32, size: f32, text: &str) {
        let y = self.y + size;
        self.ops().push(Op::Text {
            x,
            y,
            size,
            text: text.to_owned(),
            right: true,
        });
    }

    fn rule(&mut self) {
        let y = self.y;
        self.ops().push(Op::Rule {
            x1: MARGIN,
            x2: A4_W - MARGIN,
            y,
        });
    }

    fn down(&mut self, by: f32) {
        self.y += by;
    }
}

/// One column of the line table: header, left edge, right edge, right-aligned.
struct Col {
    head: &'static str,
    left: f32,
    right: f32,
    numeric: bool,
}

impl Col {
    fn put(&self, l: &mut Layout, size: f32, text: &str) {
        if self.numeric {
            l.right(self.right, size, text);
        } else {
            l.text(self.left, size, text);
        }
    }
}

/// Column headings, each wrapped to its column's width; moves below the tallest.
fn head_row(l: &mut Layout, t: Tr, cols: &[Col], size: f32) {
    let top = l.y;
    let mut rows = 1;
    for c in cols {
        let parts = wrap(t.t(c.head), size, c.right - c.left - 2.0);
        rows = rows.max(parts.len());
        for (i, part) in parts.iter().enumerate() {
            l.y = top + i as f32 * (size + 2.0);
            c.put(l, size, part);
        }
    }
    l.y = top + rows as f32 * (size + 2.0) + 4.0;
}

/// The invoice as an A4 PDF with the bundled font embedded (subset): the same content as the
/// print page, in the caller's language.
/// An invoice is a document: what it says holds whenever it is read. Whether it has been
/// paid belongs to the page (`/e-faktury`), not to the PDF.
pub fn invoice_pdf(t: Tr, d: &InvoiceDoc, logo: Option<&Logo>) -> Result<Vec<u8>, PdfError> {
    let font = FONT.clone().ok_or(PdfError::Font)?;
    let mut l = Layout::new();
    let (body, small, head) = (9.0_f32, 8.0_f32, 7.0_f32);
    let right_edge = A4_W - MARGIN;
    if let Some(logo) = logo {
        // Top right, at most LOGO_BOX points in either direction, proportions kept.
        let (w, h) = logo.fit(LOGO_BOX);
        l.ops().push(Op::Image {
            x: right_edge - w,
            y: MARGIN,
            w,
            h,
        });
    }

    l.text(
        MARGIN,
        16.0,
        &t.f("invoice.title", &[("number", &d.number)]),
    );
    l.down(26.0);
    for (label, value) in [
        (t.t("invoice.issued_on"), &d.issued_on),
        (t.t("invoice.sold_on"), &d.sold_on),
        (t.t("invoice.due_on"), &d.due_on),
    ] {
        l.text(MARGIN, body, &format!("{label}: {value}"));
        l.down(13.0);
    }
    if let Some(k) = &d.ksef {
        l.text(MARGIN, body, &format!("{}: {k}", t.t("invoice.ksef")));
        l.down(13.0);
    }
    for (key, value) in [
        ("invoice.customer_number", &d.customer_number),
        ("invoice.contract", &d.contracts),
    ] {
        if !value.is_empty() {
            l.text(MARGIN, body, &format!("{}: {value}", t.t(key)));
            l.down(13.0);
        }
    }
    l.down(8.0);
    if let Some(logo) = logo {
        // Below the logo, whatever the header's height.
        l.y = l.y.max(MARGIN + logo.fit(LOGO_BOX).1 + 8.0);
    }

    // Seller and buyer side by side.
    let half = MARGIN + (A4_W - 2.0 * MARGIN) / 2.0;
    let mut seller = vec![d.seller_name.clone()];
    seller.extend(wrap(&d.seller_address, body, half - MARGIN - 10.0));
    if let Some(nip) = &d.seller_nip {
        seller.push(format!("NIP: {nip}"));
    }
    let mut buyer = vec![
        d.buyer_name.clone(),
        d.buyer_street.clone(),
        d.buyer_city.clone(),
    ];
    if let Some(nip) = &d.buyer_nip {
        buyer.push(format!("NIP: {nip}"));
    }
    l.text(MARGIN, small, t.t("invoice.seller"));
    l.text(half, small, t.t("invoice.buyer"));
    l.down(14.0);
    let top = l.y;
    for (i, s) in seller.iter().enumerate() {
        l.y = top + i as f32 * 12.0;
        l.text(MARGIN, body, s);
    }
    for (i, s) in buyer.iter().enumerate() {
        l.y = top + i as f32 * 12.0;
        l.text(half, body, s);
    }
    l.y = top + seller.len().max(buyer.len()) as f32 * 12.0 + 14.0;

    // Lines.
    let col = |head, left, right, numeric| Col {
        head,
        left,
        right,
        numeric,
    };
    let cols = [
        col("invoice.col_pos", MARGIN, MARGIN + 16.0, true),
        col("invoice.col_name", MARGIN + 22.0, 232.0, false),
        col("invoice.col_unit", 236.0, 262.0, false),
        col("invoice.col_qty", 262.0, 290.0, true),
        col("invoice.col_unit_net", 290.0, 345.0, true),
        col("invoice.col_net", 345.0, 400.0, true),
        col("invoice.col_rate", 400.0, 430.0, true),
        col("invoice.col_vat", 430.0, 485.0, true),
        col("invoice.col_gross", 485.0, right_edge, true),
    ];
    let header = |l: &mut Layout, cols: &[Col]| {
        l.rule();
        l.down(3.0);
        head_row(l, t, cols, head);
        l.rule();
        l.down(3.0);
    };
    l.ensure(50.0);
    header(&mut l, &cols);
    for line in &d.lines {
        let name = wrap(&line.name, body, cols[1].right - cols[1].left);
        let height = name.len() as f32 * 12.0 + 3.0;
        if l.y + height > BOTTOM {
            l.ensure(height + 50.0);
            header(&mut l, &cols);
        }
        let top = l.y;
        for (i, part) in name.iter().enumerate() {
            l.y = top + i as f32 * 12.0;
            cols[1].put(&mut l, body, part);
        }
        l.y = top;
        let cells = [
            line.position.to_string(),
            String::new(),
            line.unit.clone(),
            line.quantity.clone(),
            line.unit_net.clone(),
            line.net.clone(),
            line.rate.clone(),
            line.vat.clone(),
            line.gross.clone(),
        ];
        for (c, v) in cols.iter().zip(&cells) {
            if !v.is_empty() {
                c.put(&mut l, body, v);
            }
        }
        l.y = top + height;
    }
    l.rule();
    l.down(10.0);

    // Totals per VAT rate, then the invoice totals.
    l.ensure(30.0 + 13.0 * (d.rates.len() as f32 + 3.0));
    let label_x = cols[4].left - 40.0;
    l.text(label_x, small, t.t("invoice.by_rate"));
    l.down(14.0);
    head_row(&mut l, t, &cols[5..], head);
    for r in &d.rates {
        cols[5].put(&mut l, body, &r.net);
        cols[6].put(&mut l, body, &r.rate);
        cols[7].put(&mut l, body, &r.vat);
        cols[8].put(&mut l, body, &r.gross);
        l.down(13.0);
    }
    l.text(label_x, body, t.t("invoice.total"));
    cols[5].put(&mut l, body, &d.net);
    cols[7].put(&mut l, body, &d.vat);
    cols[8].put(&mut l, body, &d.gross_total);
    l.down(20.0);
    l.text(
        label_x,
        11.0,
        &format!("{}: {}", t.t("invoice.to_pay"), d.gross),
    );
    l.down(24.0);

    // Payment.
    l.ensure(60.0);
    l.text(
        MARGIN,
        body,
        &format!("{}: {}", t.t("invoice.method"), t.t("invoice.transfer")),
    );
    l.down(13.0);
    if let Some(acc) = &d.account {
        l.text(MARGIN, body, &format!("{}: {acc}", t.t("invoice.account")));
        l.down(13.0);
    }

    // KOD I: the KSeF verification code, the KSeF number (or OFFLINE) under it.
    if let Some(kod) = &d.kod {
        if let Some((width, runs)) = crate::web::qr::qr_runs(&kod.url) {
            const MODULE: f32 = 2.5;
            let side = width as f32 * MODULE;
            l.ensure(side + 60.0);
            l.down(16.0);
            l.text(MARGIN, body, t.t("invoice.ksef_qr_label"));
            l.down(22.0);
            let (x, y) = (MARGIN, l.y);
            l.ops().push(Op::Qr {
                x,
                y,
                module: MODULE,
                runs,
            });
            l.down(side + 12.0);
            l.text(MARGIN, body, &kod.caption);
            l.down(13.0);
        }
    }

    let mut doc = krilla::Document::new();
    doc.set_metadata(
        krilla::metadata::Metadata::new()
            .title(t.f("invoice.title", &[("number", &d.number)]))
            .language(t.code().to_owned())
            .creator("ebok".to_owned()),
    );
    let black = krilla::paint::Fill {
        paint: krilla::color::luma::Color::black().into(),
        ..Default::default()
    };
    let stroke = krilla::paint::Stroke {
        width: 0.5,
        ..Default::default()
    };
    let n_pages = l.pages.len();
    for (i, ops) in l.pages.iter().enumerate() {
        let settings = krilla::page::PageSettings::from_wh(A4_W, A4_H)
            .ok_or_else(|| PdfError::Write("page size".into()))?;
        let mut page = doc.start_page_with(settings);
        let mut surface = page.surface();
        surface.set_fill(Some(black.clone()));
        surface.set_stroke(Some(stroke.clone()));
        for op in ops {
            match op {
                Op::Text {
                    x,
                    y,
                    size,
                    text,
                    right,
                } => {
                    let x = if *right {
                        x - text_width(text, *size)
                    } else {
                        *x
                    };
                    surface.draw_text(
                        krilla::geom::Point::from_xy(x, *y),
                        font.clone(),
                        *size,
                        text,
                        false,
                        krilla::text::TextDirection::Auto,
                    );
                }
                Op::Image { x, y, w, h } => {
                    if let (Some(logo), Some(size)) = (logo, krilla::geom::Size::from_wh(*w, *h)) {
                        surface.push_transform(&krilla::geom::Transform::from_translate(*x, *y));
                        surface.draw_image(logo.image.clone(), size);
                        surface.pop();
                    }
                }
                Op::Qr { x, y, module, runs } => {
                    let mut pb = krilla::geom::PathBuilder::new();
                    for &(rx, ry, len) in runs {
                        let (left, top) = (x + rx as f32 * module, y + ry as f32 * module);
                        let right = left + len as f32 * module;
                        pb.move_to(left, top);
                        pb.line_to(right, top);
                        pb.line_to(right, top + module);
                        pb.line_to(left, top + module);
                        pb.close();
                    }
                    if let Some(path) = pb.finish() {
                        surface.set_stroke(None);
                        surface.draw_path(&path);
                        surface.set_stroke(Some(stroke.clone()));
                    }
                }
                Op::Rule { x1, x2, y } => {
                    let mut pb = krilla::geom::PathBuilder::new();
                    pb.move_to(*x1, *y);
                    pb.line_to(*x2, *y);
                    if let Some(path) = pb.finish() {
                        surface.set_fill(None);
                        surface.draw_path(&path);
                        surface.set_fill(Some(black.clone()));
                    }
                }
            }
        }
        if n_pages > 1 {
            let footer = t.f(
                "invoice.page_of",
                &[
                    ("page", &(i + 1).to_string()),
                    ("pages", &n_pages.to_string()),
                ],
            );
            let x = A4_W - MARGIN - text_width(&footer, 7.0);
            surface.draw_text(
                krilla::geom::Point::from_xy(x, A4_H - 25.0),
                font.clone(),
                7.0,
                &footer,
                false,
                krilla::text::TextDirection::Auto,
            );
        }
        surface.finish();
        page.finish();
    }
    doc.finish().map_err(|e| PdfError::Write(format!("{e:?}")))
}
