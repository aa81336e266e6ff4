//! `cargo xtask fuzz`: the cargo-fuzz targets in `fuzz/`, with the nightly
//! toolchain.
//!
//! - `--smoke`: every target for [`SMOKE_SECONDS`], failing on a crash;
//!   a step of `cargo xtask test`.
//! - `TARGET [--seconds N]`: one target for `N` seconds (default
//!   [`DEFAULT_SECONDS`]).
//! - `TARGET --merge`: minimise what runs found into the committed corpus.
//!
//! Each run reads the committed corpus (`fuzz/corpus/TARGET`, never
//! written) and a working corpus under `target/fuzz/corpus/TARGET` that
//! keeps what earlier runs found. The libFuzzer log of each run is kept in
//! `target/fuzz/logs/TARGET.log` and the summary table of the last run in
//! `target/fuzz/last-run.txt`; a crashing input is saved under
//! `fuzz/artifacts/TARGET/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::run::{fail, have, run, Result};

/// The targets, in the order the smoke run takes them.
pub const TARGETS: &[&str] = &[
    "config_space",
    "ring",
    "protopciem_cmdbuf",
    "mmio_decode",
    "nvme_commands",
];

/// Seconds per target in a smoke run.
pub const SMOKE_SECONDS: u32 = 20;

/// Seconds of a single-target run when none is given.
pub const DEFAULT_SECONDS: u32 = 300;

/// Longest input libFuzzer makes (the ProtoPCIem target's command buffers
/// go up to 4 KiB each).
const MAX_LEN: u32 = 16384;

/// What `cargo xtask fuzz ...` was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// Every target for [`SMOKE_SECONDS`].
    Smoke,
    /// One target for this many seconds.
    Run(String, u32),
    /// Merge the working corpus into the committed one.
    Merge(String),
}

/// Parse the arguments after `fuzz`.
pub fn parse_args(args: &[&str]) -> std::result::Result<Request, String> {
    let known = |t: &str| {
        if TARGETS.contains(&t) {
            Ok(t.to_string())
        } else {
            Err(format!("unknown fuzz target {t:?} (targets: {TARGETS:?})"))
        }
    };
    match args {
        ["--smoke"] => Ok(Request::Smoke),
        [t] => Ok(Request::Run(known(t)?, DEFAULT_SECONDS)),
        [t, "--seconds", n] => {
            let secs = n
                .parse::<u32>()
                .ok()
                .filter(|&s| s > 0)
                .ok_or_else(|| format!("--seconds wants a positive number, not {n:?}"))?;
            Ok(Request::Run(known(t)?, secs))
        }
        [t, "--merge"] => Ok(Request::Merge(known(t)?)),
        _ => Err("usage: cargo xtask fuzz --smoke | TARGET [--seconds N] | TARGET --merge".into()),
    }
}

/// Numbers libFuzzer printed at the end of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Inputs executed.
    pub executions: u64,
    /// Seconds libFuzzer ran for.
    pub seconds: u64,
    /// Coverage counters hit (`cov:`).
    pub coverage: u64,
    /// Features (`ft:`).
    pub features: u64,
    /// Inputs in the corpus at the end (`corp:`).
    pub corpus: u64,
    /// Inputs added during the run.
    pub new_units: u64,
}

