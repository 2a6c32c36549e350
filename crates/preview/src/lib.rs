//! A PDF's pages drawn as PNG images, so that an operator can look at a document a peer sent
//! without a browser ever parsing it: the console shows the images, which run nothing.
//!
//! A PDF from the network is hostile input. This crate parses and draws it with a renderer written
//! in safe Rust, and the node runs it only in a child process of its own (`adi preview-pdf`),
//! which bounds its own memory, processor time and files before it reads a byte
//! (`docs/OPERATIONS.md`, "Previews of PDF files"). This crate bounds what it draws.

use hayro::hayro_interpret::InterpreterSettings;
use hayro::hayro_syntax::Pdf;
use hayro::vello_cpu::color::palette::css::WHITE;
use hayro::{render, PixmapSettings, RenderCache, RenderSettings};

/// How large a page is drawn.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// The width a page is drawn at, in pixels (its height follows its shape).
    pub width_px: u32,
    /// The most pixels a page's image holds: a page far taller than wide is drawn narrower.
    pub pixels_max: u64,
}

/// One page drawn.
#[derive(Debug)]
pub struct Drawn {
    /// How many pages the document has.
    pub pages: usize,
    pub width_px: u32,
    pub height_px: u32,
    /// The page as a PNG image.
    pub png: Vec<u8>,
}

/// Why a document could not be drawn.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// The bytes are not a PDF this renderer can read (malformed, or encrypted with a password).
    Unreadable(String),
    /// The document has no such page (pages count from 1).
    NoPage { page: usize, pages: usize },
    /// The page has no area, or is too large to draw within the bounds.
    Unsized,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unreadable(why) => write!(f, "not a PDF that can be drawn: {why}"),
            Failure::NoPage { page, pages } => write!(f, "the document has {pages} page(s), not a page {page}"),
            Failure::Unsized => write!(f, "the page has no size that can be drawn"),
        }
    }
}

fn open(bytes: Vec<u8>) -> Result<Pdf, Failure> {
    Pdf::new(bytes).map_err(|e| Failure::Unreadable(format!("{e:?}")))
}

/// How many pages the document has.
pub fn pages(bytes: Vec<u8>) -> Result<usize, Failure> {
    Ok(open(bytes)?.pages().len())
}

/// Draws page `page` (from 1) of the document on white, `bounds.width_px` wide, or narrower where
/// its height would take it past `bounds.pixels_max`.
pub fn draw(bytes: Vec<u8>, page: usize, bounds: Bounds) -> Result<Drawn, Failure> {
    let pdf = open(bytes)?;
    let pages = pdf.pages();
    let count = pages.len();
    let one = page.checked_sub(1).and_then(|i| pages.get(i)).ok_or(Failure::NoPage { page, pages: count })?;
    let (w, h) = one.render_dimensions();
    let scale = scale(w, h, bounds).ok_or(Failure::Unsized)?;
    let settings = PixmapSettings { x_scale: scale, y_scale: scale, bg_color: WHITE };
    let pixmap =
        render(one, &RenderCache::new(), &InterpreterSettings::default(), &RenderSettings::default(), &settings);
    let (width_px, height_px) = (u32::from(pixmap.width()), u32::from(pixmap.height()));
    let png = pixmap.into_png().map_err(|e| Failure::Unreadable(format!("cannot encode the image: {e}")))?;
    Ok(Drawn { pages: count, width_px, height_px, png })
}

