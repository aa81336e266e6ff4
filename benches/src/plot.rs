//! The benchmarks' plot: a horizontal bar chart of latencies as a PNG,
//! drawn by [`pciem_plot`] (built-in font, no system fonts or plotting
//! library), which `cargo xtask bench-vm` uses for its chart too.

use std::path::Path;

pub use pciem_plot::{Bar, BarKind};

use crate::BenchError;

/// Draws `bars` under `title` on a log-scale nanosecond axis and writes
/// the PNG.
pub fn bar_chart(path: &Path, title: &str, bars: &[Bar]) -> Result<(), BenchError> {
    Ok(pciem_plot::bar_chart(path, title, bars)?)
}
