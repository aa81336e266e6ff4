//! `cargo xtask bench-vm`: the VM benchmark.
//!
//! Boots the same guest as `vm-test` (same modules, same kernel, QEMU TCG)
//! but runs only `vmtest-bench`, which prints one `BENCH` line per figure,
//! each with the baseline measured beside it in the same guest. This task
//! turns them into a table with ratios, printed and written to
//! `target/bench-vm/results.md` (and `results.tsv` for tools), and a chart
//! of the ratios, `results.png` (see [`chart`]). Under the table, the
//! issue's [`TARGETS`] (trap mode: a trapped store within 2x a null ioctl,
//! the busy-polled doorbell -> MSI round trip within 5x) say met, or by
//! how much they were missed.
//!
//! `cargo xtask bench-vm --from-log FILE` makes the same three files from
//! a guest log kept from an earlier run (`target/vm/vm.log`), without
//! booting.

pub mod chart;

use std::fmt::Write as _;
use std::path::Path;

use crate::run::{fail, Result};

/// One `BENCH` line.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// What was measured.
    pub metric: String,
    /// Its value.
    pub value: f64,
    /// Unit of `value` and `baseline_value`.
    pub unit: String,
    /// The baseline measured beside it.
    pub baseline: String,
    /// The baseline's value, in the same unit.
    pub baseline_value: f64,
}

impl Figure {
    /// `value / baseline_value`. For rates (…/s, MB/s) below 1 means slower
    /// than the baseline; for latencies (us) above 1 means slower.
    pub fn ratio(&self) -> f64 {
        if self.baseline_value > 0.0 {
            self.value / self.baseline_value
        } else {
            f64::NAN
        }
    }
}

/// The figures of a guest log: `BENCH metric value unit baseline value`.
/// A malformed `BENCH` line is an error, not a skipped row.
pub fn parse(log: &str) -> std::result::Result<Vec<Figure>, String> {
    log.lines()
        .filter_map(|l| l.strip_prefix("BENCH "))
        .map(|rest| {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let [metric, value, unit, baseline, baseline_value] = f[..] else {
                return Err(format!("malformed BENCH line: {rest:?}"));
            };
            let num = |s: &str| {
                s.parse::<f64>()
                    .map_err(|e| format!("BENCH {metric}: {s:?} is not a number ({e})"))
            };
            Ok(Figure {
                metric: metric.to_string(),
                value: num(value)?,
                unit: unit.to_string(),
                baseline: baseline.to_string(),
                baseline_value: num(baseline_value)?,
            })
        })
        .collect()
}

/// The Markdown table of `figs`.
pub fn table(figs: &[Figure]) -> String {
    let mut out = String::from(
        "| measurement | value | baseline (same guest, same run) | baseline value | ratio |\n\
         |---|---:|---|---:|---:|\n",
    );
    for f in figs {
        let _ = writeln!(
            out,
            "| {} | {:.1} {} | {} | {:.1} {} | {:.3} |",
            f.metric,
            f.value,
            f.unit,
            f.baseline,
            f.baseline_value,
            f.unit,
            f.ratio()
        );
    }
    out
}

/// The issue's targets: `(metric, baseline, at most)`, the figure's ratio
/// to its baseline (a time per operation: lower is better).
pub const TARGETS: &[(&str, &str, f64)] = &[
    ("trap-store-ns", "null-ioctl-ns", 2.0),
    ("trap-roundtrip-busy-ns", "null-ioctl-ns", 5.0),
    // DMA checking costs under 5% at 4 KiB (issue 16).
    (
        "dma-read-4KiB-checked-ns",
        "dma-read-4KiB-unchecked-ns",
        1.05,
    ),
    (
        "dma-write-4KiB-checked-ns",
        "dma-write-4KiB-unchecked-ns",
        1.05,
    ),
    // NVMe: a QD1 4 KiB read on the Rust controller within 2x of QEMU's
    // built-in NVMe controller, in the same guest.
    ("nvme-randread-4k-qd1-p50-us", "qemu-nvme", 2.0),
];

