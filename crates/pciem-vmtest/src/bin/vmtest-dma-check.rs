//! vmtest-dma-check: PCIem's DMA checker against `pciem_dmabug.ko`, a
//! driver with one deliberate DMA bug per variant.
//!
//! In `report` and in `enforce` mode, for each bug (use after unmap,
//! overrun by one byte and by one page, wrong direction) the scenario,
//! acting as the device, makes the DMA the driver asked for and checks:
//! exactly one `DMA_FAULT` event of the right kind, exactly one kernel-log
//! line naming the kind and the driver function that made the mapping,
//! the sysfs counter of that kind up by one and no other; in `enforce` the
//! DMA fails with EFAULT and the driver's buffers are untouched, in
//! `report` it succeeds. A correct DMA into the same kind of mapping is
//! reported nowhere. At unbind the leaked mapping is reported once, with
//! its call site. With a 32-bit DMA mask, coherent memory comes from below
//! 4 GiB and a mapping of a page above 4 GiB fails with a log line.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pciem_abi::{
    PCIEM_DMA_CHECK_ENFORCE, PCIEM_DMA_CHECK_REPORT, PCIEM_DMA_FAULT_AFTER_UNMAP,
    PCIEM_DMA_FAULT_OUTSIDE, PCIEM_DMA_FAULT_UNMAPPED, PCIEM_DMA_FAULT_WRONG_DIRECTION,
    PCIEM_EVENT_DMA_FAULT,
};
use pciem_vmtest::dmadrv::errno;
use pciem_vmtest::sysfs::{self, pci_name, read_trim, wait_device};
use pciem_vmtest::{Dev, Report, Ring, TEST_DEVICE_DMABUG, TEST_VENDOR};

const DRIVER: &str = "pciem_dmabug";

/// One deliberate bug: its variant name, the fault kind it must produce,
/// the counter that must move, words the log line must carry and the
/// driver function it must name.
struct Bug {
    name: &'static str,
    kind: u32,
    counter: &'static str,
    words: &'static str,
}

const BUGS: &[Bug] = &[
    Bug {
        name: "use_after_unmap",
        kind: PCIEM_DMA_FAULT_AFTER_UNMAP,
        counter: "after_unmap",
        words: "after unmap",
    },
    Bug {
        name: "overrun_byte",
        kind: PCIEM_DMA_FAULT_OUTSIDE,
        counter: "outside",
        words: "by 1 bytes",
    },
    Bug {
        name: "overrun_page",
        kind: PCIEM_DMA_FAULT_OUTSIDE,
        counter: "outside",
        words: "by 4096 bytes",
    },
    Bug {
        name: "wrong_direction",
        kind: PCIEM_DMA_FAULT_WRONG_DIRECTION,
        counter: "wrong_direction",
        words: "wrong direction",
    },
];

/// Where the kernel log stands now: its last line (with its timestamp),
/// which [`log_since`] finds again. (Writing markers to /dev/kmsg would
/// be ratelimited.)
fn mark(_what: &str) -> String {
    let (_, log) = sysfs::run("dmesg", &[]);
    log.lines().last().unwrap_or_default().to_string()
}

/// The kernel-log lines after `marker` (all of them if it scrolled away,
/// which makes the exact-count checks fail rather than pass).
fn log_since(marker: &str) -> Vec<String> {
    let (_, log) = sysfs::run("dmesg", &[]);
    let lines: Vec<&str> = log.lines().collect();
    let start = lines
        .iter()
        .rposition(|l| *l == marker)
        .map_or(0, |i| i + 1);
    lines[start..].iter().map(|l| l.to_string()).collect()
}

