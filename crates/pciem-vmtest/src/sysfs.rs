//! Reading the device and the test driver through sysfs.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Sysfs directories of the PCI devices with this vendor and device ID.
pub fn find_devices(vendor: u16, device: u16) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(dir) = fs::read_dir("/sys/bus/pci/devices") else {
        return out;
    };
    for entry in dir.flatten() {
        let p = entry.path();
        if read_hex(&p.join("vendor")) == Some(vendor as u64)
            && read_hex(&p.join("device")) == Some(device as u64)
        {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Waits up to `timeout` for exactly one device with these IDs.
pub fn wait_device(vendor: u16, device: u16, timeout: Duration) -> Option<PathBuf> {
    let start = Instant::now();
    loop {
        let mut found = find_devices(vendor, device);
        if found.len() == 1 {
            return found.pop();
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads a file and trims it.
pub fn read_trim(p: &Path) -> io::Result<String> {
    Ok(fs::read_to_string(p)?.trim().to_string())
}

/// Reads a `0x...` (or decimal) number from a sysfs file.
pub fn read_hex(p: &Path) -> Option<u64> {
    parse_num(&read_trim(p).ok()?)
}

/// Parses `0x`-prefixed hex or decimal.
pub fn parse_num(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The PCI address (`DDDD:BB:DD.F`) of a sysfs device directory.
pub fn pci_name(dev: &Path) -> String {
    dev.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Name of the driver bound to the device, if any.
pub fn driver_of(dev: &Path) -> Option<String> {
    let link = fs::read_link(dev.join("driver")).ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

/// One line of the `resource` file: (start, end, flags).
pub fn resource_line(dev: &Path, index: usize) -> Option<(u64, u64, u64)> {
    let text = fs::read_to_string(dev.join("resource")).ok()?;
    let line = text.lines().nth(index)?;
    let mut it = line.split_whitespace().map(parse_num);
    Some((it.next()??, it.next()??, it.next()??))
}

/// A read-only counter parameter of the test driver (`probes`, `removes`).
pub fn testdrv_counter(name: &str) -> Option<u64> {
    read_hex(&Path::new("/sys/module/pciem_testdrv/parameters").join(name))
}

/// Writes a 32-bit register through the test driver.
pub fn testdrv_write(dev: &Path, offset: u64, val: u32) -> io::Result<()> {
    fs::write(dev.join("reg_offset"), format!("{offset:#x}"))?;
    fs::write(dev.join("reg"), format!("{val:#x}"))
}

/// Reads a 32-bit register through the test driver.
pub fn testdrv_read(dev: &Path, offset: u64) -> io::Result<u32> {
    fs::write(dev.join("reg_offset"), format!("{offset:#x}"))?;
    parse_num(&read_trim(&dev.join("reg"))?)
        .map(|v| v as u32)
        .ok_or_else(|| io::Error::other("unparsable reg"))
}

/// Interrupt counts per vector as the test driver saw them.
pub fn testdrv_irqs(dev: &Path) -> Vec<u64> {
    read_trim(&dev.join("irq_counts"))
        .map(|s| s.split_whitespace().filter_map(parse_num).collect())
        .unwrap_or_default()
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs a command, returning (success, stdout + stderr).
pub fn run(cmd: &str, args: &[&str]) -> (bool, String) {
    match std::process::Command::new(cmd).args(args).output() {
        Ok(o) => {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            (o.status.success(), s)
        }
        Err(e) => (false, format!("{cmd}: {e}")),
    }
}

/// Checks the modules the scenarios need are loaded.
pub fn modules_loaded() -> bool {
    Path::new("/dev/pciem").exists() && Path::new("/sys/bus/pci/drivers/pciem_testdrv").exists()
}

/// Reads `width` (1, 2 or 4) bytes of the device's configuration space at
/// `offset` through sysfs (as root, all 4096 bytes are readable).
pub fn config_read(dev: &Path, offset: u16, width: u8) -> Option<u32> {
    let bytes = fs::read(dev.join("config")).ok()?;
    let start = usize::from(offset);
    let b = bytes.get(start..start + usize::from(width))?;
    Some(b.iter().rev().fold(0u32, |v, &x| v << 8 | x as u32))
}

/// The offset of standard capability `id` in the device's config space.
pub fn find_capability(dev: &Path, id: u8) -> Option<u16> {
    let bytes = fs::read(dev.join("config")).ok()?;
    let mut at = u16::from(*bytes.get(0x34)? & !3);
    for _ in 0..48 {
        if at < 0x40 {
            return None;
        }
        if *bytes.get(usize::from(at))? == id {
            return Some(at);
        }
        at = u16::from(*bytes.get(usize::from(at) + 1)? & !3);
    }
    None
}

/// `setpci -s <device> <assignment>`: true if setpci succeeded.
pub fn setpci(dev: &Path, assignment: &str) -> (bool, String) {
    run("setpci", &["-s", &pci_name(dev), assignment])
}

/// Waits up to 3 s until the test driver's per-vector counts are `want`.
pub fn wait_irq_counts(dev: &Path, want: &[u64]) -> bool {
    wait_until(Duration::from_secs(3), || testdrv_irqs(dev) == want)
}

/// After 200 ms of quiet, the test driver's counts are still `want`
/// (nothing more was delivered).
pub fn irq_counts_steady(dev: &Path, want: &[u64]) -> bool {
    std::thread::sleep(Duration::from_millis(200));
    testdrv_irqs(dev) == want
}
