//! `target/bench-vm/results.png`: every figure as its ratio to its
//! baseline, one bar each, on a log axis with the baseline at 1×. The
//! figures have seven different units, so bars of raw values could not
//! share an axis; ratios can. Rates and latencies are in separate groups
//! under headings that say which way is better, and in different colours.

use std::fmt::Write as _;
use std::path::Path;

use pciem_plot::{Better, RatioBar, RatioRow};

use super::Figure;

/// The chart's title (two lines).
const TITLE: &str = "cargo xtask bench-vm: each figure / its baseline (same guest, same run), log scale\n\
                     black line = 1x = the baseline. QEMU TCG: read the ratios, not the absolute values";

/// Which way is better for a figure in `unit`: a rate (`…/s`) higher, a
/// time lower. Any other unit is an error, so that a new kind of figure
/// is never drawn under the wrong heading.
pub fn better(unit: &str) -> Result<Better, String> {
    match unit {
        u if u.ends_with("/s") => Ok(Better::Higher),
        "ns" | "us" | "ms" | "s" => Ok(Better::Lower),
        u => Err(format!(
            "unit {u:?} is neither a rate (…/s) nor a time (ns, us, ms, s): \
             cannot tell whether higher or lower is better"
        )),
    }
}

/// `v` in at most five characters plus a k/M/G suffix.
fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A ratio with two significant digits below 1, "no ratio" when there is
/// none (a zero baseline).
fn ratio_text(r: f64) -> String {
    if !r.is_finite() || r <= 0.0 {
        "no ratio (baseline 0)".into()
    } else if r >= 10.0 {
        format!("{r:.0}x")
    } else if r >= 1.0 {
        format!("{r:.2}x")
    } else {
        let decimals = (-r.log10()).ceil() as usize + 1;
        format!("{r:.decimals$}x")
    }
}

fn bar(f: &Figure, better: Better) -> RatioRow {
    let mut note = ratio_text(f.ratio());
    let _ = write!(
        note,
        "\n{} vs {} {}",
        short(f.value),
        short(f.baseline_value),
        f.unit
    );
    RatioRow::Bar(RatioBar {
        label: format!("{}\nvs {}", f.metric, f.baseline),
        ratio: f.ratio(),
        note,
        better,
    })
}

