//! `cargo xtask test`: every test the project has, in order, each step
//! timed; all steps run even after a failure, then a summary.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::run::{fail, run, run_keeping_stdout, Result};

type Step = (&'static str, Box<dyn Fn(&Path) -> Result>);

fn cargo(root: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root).args(args);
    c
}

fn steps() -> Vec<Step> {
    vec![
        ("setup", Box::new(|_| crate::setup::setup())),
        (
            "fmt",
            Box::new(|r| run("fmt", &mut cargo(r, &["fmt", "--all", "--", "--check"]))),
        ),
        (
            "clippy",
            Box::new(|r| {
                run(
                    "clippy",
                    &mut cargo(
                        r,
                        &[
                            "clippy",
                            "--workspace",
                            "--all-targets",
                            "--",
                            "-D",
                            "warnings",
                        ],
                    ),
                )
            }),
        ),
        (
            "doc",
            Box::new(|r| {
                run(
                    "doc",
                    cargo(r, &["doc", "--workspace", "--no-deps"])
                        .env("RUSTDOCFLAGS", "-D warnings"),
                )
            }),
        ),
        (
            "test",
            Box::new(|r| run("test", &mut cargo(r, &["test", "--workspace"]))),
        ),
        // A model written as an outside user would (its own crate, the
        // library crates by path): the public API is enough for a DMA
        // engine with a coalescing timer and typed DMA, tested on the mock.
        (
            "outside crate",
            Box::new(|r| {
                run(
                    "outside crate",
                    cargo(
                        r,
                        &[
                            "test",
                            "--locked",
                            "--manifest-path",
                            "examples/outside-model/Cargo.toml",
                        ],
                    )
                    .env("CARGO_TARGET_DIR", r.join("target/outside")),
                )
            }),
        ),
        // The benchmarks once each in criterion's test mode (a smoke run of
        // every driver, well under a minute; no figures are written).
        (
            "bench smoke",
            Box::new(|r| {
                run(
                    "bench smoke",
                    &mut cargo(r, &["test", "-p", "pciem-bench", "--benches"]),
                )
            }),
        ),
        (
            "no_std build",
            Box::new(|r| {
                run(
                    "no_std build",
                    &mut cargo(
                        r,
                        &[
                            "build",
                            "-p",
                            "pciem-abi",
                            "-p",
                            "pciem-core",
                            "--no-default-features",
                        ],
                    ),
                )
            }),
        ),
        // The library crates as crates.io would build them (verified
        // tarballs, no upload), and with the declared rust-version.
        ("package", Box::new(crate::publish::package)),
        ("msrv build", Box::new(crate::publish::msrv_build)),
        ("loom", Box::new(loom)),
        ("kshim tests", Box::new(kshim_tests)),
        ("kshim clippy", Box::new(kshim_clippy)),
        // The C layout tests and C program builds are cargo tests of xtask
        // (xtask/tests/), so the `test` step has run them already.
        (
            "header --check",
            Box::new(|r| crate::header::gen_header(r, true)),
        ),
        // Kernel hygiene: checkpatch --strict over kernel/, and the shipped
        // dkms.conf built by DKMS against the installed headers.
        ("checkpatch", Box::new(crate::kernelcheck::checkpatch)),
        ("dkms build", Box::new(crate::kernelcheck::dkms_build)),
        ("fuzz --smoke", Box::new(crate::fuzz::smoke)),
        ("vm-test", Box::new(crate::vm::vm_test)),
    ]
}

/// The loom models of the event ring, in a target directory of their own
/// (`--cfg loom` would otherwise invalidate the normal build). A filter
/// that matches nothing must not pass, so at least one test has to run.
fn loom(root: &Path) -> Result {
    let stdout = run_keeping_stdout(
        "loom",
        cargo(root, &["test", "-p", "pciem-core", "--release", "ring"])
            .env("RUSTFLAGS", "--cfg loom")
            .env("CARGO_TARGET_DIR", root.join("target/loom")),
    )?;
    let passed = passed_tests(&stdout);
    if passed == 0 {
        return Err(fail(
            "loom",
            "no test ran: the filter `ring` matched nothing",
        ));
    }
    eprintln!("loom: {passed} tests passed");
    Ok(())
}

/// The host unit tests of the kernel shim (kernel/rust, a workspace of its
/// own), in a target directory of their own; at least one must run.
fn kshim_tests(root: &Path) -> Result {
    let stdout = run_keeping_stdout(
        "kshim tests",
        cargo(root, &["test", "--manifest-path", "kernel/rust/Cargo.toml"])
            .env("CARGO_TARGET_DIR", root.join("target/kshim-test")),
    )?;
    let passed = passed_tests(&stdout);
    if passed == 0 {
        return Err(fail("kshim tests", "no test ran"));
    }
    eprintln!("kshim tests: {passed} tests passed");
    Ok(())
}

