//! Kernel-side hygiene checks: `checkpatch.pl --strict` over the module
//! sources, and a `dkms build` of the shipped `kernel/dkms.conf`.
//!
//! checkpatch.pl is not packaged on its own: setup takes it (with the two
//! data files it reads) out of Debian's `linux-source-X.Y` of the kernel
//! series the modules are built for, downloaded but not installed.
//! DKMS runs with a DKMS tree and source tree of its own under `target/`
//! and with module signing off, so it leaves nothing behind in
//! `/usr/src`, `/var/lib/dkms` or `/lib/modules`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run::{fail, output, run, Result};

/// Where setup puts checkpatch.pl and its data files.
pub fn checkpatch_dir(root: &Path) -> PathBuf {
    root.join("target/tools/checkpatch")
}

/// The files of the kernel tree checkpatch.pl needs beside it.
const CHECKPATCH_FILES: [&str; 3] = [
    "scripts/checkpatch.pl",
    "scripts/spelling.txt",
    "scripts/const_structs.checkpatch",
];

/// Checks checkpatch.pl runs with, and why each is off.
/// LONG_LINE_STRING: the kernel's coding style (section 2) says never to
/// break user-visible strings such as log messages, so that they can be
/// grepped for; checkpatch reports them only as a separate type.
const IGNORED: &str = "LONG_LINE_STRING";

/// Single reports that stay, with the reason: (file, checkpatch type).
const ALLOWED: &[(&str, &str, &str)] = &[(
    "kernel/pciem/main.c",
    "AVOID_BUG",
    "pciem_rs_panic() ends a Rust panic, which must not return",
)];

/// The kernel series (`6.12`) of the kernel the modules are built for.
fn kernel_series() -> Result<String> {
    let (version, _) = crate::kbuild::kernel()?;
    let mut parts = version.split('.');
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) => Ok(format!("{major}.{minor}")),
        _ => Err(fail("checkpatch", format!("kernel version {version}?"))),
    }
}

/// Extract checkpatch.pl and its data files from Debian's linux-source
/// package (downloaded, not installed) if they are missing.
pub fn install_checkpatch(root: &Path) -> Result {
    let step = "setup: checkpatch";
    let dir = checkpatch_dir(root);
    if CHECKPATCH_FILES.iter().all(|f| {
        dir.join(Path::new(f).file_name().unwrap_or_default())
            .is_file()
    }) {
        return Ok(());
    }
    let series = kernel_series()?;
    let package = format!("linux-source-{series}");
    eprintln!("setup: extracting checkpatch.pl from {package}");
    let download = root.join("target/tools/download");
    let _ = std::fs::remove_dir_all(&download);
    std::fs::create_dir_all(&download).map_err(|e| fail(step, e.to_string()))?;
    std::fs::create_dir_all(&dir).map_err(|e| fail(step, e.to_string()))?;
    let fetched = run(
        step,
        Command::new("apt-get")
            .args(["download", "-qq", &package])
            .current_dir(&download),
    );
    if fetched.is_err() {
        // No package lists yet on a fresh machine: fetch them once.
        run(step, Command::new("apt-get").args(["update", "-qq"]))?;
        run(
            step,
            Command::new("apt-get")
                .args(["download", "-qq", &package])
                .current_dir(&download),
        )?;
    }
    let members: Vec<String> = CHECKPATCH_FILES
        .iter()
        .map(|f| format!("linux-source-{series}/{f}"))
        .collect();
    let script = format!(
        "dpkg-deb --fsys-tarfile {package}_*.deb \
         | tar -xO ./usr/src/linux-source-{series}.tar.xz \
         | tar -xJ --strip-components=2 -C '{}' {}",
        dir.display(),
        members.join(" ")
    );
    run(
        step,
        Command::new("sh")
            .args(["-c", &script])
            .current_dir(&download),
    )?;
    let _ = std::fs::remove_dir_all(&download);
    Ok(())
}

/// Every C source and header of the modules: `kernel/**/*.{c,h}` without
/// what the kernel build generates (`*.mod.c`).
pub fn kernel_sources(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                walk(&path, out);
            } else if (name.ends_with(".c") && !name.ends_with(".mod.c")) || name.ends_with(".h") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root.join("kernel"), &mut out);
    out.sort();
    out
}

/// One checkpatch report: `(file, type, the whole line)`.
type Report = (String, String, String);

/// The reports in checkpatch's `--terse --show-types` output
/// (`FILE:LINE: LEVEL:TYPE: message`).
pub fn parse_reports(text: &str) -> Vec<Report> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(4, ':');
            let file = parts.next()?;
            let _line: u32 = parts.next()?.trim().parse().ok()?;
            let kind = parts.next()?.trim().to_string();
            let rest = parts.next()?;
            let ty = rest.split(':').next()?.trim().to_string();
            matches!(kind.as_str(), "ERROR" | "WARNING" | "CHECK")
                .then(|| (file.to_string(), ty, line.to_string()))
        })
        .collect()
}

