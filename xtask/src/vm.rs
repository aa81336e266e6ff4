//! `cargo xtask vm-test`: the kernel module in a real kernel.
//!
//! Builds the shared Rust object and the modules (`kbuild`), the scenario
//! programs as static binaries (crate `pciem-vmtest`) and the C counter
//! device, packs a busybox initramfs whose `/init` loads the modules and
//! runs every scenario listed in `crates/pciem-vmtest/scenarios.txt` in
//! order, boots it under QEMU (TCG: KVM does not boot on these machines),
//! and fails on a scenario that fails or never reports, or on any sign of a
//! kernel problem in the guest's log.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::run::{fail, output, run, Result};

pub mod nvme;

/// Lines that mean the kernel itself is unhappy: the list the scenarios
/// also judge their own part of the log by.
const BAD: &[&str] = pciem_vmtest::klog::BAD;

/// Physical range carved with `memmap=` for BAR memory.
const POOL: &str = "0x3f000000:2M";
const MEMMAP: &str = "memmap=2M$0x3f000000";

/// The `p2p_regions=` whitelist of pciem.ko (and the arguments of
/// `vmtest-dma`): a second carve-out standing in for a peer's BAR, and the
/// BAR pool, so other PCIem devices' BARs are legal peer targets.
const P2P_REGION: &str = "0x3ee00000:1M,0x3f000000:2M";
const P2P_MEMMAP: &str = "memmap=1M$0x3ee00000";

/// The display boot ([`Boot::Display`], `vmtest-bochs`): a 32 MiB
/// carve-out and BAR pool, room for the adapter's 16 MiB video memory
/// (naturally aligned) and its register BAR.
const DISPLAY_POOL: &str = "0x3c000000:32M";
const DISPLAY_MEMMAP: &str = "memmap=32M$0x3c000000";

/// The display boot's kernel modules, in load order (each after what it
/// depends on: `modinfo -F depends bochs` and down), taken from the
/// guest kernel's own package and decompressed into the initramfs.
const DISPLAY_MODULES: &[&str] = &[
    "drm",
    "drm_kms_helper",
    "ttm",
    "drm_ttm_helper",
    "drm_vram_helper",
    "bochs",
];

const APPLETS: &[&str] = &[
    "sh", "mount", "insmod", "rmmod", "lsmod", "poweroff", "cat", "ls", "sleep", "dmesg", "grep",
    "echo", "kill", "ps", "timeout", "id", "su", "adduser", "chmod", "mkdir", "true", "false",
    "head", "tail", "wc",
];

/// How a guest boots: with the `memmap=` carve-outs and pciem.ko's pool on
/// two CPUs (every scenario but a few), without either (trap-only
/// devices), or like the first on one CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Boot {
    /// `memmap=` carve-outs, `phys_region=` and `p2p_regions=`, 2 CPUs.
    Pool,
    /// No carve-out and pciem.ko loaded without parameters.
    NoMemmap,
    /// As [`Boot::Pool`], with one CPU.
    OneCpu,
    /// A display test: a large BAR pool for video memory, QEMU's own VGA
    /// removed (`-vga none`) so the guest's `bochs` driver finds only the
    /// model, and the DRM modules and `modetest` in the initramfs.
    Display,
    /// As [`Boot::Pool`], with more memory, the kernel's nvme and ext4
    /// modules, the NVMe tools, the `pciem-nvme` device process and QEMU's
    /// own NVMe controller beside it ([`nvme`]).
    Nvme,
}

impl Boot {
    /// Every boot, in the order `vm-test` runs them.
    const ALL: [Boot; 5] = [
        Boot::Pool,
        Boot::NoMemmap,
        Boot::OneCpu,
        Boot::Display,
        Boot::Nvme,
    ];

