//! Horizontal bar charts written as PNG files, drawn pixel by pixel with a
//! built-in 5×7 font (upper case only), so they need no system fonts,
//! plotting library or display. Two kinds:
//!
//! - [`bar_chart`]: latencies in nanoseconds on a log axis, every bar
//!   growing from the left edge (the host benchmarks' plots, `cargo bench
//!   -p pciem-bench`);
//! - [`ratio_chart`]: figures as ratios to their baselines on a log axis
//!   with the baseline at 1×, a bar growing left of it for a ratio below 1
//!   and right for one above, rows grouped under headings (`cargo xtask
//!   bench-vm`, whose figures have many different units).

mod canvas;
mod chart;
mod font;
pub mod inspect;

use std::path::Path;

use chart::{draw, Item, Scale};

/// What can go wrong writing a chart.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Writing the file failed.
    #[error("writing {path}: {source}")]
    Write {
        /// File.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// PNG encoding failed.
    #[error("encoding PNG: {0}")]
    Png(#[from] png::EncodingError),
}

/// What a latency bar stands for; sets its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    /// A baseline (the floor a mechanism is compared against).
    Floor,
    /// PCIem's own mechanism.
    Pciem,
    /// A peer doing the same job.
    Peer,
    /// An earlier version of PCIem's own mechanism, kept as a baseline to
    /// show what a change bought.
    Former,
}

impl BarKind {
    /// The bar colour (RGB).
    pub fn colour(self) -> [u8; 3] {
        match self {
            BarKind::Floor => [130, 130, 130],
            BarKind::Pciem => [31, 100, 200],
            BarKind::Peer => [230, 140, 40],
            BarKind::Former => [60, 160, 90],
        }
    }
}

/// One bar of a latency chart: a label on the left, a length from
/// `value_ns`, a note after it.
#[derive(Clone, Debug)]
pub struct Bar {
    /// Mechanism name.
    pub label: String,
    /// Latency in nanoseconds (drawn on a log scale; below 1 ns is drawn
    /// as 1 ns).
    pub value_ns: f64,
    /// Printed after the bar (say, the value and the ratio to the floor).
    pub note: String,
    /// Colour class.
    pub kind: BarKind,
}

/// Draws `bars` under `title` on a log-scale nanosecond axis and writes
/// the PNG to `path`.
pub fn bar_chart(path: &Path, title: &str, bars: &[Bar]) -> Result<(), PlotError> {
    let items: Vec<Item<'_>> = bars
        .iter()
        .map(|b| Item::Bar {
            label: &b.label,
            value: Some(b.value_ns.max(1.0)),
            note: &b.note,
            colour: b.kind.colour(),
        })
        .collect();
    draw(path, title, Scale::Nanoseconds, &items)
}

/// Which way a figure is better; sets a ratio bar's colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    /// Higher is better: a rate or a bandwidth (blue).
    Higher,
    /// Lower is better: a latency (orange).
    Lower,
}

impl Better {
    /// The bar colour (RGB).
    pub fn colour(self) -> [u8; 3] {
        match self {
            Better::Higher => [31, 100, 200],
            Better::Lower => [230, 140, 40],
        }
    }
}

/// One bar of a ratio chart.
#[derive(Clone, Debug)]
pub struct RatioBar {
    /// Name; further lines (after `\n`) are drawn under it in grey.
    pub label: String,
    /// Value / baseline. Zero, negative or not finite: no bar, only the
    /// note.
    pub ratio: f64,
    /// Printed after the bar (right of the 1× line for a bar left of
    /// it); further lines in grey, as for the label.
    pub note: String,
    /// Which way is better, for the colour.
    pub better: Better,
}

/// One row of a ratio chart.
#[derive(Clone, Debug)]
pub enum RatioRow {
    /// A section title across the whole width (say, "rates: higher is
    /// better").
    Heading(String),
    /// A bar.
    Bar(RatioBar),
}

