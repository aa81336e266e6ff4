//! MSI-X with the vector table and PBA in a trapped BAR (1f0c:7e53, eight
//! entries, `pciem_testdrv.ko`).
//!
//! BAR0 (one page) holds the table at 0x800 and the PBA at 0xc00 and is in
//! trap mode: the PCI core's own mapping of the table (and the driver's
//! `pci_iomap` of BAR0) fault on every access and are emulated. A thread
//! drains the ring and keeps the MMIO_WRITE events. Checked: the driver
//! binds after START and gets MSI-X; the core's stores to the table arrive
//! as events; each entry is delivered; and, [`TRIES`] times, the driver
//! masks entry 3 (`mask_vec`: the vector-control store is an event with
//! bit 0 set), the model injects it (held: its PBA bit set, nothing
//! delivered), the driver unmasks it (`unmask_vec`: an event with bit 0
//! clear) and the interrupt arrives exactly once with the PBA bit cleared.
//! The driver measures the unmask-to-handler delay (`unmask_delay_ns`):
//! pciem.ko re-checks held entries when a trapped store hits the MSI-X
//! table, so the median must be well under the 5 ms poll period that
//! would deliver it otherwise.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use pciem_abi::{pciem_event, PCIEM_BAR_MODE_TRAP, PCIEM_EVENT_MMIO_WRITE, PCIEM_IRQ_MSIX};
use pciem_core::config::{Bar, MsixCap};
use pciem_core::ConfigBuilder;
use pciem_vmtest::sysfs::{self, testdrv_irqs, wait_irq_counts as wait_counts};
use pciem_vmtest::trapdrv::{pin_to_cpu, wait_eventfd, TrapStats};
use pciem_vmtest::{Dev, MappedBar, Report, TESTDRV, TEST_VENDOR};

const DEVICE: u16 = 0x7e53;
const ENTRIES: u32 = 8;
const TABLE: u64 = 0x800;
const PBA: usize = 0xC00;
const ENTRY: u32 = 3;
const TRIES: usize = 20;
/// The median unmask-to-delivery delay must stay under this.
const MEDIAN_LIMIT_NS: u64 = 2_000_000;

fn pba_bit(bar0: &MappedBar, entry: u32) -> bool {
    bar0.read32(PBA + 4 * (entry as usize / 32)) & (1 << (entry % 32)) != 0
}

fn ctrl_off(entry: u32) -> u64 {
    TABLE + 16 * u64::from(entry) + 12
}

#[derive(Default)]
struct Shared {
    writes: Mutex<Vec<pciem_event>>,
    stop: AtomicBool,
}

fn drain(dev: &Dev, efd: i32, sh: &Shared) {
    let _ = pin_to_cpu(1);
    let Ok(ring) = dev.map_ring() else {
        return;
    };
    while !sh.stop.load(Ordering::Acquire) {
        let mut any = false;
        while let Some(ev) = ring.pop() {
            any = true;
            if ev.r#type == PCIEM_EVENT_MMIO_WRITE {
                sh.writes.lock().unwrap().push(ev);
            }
        }
        if !any {
            wait_eventfd(efd, 2);
        }
    }
}

/// The vector-control stores to `entry` logged since index `from`: their
/// values.
fn ctrl_writes(sh: &Shared, from: usize, entry: u32) -> Vec<u64> {
    sh.writes.lock().unwrap()[from..]
        .iter()
        .filter(|e| e.bar == 0 && e.offset == ctrl_off(entry) && e.size == 4)
        .map(|e| e.data)
        .collect()
}

fn read_u64(p: &Path) -> Option<u64> {
    sysfs::read_trim(p).ok()?.parse().ok()
}

fn main() {
    let mut r = Report::new("trap-msix");
    r.check(
        sysfs::modules_loaded(),
        "pciem.ko and pciem_testdrv.ko are loaded",
    );
    run_all(&mut r);
    r.check_klog_clean();
    r.finish()
}

fn run_all(r: &mut Report) {
    // The driver's side runs on CPU 0, the ring drain on CPU 1.
    let _ = pin_to_cpu(0);
    let space = ConfigBuilder::new(TEST_VENDOR, DEVICE)
        .class(0x0b, 0x40, 0x00)
        .bar(0, Bar::memory32(4096))
        .msix(MsixCap {
            table_size: ENTRIES,
            table_bar: 0,
            table_offset: TABLE as u32,
            pba_bar: 0,
            pba_offset: PBA as u32,
        })
        .build();
    let Some(space) = r.step("pciem-core builds 1f0c:7e53 with MSI-X in BAR0", space) else {
        return;
    };
    let Some(dev) = r.step("open /dev/pciem", Dev::open()) else {
        return;
    };
    let Some(efd) = r.step("SET_EVENTFD", dev.attach_eventfd()) else {
        return;
    };
    r.step("SET_CONFIG_IMAGE", dev.set_image(space.image()));
    r.step(
        "SET_BAR_MODE BAR0 trap",
        dev.set_bar_mode(0, PCIEM_BAR_MODE_TRAP),
    );
    let Some(inst) = r.step("REGISTER", dev.register()) else {
        return;
    };
    let Some(path) = sysfs::wait_device(TEST_VENDOR, DEVICE, Duration::from_secs(5)) else {
        r.check(false, "1f0c:7e53 is in sysfs after REGISTER");
        return;
    };
    let Some(bar0) = r.step("mmap BAR0", inst.map_bar(0, 4096)) else {
        return;
    };
    let sh = Shared::default();
    std::thread::scope(|s| {
        s.spawn(|| drain(&dev, std::os::fd::AsRawFd::as_raw_fd(&efd), &sh));
        body(r, &dev, &path, &bar0, &sh);
        sh.stop.store(true, Ordering::Release);
    });
}