    fn name(self) -> &'static str {
        match self {
            Boot::Pool => "pool",
            Boot::NoMemmap => "nomemmap",
            Boot::OneCpu => "onecpu",
            Boot::Display => "display",
            Boot::Nvme => "nvme",
        }
    }

    /// The boot a scenario line runs in (a `nomemmap ` or `onecpu `
    /// prefix), and the line without it.
    fn of(line: &str) -> (Boot, &str) {
        for b in [Boot::NoMemmap, Boot::OneCpu, Boot::Display, Boot::Nvme] {
            if let Some(rest) = line.strip_prefix(b.name()) {
                if rest.starts_with(' ') {
                    return (b, rest.trim());
                }
            }
        }
        (Boot::Pool, line)
    }

    /// Guest RAM in MiB. The pool boot has some above 4 GiB, so that
    /// vmtest-dma-check can map a page a 32-bit DMA mask cannot reach.
    fn memory(self) -> &'static str {
        match self {
            Boot::Pool => "4608",
            Boot::Nvme => nvme::MEM_MIB,
            _ => "1024",
        }
    }

    fn cpus(self) -> &'static str {
        match self {
            Boot::OneCpu => "1",
            _ => "2",
        }
    }

    /// QEMU arguments of this boot beyond the common ones.
    fn qemu_extra(self, out: &Path) -> Result<Vec<std::ffi::OsString>> {
        match self {
            Boot::Nvme => nvme::qemu_args(out),
            _ => Ok(Vec::new()),
        }
    }

    /// Lines of `/init` run after the pciem modules are loaded.
    fn init_extra(self) -> &'static str {
        match self {
            Boot::Nvme => nvme::INIT_LINES,
            _ => "",
        }
    }

    fn insmod_pciem(self) -> String {
        match self {
            Boot::NoMemmap => "insmod /pciem.ko".to_string(),
            Boot::Display => format!("insmod /pciem.ko phys_region={DISPLAY_POOL}"),
            _ => format!("insmod /pciem.ko phys_region={POOL} p2p_regions={P2P_REGION}"),
        }
    }

    fn cmdline(self) -> String {
        match self {
            Boot::NoMemmap => "console=ttyS0 panic=-1 quiet".to_string(),
            Boot::Display => format!("console=ttyS0 {DISPLAY_MEMMAP} panic=-1 quiet"),
            _ => format!("console=ttyS0 {MEMMAP} {P2P_MEMMAP} panic=-1 quiet"),
        }
    }

    /// File names of this boot's initramfs and guest log in target/vm.
    fn files(self) -> (&'static str, &'static str) {
        match self {
            Boot::Pool => ("initramfs.gz", "vm.log"),
            Boot::NoMemmap => ("initramfs-nomemmap.gz", "vm-nomemmap.log"),
            Boot::OneCpu => ("initramfs-onecpu.gz", "vm-onecpu.log"),
            Boot::Display => ("initramfs-display.gz", "vm-display.log"),
            Boot::Nvme => ("initramfs-nvme.gz", "vm-nvme.log"),
        }
    }

    /// QEMU arguments this boot adds.
    fn qemu_args(self) -> &'static [&'static str] {
        match self {
            // QEMU's own std VGA is the very device the model is: without
            // it, the only bochs adapter in the guest is the model.
            Boot::Display => &["-vga", "none"],
            _ => &[],
        }
    }

    /// Splits scenario lines by boot (prefixes removed), in boot order.
    pub fn split(list: Vec<String>) -> Vec<(Boot, Vec<String>)> {
        Self::ALL
            .iter()
            .map(|&b| {
                let lines = list
                    .iter()
                    .map(|l| Self::of(l))
                    .filter(|(lb, _)| *lb == b)
                    .map(|(_, l)| l.to_string())
                    .collect();
                (b, lines)
            })
            .collect()
    }
}

/// Scenarios: `[nomemmap |onecpu |nvme ]binary [args...]` per line, `#` comments.
pub fn scenarios(root: &Path) -> Result<Vec<String>> {
    let file = root.join("crates/pciem-vmtest/scenarios.txt");
    let text = std::fs::read_to_string(&file)
        .map_err(|e| fail("vm-test", format!("{}: {e}", file.display())))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect())
}

fn copy(step: &str, from: &Path, to: &Path) -> Result {
    if let Some(d) = to.parent() {
        std::fs::create_dir_all(d).map_err(|e| fail(step, e.to_string()))?;
    }
    std::fs::copy(from, to)
        .map_err(|e| fail(step, format!("{} -> {}: {e}", from.display(), to.display())))?;
    Ok(())
}

