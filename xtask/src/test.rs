//! `cargo xtask test`: every test the project has, in order, each step
//! timed; all steps run even after a failure, then a summary.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::run::{fail, run, Result};

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
        (
            "loom",
            Box::new(|r| {
                let target = r.join("target/loom");
                run(
                    "loom",
                    cargo(r, &["test", "-p", "pciem-core", "--release", "ring"])
                        .env("RUSTFLAGS", "--cfg loom")
                        .env("CARGO_TARGET_DIR", target),
                )
            }),
        ),
        (
            "header drift",
            Box::new(|r| crate::header::gen_header(r, true)),
        ),
        ("C tests", Box::new(crate::ctest::run)),
        ("vm-test", Box::new(crate::vm::vm_test)),
    ]
}

/// Run every step; fail if any failed.
pub fn run_all(root: &Path) -> Result {
    let started = Instant::now();
    let mut results = Vec::new();
    for (name, step) in steps() {
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
    println!("\nstep                 result   seconds");
    for (name, ok, secs) in &results {
        println!(
            "{name:<20} {:<8} {secs:>7.1}",
            if *ok { "ok" } else { "FAILED" }
        );
    }
    let failed = results.iter().filter(|r| !r.1).count();
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    println!("{} passed, {} failed", results.len() - failed, failed);
    if failed == 0 {
        Ok(())
    } else {
        Err(fail("test", format!("{failed} step(s) failed")))
    }
}