/// The chart's rows: the rates under one heading, then the latencies
/// under another, each group in the order measured.
pub fn rows(figs: &[Figure]) -> Result<Vec<RatioRow>, String> {
    let kinds = figs
        .iter()
        .map(|f| better(&f.unit).map_err(|e| format!("BENCH {}: {e}", f.metric)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows = Vec::new();
    for (kind, heading) in [
        (
            Better::Higher,
            "rates (per second): higher is better. left of 1x = slower than its baseline",
        ),
        (
            Better::Lower,
            "latencies (time per operation): lower is better. right of 1x = slower than its baseline",
        ),
    ] {
        let group: Vec<RatioRow> = figs
            .iter()
            .zip(&kinds)
            .filter(|(_, k)| **k == kind)
            .map(|(f, _)| bar(f, kind))
            .collect();
        if !group.is_empty() {
            rows.push(RatioRow::Heading(heading.into()));
            rows.extend(group);
        }
    }
    Ok(rows)
}

/// Draws `figs` into the PNG at `path`.
pub fn write(path: &Path, figs: &[Figure]) -> Result<(), String> {
    pciem_plot::ratio_chart(path, TITLE, &rows(figs)?).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::benchvm::parse;

    /// A few lines of a real guest log (`cargo xtask bench-vm`, 20:27 UTC
    /// run), with the noise around them.
    const LOG: &str = "\
[    1.234] pciem: loaded\n\
INFO: 20000 stores: watched 969.6 ms, unwatched 1.277 ms\n\
BENCH ring-events-per-s 20627.100 events/s untrapped-stores-per-s 15662590.200\n\
BENCH dma-read-1MiB 1650.600 MB/s memcpy-1MiB 1974.300\n\
vmtest-bench             PASS\n\
BENCH protopciem-add-roundtrip-p50 361.700 us null-driver-ioctl-p50 1.400\n";

    fn decode(path: &Path) -> (u32, u32, pciem_plot::inspect::Image) {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        assert_eq!(&bytes[12..16], b"IHDR", "first chunk");
        let ihdr_w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let ihdr_h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        let image = pciem_plot::inspect::decode(&bytes).unwrap();
        assert_eq!((image.width as u32, image.height as u32), (ihdr_w, ihdr_h));
        (ihdr_w, ihdr_h, image)
    }

    /// For each horizontal band of rows holding colour `c`, top to
    /// bottom: (leftmost x, rightmost x, pixels of `c`) in its middle row.
    fn bars(image: &pciem_plot::inspect::Image, c: [u8; 3]) -> Vec<(usize, usize, usize)> {
        pciem_plot::inspect::bars(image, c)
            .into_iter()
            .map(|s| (s.left, s.right, s.count))
            .collect()
    }

    #[test]
    fn chart_of_a_guest_log_has_a_bar_per_figure_scaled_by_its_ratio() {
        let dir = std::env::temp_dir().join(format!("xtask-benchvm-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let figs = parse(LOG).unwrap();
        let path = dir.join("results.png");
        write(&path, &figs).unwrap();
        let (w, h, px) = decode(&path);
        // Wide enough for the two-line title (about 85 characters of 12 px).
        assert!(w >= 85 * 12, "width {w}");

        let rates = bars(&px, Better::Higher.colour());
        let latencies = bars(&px, Better::Lower.colour());
        assert_eq!(rates.len(), 2, "{rates:?}");
        assert_eq!(latencies.len(), 1, "{latencies:?}");
        // Rates are below their baselines: their bars end at the 1x line,
        // the latency (above its baseline) starts there.
        assert_eq!(rates[0].1, rates[1].1);
        assert_eq!(rates[0].1 + 2, latencies[0].0);
        // ring (0.0013x, 2.9 decades below 1) is far longer than DMA
        // (0.84x, 0.08 of a decade); the round trip (258x, 2.4 decades)
        // in between.
        let (ring, dma, add) = (rates[0].2, rates[1].2, latencies[0].2);
        assert!(dma * 10 < ring, "{rates:?}");
        assert!(dma < add && add < ring, "{rates:?} {latencies:?}");

        // One more figure, one more row.
        let more = format!(
            "{LOG}BENCH protopciem-add-roundtrip-p99 773.600 us null-driver-ioctl-p99 4.500\n"
        );
        write(&path, &parse(&more).unwrap()).unwrap();
        let (w2, h2, _) = decode(&path);
        assert_eq!(w2, w);
        assert!(h2 > h, "{h2} <= {h}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rates_and_latencies_are_grouped_under_headings_that_say_which_way_is_better() {
        let rows = rows(&parse(LOG).unwrap()).unwrap();
        let shape: Vec<String> = rows
            .iter()
            .map(|r| match r {
                RatioRow::Heading(h) => h.split(':').next().unwrap_or("").to_string(),
                RatioRow::Bar(b) => format!("{:?} {}", b.better, b.note.replace('\n', " | ")),
            })
            .collect();
        assert_eq!(
            shape,
            [
                "rates (per second)",
                "Higher 0.0013x | 20.6k vs 15.7M events/s",
                "Higher 0.84x | 1651 vs 1974 MB/s",
                "latencies (time per operation)",
                "Lower 258x | 362 vs 1.40 us",
            ]
        );
    }

    #[test]
    fn a_unit_that_is_neither_rate_nor_time_is_an_error() {
        let figs = parse("BENCH odd 1 widgets base 2\n").unwrap();
        let e = rows(&figs).err().unwrap();
        assert!(e.contains("BENCH odd") && e.contains("widgets"), "{e}");
        assert!(better("MB/s").is_ok() && better("us").is_ok());
    }
}