fn initramfs(root: &Path, out: &Path, modules: &[PathBuf], list: &[String], boot: Boot) -> Result {
    let step = "vm-test: initramfs";
    let dir = out.join("root");
    let _ = std::fs::remove_dir_all(&dir);
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "usr/share/misc"] {
        std::fs::create_dir_all(dir.join(d)).map_err(|e| fail(step, e.to_string()))?;
    }
    copy(
        step,
        Path::new("/usr/bin/busybox"),
        &dir.join("bin/busybox"),
    )?;
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(a))
            .map_err(|e| fail(step, e.to_string()))?;
    }
    // pciutils: lspci (vmtest-enumerate) and setpci (vmtest-msix, -intx,
    // -config-events), each with the shared libraries it needs.
    for tool in ["lspci", "setpci"] {
        let bin = Path::new("/usr/bin").join(tool);
        copy(step, &bin, &dir.join("bin").join(tool))?;
        let ldd = output(step, Command::new("ldd").arg(&bin))?;
        for lib in ldd.split_whitespace().filter(|w| w.starts_with('/')) {
            let real = std::fs::canonicalize(lib).map_err(|e| fail(step, format!("{lib}: {e}")))?;
            copy(step, &real, &dir.join(lib.trim_start_matches('/')))?;
        }
    }
    if Path::new("/usr/share/misc/pci.ids").exists() {
        copy(
            step,
            Path::new("/usr/share/misc/pci.ids"),
            &dir.join("usr/share/misc/pci.ids"),
        )?;
    }
    for m in modules {
        copy(step, m, &dir.join(m.file_name().unwrap_or_default()))?;
    }
    let bins = root.join("target/vmtest/x86_64-unknown-linux-gnu/release");
    for e in std::fs::read_dir(&bins)
        .map_err(|e| fail(step, e.to_string()))?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        // The scenario programs, and the ProtoPCIem device process.
        if (name.starts_with("vmtest-") && !name.ends_with(".d"))
            || name == "protopciem"
            || name == "pciem-bochs"
        {
            let to = dir.join("bin").join(&name);
            copy(step, &e.path(), &to)?;
            // Without their debug info (the release profile keeps line
            // tables): the initramfs shrinks from ~80 to ~20 MB, which the
            // guest unpacks faster under TCG. Backtraces keep symbols.
            run(step, Command::new("strip").arg("--strip-debug").arg(&to))?;
        }
    }
    copy(
        step,
        &out.join("counter_device"),
        &dir.join("bin/counter_device"),
    )?;
    if boot == Boot::Nvme {
        nvme::add_guest_files(&dir, &bins)?;
    }
    std::fs::write(dir.join("scenarios.txt"), list.join("\n") + "\n")
        .map_err(|e| fail(step, e.to_string()))?;
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
    )
    .map_err(|e| fail(step, e.to_string()))?;
    std::fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")
        .map_err(|e| fail(step, e.to_string()))?;
    if boot == Boot::Display {
        display_files(&dir)?;
    }
    let insmod_pciem = boot.insmod_pciem();
    let init_extra = boot.init_extra();
    let init = format!(
        r#"#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t debugfs none /sys/kernel/debug 2>/dev/null
echo "VMTEST BOOTED $(cat /proc/sys/kernel/osrelease)"
{insmod_pciem} || echo "VMTEST EXIT insmod-pciem 1"
insmod /pciem_testdrv.ko || echo "VMTEST EXIT insmod-testdrv 1"
insmod /pciem_dmadrv.ko || echo "VMTEST EXIT insmod-dmadrv 1"
insmod /pciem_trapdrv.ko || echo "VMTEST EXIT insmod-trapdrv 1"
insmod /pciem_dmabug.ko || echo "VMTEST EXIT insmod-dmabug 1"
{init_extra}while read bin args; do
    [ -z "$bin" ] && continue
    echo "VMTEST RUN $bin $args"
    timeout 180 /bin/$bin $args
    rc=$?
    # On a line of its own even if a background process was mid-line.
    printf '\nVMTEST EXIT %s %s\n' "$bin" "$rc"
done < /scenarios.txt
echo "VMTEST DMESG BEGIN"
dmesg
echo "VMTEST DMESG END"
poweroff -f
"#
    );
    let init_path = dir.join("init");
    std::fs::write(&init_path, init).map_err(|e| fail(step, e.to_string()))?;
    run(step, Command::new("chmod").arg("755").arg(&init_path))?;
    run(
        step,
        Command::new("sh").arg("-c").arg(format!(
            "cd '{}' && find . | cpio -o -H newc --quiet | gzip -1 > '{}'",
            dir.display(),
            out.join(boot.files().0).display()
        )),
    )
}

