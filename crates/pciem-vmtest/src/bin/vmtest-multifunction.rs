//! Scenario: a multi-function device (ABI 6). One device process describes
//! functions 0, 1, 3 and 5 of one slot (2 and 4 are holes): 1f0c:7e50,
//! 1f0c:7e51 and 1f0c:7e50 again, each with its own BARs and MSI
//! (incremental description), and 1f0c:7e54 with INTx only (a pciem-core
//! `ConfigBuilder` image through SET_CONFIG_IMAGE). Linux enumerates all
//! four (sysfs, lspci, the Multi-Function bit of function 0),
//! pciem_testdrv binds to each; each function's BAR is its own, its config
//! writes and watched registers reach the ring tagged with its number, its
//! MSI (or INTx) reaches its own driver instance only. Function 1 is
//! unbound and bound again while the others keep working. Closing the
//! files removes all four; the kernel log stays clean.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pciem_abi::{
    pciem_event_function, PCIEM_EVENT_CONFIG_WRITE, PCIEM_EVENT_MMIO_WRITE, PCIEM_IRQ_FLAG_ASSERT,
    PCIEM_IRQ_FLAG_DEASSERT, PCIEM_IRQ_INTX, PCIEM_MMAP_FUNCTION_STRIDE,
};
use pciem_core::config::Bar;
use pciem_core::ConfigBuilder;
use pciem_vmtest::sysfs::{
    self, config_read, driver_of, find_devices, pci_name, testdrv_counter, testdrv_irqs,
    testdrv_read, testdrv_write, wait_until,
};
use pciem_vmtest::{
    klog, Dev, Report, TESTDRV, TEST_DEVICE_IOMAP, TEST_DEVICE_IOREMAP, TEST_VENDOR,
};

/// The INTx function's device ID and number.
const INTX_DEVICE: u16 = 0x7e54;
const INTX_FN: u32 = 5;

/// (function number, device ID) of the functions with MSI.
const FUNCTIONS: [(u32, u16); 3] = [
    (0, TEST_DEVICE_IOMAP),
    (1, TEST_DEVICE_IOREMAP),
    (3, TEST_DEVICE_IOMAP),
];

const DRV: &str = "/sys/bus/pci/drivers/pciem_testdrv";

fn describe(r: &mut Report, dev: &Dev) -> bool {
    for (f, id) in FUNCTIONS {
        if f != 0
            && r.step(format!("SET_FUNCTION {f}"), dev.set_function(f))
                .is_none()
        {
            return false;
        }
        if r.step(
            format!("describe function {f} as 1f0c:{id:04x}"),
            dev.describe_test_device(id),
        )
        .is_none()
        {
            return false;
        }
    }
    let space = ConfigBuilder::new(TEST_VENDOR, INTX_DEVICE)
        .class(0x0b, 0x40, 0x00)
        .bar(0, Bar::memory32(4096))
        .interrupt_pin(1)
        .build();
    let Some(space) = r.step("build function 5's image with ConfigBuilder", space) else {
        return false;
    };
    r.step(format!("SET_FUNCTION {INTX_FN}"), dev.set_function(INTX_FN))
        .is_some()
        && r.step(
            format!("SET_CONFIG_IMAGE of function {INTX_FN} (1f0c:{INTX_DEVICE:04x}, INTx)"),
            dev.set_image(space.image()),
        )
        .is_some()
}

/// The sysfs directories of our functions, by function number.
fn function_dirs() -> Vec<(u32, PathBuf)> {
    let mut v: Vec<(u32, PathBuf)> = [TEST_DEVICE_IOMAP, TEST_DEVICE_IOREMAP, INTX_DEVICE]
        .iter()
        .flat_map(|&id| find_devices(TEST_VENDOR, id))
        .filter_map(|p| {
            let name = pci_name(&p);
            let f = name.rsplit('.').next()?.parse().ok()?;
            Some((f, p))
        })
        .collect();
    v.sort();
    v
}

fn irq0(p: &Path) -> u64 {
    testdrv_irqs(p).first().copied().unwrap_or(0)
}

