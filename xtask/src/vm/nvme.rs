//! The `nvme` boot of `vm-test` and `bench-vm`: a guest in which Linux's
//! own nvme driver runs against the Rust controller (`pciem-nvme`) and,
//! for comparison, against QEMU's built-in NVMe controller.
//!
//! Only this boot carries the extra files, because they are large (fio's
//! Debian build links some 80 libraries): the kernel package's own `nvme`,
//! `nvme-core` and ext4 modules (decompressed here: busybox `insmod` takes
//! no `.ko.xz`), the tools `nvme`, `mkfs.ext4`, `fio` and `fstrim` with the
//! shared libraries `ldd` names, and the `pciem-nvme` device process. The
//! guest gets more memory, because the model's backing file lives in a
//! tmpfs inside it, and QEMU adds an NVMe controller of its own backed by a
//! sparse file in `target/vm`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::run::{fail, Result};

/// Serial number of QEMU's NVMe controller in this boot; the scenarios
/// find it by this in `/sys/class/nvme/*/serial`.
pub const QEMU_SERIAL: &str = "QEMUNVME0001";

/// Size of QEMU's controller's namespace (its backing file).
pub const QEMU_DISK_BYTES: u64 = 256 << 20;

/// Guest memory in MiB: the initramfs (about 90 MiB unpacked) and the
/// model's backing file in a tmpfs.
pub const MEM_MIB: &str = "2048";

/// The modules to load, by name; their dependencies (`modinfo -F depends`)
/// are loaded first. `crc32c_generic` is ext4's and jbd2's soft dependency
/// (`crypto-crc32c`): the SSE4.2 one needs a CPU flag TCG's CPU lacks.
const MODULES: &[&str] = &["crc32c_generic", "nvme", "ext4"];

/// The tools, copied into `/bin` with their shared libraries.
const TOOLS: &[&str] = &[
    "/usr/sbin/nvme",
    "/usr/bin/fio",
    "/usr/sbin/mkfs.ext4",
    "/usr/sbin/fstrim",
];

/// Where the decompressed modules go in the guest, with `modules.order`
/// listing their names in loading order.
pub const GUEST_MODULE_DIR: &str = "nvme-modules";

/// Lines of `/init` that load the modules, each failure an
/// `VMTEST EXIT insmod-…` line that `vm-test` counts as a failure.
pub const INIT_LINES: &str = r#"for m in $(cat /nvme-modules/modules.order); do
    insmod /nvme-modules/$m.ko || echo "VMTEST EXIT insmod-$m 1"
done
"#;