/// Everything, then boot and judge.
pub fn vm_test(root: &Path) -> Result {
    vm_run(root, scenarios(root)?).map(drop)
}

/// Like [`vm_test`], running only the lines of `scenarios.txt` whose binary
/// is `vmtest-NAME` for a NAME in the comma-separated `names`.
pub fn vm_test_only(root: &Path, names: &str) -> Result {
    let wanted: Vec<String> = names.split(',').map(|n| format!("vmtest-{n}")).collect();
    // The binary of a line, past a boot prefix such as `nomemmap`.
    let bin = |l: &str| {
        l.split_whitespace()
            .find(|w| w.starts_with("vmtest-"))
            .map(String::from)
    };
    let all = scenarios(root)?;
    let list: Vec<String> = all
        .into_iter()
        .filter(|l| bin(l).is_some_and(|b| wanted.contains(&b)))
        .collect();
    if wanted
        .iter()
        .any(|w| !list.iter().any(|l| bin(l).as_ref() == Some(w)))
    {
        return Err(fail(
            "vm-test --only",
            format!("scenarios.txt has no line for some of {names}"),
        ));
    }
    vm_run(root, list).map(drop)
}

/// Builds everything, boots the guest running the scenario lines `list`
/// (instead of `scenarios.txt`), judges it like `vm-test` and returns the
/// guest's log.
pub fn vm_run(root: &Path, list: Vec<String>) -> Result<String> {
    let started = Instant::now();
    let (ver, _) = crate::kbuild::kernel()?;
    crate::kbuild::build_rust(root)?;
    let modules = crate::kbuild::build_modules(root)?;
    let out = root.join("target/vm");
    std::fs::create_dir_all(&out).map_err(|e| fail("vm-test", e.to_string()))?;
    let mut programs = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    programs.current_dir(root).args([
        "build",
        "--release",
        "-p",
        "pciem-vmtest",
        "-p",
        "protopciem",
    ]);
    // The device processes of the `nvme` and `display` boots.
    for (krate, dir) in [
        ("pciem-nvme", "crates/pciem-nvme"),
        ("pciem-bochs", "crates/pciem-bochs"),
    ] {
        if root.join(dir).exists() {
            programs.args(["-p", krate]);
        }
    }
    run(
        "vm-test: scenario programs",
        programs
            .args(["--target", "x86_64-unknown-linux-gnu", "--target-dir"])
            .arg(root.join("target/vmtest"))
            .env("RUSTFLAGS", "-C target-feature=+crt-static"),
    )?;
    run(
        "vm-test: C counter device",
        Command::new("gcc")
            .args(["-static", "-O2", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(root.join("kernel/include/uapi"))
            .arg(root.join("examples/c/counter_device.c"))
            .arg("-o")
            .arg(out.join("counter_device")),
    )?;
    let mut failures = Vec::new();
    let mut logs = String::new();
    let mut boot_secs = 0.0;
    let mut count = 0;
    println!("\nscenario                 result");
    for (boot, list) in Boot::split(list) {
        if list.is_empty() {
            continue;
        }
        count += list.len();
        initramfs(root, &out, &modules, &list, boot)?;
        let started_boot = Instant::now();
        let log = boot_guest(&ver, &out, boot)?;
        boot_secs += started_boot.elapsed().as_secs_f64();
        judge(boot, &list, &log, &mut failures);
        if let Err(e) = save_guest_files(&log, &out) {
            failures.push(e);
        }
        logs.push_str(&log);
    }
    // Figures the scenarios measured (e.g. round-trip times), shown with
    // the verdicts.
    for l in logs.lines().filter(|l| l.starts_with("MEASURE:")) {
        println!("{l}");
    }
    for l in logs.lines().filter(|l| l.starts_with("FAIL")) {
        eprintln!("  {l}");
    }
    println!(
        "vm-test: {count} scenarios, boot+run {boot_secs:.1} s, total {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let log = logs;
    let log_path = out.join("vm.log");
    if failures.is_empty() {
        Ok(log)
    } else {
        Err(fail(
            "vm-test",
            format!(
                "{} problem(s), logs in {} (and vm-nomemmap.log, vm-onecpu.log, vm-nvme.log beside it):\n{}",
                failures.len(),
                log_path.display(),
                failures.join("\n")
            ),
        ))
    }
}

/// Boots the guest with this boot's initramfs; its console log.
fn boot_guest(ver: &str, out: &Path, boot: Boot) -> Result<String> {
    let (initramfs, log_name) = boot.files();
    let log_path = out.join(log_name);
    eprintln!(
        "+ qemu-system-x86_64 (TCG) kernel {ver}, {} boot, log in {}",
        boot.name(),
        log_path.display()
    );
    let qemu = Command::new("timeout")
        .arg("900")
        .arg("qemu-system-x86_64")
        .args(boot.qemu_extra(out)?)
        .args([
            "-m",
            boot.memory(),
            "-smp",
            boot.cpus(),
            "-nographic",
            "-no-reboot",
        ])
        .args(boot.qemu_args())
        .arg("-kernel")
        .arg(format!("/boot/vmlinuz-{ver}"))
        .arg("-initrd")
        .arg(out.join(initramfs))
        .arg("-append")
        .arg(boot.cmdline())
        .output()
        .map_err(|e| {
            fail(
                "vm-test: qemu",
                format!("cannot start qemu-system-x86_64: {e} (run `cargo xtask setup`)"),
            )
        })?;
    let log = String::from_utf8_lossy(&qemu.stdout).replace('\r', "");
    std::fs::write(&log_path, &log).map_err(|e| fail("vm-test", e.to_string()))?;
    Ok(log)
}

/// Judges one boot's log: every scenario line of `list` reported exit 0
/// (the n-th line of a binary by its n-th EXIT line), the modules loaded,
/// and no kernel problem outside the scenarios' own output.
fn judge(boot: Boot, list: &[String], log: &str, failures: &mut Vec<String>) {
    if !log.contains("VMTEST BOOTED") {
        failures.push(format!("the {} guest never reached /init", boot.name()));
    }
    for l in log.lines().filter(|l| l.starts_with("VMTEST EXIT insmod")) {
        failures.push(l.to_string());
    }
    let mut exits: Vec<Option<(&str, &str)>> = log
        .lines()
        .filter_map(|l| l.strip_prefix("VMTEST EXIT "))
        .map(|rest| rest.split_once(' '))
        .collect();
    let tag = match boot {
        Boot::Pool => "",
        Boot::NoMemmap => " (no memmap)",
        Boot::OneCpu => " (one CPU)",
        Boot::Display => " (display)",
        Boot::Nvme => " (nvme)",
    };
    for entry in list {
        let bin = entry.split_whitespace().next().unwrap_or_default();
        let exit = exits
            .iter_mut()
            .find(|e| e.is_some_and(|(b, _)| b == bin))
            .and_then(Option::take)
            .map(|(_, rc)| rc.trim().to_string());
        let verdict = match exit.as_deref() {
            Some("0") => "PASS".to_string(),
            Some(rc) => format!("FAIL (exit {rc})"),
            None => "NO RESULT (hang or crash)".to_string(),
        };
        println!("{:<24} {verdict}", format!("{bin}{tag}"));
        if verdict != "PASS" {
            failures.push(format!("{bin}{tag}: {verdict}"));
        }
    }
    // Scenario programs print their own verdict lines (which may name the
    // very patterns they checked for); everything else is the kernel's.
    let scenario_output = |l: &str| {
        [
            "PASS:",
            "FAIL:",
            "SCENARIO ",
            "VMTEST ",
            "INFO:",
            "MEASURE:",
            "BENCH ",
        ]
        .iter()
        .any(|p| l.starts_with(p))
    };
    for l in log.lines().filter(|l| !scenario_output(l)) {
        if BAD.iter().any(|b| l.contains(b)) {
            failures.push(format!("kernel log ({}): {l}", boot.name()));
        }
    }
}

/// Puts the display boot's extras into the initramfs at `dir`: the guest
/// kernel's DRM modules ([`DISPLAY_MODULES`], decompressed: busybox's
/// insmod does not read `.ko.xz`) under `/drm`, and `modetest` with its
/// shared libraries.
fn display_files(dir: &Path) -> Result {
    let step = "vm-test: display initramfs";
    let (ver, _) = crate::kbuild::kernel()?;
    std::fs::create_dir_all(dir.join("drm")).map_err(|e| fail(step, e.to_string()))?;
    for m in DISPLAY_MODULES {
        let path = output(step, Command::new("modinfo").args(["-k", &ver, "-n", m]))?;
        let path = path.trim();
        let dest = dir.join("drm").join(format!("{m}.ko"));
        let data = if path.ends_with(".xz") {
            let o = Command::new("xz")
                .args(["-dc", path])
                .output()
                .map_err(|e| {
                    fail(
                        step,
                        format!("xz -dc {path}: {e} (run `cargo xtask setup`)"),
                    )
                })?;
            if !o.status.success() {
                return Err(fail(step, format!("xz -dc {path} failed")));
            }
            o.stdout
        } else {
            std::fs::read(path).map_err(|e| fail(step, format!("{path}: {e}")))?
        };
        std::fs::write(&dest, data).map_err(|e| fail(step, e.to_string()))?;
    }
    let modetest = Path::new(DISPLAY_MODETEST);
    copy(step, modetest, &dir.join("bin/modetest"))?;
    let ldd = output(step, Command::new("ldd").arg(modetest))?;
    for lib in ldd.split_whitespace().filter(|w| w.starts_with('/')) {
        let real = std::fs::canonicalize(lib).map_err(|e| fail(step, format!("{lib}: {e}")))?;
        copy(step, &real, &dir.join(lib.trim_start_matches('/')))?;
    }
    Ok(())
}

/// libdrm's test tool (Debian `libdrm-tests`), run by `vmtest-bochs`.
pub const DISPLAY_MODETEST: &str = "/usr/bin/modetest";

/// Files a scenario printed on the console (a guest's files are lost at
/// poweroff): `VMTEST FILE BEGIN name`, lines `VMTEST B64 <base64>`,
/// `VMTEST FILE END name`. Each is written to `out/name` (`name` a plain
/// file name).
fn save_guest_files(log: &str, out: &Path) -> std::result::Result<(), String> {
    let mut current: Option<(String, String)> = None;
    for line in log.lines() {
        if let Some(name) = line.strip_prefix("VMTEST FILE BEGIN ") {
            current = Some((name.trim().to_string(), String::new()));
        } else if let Some(data) = line.strip_prefix("VMTEST B64 ") {
            if let Some((_, text)) = current.as_mut() {
                text.push_str(data.trim());
            }
        } else if line.starts_with("VMTEST FILE END ") {
            let Some((name, text)) = current.take() else {
                continue;
            };
            let plain = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && !name.starts_with('.');
            if !plain {
                return Err(format!("guest file with a bad name {name:?}"));
            }
            let bytes = base64_decode(&text)
                .ok_or_else(|| format!("guest file {name}: malformed base64"))?;
            let path = out.join(&name);
            std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            println!("guest file saved: {}", path.display());
        }
    }
    Ok(())
}

/// Standard base64 (RFC 4648, `=` padding) to bytes; `None` if malformed.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for quad in bytes.chunks(4) {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let b = n.to_be_bytes();
        out.extend_from_slice(&b[1..4 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod display_tests {
    use super::*;

    #[test]
    fn base64_round_trips_known_vectors() {
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("Zg==").unwrap(), b"f");
        assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
        assert_eq!(base64_decode("Zm9vYmFy").unwrap(), b"foobar");
        assert!(base64_decode("Zm9").is_none());
        assert!(base64_decode("Zm!v").is_none());
    }

    #[test]
    fn guest_files_are_saved_and_bad_names_refused() {
        let dir = std::env::temp_dir().join(format!("xtask-guest-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = "noise\nVMTEST FILE BEGIN a.png\nVMTEST B64 Zm9v\nkernel line\nVMTEST B64 YmFy\n\
                   VMTEST FILE END a.png\n";
        save_guest_files(log, &dir).unwrap();
        assert_eq!(std::fs::read(dir.join("a.png")).unwrap(), b"foobar");
        let bad = "VMTEST FILE BEGIN ../a\nVMTEST B64 Zm9v\nVMTEST FILE END ../a\n";
        assert!(save_guest_files(bad, &dir).is_err());
        let broken = "VMTEST FILE BEGIN b\nVMTEST B64 Zm9\nVMTEST FILE END b\n";
        assert!(save_guest_files(broken, &dir).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn display_lines_select_the_display_boot() {
        let split = Boot::split(vec!["display vmtest-bochs".into(), "vmtest-irq".into()]);
        let display = split.iter().find(|(b, _)| *b == Boot::Display).unwrap();
        assert_eq!(display.1, vec!["vmtest-bochs".to_string()]);
    }
}
