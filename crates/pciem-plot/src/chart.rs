//! Layout and drawing shared by both kinds of chart: rows of a label, a
//! bar on a log axis and a note, under a title, with decade grid lines.

use std::path::Path;

use crate::canvas::{block_h, text_w, Canvas, BG, CHAR_W, INK, LINE};
use crate::PlotError;

/// How values map to the horizontal axis.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scale {
    /// Nanoseconds, log axis, bars grow from the left edge.
    Nanoseconds,
    /// Ratios to a baseline, log axis, bars grow from the 1× line: to the
    /// left below it, to the right above it.
    Ratio,
}

/// One row of a chart.
pub(crate) enum Item<'a> {
    /// A section title across the whole width.
    Heading(&'a str),
    /// A bar. `value` is `None` (or not drawable on a log axis) for a row
    /// with a note but no bar.
    Bar {
        label: &'a str,
        value: Option<f64>,
        note: &'a str,
        colour: [u8; 3],
    },
}

impl Item<'_> {
    /// Width of a bar's label, `None` for a heading.
    fn label_w(&self) -> Option<usize> {
        match self {
            Item::Bar { label, .. } => Some(text_w(label)),
            Item::Heading(_) => None,
        }
    }

    /// Width of a bar's note, `None` for a heading.
    fn note_w(&self) -> Option<usize> {
        match self {
            Item::Bar { note, .. } => Some(text_w(note)),
            Item::Heading(_) => None,
        }
    }
}

/// Height of a one-line bar row; rows with more lines grow.
const ROW: usize = 34;
const HEADING: usize = 30;
const PLOT_W: usize = 520;
/// The label and note columns are at least this wide, wider when a
/// label or note needs it.
const MIN_COLUMN_W: usize = 300;
const MARGIN: usize = 10;
const GRID: [u8; 3] = [205, 205, 205];

fn row_h(item: &Item<'_>) -> usize {
    match item {
        Item::Heading(_) => HEADING,
        Item::Bar { label, note, .. } => {
            let lines = label.lines().count().max(note.lines().count());
            ROW.max(block_h(lines) + 12)
        }
    }
}

/// A value a log axis can place.
fn drawable(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite() && *v > 0.0)
}