/// Read the final numbers from a libFuzzer log (`-print_final_stats=1`).
pub fn parse_stats(log: &str) -> Option<Stats> {
    let mut s = Stats::default();
    let mut seen_done = false;
    let field = |line: &str, key: &str| -> Option<u64> {
        let rest = line.split(key).nth(1)?.trim_start();
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    for line in log.lines() {
        if let Some(v) = line.strip_prefix("stat::number_of_executed_units:") {
            s.executions = v.trim().parse().ok()?;
        } else if let Some(v) = line.strip_prefix("stat::new_units_added:") {
            s.new_units = v.trim().parse().ok()?;
        } else if line.starts_with("Done ") {
            // "Done 5252 runs in 21 second(s)"
            s.seconds = field(line, " in ")?;
        } else if line.starts_with('#') && line.split_whitespace().nth(1) == Some("DONE") {
            seen_done = true;
            s.coverage = field(line, "cov:").unwrap_or(0);
            s.features = field(line, "ft:").unwrap_or(0);
            s.corpus = field(line, "corp:").unwrap_or(0);
        }
    }
    (seen_done && s.executions > 0).then_some(s)
}

/// The summary table.
pub fn table(rows: &[(&str, Stats)]) -> String {
    let mut out = format!(
        "{:<18} {:>11} {:>8} {:>8} {:>6} {:>7} {:>7} {:>5}\n",
        "target", "executions", "seconds", "exec/s", "cov", "ft", "corpus", "new"
    );
    for (name, s) in rows {
        out.push_str(&format!(
            "{:<18} {:>11} {:>8} {:>8} {:>6} {:>7} {:>7} {:>5}\n",
            name,
            s.executions,
            s.seconds,
            s.executions / s.seconds.max(1),
            s.coverage,
            s.features,
            s.corpus,
            s.new_units
        ));
    }
    out
}

fn nightly(root: &Path) -> Command {
    let mut c = Command::new("cargo");
    c.current_dir(root)
        // Whatever toolchain runs xtask must not leak into the nightly
        // build (rustup's proxy would pick the variable over `+nightly`
        // for the tools cargo-fuzz starts).
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTDOC")
        .env_remove("RUSTFLAGS")
        .args(["+nightly", "fuzz"]);
    c
}

fn fuzz_args<'a>(c: &'a mut Command, root: &Path, sub: &str) -> &'a mut Command {
    c.arg(sub)
        .arg("--fuzz-dir")
        .arg(root.join("fuzz"))
        .arg("--target-dir")
        .arg(root.join("target/fuzz"))
}

fn check_tools(step: &str) -> Result {
    if !have("cargo-fuzz") {
        return Err(fail(
            step,
            "cargo-fuzz is not installed (run `cargo xtask setup`)",
        ));
    }
    Ok(())
}

/// Build every target (sanitizer-instrumented, nightly).
fn build(root: &Path) -> Result {
    run("fuzz build", fuzz_args(&mut nightly(root), root, "build"))
}

fn working_corpus(root: &Path, target: &str) -> Result<PathBuf> {
    let dir = root.join("target/fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).map_err(|e| fail("fuzz", format!("{}: {e}", dir.display())))?;
    Ok(dir)
}

/// Run `target` for `seconds`; its numbers, or an error naming the crash.
fn run_target(root: &Path, target: &str, seconds: u32) -> Result<Stats> {
    let step = format!("fuzz {target}");
    let work = working_corpus(root, target)?;
    let logs = root.join("target/fuzz/logs");
    std::fs::create_dir_all(&logs).map_err(|e| fail(&step, e.to_string()))?;
    let log_path = logs.join(format!("{target}.log"));
    let log = std::fs::File::create(&log_path)
        .map_err(|e| fail(&step, format!("{}: {e}", log_path.display())))?;
    let mut cmd = nightly(root);
    fuzz_args(&mut cmd, root, "run")
        .arg(target)
        .arg(&work)
        .arg(root.join("fuzz/corpus").join(target))
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-max_len={MAX_LEN}"))
        .arg("-print_final_stats=1")
        .stdout(log.try_clone().map_err(|e| fail(&step, e.to_string()))?)
        .stderr(log);
    eprintln!("+ {target}: {seconds} s, log in {}", log_path.display());
    let started = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| fail(&step, format!("cannot start cargo +nightly fuzz: {e}")))?;
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        eprintln!("{}", tail.join("\n"));
        return Err(fail(
            &step,
            format!(
                "exited with {status} after {:.0} s (crashing input under fuzz/artifacts/{target}/, \
                 full log {})",
                started.elapsed().as_secs_f64(),
                log_path.display()
            ),
        ));
    }
    parse_stats(&text).ok_or_else(|| {
        fail(
            &step,
            format!("no final statistics in {}", log_path.display()),
        )
    })
}

/// Run the targets of `plan` and print (and keep) the table.
fn run_plan(root: &Path, plan: &[(&str, u32)]) -> Result {
    check_tools("fuzz")?;
    build(root)?;
    let mut rows = Vec::new();
    for &(target, seconds) in plan {
        rows.push((target, run_target(root, target, seconds)?));
    }
    let t = table(&rows);
    print!("{t}");
    let path = root.join("target/fuzz/last-run.txt");
    std::fs::write(&path, &t).map_err(|e| fail("fuzz", format!("{}: {e}", path.display())))?;
    Ok(())
}