/// Clippy over the kernel shim with warnings as errors: it is a workspace
/// of its own, with the main workspace's unsafe lints copied into its
/// manifest (SAFETY comments, unsafe ops in unsafe blocks).
fn kshim_clippy(root: &Path) -> Result {
    run(
        "kshim clippy",
        cargo(
            root,
            &[
                "clippy",
                "--manifest-path",
                "kernel/rust/Cargo.toml",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        )
        .env("CARGO_TARGET_DIR", root.join("target/kshim-test")),
    )
}

/// How many tests libtest reported as passed in `stdout`.
fn passed_tests(stdout: &str) -> usize {
    stdout
        .lines()
        .filter(|l| l.starts_with("test ") && l.ends_with(" ... ok"))
        .count()
}

/// Run every step; fail if any failed.
pub fn run_all(root: &Path) -> Result {
    let started = Instant::now();
    let results = run_steps(root, steps());
    let (summary, failed) = summarize(&results, started.elapsed().as_secs_f64());
    print!("{summary}");
    if failed == 0 {
        Ok(())
    } else {
        Err(fail("test", format!("{failed} step(s) failed")))
    }
}

/// One finished step: its name, whether it passed, how long it took.
type Outcome = (&'static str, bool, f64);

/// Run `steps` in order, each between banners, all of them even after a
/// failure.
fn run_steps(root: &Path, steps: Vec<Step>) -> Vec<Outcome> {
    let mut results = Vec::new();
    for (name, step) in steps {
        eprintln!("\n==== {name} ====");
        let t = Instant::now();
        let r = step(root);
        let secs = t.elapsed().as_secs_f64();
        match &r {
            Ok(()) => eprintln!("==== {name}: ok ({secs:.1} s)"),
            Err(e) => eprintln!("==== {name}: FAILED ({secs:.1} s): {e}"),
        }
        results.push((name, r.is_ok(), secs));
    }
    results
}

/// The summary table, ending in the line `N passed, M failed`, and M.
fn summarize(results: &[Outcome], total_secs: f64) -> (String, usize) {
    let mut out = String::from("\nstep                 result   seconds\n");
    for (name, ok, secs) in results {
        out.push_str(&format!(
            "{name:<20} {:<8} {secs:>7.1}\n",
            if *ok { "ok" } else { "FAILED" }
        ));
    }
    let failed = results.iter().filter(|r| !r.1).count();
    out.push_str(&format!("total {total_secs:.1} s\n"));
    out.push_str(&format!(
        "{} passed, {failed} failed\n",
        results.len() - failed
    ));
    (out, failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    #[test]
    fn every_step_runs_after_a_failure_and_the_summary_counts_them() {
        let ran = Rc::new(Cell::new(0));
        let (a, b, c) = (ran.clone(), ran.clone(), ran.clone());
        let steps: Vec<Step> = vec![
            (
                "first",
                Box::new(move |_| {
                    a.set(a.get() + 1);
                    Ok(())
                }),
            ),
            (
                "second",
                Box::new(move |_| {
                    b.set(b.get() + 1);
                    Err(fail("second", "broken"))
                }),
            ),
            (
                "third",
                Box::new(move |_| {
                    c.set(c.get() + 1);
                    Ok(())
                }),
            ),
        ];
        let results = run_steps(Path::new("."), steps);
        assert_eq!(ran.get(), 3);
        let (summary, failed) = summarize(&results, 1.0);
        assert_eq!(failed, 1);
        assert_eq!(summary.lines().last(), Some("2 passed, 1 failed"));
        assert!(summary.contains("second               FAILED"), "{summary}");
    }

    #[test]
    fn passed_tests_are_counted_from_libtest_output() {
        let out = "running 2 tests\ntest a ... ok\ntest b ... FAILED\ntest c ... ok\n\
                   test result: FAILED. 2 passed; 1 failed\n";
        assert_eq!(passed_tests(out), 2);
        assert_eq!(
            passed_tests("running 0 tests\ntest result: ok. 0 passed\n"),
            0
        );
    }

    #[test]
    fn the_steps_are_the_documented_sequence() {
        let names: Vec<&str> = steps().iter().map(|s| s.0).collect();
        assert_eq!(
            names,
            [
                "setup",
                "fmt",
                "clippy",
                "doc",
                "test",
                "outside crate",
                "bench smoke",
                "no_std build",
                "package",
                "msrv build",
                "loom",
                "kshim tests",
                "kshim clippy",
                "header --check",
                "checkpatch",
                "dkms build",
                "fuzz --smoke",
                "vm-test"
            ]
        );
    }
}