/// Draws `rows` under `title` (lines split at `\n`) on a log-scale ratio
/// axis with the baseline, 1×, marked by a black line, and writes the PNG
/// to `path`.
pub fn ratio_chart(path: &Path, title: &str, rows: &[RatioRow]) -> Result<(), PlotError> {
    let items: Vec<Item<'_>> = rows
        .iter()
        .map(|r| match r {
            RatioRow::Heading(h) => Item::Heading(h),
            RatioRow::Bar(b) => Item::Bar {
                label: &b.label,
                value: Some(b.ratio),
                note: &b.note,
                colour: b.better.colour(),
            },
        })
        .collect();
    draw(path, title, Scale::Ratio, &items)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system's temporary one.
    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("pciem-plot-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn decode(bytes: &[u8]) -> inspect::Image {
        inspect::decode(bytes).unwrap()
    }

    /// (leftmost x, rightmost x, pixels) of each bar of colour `c`.
    fn bands(image: &inspect::Image, c: [u8; 3]) -> Vec<(usize, usize, usize)> {
        inspect::bars(image, c)
            .into_iter()
            .map(|s| (s.left, s.right, s.count))
            .collect()
    }

    #[test]
    fn latency_chart_is_a_png_with_one_row_per_bar_longer_for_slower() {
        let dir = scratch("latency");
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
        assert_eq!((w, h), (300 + 520 + 300, 60 + 3 * 34 + 40));
        let img = decode(&bytes);
        let floor = bands(&img, BarKind::Floor.colour());
        let ring = bands(&img, BarKind::Pciem.colour());
        let peer = bands(&img, BarKind::Peer.colour());
        assert_eq!((floor.len(), ring.len(), peer.len()), (1, 1, 1));
        // All from the left edge; 4000 ns far longer than 60, 60 than 50.
        assert_eq!(floor[0].0, ring[0].0);
        assert!(floor[0].2 < ring[0].2 && ring[0].2 * 3 < peer[0].2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_bars_still_make_a_chart() {
        let dir = scratch("empty");
        let path = dir.join("t.png");
        bar_chart(&path, "nothing", &[]).unwrap();
        ratio_chart(&dir.join("r.png"), "nothing", &[]).unwrap();
        let h = decode(&std::fs::read(&path).unwrap()).height;
        assert_eq!(h, 60 + 40);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ratio_bars_grow_away_from_the_baseline_line() {
        let dir = scratch("ratio");
        let path = dir.join("t.png");
        let bar = |label: &str, ratio, better| {
            RatioRow::Bar(RatioBar {
                label: format!("{label}\nvs base"),
                ratio,
                note: format!("{ratio}x\ndetail"),
                better,
            })
        };
        ratio_chart(
            &path,
            "title\nsubtitle",
            &[
                RatioRow::Heading("rates: higher is better".into()),
                bar("half", 0.5, Better::Higher),
                bar("hundredth", 0.01, Better::Higher),
                RatioRow::Heading("latencies: lower is better".into()),
                bar("slow", 100.0, Better::Lower),
                bar("no-baseline", f64::NAN, Better::Lower),
            ],
        )
        .unwrap();
        let img = decode(&std::fs::read(&path).unwrap());
        let h = img.height;
        // Two-line title: 18 px more on top; two-line rows are 44 high,
        // headings 30.
        assert_eq!(h, 78 + 2 * 30 + 4 * 44 + 40);
        let rates = bands(&img, Better::Higher.colour());
        let latencies = bands(&img, Better::Lower.colour());
        assert_eq!(rates.len(), 2, "{rates:?}");
        // The NaN row has no bar.
        assert_eq!(latencies.len(), 1, "{latencies:?}");
        // Both rate bars end at the 1x line (one column left of it), the
        // latency bar starts one right of it.
        assert_eq!(rates[0].1, rates[1].1);
        assert_eq!(rates[0].1 + 2, latencies[0].0);
        // 0.01 is two decades from 1, 0.5 a third of one; 100 two decades.
        assert!(rates[0].2 * 5 < rates[1].2, "{rates:?}");
        assert!(latencies[0].2.abs_diff(rates[1].2) <= 2, "{latencies:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