/// The fuzz crate's own checks, on stable (it is outside the workspace, so
/// the workspace's fmt and clippy steps do not see it): formatting, clippy,
/// and its tests (the committed corpus matches the seed generators and
/// every corpus file passes its target).
fn crate_checks(root: &Path) -> Result {
    let manifest = root.join("fuzz/Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(
        "fuzz fmt",
        Command::new(&cargo)
            .arg("fmt")
            .arg("--manifest-path")
            .arg(&manifest)
            .args(["--", "--check"]),
    )?;
    run(
        "fuzz clippy",
        Command::new(&cargo)
            .arg("clippy")
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--all-targets")
            .arg("--target-dir")
            .arg(root.join("target/fuzz/stable"))
            .args(["--", "-D", "warnings"]),
    )?;
    run(
        "fuzz seeds",
        Command::new(&cargo)
            .arg("test")
            .arg("--release")
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--target-dir")
            .arg(root.join("target/fuzz/stable")),
    )
}

/// `cargo xtask fuzz --smoke`: the crate's checks, then every target for
/// [`SMOKE_SECONDS`].
pub fn smoke(root: &Path) -> Result {
    crate_checks(root)?;
    let plan: Vec<(&str, u32)> = TARGETS.iter().map(|&t| (t, SMOKE_SECONDS)).collect();
    run_plan(root, &plan)
}

/// `cargo xtask fuzz ...`.
pub fn fuzz(root: &Path, request: Request) -> Result {
    match request {
        Request::Smoke => smoke(root),
        Request::Run(target, seconds) => run_plan(root, &[(&target, seconds)]),
        Request::Merge(target) => {
            check_tools("fuzz merge")?;
            build(root)?;
            let work = working_corpus(root, &target)?;
            let mut cmd = nightly(root);
            run(
                "fuzz merge",
                fuzz_args(&mut cmd, root, "run")
                    .arg(&target)
                    .arg(root.join("fuzz/corpus").join(&target))
                    .arg(&work)
                    .arg("--")
                    .arg("-merge=1")
                    .arg(format!("-max_len={MAX_LEN}")),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        assert_eq!(parse_args(&["--smoke"]), Ok(Request::Smoke));
        assert_eq!(
            parse_args(&["ring"]),
            Ok(Request::Run("ring".into(), DEFAULT_SECONDS))
        );
        assert_eq!(
            parse_args(&["config_space", "--seconds", "90"]),
            Ok(Request::Run("config_space".into(), 90))
        );
        assert_eq!(
            parse_args(&["protopciem_cmdbuf", "--merge"]),
            Ok(Request::Merge("protopciem_cmdbuf".into()))
        );
        assert!(parse_args(&["nope"])
            .unwrap_err()
            .contains("unknown fuzz target"));
        assert!(parse_args(&["ring", "--seconds", "0"]).is_err());
        assert!(parse_args(&["ring", "--seconds", "x"]).is_err());
        assert!(parse_args(&[]).is_err());
    }

    #[test]
    fn final_statistics_are_read_from_the_log() {
        let log = "\
INFO: Seed: 1
#2\tINITED cov: 900 ft: 1000 corp: 5/1Kb exec/s: 0 rss: 40Mb
#5187\tREDUCE cov: 1228 ft: 4703 corp: 337/49Kb lim: 372 exec/s: 259 rss: 409Mb
#5252\tDONE   cov: 1228 ft: 4703 corp: 337/49Kb lim: 372 exec/s: 250 rss: 409Mb
Done 5252 runs in 21 second(s)
stat::number_of_executed_units: 5252
stat::average_exec_per_sec:     250
stat::new_units_added:          331
stat::slowest_unit_time_sec:    0
stat::peak_rss_mb:              409
";
        assert_eq!(
            parse_stats(log),
            Some(Stats {
                executions: 5252,
                seconds: 21,
                coverage: 1228,
                features: 4703,
                corpus: 337,
                new_units: 331,
            })
        );
        // A log that ends early (a crash) has no statistics.
        assert_eq!(
            parse_stats("#2\tINITED cov: 9\n==1== ERROR: libFuzzer: deadly signal\n"),
            None
        );
    }

    #[test]
    fn the_table_has_a_row_per_target() {
        let s = Stats {
            executions: 1000,
            seconds: 20,
            coverage: 5,
            features: 6,
            corpus: 7,
            new_units: 2,
        };
        let t = table(&[("ring", s.clone()), ("config_space", s)]);
        assert_eq!(t.lines().count(), 3);
        assert!(t.lines().nth(1).unwrap().starts_with("ring"));
        assert!(t.contains("      50 "), "{t}");
    }
}