/// The reports that no allowed (file, type) pair covers.
pub fn unexpected(reports: Vec<Report>) -> Vec<Report> {
    reports
        .into_iter()
        .filter(|(file, ty, _)| !ALLOWED.iter().any(|(f, t, _)| f == file && t == ty))
        .collect()
}

/// `checkpatch.pl --strict` over every kernel source; fails on any report
/// not allowed above, and if it checked fewer files than it was given.
pub fn checkpatch(root: &Path) -> Result {
    let step = "checkpatch";
    let script = checkpatch_dir(root).join("checkpatch.pl");
    if !script.is_file() {
        return Err(fail(
            step,
            format!("{} missing: run `cargo xtask setup`", script.display()),
        ));
    }
    let files: Vec<PathBuf> = kernel_sources(root)
        .into_iter()
        .map(|p| p.strip_prefix(root).map(Path::to_path_buf).unwrap_or(p))
        .collect();
    if files.is_empty() {
        return Err(fail(step, "no kernel sources found"));
    }
    let out = Command::new("perl")
        .arg(&script)
        .args([
            "--strict",
            "--no-tree",
            "--terse",
            "--show-types",
            "--no-summary",
            "--ignore",
            IGNORED,
            "-f",
        ])
        .args(&files)
        .current_dir(root)
        .output()
        .map_err(|e| fail(step, format!("cannot run perl: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.trim().is_empty() {
        return Err(fail(step, format!("checkpatch.pl complained:\n{stderr}")));
    }
    let mut left = unexpected(parse_reports(&text));
    left.extend(kernel_doc(root)?);
    for (_, _, line) in &left {
        eprintln!("{line}");
    }
    if left.is_empty() {
        eprintln!(
            "checkpatch --strict: {} files clean ({} allowed report(s), {IGNORED} off); kernel-doc of {SHARED_HEADER}: every function, no warning",
            files.len(),
            ALLOWED.len()
        );
        Ok(())
    } else {
        Err(fail(
            step,
            format!("{} report(s) (above) in {} files", left.len(), files.len()),
        ))
    }
}

/// The header whose functions the module's files share.
const SHARED_HEADER: &str = "kernel/pciem/pciem_internal.h";

/// The names of the functions `text` (a header) declares.
pub fn declared_functions(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_comment = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("/*") {
            in_comment = !t.contains("*/");
            continue;
        }
        if in_comment {
            in_comment = !t.contains("*/");
            continue;
        }
        if line.starts_with(|c: char| c.is_ascii_lowercase()) && !line.starts_with("struct ") {
            if let Some(open) = line.find('(') {
                let name = line[..open]
                    .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or_default();
                if !name.is_empty() {
                    names.push(name.to_string());
                }
            }
        }
    }
    names
}

/// Kernel-doc of the shared header: every function it declares has a
/// comment (`NAME() - ...`), and the kernel's own `scripts/kernel-doc`
/// finds nothing wrong in them (parameters, sections). Problems come back
/// as reports.
fn kernel_doc(root: &Path) -> Result<Vec<Report>> {
    let step = "checkpatch";
    let text = std::fs::read_to_string(root.join(SHARED_HEADER))
        .map_err(|e| fail(step, format!("{SHARED_HEADER}: {e}")))?;
    let mut reports: Vec<Report> = declared_functions(&text)
        .into_iter()
        .filter(|name| !text.contains(&format!(" * {name}() - ")))
        .map(|name| {
            (
                SHARED_HEADER.to_string(),
                "KERNEL_DOC".to_string(),
                format!("{SHARED_HEADER}: {name}() has no kernel-doc comment"),
            )
        })
        .collect();
    let (_, headers) = crate::kbuild::kernel()?;
    let out = Command::new("perl")
        .arg(headers.join("scripts/kernel-doc"))
        .args(["-none", "-Wall"])
        .arg(SHARED_HEADER)
        .current_dir(root)
        .output()
        .map_err(|e| fail(step, format!("cannot run kernel-doc: {e}")))?;
    let complaints = String::from_utf8_lossy(&out.stderr);
    reports.extend(
        complaints
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                (
                    SHARED_HEADER.to_string(),
                    "KERNEL_DOC".to_string(),
                    l.to_string(),
                )
            }),
    );
    if !out.status.success() && reports.is_empty() {
        reports.push((
            SHARED_HEADER.to_string(),
            "KERNEL_DOC".to_string(),
            format!("kernel-doc exited with {}", out.status),
        ));
    }
    Ok(reports)
}