/// The scale that draws a page of `w` × `h` points within the bounds, if any: images are at most
/// 65,535 pixels a side.
fn scale(w: f32, h: f32, bounds: Bounds) -> Option<f32> {
    if !(w.is_finite() && h.is_finite() && w >= 1.0 && h >= 1.0) || bounds.width_px == 0 {
        return None;
    }
    let by_width = bounds.width_px as f32 / w;
    let by_pixels = (bounds.pixels_max as f64 / (f64::from(w) * f64::from(h))).sqrt() as f32;
    let scale = by_width.min(by_pixels);
    let side = |points: f32| points * scale;
    (side(w) >= 1.0 && side(h) >= 1.0 && side(w) <= 65_535.0 && side(h) <= 65_535.0).then_some(scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Bounds = Bounds { width_px: 600, pixels_max: 2_000_000 };

    /// A two-page PDF, written here: a red square on page 1, a line of text on page 2.
    fn document() -> Vec<u8> {
        let square = "1 0 0 rg 100 500 200 150 re f";
        let text = "0 g BT /F1 24 Tf 72 700 Td (CHART 2) Tj ET";
        let objects = [
            "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
            "<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>".to_string(),
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R >>".to_string(),
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 6 0 R /Resources << /Font << /F1 7 0 R >> >> >>".to_string(),
            format!("<< /Length {} >>\nstream\n{square}\nendstream", square.len()),
            format!("<< /Length {} >>\nstream\n{text}\nendstream", text.len()),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
        ];
        let mut out = b"%PDF-1.7\n".to_vec();
        let mut places = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            places.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
        }
        let xref = out.len();
        out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
        for p in places {
            out.extend_from_slice(format!("{p:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(
            format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
        );
        out
    }

    #[test]
    fn a_page_is_drawn_at_the_width_asked_with_its_shape() {
        assert_eq!(pages(document()), Ok(2));
        let drawn = draw(document(), 1, BOUNDS).expect("drawn");
        assert_eq!(drawn.pages, 2);
        assert_eq!(drawn.width_px, 600);
        // 612 × 792 points: the height follows the shape.
        assert_eq!(drawn.height_px, (792.0f32 * 600.0 / 612.0) as u32);
        assert_eq!(&drawn.png[..8], b"\x89PNG\r\n\x1a\n");
        // The square (x 100 to 300, y 500 to 650 points up from the bottom) is red where it is
        // drawn, and the page white around it.
        let image = hayro::vello_cpu::Pixmap::from_png(std::io::Cursor::new(&drawn.png)).expect("a PNG");
        let scale = 600.0 / 612.0;
        let at = |x: f32, y: f32| image.sample((x * scale) as u16, ((792.0 - y) * scale) as u16);
        let red = at(200.0, 575.0);
        assert_eq!((red.r, red.g, red.b, red.a), (255, 0, 0, 255));
        let white = at(20.0, 20.0);
        assert_eq!((white.r, white.g, white.b, white.a), (255, 255, 255, 255));
    }

    #[test]
    fn a_tall_page_is_drawn_narrower_to_stay_within_the_pixels() {
        let drawn = draw(document(), 2, Bounds { width_px: 600, pixels_max: 100_000 }).expect("drawn");
        assert!(u64::from(drawn.width_px) * u64::from(drawn.height_px) <= 100_000, "{drawn:?}");
        assert!(drawn.width_px < 600);
    }

    #[test]
    fn what_cannot_be_drawn_says_why() {
        assert_eq!(draw(document(), 3, BOUNDS).unwrap_err(), Failure::NoPage { page: 3, pages: 2 });
        assert_eq!(draw(document(), 0, BOUNDS).unwrap_err(), Failure::NoPage { page: 0, pages: 2 });
        assert!(matches!(pages(b"%PDF-1.7\nnot really".to_vec()), Err(Failure::Unreadable(_))));
        assert!(matches!(draw(Vec::new(), 1, BOUNDS), Err(Failure::Unreadable(_))));
        assert_eq!(scale(0.0, 792.0, BOUNDS), None);
        assert_eq!(scale(f32::NAN, 792.0, BOUNDS), None);
        assert_eq!(scale(612.0, 792.0, Bounds { width_px: 0, pixels_max: 1 }), None);
    }

    #[test]
    fn every_truncation_of_a_document_is_refused_or_drawn_without_a_panic() {
        let whole = document();
        for end in (0..whole.len()).step_by(7) {
            let _ = draw(whole[..end].to_vec(), 1, BOUNDS);
        }
    }
}