/// First and last decade (powers of ten) of the axis.
fn decades(scale: Scale, items: &[Item<'_>]) -> (f64, f64) {
    let values = || {
        items.iter().filter_map(|i| match i {
            Item::Bar { value, .. } => drawable(*value),
            Item::Heading(_) => None,
        })
    };
    let lo = values().fold(f64::INFINITY, f64::min).log10().floor();
    let hi = values().fold(f64::NEG_INFINITY, f64::max).log10().ceil();
    match scale {
        Scale::Nanoseconds => {
            let lo = if lo.is_finite() { lo } else { 0.0 };
            (lo, hi.max(0.0).max(lo + 1.0))
        }
        // 1× always on the axis, with at least one decade either side.
        Scale::Ratio => (lo.min(-1.0), hi.max(1.0)),
    }
}

fn tick_label(scale: Scale, decade: f64) -> String {
    let v = 10f64.powf(decade);
    match scale {
        Scale::Nanoseconds if v >= 1e6 => format!("{} ms", v / 1e6),
        Scale::Nanoseconds if v >= 1e3 => format!("{} us", v / 1e3),
        Scale::Nanoseconds => format!("{v} ns"),
        Scale::Ratio if decade < 0.0 => format!("{:.*}x", -decade as usize, v),
        Scale::Ratio => format!("{v:.0}x"),
    }
}

/// Every decade gets a grid line; when the axis spans so many decades
/// that their labels would run into each other, only every `step`-th
/// (counted from 10^0: 1 ns, 1x) gets a label.
fn label_step(scale: Scale, lo: f64, hi: f64) -> f64 {
    let widest = (lo as i32..=hi as i32)
        .map(|d| text_w(&tick_label(scale, f64::from(d))))
        .max()
        .unwrap_or(0);
    let per_decade = PLOT_W as f64 / (hi - lo);
    ((widest + CHAR_W) as f64 / per_decade).ceil().max(1.0)
}

/// Draws `items` under `title` (which may have several lines) and writes
/// the PNG to `path`.
pub(crate) fn draw(
    path: &Path,
    title: &str,
    scale: Scale,
    items: &[Item<'_>],
) -> Result<(), PlotError> {
    let (lo, hi) = decades(scale, items);
    let widest =
        |part: fn(&Item<'_>) -> Option<usize>| items.iter().filter_map(part).max().unwrap_or(0);
    let label_w = MIN_COLUMN_W.max(widest(|i| i.label_w()) + 2 * MARGIN);
    let note_w = MIN_COLUMN_W.max(widest(|i| i.note_w()) + 2 * MARGIN);
    let headings_w = widest(|i| match i {
        Item::Heading(h) => Some(text_w(h)),
        Item::Bar { .. } => None,
    });
    let width = (label_w + PLOT_W + note_w).max(text_w(title).max(headings_w) + 2 * MARGIN);
    let x_of = |v: f64| label_w + ((v.log10() - lo) / (hi - lo) * PLOT_W as f64) as usize;
    let origin = match scale {
        Scale::Nanoseconds => label_w,
        Scale::Ratio => x_of(1.0),
    };

    let top = 14 + block_h(title.lines().count()) + 32;
    let rows_h: usize = items.iter().map(row_h).sum();
    let mut c = Canvas::new(width, top + rows_h + 40);
    c.lines(MARGIN, 14, title, INK);
    let axis_y = top + rows_h + 6;
    let step = label_step(scale, lo, hi);
    let mut decade = lo;
    while decade <= hi {
        let x = x_of(10f64.powf(decade));
        c.rect(x, top - 6, 1, rows_h + 10, GRID);
        if decade.rem_euclid(step) == 0.0 {
            let label = tick_label(scale, decade);
            let label_x = match scale {
                Scale::Nanoseconds => x.saturating_sub(12),
                Scale::Ratio => x.saturating_sub(text_w(&label) / 2),
            };
            c.text(label_x, axis_y + 6, &label, INK);
        }
        decade += 1.0;
    }
    // Text blocks are centred in their row, 2 px above centre (where the
    // first charts drew them, kept so those stay pixel for pixel).
    let text_y = |y: usize, h: usize, s: &str| (y + (h - block_h(s.lines().count())) / 2) - 2;
    let mut y = top;
    for item in items {
        let h = row_h(item);
        if let Item::Bar {
            label,
            value,
            note,
            colour,
        } = item
        {
            c.lines(MARGIN, text_y(y, h, label), label, INK);
            let note_x = match drawable(*value) {
                Some(v) => {
                    let end = x_of(v);
                    let (x0, x1) = (end.min(origin), end.max(origin));
                    c.rect(x0, y + 4, (x1 - x0).max(1), h - 10, *colour);
                    x1 + 8
                }
                None => origin + 8,
            };
            let note_y = text_y(y, h, note);
            if scale == Scale::Ratio {
                // Notes of ratio charts sit on the plot (right of the 1x
                // line): keep the grid lines out of their text.
                let lines = note.lines().count();
                c.rect(
                    note_x - 2,
                    note_y - 2,
                    text_w(note) + 4,
                    block_h(lines) + 4,
                    BG,
                );
            }
            c.lines(note_x, note_y, note, INK);
        }
        y += h;
    }
    c.rect(origin, top - 6, 1, rows_h + 10, INK);
    // Headings last, on a cleared band, so no grid line crosses them.
    let mut y = top;
    for item in items {
        let h = row_h(item);
        if let Item::Heading(text) = item {
            c.rect(0, y.saturating_sub(6), width, h + 6, BG);
            c.text(MARGIN, y + h - LINE, text, INK);
        }
        y += h;
    }
    c.write_png(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decade_labels_thin_out_only_when_they_would_touch() {
        // 0.001x..1000x: 87 px a decade, "0.001x" is 72 px wide.
        assert_eq!(label_step(Scale::Ratio, -3.0, 3.0), 1.0);
        // 0.0001x..100000x: 58 px a decade, "100000x" 84 px.
        assert_eq!(label_step(Scale::Ratio, -4.0, 5.0), 2.0);
        assert_eq!(label_step(Scale::Nanoseconds, 1.0, 5.0), 1.0);
        assert_eq!(tick_label(Scale::Ratio, -2.0), "0.01x");
        assert_eq!(tick_label(Scale::Ratio, 2.0), "100x");
        assert_eq!(tick_label(Scale::Nanoseconds, 4.0), "10 us");
    }
}