/// `dkms build` of `kernel/dkms.conf` against the installed headers: the
/// source tree is a copy of `kernel/` (with the Rust object that
/// `cargo xtask kbuild` leaves, which DKMS cannot build), the DKMS tree is
/// under `target/dkms`, signing is off. Checks that pciem.ko came out.
pub fn dkms_build(root: &Path) -> Result {
    let step = "dkms build";
    let conf = std::fs::read_to_string(root.join("kernel/dkms.conf"))
        .map_err(|e| fail(step, format!("kernel/dkms.conf: {e}")))?;
    let value = |key: &str| {
        conf.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(|v| v.trim_matches('"').to_string())
            .ok_or_else(|| fail(step, format!("dkms.conf has no {key}")))
    };
    let (name, version) = (value("PACKAGE_NAME")?, value("PACKAGE_VERSION")?);
    let object = root.join("kernel/pciem/rustcore.o_shipped");
    if !object.is_file() {
        crate::kbuild::build_rust(root)?;
    }
    let (kernel, _) = crate::kbuild::kernel()?;
    let base = root.join("target/dkms");
    let _ = std::fs::remove_dir_all(&base);
    let (sources, tree) = (base.join("src"), base.join("tree"));
    let src = sources.join(format!("{name}-{version}"));
    copy_sources(root, &src).map_err(|e| fail(step, format!("copying kernel/: {e}")))?;
    std::fs::create_dir_all(&tree).map_err(|e| fail(step, e.to_string()))?;
    let log = output(
        step,
        Command::new("dkms")
            .args(["build", "-m", &name, "-v", &version, "-k", &kernel])
            .arg("--sourcetree")
            .arg(&sources)
            .arg("--dkmstree")
            .arg(&tree)
            // No signing: without this DKMS makes a key in /var/lib/dkms.
            .env("sign_file", "/nonexistent/sign-file"),
    )?;
    eprint!("{log}");
    let built = tree.join(format!("{name}/{version}/{kernel}/x86_64/module"));
    let found = std::fs::read_dir(&built)
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("pciem.ko"))
        })
        .unwrap_or(false);
    if !found {
        return Err(fail(step, format!("no pciem.ko under {}", built.display())));
    }
    eprintln!("dkms build: pciem.ko built for {kernel} from kernel/dkms.conf");
    Ok(())
}

/// Copy the sources of `kernel/` (no build products) and the shipped Rust
/// object to `dst`.
fn copy_sources(root: &Path, dst: &Path) -> std::io::Result<()> {
    fn walk(from: &Path, to: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(to)?;
        for e in std::fs::read_dir(from)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            if path.is_dir() {
                if name != "target" {
                    walk(&path, &to.join(&name))?;
                }
                continue;
            }
            let product = name.starts_with('.')
                || [".o", ".ko", ".mod", ".mod.c", ".symvers", ".order"]
                    .iter()
                    .any(|s| name.ends_with(s));
            if !product || name == "rustcore.o_shipped" {
                std::fs::copy(&path, to.join(&name))?;
            }
        }
        Ok(())
    }
    walk(&root.join("kernel"), dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_parsed_and_only_allowed_ones_dropped() {
        let text = "kernel/pciem/main.c:576: CHECK:AVOID_BUG: Do not crash the kernel\n\
                    kernel/pciem/bus.c:12: WARNING:LEADING_SPACE: please, no spaces\n\
                    kernel/pciem/bus.c:3: ERROR:ASSIGN_IN_IF: do not use assignment\n\
                    total: 1 errors, 1 warnings, 1 checks, 10 lines checked\n";
        let reports = parse_reports(text);
        assert_eq!(reports.len(), 3);
        assert_eq!(reports[1].1, "LEADING_SPACE");
        let left = unexpected(reports);
        assert_eq!(left.len(), 2);
        assert!(left.iter().all(|(f, _, _)| f == "kernel/pciem/bus.c"));
    }

    #[test]
    fn declared_functions_are_found_and_comments_skipped() {
        let text = "/*\n * int not_this(void);\n */\nint pciem_a(void);\n\
                    void __iomem *pciem_b(struct x *d,\n\t\tint y);\nstruct pciem_dev {\n\
                    \tint field;\n};\n";
        assert_eq!(declared_functions(text), ["pciem_a", "pciem_b"]);
    }

    #[test]
    fn every_shared_function_has_kernel_doc() {
        let root = crate::root();
        let text = std::fs::read_to_string(root.join(SHARED_HEADER)).unwrap();
        let names = declared_functions(&text);
        assert!(names.len() > 50, "{names:?}");
        for name in names {
            assert!(text.contains(&format!(" * {name}() - ")), "{name}");
        }
    }

    #[test]
    fn the_sources_are_the_modules_c_files_and_headers() {
        let files = kernel_sources(&crate::root());
        let has = |p: &str| files.iter().any(|f| f.ends_with(p));
        assert!(has("kernel/pciem/main.c") && has("kernel/pciem/pciem_internal.h"));
        assert!(has("kernel/include/uapi/pciem.h") && has("kernel/rust/pciem_rs.h"));
        assert!(has("kernel/tests/pciem_testdrv.c"));
        assert!(!files
            .iter()
            .any(|f| f.to_string_lossy().ends_with(".mod.c")));
    }
}
