//! An RGB pixel buffer with filled rectangles and text, and its PNG file.

use std::path::Path;

use crate::font;
use crate::PlotError;

/// Each font pixel is drawn as a `SCALE`×`SCALE` square.
const SCALE: usize = 2;
/// Height of a text line in canvas pixels (glyph plus spacing).
pub(crate) const LINE: usize = 9 * SCALE;
/// Width of one character in canvas pixels.
pub(crate) const CHAR_W: usize = font::ADVANCE * SCALE;

pub(crate) const BG: [u8; 3] = [255, 255, 255];
pub(crate) const INK: [u8; 3] = [20, 20, 20];
/// Second and later lines of a label or note.
pub(crate) const MUTED: [u8; 3] = [105, 105, 105];

/// Height in pixels of `lines` lines of text: the last one has no gap
/// below it.
pub(crate) fn block_h(lines: usize) -> usize {
    (lines * LINE).saturating_sub(2 * SCALE)
}

/// Width in pixels of the longest line of `s`.
pub(crate) fn text_w(s: &str) -> usize {
    s.lines().map(|l| l.chars().count()).max().unwrap_or(0) * CHAR_W
}

pub(crate) struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    pub(crate) fn new(w: usize, h: usize) -> Self {
        Self {
            w,
            h,
            px: BG.repeat(w * h),
        }
    }

    pub(crate) fn rect(&mut self, x: usize, y: usize, w: usize, h: usize, c: [u8; 3]) {
        for yy in y..(y + h).min(self.h) {
            for xx in x..(x + w).min(self.w) {
                let i = (yy * self.w + xx) * 3;
                if let Some(p) = self.px.get_mut(i..i + 3) {
                    p.copy_from_slice(&c);
                }
            }
        }
    }

    /// One line of text, top left at (`x`, `y`).
    pub(crate) fn text(&mut self, x: usize, y: usize, s: &str, c: [u8; 3]) {
        for (n, ch) in s.chars().enumerate() {
            let gx = x + n * CHAR_W;
            for (row, bits) in font::glyph(ch).iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        self.rect(gx + col * SCALE, y + row * SCALE, SCALE, SCALE, c);
                    }
                }
            }
        }
    }

    /// `s` split at newlines, one line under the other: the first in
    /// `first`, the rest in [`MUTED`] (they are the details).
    pub(crate) fn lines(&mut self, x: usize, y: usize, s: &str, first: [u8; 3]) {
        for (i, line) in s.lines().enumerate() {
            let c = if i == 0 { first } else { MUTED };
            self.text(x, y + i * LINE, line, c);
        }
    }

    /// Encodes the PNG in memory and writes it in one go, so a failed
    /// write is an error here rather than lost in a buffer's drop.
    pub(crate) fn write_png(&self, path: &Path) -> Result<(), PlotError> {
        let mut bytes = Vec::new();
        let (w, h) = (self.w as u32, self.h as u32);
        let mut enc = png::Encoder::new(&mut bytes, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header()?;
        writer.write_image_data(&self.px)?;
        writer.finish()?;
        std::fs::write(path, &bytes).map_err(|e| PlotError::Write {
            path: path.display().to_string(),
            source: e,
        })
    }
}