/// The Markdown table of the [`TARGETS`] found in `figs` (empty if none):
/// each ratio, its bound, met or by how much it was missed.
pub fn targets(figs: &[Figure]) -> String {
    let mut out = String::new();
    for &(metric, baseline, max) in TARGETS {
        let Some(f) = figs
            .iter()
            .find(|f| f.metric == metric && f.baseline == baseline)
        else {
            continue;
        };
        if out.is_empty() {
            out.push_str("| target | ratio | at most | verdict |\n|---|---:|---:|---|\n");
        }
        let r = f.ratio();
        let verdict = if r <= max {
            "met".to_string()
        } else {
            format!("missed: {:.2}x the bound", r / max)
        };
        let _ = writeln!(
            out,
            "| {metric} / {baseline} | {r:.2}x | {max}x | {verdict} |"
        );
    }
    out
}

/// Build, boot, measure, report.
pub fn bench_vm(root: &Path) -> Result {
    // The guest's only scenario: the benchmark, given the ProtoPCIem driver
    // and device process exactly as `scenarios.txt` gives them to
    // `vmtest-protopciem`, for the round-trip part.
    let proto = crate::vm::scenarios(root)?
        .into_iter()
        .find_map(|l| {
            l.strip_prefix("vmtest-protopciem ")
                .map(|args| args.to_string())
        })
        .ok_or_else(|| fail("bench-vm", "scenarios.txt has no vmtest-protopciem line"))?;
    let log = crate::vm::vm_run(root, vec![format!("vmtest-bench {proto}"), nvme_line()])?;
    report(root, &log)
}

/// The NVMe comparison's scenario line: `vmtest-nvme-bench` in the `nvme`
/// boot, the Rust controller against QEMU's (see `crate::vm::nvme`).
fn nvme_line() -> String {
    format!(
        "nvme vmtest-nvme-bench /bin/pciem-nvme {}",
        crate::vm::nvme::QEMU_SERIAL
    )
}

/// `bench-vm --nvme`: only the NVMe comparison (one boot, about two
/// minutes), reported like the whole benchmark.
pub fn bench_vm_nvme(root: &Path) -> Result {
    let log = crate::vm::vm_run(root, vec![nvme_line()])?;
    report(root, &log)
}

/// `--from-log FILE`: the report of a kept guest log. Only of a run in
/// which `vmtest-bench` exited 0, because it exits non-zero when a check
/// of what it measured failed, and such figures are not measurements.
pub fn bench_vm_from_log(root: &Path, log: &Path) -> Result {
    let text = std::fs::read_to_string(log)
        .map_err(|e| fail("bench-vm", format!("reading {}: {e}", log.display())))?;
    if !bench_passed(&text) {
        return Err(fail(
            "bench-vm",
            format!(
                "{} has no `VMTEST EXIT vmtest-bench 0` (or `vmtest-nvme-bench 0`) line, or one that failed: not a finished, passing bench-vm run",
                log.display()
            ),
        ));
    }
    report(root, &text)
}

/// Whether the guest log shows a benchmark program (`vmtest-bench`, or
/// `vmtest-nvme-bench` in the nvme boot's log `vm-nvme.log`) exiting 0,
/// and none exiting otherwise.
fn bench_passed(log: &str) -> bool {
    let exits: Vec<&str> = log
        .lines()
        .filter_map(|l| {
            l.strip_prefix("VMTEST EXIT vmtest-bench ")
                .or_else(|| l.strip_prefix("VMTEST EXIT vmtest-nvme-bench "))
        })
        .map(str::trim)
        .collect();
    !exits.is_empty() && exits.iter().all(|rc| *rc == "0")
}

/// Parses the guest's `BENCH` lines and writes the table, the TSV and the
/// chart into `target/bench-vm`.
fn report(root: &Path, log: &str) -> Result {
    let figs = parse(log).map_err(|e| fail("bench-vm", e))?;
    if figs.is_empty() {
        return Err(fail("bench-vm", "the guest printed no BENCH line"));
    }
    let out = root.join("target/bench-vm");
    std::fs::create_dir_all(&out).map_err(|e| fail("bench-vm", e.to_string()))?;
    let mut md = table(&figs);
    let goals = targets(&figs);
    if !goals.is_empty() {
        md.push('\n');
        md.push_str(&goals);
    }
    let paths = breakdowns(log);
    if !paths.is_empty() {
        md.push_str("\nOne I/O's path, traced in the guest (`vmtest-nvme-bench`):\n\n```\n");
        md.push_str(&paths);
        md.push_str("```\n");
    }
    let tsv: String = figs
        .iter()
        .map(|f| {
            format!(
                "{}\t{}\t{}\t{}\t{}\t{}\n",
                f.metric,
                f.value,
                f.unit,
                f.baseline,
                f.baseline_value,
                f.ratio()
            )
        })
        .collect();
    for (name, text) in [("results.md", &md), ("results.tsv", &tsv)] {
        std::fs::write(out.join(name), text).map_err(|e| fail("bench-vm", e.to_string()))?;
    }
    println!("\n{md}");
    for l in log.lines().filter(|l| l.starts_with("INFO:")) {
        println!("{l}");
    }
    let png = out.join("results.png");
    chart::write(&png, &figs).map_err(|e| fail("bench-vm: chart", e))?;
    println!(
        "written to {}, results.tsv and results.png",
        out.join("results.md").display()
    );
    Ok(())
}

