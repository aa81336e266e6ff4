//! `cargo xtask kbuild`: the shared Rust object and the kernel modules.
//!
//! The shim in `kernel/rust` is compiled from the same pciem-core source as
//! userspace, with Debian's rustc (the rustup toolchains have no rust-src
//! for `-Zbuild-std`) for `x86_64-unknown-none` with the kernel's code
//! model and mitigations, fat LTO, and only its own archive member kept.
//! The object must import nothing outside an allowlist, use only the
//! relocation types the module loader handles, and touch no SSE/MMX
//! register; the modules must build with `W=1` and no warning at all,
//! objtool and modpost included.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run::{fail, output, run, Result};

/// Debian's Rust (rustc-web) that the flags below were written for.
pub const RUSTC_VERSION: &str = "rustc 1.96.";

const RUSTFLAGS: &str = "-Ccode-model=kernel -Crelocation-model=static -Cno-redzone=y \
    -Zfunction-return=thunk-extern -Zretpoline-external-thunk -Zindirect-branch-cs-prefix \
    -Zcf-protection=branch -Cjump-tables=n -Zpatchable-function-entry=16,16 \
    -Cforce-unwind-tables=n -Zplt=yes -Csymbol-mangling-version=v0 -Cdebuginfo=0";

/// Symbols the object may import from the kernel.
const ALLOWED_UNDEFINED: &[&str] = &[
    "memcpy",
    "memset",
    "memmove",
    "memcmp",
    "__x86_return_thunk",
    "pciem_rs_panic",
];

/// Relocation types the module loader applies.
const ALLOWED_RELOCS: &[&str] = &[
    "R_X86_64_64",
    "R_X86_64_32",
    "R_X86_64_32S",
    "R_X86_64_PC32",
    "R_X86_64_PLT32",
    "R_X86_64_PC64",
];

/// The kernel modules, relative to the workspace root.
pub const MODULE_DIRS: &[&str] = &["kernel/pciem", "kernel/tests", "kernel/protopciem"];

/// The headers directory of the newest installed 6.12 kernel that also has
/// its image in /boot: `(version, headers dir)`.
pub fn kernel() -> Result<(String, PathBuf)> {
    let mut found: Vec<(Vec<u32>, String)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/usr/src") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(ver) = name.strip_prefix("linux-headers-") else {
                continue;
            };
            if !ver.starts_with("6.12.") || !ver.ends_with("-amd64") || ver.contains("common") {
                continue;
            }
            if Path::new(&format!("/boot/vmlinuz-{ver}")).exists() {
                let key = ver
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|n| n.parse().ok())
                    .collect();
                found.push((key, ver.to_string()));
            }
        }
    }
    found.sort();
    let (_, ver) = found.pop().ok_or_else(|| {
        fail(
            "kernel",
            "no linux-headers-6.12.*-amd64 with a matching /boot/vmlinuz; run `cargo xtask setup`",
        )
    })?;
    let dir = PathBuf::from(format!("/usr/src/linux-headers-{ver}"));
    Ok((ver, dir))
}

/// Build the shim and leave `kernel/pciem/rustcore.o_shipped`.
pub fn build_rust(root: &Path) -> Result<PathBuf> {
    let step = "kbuild: rust";
    let version = output(step, Command::new("/usr/bin/rustc").arg("--version"))?;
    if !version.starts_with(RUSTC_VERSION) {
        return Err(fail(
            step,
            format!("expected Debian's {RUSTC_VERSION}x (rustc-web), found {version}"),
        ));
    }
    let target = root.join("target/kshim");
    run(
        step,
        Command::new("/usr/bin/cargo")
            .current_dir(root.join("kernel/rust"))
            .args([
                "build",
                "--release",
                "--target",
                "x86_64-unknown-none",
                "-Zbuild-std=core",
                "--target-dir",
            ])
            .arg(&target)
            .env("RUSTC", "/usr/bin/rustc")
            .env("RUSTC_BOOTSTRAP", "1")
            .env("RUSTFLAGS", RUSTFLAGS)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTUP_TOOLCHAIN"),
    )?;
    let lib = target.join("x86_64-unknown-none/release/libpciem_kshim.a");
    let members = output(step, Command::new("ar").arg("t").arg(&lib))?;
    let own: Vec<&str> = members
        .lines()
        .filter(|m| m.starts_with("pciem_kshim-"))
        .collect();
    let [member] = own.as_slice() else {
        return Err(fail(
            step,
            format!(
                "expected one pciem_kshim member in {}, found {own:?}",
                lib.display()
            ),
        ));
    };
    let work = target.join("extract");
    std::fs::create_dir_all(&work).map_err(|e| fail(step, e.to_string()))?;
    run(
        step,
        Command::new("ar")
            .current_dir(&work)
            .arg("x")
            .arg(&lib)
            .arg(member),
    )?;
    let object = root.join("kernel/pciem/rustcore.o_shipped");
    run(
        step,
        Command::new("ld")
            .arg("-r")
            .arg("-o")
            .arg(&object)
            .arg(work.join(member)),
    )?;
    check_object(&object)?;
    Ok(object)
}