fn modinfo(ver: &str, field: Option<&str>, module: &str) -> Result<String> {
    let step = "vm-test: nvme modules";
    let mut cmd = Command::new("modinfo");
    cmd.args(["-k", ver]);
    match field {
        Some(f) => cmd.args(["-F", f]),
        None => cmd.arg("-n"),
    };
    let out = cmd
        .arg(module)
        .output()
        .map_err(|e| fail(step, format!("cannot run modinfo: {e}")))?;
    if !out.status.success() {
        return Err(fail(
            step,
            format!(
                "modinfo -k {ver} {module}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The modules to load (nvme, ext4, crc32c_generic) and their
/// dependencies, each after the ones it depends on: `(name, path of the
/// .ko or .ko.xz)`.
pub fn module_order(ver: &str) -> Result<Vec<(String, PathBuf)>> {
    fn visit(ver: &str, name: &str, out: &mut Vec<(String, PathBuf)>, depth: u32) -> Result {
        if out.iter().any(|(n, _)| n == name) {
            return Ok(());
        }
        if depth > 16 {
            return Err(fail(
                "vm-test: nvme modules",
                format!("{name}: dependency loop"),
            ));
        }
        let deps = modinfo(ver, Some("depends"), name)?;
        for d in deps.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            visit(ver, d, out, depth + 1)?;
        }
        let path = PathBuf::from(modinfo(ver, None, name)?);
        out.push((name.to_string(), path));
        Ok(())
    }
    let mut out = Vec::new();
    for m in MODULES {
        visit(ver, m, &mut out, 0)?;
    }
    Ok(out)
}

fn copy_to(step: &str, from: &Path, to: &Path) -> Result {
    if let Some(d) = to.parent() {
        std::fs::create_dir_all(d).map_err(|e| fail(step, e.to_string()))?;
    }
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|e| fail(step, format!("{} -> {}: {e}", from.display(), to.display())))
}

/// `program` into `dir/bin` and every shared library `ldd` names (the
/// loader included) at the same path under `dir`.
fn copy_with_libraries(step: &str, program: &Path, dir: &Path) -> Result {
    let name = program.file_name().unwrap_or_default();
    copy_to(step, program, &dir.join("bin").join(name))?;
    let ldd = Command::new("ldd")
        .arg(program)
        .output()
        .map_err(|e| fail(step, format!("ldd: {e}")))?;
    for lib in String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let real = std::fs::canonicalize(lib).map_err(|e| fail(step, format!("{lib}: {e}")))?;
        let to = dir.join(lib.trim_start_matches('/'));
        if !to.exists() {
            copy_to(step, &real, &to)?;
        }
    }
    Ok(())
}

/// Adds this boot's files to the initramfs tree `dir`: modules, tools with
/// their libraries, and the `pciem-nvme` device process from the scenario
/// programs' target directory `bins` (if the crate is in this tree).
pub fn add_guest_files(dir: &Path, bins: &Path) -> Result {
    let step = "vm-test: nvme initramfs";
    let (ver, _) = crate::kbuild::kernel()?;
    let mods = dir.join(GUEST_MODULE_DIR);
    std::fs::create_dir_all(&mods).map_err(|e| fail(step, e.to_string()))?;
    let mut order = String::new();
    for (name, path) in module_order(&ver)? {
        let to = mods.join(format!("{name}.ko"));
        if path.extension().is_some_and(|e| e == "xz") {
            let out = Command::new("xz")
                .arg("-dc")
                .arg(&path)
                .output()
                .map_err(|e| fail(step, format!("xz: {e} (run `cargo xtask setup`)")))?;
            if !out.status.success() {
                return Err(fail(
                    step,
                    format!("xz -dc {}: {}", path.display(), out.status),
                ));
            }
            std::fs::write(&to, out.stdout).map_err(|e| fail(step, e.to_string()))?;
        } else {
            copy_to(step, &path, &to)?;
        }
        order.push_str(&name);
        order.push('\n');
    }
    std::fs::write(mods.join("modules.order"), order).map_err(|e| fail(step, e.to_string()))?;
    for tool in TOOLS {
        copy_with_libraries(step, Path::new(tool), dir)?;
    }
    if Path::new("/etc/mke2fs.conf").exists() {
        copy_to(
            step,
            Path::new("/etc/mke2fs.conf"),
            &dir.join("etc/mke2fs.conf"),
        )?;
    }
    let model = bins.join("pciem-nvme");
    if model.exists() {
        copy_to(step, &model, &dir.join("bin/pciem-nvme"))?;
    }
    Ok(())
}

/// QEMU's arguments for this boot: its own NVMe controller on a fresh
/// sparse file `out/qemu-nvme.img`.
pub fn qemu_args(out: &Path) -> Result<Vec<OsString>> {
    let step = "vm-test: nvme disk";
    let img = out.join("qemu-nvme.img");
    let f =
        std::fs::File::create(&img).map_err(|e| fail(step, format!("{}: {e}", img.display())))?;
    f.set_len(QEMU_DISK_BYTES)
        .map_err(|e| fail(step, format!("{}: {e}", img.display())))?;
    let mut drive = OsString::from("file=");
    drive.push(img.as_os_str());
    drive.push(",if=none,id=qnvme,format=raw");
    Ok(vec![
        "-drive".into(),
        drive,
        "-device".into(),
        format!("nvme,serial={QEMU_SERIAL},drive=qnvme").into(),
    ])
}
