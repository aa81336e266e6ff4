//! A horizontal bar chart of latencies as a PNG, drawn pixel by pixel
//! (labels with the built-in 5×7 font), so it needs no system fonts or
//! plotting library.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use crate::font;
use crate::BenchError;

/// What a bar stands for; sets its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    /// A baseline (the floor a mechanism is compared against).
    Floor,
    /// PCIem's own mechanism.
    Pciem,
    /// A peer doing the same job.
    Peer,
    /// A prototype of a proposed change.
    Proposal,
}

/// One bar: a label on the left, a length from `value_ns`, a note after it.
#[derive(Clone, Debug)]
pub struct Bar {
    /// Mechanism name.
    pub label: String,
    /// Latency in nanoseconds (drawn on a log scale).
    pub value_ns: f64,
    /// Printed after the bar (say, the value and the ratio to the floor).
    pub note: String,
    /// Colour class.
    pub kind: BarKind,
}

const SCALE: usize = 2;
const ROW: usize = 34;
const TOP: usize = 60;
const LABEL_W: usize = 300;
const PLOT_W: usize = 520;
const NOTE_W: usize = 300;
const WIDTH: usize = LABEL_W + PLOT_W + NOTE_W;
const BG: [u8; 3] = [255, 255, 255];
const INK: [u8; 3] = [20, 20, 20];
const GRID: [u8; 3] = [205, 205, 205];

struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Self {
        Self {
            w,
            h,
            px: BG.repeat(w * h),
        }
    }

    fn rect(&mut self, x: usize, y: usize, w: usize, h: usize, c: [u8; 3]) {
        for yy in y..(y + h).min(self.h) {
            for xx in x..(x + w).min(self.w) {
                let i = (yy * self.w + xx) * 3;
                if let Some(p) = self.px.get_mut(i..i + 3) {
                    p.copy_from_slice(&c);
                }
            }
        }
    }

    fn text(&mut self, x: usize, y: usize, s: &str, c: [u8; 3]) {
        for (n, ch) in s.chars().enumerate() {
            let gx = x + n * font::ADVANCE * SCALE;
            for (row, bits) in font::glyph(ch).iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        self.rect(gx + col * SCALE, y + row * SCALE, SCALE, SCALE, c);
                    }
                }
            }
        }
    }
}

fn colour(kind: BarKind) -> [u8; 3] {
    match kind {
        BarKind::Floor => [130, 130, 130],
        BarKind::Pciem => [31, 100, 200],
        BarKind::Peer => [230, 140, 40],
        BarKind::Proposal => [60, 160, 90],
    }
}

fn unit_label(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{} us", ns / 1e3)
    } else {
        format!("{ns} ns")
    }
}

/// Draws `bars` under `title` on a log-scale axis and writes the PNG.
pub fn bar_chart(path: &Path, title: &str, bars: &[Bar]) -> Result<(), BenchError> {
    let values = || bars.iter().map(|b| b.value_ns.max(1.0));
    let lo = values().fold(f64::INFINITY, f64::min).log10().floor();
    let hi = values().fold(1.0, f64::max).log10().ceil().max(lo + 1.0);
    let lo = if lo.is_finite() { lo } else { 0.0 };
    let x_of =
        |ns: f64| LABEL_W + ((ns.max(1.0).log10() - lo) / (hi - lo) * PLOT_W as f64) as usize;

    let height = TOP + bars.len() * ROW + 40;
    let mut c = Canvas::new(WIDTH, height);
    c.text(10, 14, title, INK);
    let axis_y = TOP + bars.len() * ROW + 6;
    let mut decade = lo;
    while decade <= hi {
        let x = x_of(10f64.powf(decade));
        c.rect(x, TOP - 6, 1, bars.len() * ROW + 10, GRID);
        c.text(
            x.saturating_sub(12),
            axis_y + 6,
            &unit_label(10f64.powf(decade)),
            INK,
        );
        decade += 1.0;
    }
    for (i, b) in bars.iter().enumerate() {
        let y = TOP + i * ROW;
        c.text(10, y + 8, &b.label, INK);
        let end = x_of(b.value_ns);
        c.rect(
            LABEL_W,
            y + 4,
            end.saturating_sub(LABEL_W).max(1),
            ROW - 10,
            colour(b.kind),
        );
        c.text(end + 8, y + 8, &b.note, INK);
    }
    c.rect(LABEL_W, TOP - 6, 1, bars.len() * ROW + 10, INK);

    let file = File::create(path).map_err(|e| BenchError::Write {
        path: path.display().to_string(),
        source: e,
    })?;
    let mut enc = png::Encoder::new(BufWriter::new(file), WIDTH as u32, height as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()?.write_image_data(&c.px)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_is_a_png_with_one_row_per_bar() {
        let dir = std::env::temp_dir().join(format!("pciem-bench-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.png");
        let bar = |label: &str, v, kind| Bar {
            label: label.into(),
            value_ns: v,
            note: format!("{v} ns"),
            kind,
        };
        bar_chart(
            &path,
            "test",
            &[
                bar("floor", 50.0, BarKind::Floor),
                bar("ring", 60.0, BarKind::Pciem),
                bar("x", 4000.0, BarKind::Peer),
            ],
        )
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        // IHDR: width and height, big-endian, at bytes 16..24.
        let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert_eq!(w as usize, WIDTH);
        assert_eq!(h as usize, TOP + 3 * ROW + 40);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