/// The object's imports, relocations and instructions.
pub fn check_object(object: &Path) -> Result {
    let step = "kbuild: rust object checks";
    let undefined = output(step, Command::new("nm").arg("-u").arg(object))?;
    let bad: Vec<&str> = undefined
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|s| !ALLOWED_UNDEFINED.contains(s) && !s.starts_with("__x86_indirect_thunk_"))
        .collect();
    if !bad.is_empty() {
        return Err(fail(
            step,
            format!("undefined symbols outside the allowlist: {bad:?}"),
        ));
    }
    let relocs = output(step, Command::new("readelf").arg("-rW").arg(object))?;
    let bad: Vec<&str> = relocs
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter(|t| t.starts_with("R_X86_64") && !ALLOWED_RELOCS.contains(t))
        .collect();
    if !bad.is_empty() {
        return Err(fail(
            step,
            format!("relocation types the module loader rejects: {bad:?}"),
        ));
    }
    let disasm = output(step, Command::new("objdump").arg("-d").arg(object))?;
    if let Some(l) = disasm.lines().find(|l| {
        l.contains("%xmm") || l.contains("%ymm") || l.contains("%zmm") || l.contains("%mm")
    }) {
        return Err(fail(step, format!("SSE/MMX register used: {l}")));
    }
    let size = output(step, Command::new("size").arg(object))?;
    eprintln!("{}", size.trim_end());
    let defined = output(step, Command::new("nm").arg("--defined-only").arg(object))?;
    let exported: Vec<&str> = defined
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|s| s.starts_with("pciem_rs_"))
        .collect();
    eprintln!(
        "rust object exports {} functions: {}",
        exported.len(),
        exported.join(" ")
    );
    eprintln!(
        "rust object imports: {}",
        undefined
            .split_whitespace()
            .filter(|w| *w != "U")
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(())
}

/// Build every module with W=1; any warning fails.
pub fn build_modules(root: &Path) -> Result<Vec<PathBuf>> {
    let (_, headers) = kernel()?;
    let mut built = Vec::new();
    for dir in MODULE_DIRS {
        let step = format!("kbuild: {dir}");
        let src = root.join(dir);
        let mut cmd = Command::new("make");
        cmd.arg("-C")
            .arg(&headers)
            .arg(format!("M={}", src.display()))
            .args(["W=1", "modules"]);
        eprintln!(
            "+ make -C {} M={} W=1 modules",
            headers.display(),
            src.display()
        );
        let out = cmd.output().map_err(|e| fail(&step, e.to_string()))?;
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprint!("{log}");
        if !out.status.success() {
            return Err(fail(&step, "make failed"));
        }
        let warnings: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("warning") || l.contains("WARNING") || l.contains("objtool"))
            .collect();
        if !warnings.is_empty() {
            return Err(fail(
                &step,
                format!("the build must be warning-free:\n{}", warnings.join("\n")),
            ));
        }
        for e in std::fs::read_dir(&src)
            .map_err(|e| fail(&step, e.to_string()))?
            .flatten()
        {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "ko") {
                let len = p.metadata().map(|m| m.len()).unwrap_or(0);
                eprintln!("built {} ({len} bytes)", p.display());
                built.push(p);
            }
        }
    }
    Ok(built)
}

/// Shim, checks, modules.
pub fn kbuild(root: &Path) -> Result {
    build_rust(root)?;
    build_modules(root)?;
    Ok(())
}