fn counters(pdev: &Path) -> HashMap<String, String> {
    read_trim(&pdev.join("pciem_dma_check"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn count(c: &HashMap<String, String>, k: &str) -> u64 {
    c.get(k).and_then(|v| v.parse().ok()).unwrap_or(u64::MAX)
}

/// The DMA_FAULT events now in the ring.
fn faults(ring: &Ring) -> Vec<pciem_abi::pciem_event> {
    std::thread::sleep(Duration::from_millis(20));
    let mut v = Vec::new();
    while let Some(ev) = ring.pop() {
        if ev.r#type == PCIEM_EVENT_DMA_FAULT {
            v.push(ev);
        }
    }
    v
}

/// The job the driver published: bus address, length, whether a write.
fn job(pdev: &Path) -> Option<(u64, usize, bool)> {
    let s = read_trim(&pdev.join("job")).ok()?;
    let mut w = s.split_whitespace();
    let addr = sysfs::parse_num(w.next()?)?;
    let len = w.next()?.parse().ok()?;
    Some((addr, len, w.next()? == "write"))
}

fn write_attr(pdev: &Path, attr: &str, v: &str) -> std::io::Result<()> {
    fs::write(pdev.join(attr), v)
}

/// The device does the job's DMA.
fn do_job(dev: &Dev, addr: u64, len: usize, write: bool) -> std::io::Result<()> {
    if write {
        dev.dma_write(addr, &vec![0xa5u8; len])
    } else {
        let mut buf = vec![0u8; len];
        dev.dma_read(addr, &mut buf)
    }
}

fn one_bug(r: &mut Report, dev: &Dev, ring: &Ring, pdev: &Path, mode: &str, bug: &Bug) {
    let enforce = mode == "enforce";
    let what = format!("{mode}: {}", bug.name);
    let marker = mark(&what);
    let before = counters(pdev);
    if !r.check(
        write_attr(pdev, "bug", bug.name).is_ok(),
        format!("{what}: the driver set the bug up"),
    ) {
        return;
    }
    let Some((addr, len, write)) = job(pdev) else {
        r.check(false, format!("{what}: the driver published its job"));
        return;
    };
    ring.drain();
    let res = do_job(dev, addr, len, write);
    if enforce {
        r.check(
            errno(&res) == Some(libc::EFAULT),
            format!("{what}: the DMA fails with EFAULT ({res:?})"),
        );
    } else {
        r.check(res.is_ok(), format!("{what}: the DMA goes ahead ({res:?})"));
    }
    let evs = faults(ring);
    r.check(
        evs.len() == 1
            && evs[0].flags == bug.kind
            && evs[0].id == u64::from(enforce)
            && evs[0].offset >= addr
            && evs[0].offset < addr + len as u64
            && evs[0].size as usize == len,
        format!(
            "{what}: exactly one DMA_FAULT event of kind {} ({:?})",
            bug.kind,
            evs.iter()
                .map(|e| (e.flags, e.offset, e.size, e.data, e.id))
                .collect::<Vec<_>>()
        ),
    );
    let name = pci_name(pdev);
    let lines: Vec<String> = log_since(&marker)
        .into_iter()
        .filter(|l| l.contains(&name) && l.contains("DMA"))
        .collect();
    let site = format!("dmabug_{}+", bug.name);
    let verdict = if enforce { "refused" } else { "allowed" };
    r.check(
        lines.len() == 1
            && lines[0].contains(bug.words)
            && lines[0].contains(&site)
            && lines[0].contains(verdict),
        format!(
            "{what}: one log line naming '{}', {site} and '{verdict}': {lines:?}",
            bug.words
        ),
    );
    if let Some(l) = lines.first() {
        println!("INFO: reported: {}", l.trim());
    }
    let after = counters(pdev);
    let moved: Vec<String> = ["unmapped", "outside", "wrong_direction", "after_unmap"]
        .iter()
        .filter(|k| count(&after, k) != count(&before, k))
        .map(|k| format!("{k} {} -> {}", count(&before, k), count(&after, k)))
        .collect();
    r.check(
        moved.len() == 1 && count(&after, bug.counter) == count(&before, bug.counter) + 1,
        format!(
            "{what}: only the {} counter moved, by one: {moved:?}",
            bug.counter
        ),
    );
    let intact = read_trim(&pdev.join("intact")).ok();
    let expect_intact = enforce || !write;
    r.check(
        intact.as_deref() == Some(if expect_intact { "1" } else { "0" }),
        format!(
            "{what}: the driver's buffers are {} ({intact:?})",
            if expect_intact {
                "untouched"
            } else {
                "written, as report mode lets it"
            }
        ),
    );
    let _ = write_attr(pdev, "finish", "1");
}

/// A DMA that stays inside its mapping is reported nowhere.
fn correct_dma(r: &mut Report, dev: &Dev, ring: &Ring, pdev: &Path, mode: &str) {
    let marker = mark(&format!("{mode}: correct"));
    let before = counters(pdev);
    // overrun_byte maps 4 KiB DMA_FROM_DEVICE; 4096 bytes are legal.
    let _ = write_attr(pdev, "bug", "overrun_byte");
    let Some((addr, len, _)) = job(pdev) else {
        r.check(false, format!("{mode}: correct: job"));
        return;
    };
    ring.drain();
    let res = dev.dma_write(addr, &vec![0x11u8; len - 1]);
    let evs = faults(ring);
    let name = pci_name(pdev);
    let lines: Vec<String> = log_since(&marker)
        .into_iter()
        .filter(|l| l.contains(&name))
        .collect();
    let after = counters(pdev);
    let kinds = ["unmapped", "outside", "wrong_direction", "after_unmap"];
    let same = kinds.iter().all(|k| count(&after, k) == count(&before, k));
    r.check(
        res.is_ok() && evs.is_empty() && lines.is_empty() && same,
        format!(
            "{mode}: a DMA inside its mapping passes unreported ({res:?}, {} events, {lines:?})",
            evs.len()
        ),
    );
    let _ = write_attr(pdev, "finish", "1");
}

fn leak_at_unbind(r: &mut Report, pdev: &Path, mode: &str) {
    let marker = mark(&format!("{mode}: leak"));
    let before = counters(pdev);
    r.check(
        write_attr(pdev, "bug", "leak").is_ok(),
        format!("{mode}: leak: the driver maps and forgets"),
    );
    let name = pci_name(pdev);
    let unbound = fs::write(format!("/sys/bus/pci/drivers/{DRIVER}/unbind"), &name);
    r.check(
        unbound.is_ok(),
        format!("{mode}: leak: unbind the driver ({unbound:?})"),
    );
    let lines: Vec<String> = log_since(&marker)
        .into_iter()
        .filter(|l| l.contains(&name) && l.contains("leak"))
        .collect();
    r.check(
        lines.len() == 1 && lines[0].contains("dmabug_leak+") && lines[0].contains("DMA_TO_DEVICE"),
        format!("{mode}: leak: one leak line naming dmabug_leak: {lines:?}"),
    );
    if let Some(l) = lines.first() {
        println!("INFO: reported: {}", l.trim());
    }
    let after = counters(pdev);
    r.check(
        count(&after, "leaks") == count(&before, "leaks") + 1 && count(&after, "live") == 0,
        format!(
            "{mode}: leak: leaks {} -> {}, nothing live after unbind",
            count(&before, "leaks"),
            count(&after, "leaks")
        ),
    );
}

fn mask32(r: &mut Report, pdev: &Path) {
    let marker = mark("mask32");
    let before = counters(pdev);
    r.check(
        write_attr(pdev, "bug", "mask32").is_ok(),
        "mask32: the driver ran its 32-bit mask test",
    );
    let res = read_trim(&pdev.join("mask")).unwrap_or_default();
    println!("INFO: mask32: {res}");
    let high = res
        .split_whitespace()
        .find_map(|w| w.strip_prefix("high_page="))
        .and_then(sysfs::parse_num)
        .unwrap_or(0);
    r.check(
        res.contains("coherent_below_4g=1"),
        format!("mask32: coherent memory below 4 GiB ({res})"),
    );
    r.check(
        high > u64::from(u32::MAX),
        format!("mask32: the guest has a page above 4 GiB to try ({high:#x})"),
    );
    r.check(
        res.contains("map_refused=1"),
        format!("mask32: mapping a page above 4 GiB fails ({res})"),
    );
    let name = pci_name(pdev);
    let lines: Vec<String> = log_since(&marker)
        .into_iter()
        .filter(|l| l.contains(&name) && l.contains("DMA mask"))
        .collect();
    r.check(
        lines.len() == 1 && lines[0].contains("dmabug_mask32+"),
        format!("mask32: one log line naming dmabug_mask32: {lines:?}"),
    );
    if let Some(l) = lines.first() {
        println!("INFO: reported: {}", l.trim());
    }
    r.check(
        count(&counters(pdev), "mask") == count(&before, "mask") + 1,
        "mask32: the mask counter moved by one",
    );
}

/// Report mode still lets the module's own checks run after the report:
/// a BAR is no RAM (ENXIO).
fn report_then_enxio(r: &mut Report, dev: &Dev, ring: &Ring) {
    let Ok(bar) = dev.bar_info(2) else {
        r.check(false, "report: BAR 2 info");
        return;
    };
    ring.drain();
    let mut buf = [0u8; 16];
    let res = dev.dma_read(bar.bus_addr, &mut buf);
    let evs = faults(ring);
    r.check(
        errno(&res) == Some(libc::ENXIO)
            && evs.len() == 1
            && evs[0].flags == PCIEM_DMA_FAULT_UNMAPPED
            && evs[0].id == 0,
        format!(
            "report: a DMA_READ of a BAR is reported unmapped, then fails ENXIO ({res:?}, {} events)",
            evs.len()
        ),
    );
}

fn run_mode(r: &mut Report, mode: &str, check_mode: u32) {
    let Some(dev) = r.step(format!("{mode}: open /dev/pciem"), Dev::open()) else {
        return;
    };
    if r.step(
        format!("{mode}: describe the device"),
        dev.describe_test_device(TEST_DEVICE_DMABUG),
    )
    .is_none()
        || r.step(
            format!("{mode}: SET_DMA_CHECK {mode}"),
            dev.set_dma_check(check_mode),
        )
        .is_none()
    {
        return;
    }
    let bad = dev.set_dma_check(9);
    r.check(
        errno(&bad) == Some(libc::EINVAL),
        format!("{mode}: SET_DMA_CHECK with an unknown mode -> EINVAL ({bad:?})"),
    );
    let Some(ring) = r.step(format!("{mode}: map the ring"), dev.map_ring()) else {
        return;
    };
    let Some(_inst) = r.step(format!("{mode}: register"), dev.register()) else {
        return;
    };
    let late = dev.set_dma_check(PCIEM_DMA_CHECK_REPORT);
    r.check(
        errno(&late) == Some(libc::EBUSY),
        format!("{mode}: SET_DMA_CHECK after REGISTER -> EBUSY ({late:?})"),
    );
    let Some(pdev): Option<PathBuf> =
        wait_device(TEST_VENDOR, TEST_DEVICE_DMABUG, Duration::from_secs(5))
    else {
        r.check(false, format!("{mode}: the device appears"));
        return;
    };
    r.check(
        sysfs::wait_until(Duration::from_secs(5), || {
            sysfs::driver_of(&pdev).as_deref() == Some(DRIVER)
        }),
        format!("{mode}: {DRIVER} binds"),
    );
    let c = counters(&pdev);
    r.check(
        c.get("mode").map(String::as_str) == Some(mode),
        format!("{mode}: sysfs pciem_dma_check says mode {mode} ({c:?})"),
    );
    for bug in BUGS {
        one_bug(r, &dev, &ring, &pdev, mode, bug);
    }
    correct_dma(r, &dev, &ring, &pdev, mode);
    if mode == "report" {
        report_then_enxio(r, &dev, &ring);
    } else {
        mask32(r, &pdev);
    }
    leak_at_unbind(r, &pdev, mode);
    println!(
        "INFO: {mode}: {}",
        read_trim(&pdev.join("pciem_dma_check"))
            .unwrap_or_default()
            .replace('\n', ", ")
    );
}

fn main() {
    let mut r = Report::new("dma-check");
    r.check(
        Path::new("/sys/bus/pci/drivers").join(DRIVER).exists(),
        format!("{DRIVER}.ko is loaded"),
    );
    run_mode(&mut r, "report", PCIEM_DMA_CHECK_REPORT);
    run_mode(&mut r, "enforce", PCIEM_DMA_CHECK_ENFORCE);
    // Every device above is gone again; its removal left nothing behind.
    r.check_klog_clean();
    r.finish()
}
