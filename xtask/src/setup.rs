//! `cargo xtask setup`: install what the tests need, only what is missing.
//! Quick and silent when everything is present.

use std::path::Path;
use std::process::Command;

use crate::run::{fail, have, output, run, Result};

/// A tool the tests run and the Debian package that provides it.
const TOOLS: &[(&str, &str)] = &[
    ("gcc", "gcc"),
    ("g++", "g++"),
    ("make", "make"),
    ("ld", "binutils"),
    ("lspci", "pciutils"),
    ("cpio", "cpio"),
    // `cargo xtask test`'s checkpatch and DKMS steps.
    ("perl", "perl"),
    ("dkms", "dkms"),
    // The NVMe guest (`nvme` boot of vm-test, bench-vm): the tools are
    // copied into its initramfs with their libraries, and the kernel's
    // modules (`.ko.xz`) are decompressed on the host.
    ("nvme", "nvme-cli"),
    ("fio", "fio"),
    ("mkfs.ext4", "e2fsprogs"),
    ("fstrim", "util-linux"),
    ("xz", "xz-utils"),
];

/// Files the tests use and their packages.
const FILES: &[(&str, &str)] = &[
    ("/usr/include/linux/pci_regs.h", "linux-libc-dev"),
    // The VM's userland must be the static busybox.
    ("/usr/share/doc/busybox-static", "busybox-static"),
    // Debian's Rust with its library source, for the kernel object
    // (`-Zbuild-std`): the rustup toolchains ship no rust-src.
    ("/usr/bin/rustc", "rustc-web"),
    ("/usr/bin/cargo", "cargo-web"),
    ("/usr/src/rustc-1.96.0/library/core", "rust-web-src"),
];

/// What `vmtest-bochs` needs on the host: `modetest` to copy into the
/// guest, and `xz` to decompress the kernel package's DRM modules.
const DISPLAY_FILES: &[(&str, &str)] = &[
    (crate::vm::DISPLAY_MODETEST, "libdrm-tests"),
    ("/usr/bin/xz", "xz-utils"),
];

const BACKPORTS: &str = "/etc/apt/sources.list.d/pciem-bookworm-backports.list";

fn apt_install(step: &str, packages: &[&str], extra: &[&str]) -> Result {
    run(
        step,
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(extra)
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// The fuzzing tools: the nightly toolchain (libFuzzer's sanitizer flags
/// need it) and cargo-fuzz. Silent when both are there.
fn fuzz_tools() -> Result {
    // Asked directly, not through `output`, which would print the command:
    // setup stays silent when nothing is missing.
    let toolchains = Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if !toolchains.lines().any(|l| l.starts_with("nightly")) {
        eprintln!("setup: installing the nightly toolchain (for cargo fuzz)");
        run(
            "setup: nightly",
            Command::new("rustup").args([
                "toolchain",
                "install",
                "nightly",
                "--profile",
                "minimal",
            ]),
        )?;
    }
    if !have("cargo-fuzz") {
        eprintln!("setup: installing cargo-fuzz");
        run(
            "setup: cargo-fuzz",
            Command::new("cargo").env_remove("RUSTUP_TOOLCHAIN").args([
                "install",
                "cargo-fuzz",
                "--locked",
            ]),
        )?;
    }
    Ok(())
}

/// Install missing packages with apt-get, and the fuzzing tools.
pub fn setup() -> Result {
    fuzz_tools()?;
    crate::publish::install_msrv_toolchain(&crate::root())?;
    let mut missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(t, _)| !have(t))
        .map(|&(_, p)| p)
        .collect();
    missing.extend(
        FILES
            .iter()
            .filter(|(f, _)| !Path::new(f).exists())
            .map(|&(_, p)| p),
    );
    missing.extend(
        DISPLAY_FILES
            .iter()
            .filter(|(f, _)| !Path::new(f).exists())
            .map(|&(_, p)| p),
    );
    let need_qemu = !have("qemu-system-x86_64");
    let need_kernel = crate::kbuild::kernel().is_err();
    if missing.is_empty() && !need_qemu && !need_kernel {
        crate::kernelcheck::install_checkpatch(&crate::root())?;
        eprintln!("setup: everything needed is installed");
        return Ok(());
    }
    if !have("apt-get") {
        return Err(fail(
            "setup",
            format!(
                "missing {missing:?} (qemu: {need_qemu}, kernel: {need_kernel}) and no apt-get"
            ),
        ));
    }
    if need_qemu && !Path::new(BACKPORTS).exists() {
        // bookworm's qemu 7.2 conflicts with the machine's qemu-utils 10
        // from backports; take qemu-system-x86 from backports as well.
        std::fs::write(
            BACKPORTS,
            "deb http://deb.debian.org/debian bookworm-backports main\n",
        )
        .map_err(|e| fail("setup", format!("{BACKPORTS}: {e}")))?;
    }
    run(
        "setup: apt-get update",
        Command::new("apt-get").args(["update", "-qq"]),
    )?;
    if !missing.is_empty() {
        eprintln!("setup: installing {missing:?}");
        apt_install("setup: apt-get install", &missing, &[])?;
    }
    if need_qemu {
        apt_install(
            "setup: qemu",
            &["qemu-system-x86"],
            &["-t", "bookworm-backports"],
        )?;
    }
    if need_kernel {
        let version = newest_kernel()?;
        eprintln!("setup: installing kernel {version} with its headers");
        apt_install(
            "setup: kernel",
            &[
                &format!("linux-image-{version}-unsigned"),
                &format!("linux-headers-{version}"),
            ],
            &[],
        )?;
    }
    crate::kbuild::kernel()?;
    crate::kernelcheck::install_checkpatch(&crate::root())
}

/// The newest `6.12.N+deb12-amd64` for which both an unsigned image and
/// headers of exactly that version are on the mirror (old ones disappear
/// as security updates land, so this is chosen at install time).
fn newest_kernel() -> Result<String> {
    let step = "setup: kernel version";
    let listing = output(
        step,
        Command::new("apt-cache").args([
            "search",
            "--names-only",
            r"^linux-headers-6\.12\.[0-9]+\+deb12-amd64$",
        ]),
    )?;
    let mut versions: Vec<(Vec<u32>, String)> = listing
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .next()?
                .strip_prefix("linux-headers-")
                .map(String::from)
        })
        .map(|v| {
            (
                v.split(|c: char| !c.is_ascii_digit())
                    .filter_map(|n| n.parse().ok())
                    .collect(),
                v,
            )
        })
        .collect();
    versions.sort();
    while let Some((_, v)) = versions.pop() {
        let image = format!("linux-image-{v}-unsigned");
        let shown = Command::new("apt-cache").args(["show", &image]).output();
        if shown.is_ok_and(|o| o.status.success() && !o.stdout.is_empty()) {
            return Ok(v);
        }
    }
    Err(fail(
        step,
        "no linux-headers-6.12.*+deb12-amd64 with a matching unsigned image on the mirror",
    ))
}