/// The `vmtest-nvme-bench` breakdowns of one I/O: each `INFO: breakdown`
/// line and the indented lines under it, without the `INFO: ` prefix.
pub fn breakdowns(log: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for l in log.lines() {
        if let Some(rest) = l.strip_prefix("INFO: ") {
            if rest.starts_with("breakdown") {
                inside = true;
            } else if !rest.starts_with("  ") {
                inside = false;
            }
            if inside {
                out.push_str(rest);
                out.push('\n');
            }
        } else {
            inside = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_lines_become_figures_with_ratios() {
        let log = "noise\nBENCH dma-read-1MiB 500.000 MB/s memcpy-1MiB 1000.000\n\
                   PASS: x\nBENCH ring-events-per-s 30000 events/s untrapped-stores-per-s 3000000\n";
        let figs = parse(log).unwrap();
        assert_eq!(figs.len(), 2);
        assert_eq!(figs[0].metric, "dma-read-1MiB");
        assert!((figs[0].ratio() - 0.5).abs() < 1e-12);
        assert!((figs[1].ratio() - 0.01).abs() < 1e-12);
        let t = table(&figs);
        assert!(t.contains("| dma-read-1MiB | 500.0 MB/s | memcpy-1MiB | 1000.0 MB/s | 0.500 |"));
    }

    #[test]
    fn targets_say_met_or_by_how_much_they_were_missed() {
        let log = "BENCH trap-store-ns 3000 ns null-ioctl-ns 1000\n\
                   BENCH trap-roundtrip-busy-ns 10000 ns null-ioctl-ns 1000\n\
                   BENCH trap-store-ns 3000 ns watchpoint-store-ns 30000\n";
        let t = targets(&parse(log).unwrap());
        assert!(
            t.contains("| trap-store-ns / null-ioctl-ns | 3.00x | 2x | missed: 1.50x the bound |"),
            "{t}"
        );
        assert!(t.contains("| trap-roundtrip-busy-ns / null-ioctl-ns | 10.00x | 5x | missed: 2.00x the bound |"), "{t}");
        assert_eq!(t.lines().count(), 4, "{t}");
        let met = targets(&parse("BENCH trap-store-ns 1500 ns null-ioctl-ns 1000\n").unwrap());
        assert!(met.contains("| 1.50x | 2x | met |"), "{met}");
        assert!(targets(&parse("BENCH dma-read-1MiB 1 MB/s memcpy-1MiB 2\n").unwrap()).is_empty());
    }

    #[test]
    fn only_a_log_where_the_bench_exited_0_is_reported() {
        assert!(bench_passed("x\nVMTEST EXIT vmtest-bench 0\n"));
        assert!(!bench_passed("VMTEST EXIT vmtest-bench 1\n"));
        assert!(!bench_passed("VMTEST EXIT vmtest-msi 0\nBENCH m 1 u b 1\n"));
        assert!(bench_passed("VMTEST EXIT vmtest-nvme-bench 0\n"));
        assert!(!bench_passed(
            "VMTEST EXIT vmtest-bench 0\nVMTEST EXIT vmtest-nvme-bench 1\n"
        ));
    }

    #[test]
    fn breakdowns_are_kept_with_their_lines() {
        let log = "INFO: other\nINFO: breakdown of a read on A:\nINFO:   a -> b   1.0 us\n\
                   INFO: next\nINFO:   not this\nINFO: breakdown of B:\nINFO:   c -> d 2 us\nPASS: x\n";
        assert_eq!(
            breakdowns(log),
            "breakdown of a read on A:\n  a -> b   1.0 us\nbreakdown of B:\n  c -> d 2 us\n"
        );
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(parse("BENCH only three fields\n").is_err());
        assert!(parse("BENCH m x u b 1\n").is_err());
        assert!(parse("BENCH m 1 u b 0\n").unwrap()[0].ratio().is_nan());
    }
}
