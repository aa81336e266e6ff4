//! `cargo xtask setup`: install what the tests need, only what is missing.
//! Quick and silent when everything is present.

use std::process::Command;

use crate::run::{fail, have, run, Result};

/// A tool the tests run and the Debian package that provides it.
const TOOLS: &[(&str, &str)] = &[
    ("gcc", "gcc"),
    ("g++", "g++"),
    ("make", "make"),
    ("lspci", "pciutils"),
];

/// Files the tests include and their packages.
const FILES: &[(&str, &str)] = &[("/usr/include/linux/pci_regs.h", "linux-libc-dev")];

/// Install missing packages with apt-get.
pub fn setup() -> Result {
    let mut missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(tool, _)| !have(tool))
        .map(|&(_, pkg)| pkg)
        .collect();
    missing.extend(
        FILES
            .iter()
            .filter(|(file, _)| !std::path::Path::new(file).exists())
            .map(|&(_, pkg)| pkg),
    );
    if crate::ctest::kernel_build_dir().is_none() {
        // Which kernel the project builds against is the kernel build's
        // choice, so this only says what is missing.
        eprintln!(
            "setup: warning: no kernel build tree (/usr/src/linux-headers-*-amd64 or $KDIR); \
             the kernel-mode header test will fail"
        );
    }
    if missing.is_empty() {
        eprintln!("setup: everything needed is installed");
        return Ok(());
    }
    if !have("apt-get") {
        return Err(fail(
            "setup",
            format!("missing packages {missing:?} and no apt-get to install them"),
        ));
    }
    eprintln!("setup: installing {missing:?}");
    run(
        "setup: apt-get update",
        Command::new("apt-get").args(["update", "-qq"]),
    )?;
    run(
        "setup: apt-get install",
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}