fn main() {
    let mut r = Report::new("multifunction");
    r.check(
        sysfs::modules_loaded(),
        "pciem.ko and pciem_testdrv.ko are loaded",
    );
    let mark = klog::now();
    let probes0 = testdrv_counter("probes").unwrap_or(0);
    let removes0 = testdrv_counter("removes").unwrap_or(0);
    let Some(dev) = r.step("open /dev/pciem", Dev::open()) else {
        r.finish()
    };
    let Some(ring) = r.step("mmap the event ring", dev.map_ring()) else {
        r.finish()
    };
    if !describe(&mut r, &dev) {
        r.finish()
    }
    // A watch on function 1's BAR0+0x20, set before REGISTER.
    r.step("SET_FUNCTION 1", dev.set_function(1));
    r.step("watch function 1's BAR0+0x20", dev.watch(0, 0x20, 4));
    let Some(inst) = r.step("REGISTER", dev.register()) else {
        r.finish()
    };

    let fns = function_dirs();
    let names: Vec<String> = fns.iter().map(|(_, p)| pci_name(p)).collect();
    println!("INFO: functions {names:?}");
    r.check(
        fns.iter().map(|(f, _)| *f).collect::<Vec<_>>() == vec![0, 1, 3, 5],
        format!("sysfs has functions 0, 1, 3 and 5, nothing at 2 and 4: {names:?}"),
    );
    if fns.len() != 4 {
        r.finish()
    }
    let slot = |n: &str| n.rsplit_once('.').map(|(s, _)| s.to_string());
    r.check(
        names.iter().all(|n| slot(n) == slot(&names[0])),
        "all four in one slot of one bus",
    );
    let hdr = config_read(&fns[0].1, 0x0e, 1).unwrap_or(0);
    r.check(
        hdr & 0x80 != 0,
        format!("function 0's header type has the Multi-Function bit ({hdr:#04x})"),
    );
    let (ok, lspci) = sysfs::run("lspci", &["-nn", "-d", "1f0c:"]);
    println!("INFO: lspci: {}", lspci.trim().replace('\n', " | "));
    r.check(
        ok && names.iter().all(|n| {
            let short = n.split_once(':').map(|(_, s)| s).unwrap_or(n);
            lspci.contains(short)
        }),
        "lspci lists all four functions",
    );
    for (f, p) in &fns {
        r.check(
            wait_until(Duration::from_secs(5), || {
                driver_of(p).as_deref() == Some(TESTDRV)
            }),
            format!("{TESTDRV} bound to function {f} ({})", pci_name(p)),
        );
    }
    r.check(
        testdrv_counter("probes") == Some(probes0 + 4),
        "the driver probed four times",
    );

    // Each function's BAR0 is its own memory.
    let maps: Vec<_> = fns
        .iter()
        .map(|(f, _)| inst.try_map((*f as u64 * PCIEM_MMAP_FUNCTION_STRIDE) as u32, 4096))
        .collect();
    if maps.iter().all(|m| m.is_ok()) {
        for (i, m) in maps.iter().enumerate() {
            m.as_ref().unwrap().write32(0xc, 0xf00d_0000 + i as u32);
        }
        let got: Vec<u32> = fns
            .iter()
            .map(|(_, p)| testdrv_read(p, 0xc).unwrap_or(0))
            .collect();
        r.check(
            got == [0xf00d_0000, 0xf00d_0001, 0xf00d_0002, 0xf00d_0003],
            format!("each driver instance reads its own function's BAR0: {got:x?}"),
        );
    } else {
        r.check(false, format!("map each function's BAR0: {maps:?}"));
    }
    r.check(
        inst.try_map(2 * PCIEM_MMAP_FUNCTION_STRIDE as u32, 4096)
            .err()
            .and_then(|e| e.raw_os_error())
            == Some(libc::ENXIO),
        "mapping a BAR of the hole at function 2: ENXIO",
    );

    // Config writes (the drivers' command-register writes at probe) came
    // from each function, tagged with its number.
    let (_, seen) = ring.wait_for(Duration::from_millis(500), |_| false);
    let mut cfg_fns: Vec<u32> = seen
        .iter()
        .filter(|e| e.r#type == PCIEM_EVENT_CONFIG_WRITE)
        .map(|e| pciem_event_function(e.flags))
        .collect();
    cfg_fns.sort();
    cfg_fns.dedup();
    r.check(
        cfg_fns == [0, 1, 3, 5],
        format!("CONFIG_WRITE events tagged with functions {cfg_fns:?}"),
    );

    // The watch is function 1's alone.
    let _ = testdrv_write(&fns[0].1, 0x20, 0x1111_0000);
    let _ = testdrv_write(&fns[1].1, 0x20, 0x2222_0001);
    let (ev, seen) = ring.wait_for(Duration::from_secs(3), |e| {
        e.r#type == PCIEM_EVENT_MMIO_WRITE
    });
    r.check(
        ev.is_some_and(|e| {
            e.data == 0x2222_0001 && e.offset == 0x20 && pciem_event_function(e.flags) == 1
        }),
        format!("function 1's watched store: one MMIO_WRITE tagged function 1 ({ev:?})"),
    );
    let others = seen
        .iter()
        .filter(|e| e.r#type == PCIEM_EVENT_MMIO_WRITE && e.data == 0x1111_0000)
        .count();
    r.check(
        others == 0,
        "function 0's store at the same offset: no event",
    );

    // Interrupts go to the selected function's driver instance.
    inject_each(&mut r, &dev, &fns, "bound");
    intx(&mut r, &dev, &fns);

    // Unbind function 1; the others keep working; bind it again.
    let n1 = pci_name(&fns[1].1);
    r.check(
        std::fs::write(format!("{DRV}/unbind"), &n1).is_ok()
            && wait_until(Duration::from_secs(3), || driver_of(&fns[1].1).is_none()),
        format!("unbind function 1 ({n1})"),
    );
    r.check(
        testdrv_counter("removes") == Some(removes0 + 1),
        "the driver's remove() ran once",
    );
    for i in [0usize, 2, 3] {
        let (f, p) = &fns[i];
        let _ = testdrv_write(p, 0x10, 0x5eed_0000 + *f);
        let mine = maps[i].as_ref().map(|m| m.read32(0x10)).unwrap_or(0);
        r.check(
            driver_of(p).as_deref() == Some(TESTDRV) && mine == 0x5eed_0000 + *f,
            format!("function {f} still bound and working with function 1 unbound"),
        );
    }
    if r.step("SET_FUNCTION 0", dev.set_function(0)).is_some() {
        let before = irq0(&fns[0].1);
        r.step("MSI on function 0", dev.inject_msi(0));
        r.check(
            wait_until(Duration::from_secs(2), || irq0(&fns[0].1) == before + 1),
            "function 0's interrupt arrives with function 1 unbound",
        );
    }
    if r.step("SET_FUNCTION 1", dev.set_function(1)).is_some() {
        r.check(
            dev.inject_msi(0).err().and_then(|e| e.raw_os_error()) == Some(libc::EIO),
            "MSI on the unbound function 1: EIO (its driver has no MSI enabled)",
        );
    }
    r.check(
        std::fs::write(format!("{DRV}/bind"), &n1).is_ok()
            && wait_until(Duration::from_secs(3), || {
                driver_of(&fns[1].1).as_deref() == Some(TESTDRV)
            }),
        format!("bind function 1 again ({n1})"),
    );
    if let Ok(m) = &maps[1] {
        m.write32(0x14, 0xabcd_0001);
        r.check(
            testdrv_read(&fns[1].1, 0x14).ok() == Some(0xabcd_0001),
            "function 1 works again after the rebind",
        );
    }
    inject_each(&mut r, &dev, &fns, "after the rebind");

    drop(maps);
    drop(ring);
    drop(inst);
    drop(dev);
    r.check(
        wait_until(Duration::from_secs(5), || function_dirs().is_empty()),
        "closing the files removed all four functions",
    );
    r.check(
        testdrv_counter("removes") == Some(removes0 + 5),
        "remove() ran for each function (and once for the unbind)",
    );
    let iomem = std::fs::read_to_string("/proc/iomem").unwrap_or_default();
    r.check(!iomem.contains("pciem window"), "every window is released");
    let live = sysfs::read_hex(Path::new("/sys/module/pciem/parameters/live_devices"));
    r.check(
        live == Some(0),
        format!("no device left (live_devices {live:?})"),
    );
    let bad: Vec<String> = klog::since(mark)
        .into_iter()
        .filter(|l| klog::BAD.iter().any(|b| l.contains(b)))
        .collect();
    r.check(bad.is_empty(), format!("kernel log clean {bad:?}"));
    r.finish()
}

/// An MSI on each function in turn: its driver instance counts it, the
/// others do not.
fn inject_each(r: &mut Report, dev: &Dev, fns: &[(u32, PathBuf)], when: &str) {
    for (f, _) in fns.iter().filter(|(f, _)| *f != INTX_FN) {
        let before: Vec<u64> = fns.iter().map(|(_, p)| irq0(p)).collect();
        if r.step(format!("SET_FUNCTION {f}"), dev.set_function(*f))
            .is_none()
            || r.step(format!("MSI on function {f} ({when})"), dev.inject_msi(0))
                .is_none()
        {
            continue;
        }
        let arrived = wait_until(Duration::from_secs(2), || {
            fns.iter()
                .zip(&before)
                .any(|((g, p), b)| g == f && irq0(p) == b + 1)
        });
        std::thread::sleep(Duration::from_millis(50));
        let after: Vec<u64> = fns.iter().map(|(_, p)| irq0(p)).collect();
        let only_mine = fns
            .iter()
            .zip(before.iter().zip(&after))
            .all(|((g, _), (b, a))| if g == f { *a == b + 1 } else { a == b });
        r.check(
            arrived && only_mine,
            format!("function {f}'s MSI reaches its driver instance only ({when}): {before:?} -> {after:?}"),
        );
    }
}

/// INTx on function 5: its handler runs (it acknowledges by setting
/// Interrupt Disable), no other function's count moves; deasserted again.
fn intx(r: &mut Report, dev: &Dev, fns: &[(u32, PathBuf)]) {
    let Some((_, p)) = fns.iter().find(|(f, _)| *f == INTX_FN) else {
        return;
    };
    let kind = sysfs::read_trim(&p.join("irq_kind")).unwrap_or_default();
    r.check(
        kind == "intx",
        format!("function {INTX_FN}'s driver uses INTx ({kind})"),
    );
    let before: Vec<u64> = fns.iter().map(|(_, q)| irq0(q)).collect();
    if r.step(format!("SET_FUNCTION {INTX_FN}"), dev.set_function(INTX_FN))
        .is_none()
    {
        return;
    }
    r.step(
        "INTx assert on function 5",
        dev.inject(PCIEM_IRQ_INTX, 0, PCIEM_IRQ_FLAG_ASSERT),
    );
    let i5 = fns.iter().position(|(f, _)| *f == INTX_FN).unwrap_or(0);
    let arrived = wait_until(Duration::from_secs(3), || irq0(p) == before[i5] + 1);
    std::thread::sleep(Duration::from_millis(100));
    let after: Vec<u64> = fns.iter().map(|(_, q)| irq0(q)).collect();
    let only_mine =
        before
            .iter()
            .zip(&after)
            .enumerate()
            .all(|(i, (b, a))| if i == i5 { *a == b + 1 } else { a == b });
    r.check(
        arrived && only_mine,
        format!("function 5's INTx runs its handler once, no other's: {before:?} -> {after:?}"),
    );
    r.step(
        "INTx deassert on function 5",
        dev.inject(PCIEM_IRQ_INTX, 0, PCIEM_IRQ_FLAG_DEASSERT),
    );
    r.check(
        config_read(p, 6, 2).is_some_and(|s| s & 0x8 == 0),
        "function 5's Interrupt Status clears on deassert",
    );
}