fn body(r: &mut Report, dev: &Dev, path: &Path, bar0: &MappedBar, sh: &Shared) {
    r.step("START", dev.start());
    let bound = sysfs::wait_until(Duration::from_secs(10), || {
        sysfs::driver_of(path).as_deref() == Some(TESTDRV) && path.join("irq_kind").exists()
    });
    r.check(bound, format!("{TESTDRV} bound after START"));
    if !bound {
        return;
    }
    let kind = sysfs::read_trim(&path.join("irq_kind")).unwrap_or_default();
    r.check(kind == "msix", format!("the driver uses MSI-X ({kind})"));
    let s0 = TrapStats::read(path);
    r.check(
        s0.is_some_and(|s| s.stores > 0 && s.untrapped == 0),
        format!("the PCI core's table set-up trapped ({s0:?})"),
    );
    r.check(
        sysfs::wait_until(Duration::from_secs(2), || {
            sh.writes
                .lock()
                .unwrap()
                .iter()
                .any(|e| e.offset >= TABLE && e.offset < TABLE + 16 * u64::from(ENTRIES))
        }),
        "the core's stores to the MSI-X table arrived as MMIO_WRITE events",
    );
    let mut want = vec![0u64; ENTRIES as usize];
    let mut ok = true;
    for e in 0..ENTRIES {
        ok &= dev.inject(PCIEM_IRQ_MSIX, e, 0).is_ok();
        want[e as usize] += 1;
        ok &= wait_counts(path, &want);
    }
    r.check(
        ok,
        format!("every entry is delivered once ({:?})", testdrv_irqs(path)),
    );

    println!("--- {TRIES} x: mask entry {ENTRY}, inject (held), unmask, delivery");
    let mut delays = Vec::new();
    let mut problems = Vec::new();
    for t in 0..TRIES {
        let from = sh.writes.lock().unwrap().len();
        if let Err(e) = std::fs::write(path.join("mask_vec"), ENTRY.to_string()) {
            problems.push(format!("try {t}: mask_vec: {e}"));
            break;
        }
        if let Err(e) = dev.inject(PCIEM_IRQ_MSIX, ENTRY, 0) {
            problems.push(format!("try {t}: INJECT_IRQ: {e}"));
            break;
        }
        // The first time, a full 200 ms of quiet; then a short look.
        std::thread::sleep(Duration::from_millis(if t == 0 { 200 } else { 10 }));
        if testdrv_irqs(path) != want {
            problems.push(format!("try {t}: delivered while masked"));
        }
        if !pba_bit(bar0, ENTRY) {
            problems.push(format!("try {t}: PBA bit not set while held"));
        }
        sysfs::wait_until(Duration::from_secs(1), || {
            ctrl_writes(sh, from, ENTRY).iter().any(|v| v & 1 == 1)
        });
        let masks = ctrl_writes(sh, from, ENTRY);
        if !masks.iter().any(|v| v & 1 == 1) {
            problems.push(format!(
                "try {t}: no masking store to the vector control ({masks:x?})"
            ));
        }
        let from = sh.writes.lock().unwrap().len();
        if let Err(e) = std::fs::write(path.join("unmask_vec"), ENTRY.to_string()) {
            problems.push(format!("try {t}: unmask_vec: {e}"));
            break;
        }
        want[ENTRY as usize] += 1;
        if !wait_counts(path, &want) {
            problems.push(format!("try {t}: not delivered on unmask"));
            break;
        }
        match read_u64(&path.join("unmask_delay_ns")) {
            Some(d) if d > 0 => delays.push(d),
            d => problems.push(format!("try {t}: unmask_delay_ns {d:?}")),
        }
        if pba_bit(bar0, ENTRY) {
            problems.push(format!("try {t}: PBA bit still set after delivery"));
        }
        // The drain thread may not have taken the store yet.
        sysfs::wait_until(Duration::from_secs(1), || {
            ctrl_writes(sh, from, ENTRY).iter().any(|v| v & 1 == 0)
        });
        let unmasks = ctrl_writes(sh, from, ENTRY);
        if !unmasks.iter().any(|v| v & 1 == 0) {
            problems.push(format!(
                "try {t}: no unmasking store to the vector control ({unmasks:x?})"
            ));
        }
    }
    r.check(
        problems.is_empty(),
        format!("{TRIES} mask/inject/unmask rounds: held while masked, PBA set, one delivery on unmask, the stores seen: {problems:?}"),
    );
    r.check(
        sysfs::irq_counts_steady(path, &want),
        format!("nothing delivered twice ({:?})", testdrv_irqs(path)),
    );
    delays.sort_unstable();
    if delays.is_empty() {
        r.check(false, "delays were measured");
        return;
    }
    let median = delays[delays.len() / 2];
    let p90 = delays[delays.len() * 9 / 10];
    let max = *delays.last().unwrap();
    println!(
        "MEASURE: trap-msix unmask-to-delivery over {} tries: median {} us, p90 {} us, max {} us",
        delays.len(),
        median / 1000,
        p90 / 1000,
        max / 1000
    );
    r.check(
        delays.len() == TRIES && median < MEDIAN_LIMIT_NS,
        format!(
            "the held entry is delivered on the trapped unmask store, not by the 5 ms poll: \
             median {median} ns < {MEDIAN_LIMIT_NS} ns ({} samples: {delays:?})",
            delays.len()
        ),
    );
    let s = TrapStats::read(path).unwrap_or_default();
    r.check(
        s.undecodable == 0 && s.untrapped == 0 && s.read_timeouts == 0,
        format!("no undecodable access, untrapped mapping or timeout ({s:?})"),
    );
}
