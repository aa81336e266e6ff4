//! Scenario (b): a watched register and an MSI, end to end. For a driver
//! that maps BAR0 with pci_iomap (1f0c:7e50) and one that uses plain
//! ioremap (1f0c:7e51): the device process watches BAR0+0x0, the test
//! driver writes it, the process sees an MMIO_WRITE event carrying the
//! value (and its eventfd fires), injects MSI vector 0, and the driver's
//! interrupt count goes up. Device-side BAR writes are visible to the
//! driver's reads.

use std::os::fd::AsRawFd;
use std::time::Duration;

use pciem_abi::{PCIEM_EVENT_CONFIG_WRITE, PCIEM_EVENT_MMIO_WRITE, PCIEM_RING_SIZE};
use pciem_vmtest::sysfs::{self, testdrv_irqs, testdrv_read, testdrv_write, wait_until};
use pciem_vmtest::{Dev, Report, TESTDRV, TEST_DEVICE_IOMAP, TEST_DEVICE_IOREMAP, TEST_VENDOR};

fn eventfd_count(fd: i32) -> u64 {
    let mut v = 0u64;
    // SAFETY: reads 8 bytes into a live u64 from a non-blocking eventfd.
    let n = unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
    if n == 8 {
        v
    } else {
        0
    }
}

fn one(r: &mut Report, device: u16, how: &str, watch_early: bool) {
    println!(
        "--- device 1f0c:{device:04x} (driver maps with {how}; watch set {} REGISTER)",
        if watch_early { "before" } else { "after" }
    );
    let Some(dev) = r.step("open /dev/pciem", Dev::open()) else {
        return;
    };
    let Some(ring) = r.step("mmap the event ring", dev.map_ring()) else {
        return;
    };
    let Some(efd) = r.step("SET_EVENTFD", dev.attach_eventfd()) else {
        return;
    };
    if r.step("describe the device", dev.describe_test_device(device))
        .is_none()
    {
        return;
    }
    if watch_early {
        // The walkthrough's order: armed once the driver maps BAR0.
        r.step(
            "SET_WATCHPOINT BAR0+0x0 before REGISTER",
            dev.watch(0, 0, 4),
        );
    }
    let Some(inst) = r.step("REGISTER", dev.register()) else {
        return;
    };
    let Some(path) = sysfs::wait_device(TEST_VENDOR, device, Duration::from_secs(5)) else {
        r.check(false, "device visible in sysfs");
        return;
    };
    r.check(
        sysfs::driver_of(&path).as_deref() == Some(TESTDRV),
        format!("{TESTDRV} bound to {}", sysfs::pci_name(&path)),
    );
    let Some(bar0) = r.step("mmap BAR0", inst.map_bar(0, 4096)) else {
        return;
    };

    // The driver's config writes while probing arrived as events.
    let (ev, seen) = ring.wait_for(Duration::from_secs(2), |e| {
        e.r#type == PCIEM_EVENT_CONFIG_WRITE && e.offset == 4 && e.data & 0x2 != 0
    });
    r.check(
        ev.is_some(),
        format!(
            "a CONFIG_WRITE event shows the driver enabling memory decoding ({} events seen)",
            seen.len()
        ),
    );
    r.check(
        seen.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        "event sequence numbers are contiguous",
    );

    // Device -> driver: plain shared memory.
    bar0.write32(0x8, 0x1234_5678);
    r.check(
        testdrv_read(&path, 0x8).ok() == Some(0x1234_5678),
        "the driver reads what the device process wrote at BAR0+0x8",
    );

    // Driver -> device: the watched register.
    if !watch_early {
        r.step("SET_WATCHPOINT BAR0+0x0 width 4", dev.watch(0, 0, 4));
    }
    r.check(
        dev.watch(0, 0, 4).is_err(),
        "watching the same register twice is refused",
    );
    ring.drain();
    eventfd_count(efd.as_raw_fd());
    let value = 0xcafe_0000 | device as u32;
    r.step("driver writes BAR0+0x0", testdrv_write(&path, 0, value));
    let (ev, seen) = ring.wait_for(Duration::from_secs(5), |e| {
        e.r#type == PCIEM_EVENT_MMIO_WRITE
    });
    match ev {
        Some(e) => {
            r.check(
                e.bar == 0 && e.offset == 0 && e.size == 4 && e.data == value as u64,
                format!(
                    "MMIO_WRITE event carries bar 0, offset 0, size 4, value {value:#x}: {e:?}"
                ),
            );
        }
        None => {
            r.check(false, format!("an MMIO_WRITE event arrived (saw {seen:?})"));
        }
    }
    r.check(
        wait_until(Duration::from_secs(2), || {
            eventfd_count(efd.as_raw_fd()) > 0
        }),
        "the eventfd was signalled",
    );
    r.check(
        bar0.read32(0) == value,
        "the written value is in BAR memory",
    );
    r.step(
        "driver writes the unwatched BAR0+0x4",
        testdrv_write(&path, 4, 7),
    );
    let (ev, _) = ring.wait_for(Duration::from_millis(300), |e| {
        e.r#type == PCIEM_EVENT_MMIO_WRITE
    });
    r.check(ev.is_none(), "no event for an unwatched register");

    let before = testdrv_irqs(&path).first().copied().unwrap_or(0);
    r.step("INJECT_IRQ MSI vector 0", dev.inject_msi(0));
    r.check(
        wait_until(Duration::from_secs(5), || {
            testdrv_irqs(&path).first().copied().unwrap_or(0) == before + 1
        }),
        format!(
            "the driver's interrupt count went from {before} to {}",
            before + 1
        ),
    );
    r.check(
        dev.inject_msi(1).is_err(),
        "INJECT_IRQ of vector 1 (only 1 enabled) is refused",
    );
    r.check(ring.overflow() == 0, "no ring overflow");
    if device == TEST_DEVICE_IOMAP && !watch_early {
        two_cpus(r, &ring, &path);
        overflow(r, &ring, &path);
        rebind(r, &dev, &ring, &path);
    }
}

/// Unbinding the driver (iounmap) silences the watch; binding it again
/// (a new ioremap) re-arms it on the new mapping; MSI works again.
fn rebind(r: &mut Report, dev: &Dev, ring: &pciem_vmtest::Ring, path: &std::path::Path) {
    let name = sysfs::pci_name(path);
    let drv = std::path::Path::new("/sys/bus/pci/drivers").join(TESTDRV);
    r.step(
        "unbind the test driver",
        std::fs::write(drv.join("unbind"), &name),
    );
    r.check(sysfs::driver_of(path).is_none(), "the device has no driver");
    r.check(
        dev.inject_msi(0).is_err(),
        "INJECT_IRQ after the driver freed its vectors is refused",
    );
    r.step(
        "bind the test driver again",
        std::fs::write(drv.join("bind"), &name),
    );
    r.check(
        wait_until(Duration::from_secs(3), || {
            sysfs::driver_of(path).as_deref() == Some(TESTDRV)
        }),
        "the test driver is bound again",
    );
    // The watch is re-armed by a work item after the new ioremap.
    ring.drain();
    let mut got = false;
    for i in 0..20u32 {
        let _ = testdrv_write(path, 0, 0xb0b0_0000 | i);
        let (ev, _) = ring.wait_for(Duration::from_millis(100), |e| {
            e.r#type == PCIEM_EVENT_MMIO_WRITE && e.data == (0xb0b0_0000 | i) as u64
        });
        if ev.is_some() {
            got = true;
            break;
        }
    }
    r.check(got, "the watch fires on the new mapping after rebinding");
    r.step("INJECT_IRQ after rebinding", dev.inject_msi(0));
    r.check(
        wait_until(Duration::from_secs(3), || {
            testdrv_irqs(path).first().copied() == Some(1)
        }),
        "the rebound driver counts the MSI",
    );
}

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) -> bool {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { core::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE (the VM has 2 CPUs) and `set` is a
    // live cpu_set_t.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: passes a live cpu_set_t of the size given.
    unsafe { libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &set) == 0 }
}

/// Watched writes from two CPUs at once: every one becomes exactly one
/// event, in each writer's order, with contiguous sequence numbers.
fn two_cpus(r: &mut Report, ring: &pciem_vmtest::Ring, path: &std::path::Path) {
    const N: u32 = 200;
    ring.drain();
    let _ = std::fs::write(path.join("reg_offset"), "0");
    let writers: Vec<_> = (0..2u32)
        .map(|cpu| {
            let p = path.join("reg");
            std::thread::spawn(move || {
                let pinned = pin(cpu as usize);
                let mut ok = true;
                for i in 0..N {
                    ok &= std::fs::write(&p, format!("{:#x}", ((cpu + 1) << 28) | i)).is_ok();
                }
                pinned && ok
            })
        })
        .collect();
    let ok = writers.into_iter().all(|w| w.join().unwrap_or(false));
    r.check(
        ok,
        format!("two threads pinned to CPU 0 and 1 wrote {N} times each"),
    );
    let mut events = Vec::new();
    while let Some(e) = ring.pop() {
        events.push(e);
    }
    let per = |cpu: u64| -> Vec<u64> {
        events
            .iter()
            .filter(|e| e.data >> 28 == cpu + 1)
            .map(|e| e.data & 0xfff_ffff)
            .collect()
    };
    let (a, b) = (per(0), per(1));
    let want: Vec<u64> = (0..N as u64).collect();
    r.check(
        a == want && b == want && events.len() == 2 * N as usize,
        format!(
            "{} events: each writer's {N} values exactly once and in order",
            events.len()
        ),
    );
    r.check(
        events.windows(2).all(|w| w[1].seq == w[0].seq + 1) && ring.overflow() == 0,
        "contiguous sequence numbers, no overflow",
    );
}

/// Fills the ring past capacity with watched writes and checks that the
/// excess is counted and the sequence numbers show the gap.
fn overflow(r: &mut Report, ring: &pciem_vmtest::Ring, path: &std::path::Path) {
    ring.drain();
    let extra = 10;
    let total = PCIEM_RING_SIZE - 1 + extra;
    let mut ok = std::fs::write(path.join("reg_offset"), "0").is_ok();
    for i in 0..total {
        ok &= std::fs::write(path.join("reg"), format!("{i}")).is_ok();
    }
    r.check(
        ok,
        format!("the driver wrote the watched register {total} times"),
    );
    r.check(
        ring.overflow() == extra as u64,
        format!(
            "ring overflow counter is {extra} (read {})",
            ring.overflow()
        ),
    );
    let mut events = Vec::new();
    while let Some(e) = ring.pop() {
        events.push(e);
    }
    r.check(
        events.len() == PCIEM_RING_SIZE - 1
            && events.iter().enumerate().all(|(i, e)| e.data == i as u64)
            && events.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        format!(
            "the ring kept the first {} writes in order ({} events)",
            PCIEM_RING_SIZE - 1,
            events.len()
        ),
    );
    let last = events.last().map(|e| e.seq).unwrap_or(0);
    let _ = testdrv_write(path, 0, 0xfeed);
    let (ev, _) = ring.wait_for(Duration::from_secs(2), |e| e.data == 0xfeed);
    r.check(
        ev.is_some_and(|e| e.seq == last + extra as u64 + 1),
        format!("the next event's seq skips the {extra} lost ones"),
    );
}

fn main() {
    let mut r = Report::new("irq");
    r.check(
        sysfs::modules_loaded(),
        "pciem.ko and pciem_testdrv.ko are loaded",
    );
    one(&mut r, TEST_DEVICE_IOMAP, "pci_iomap", false);
    one(&mut r, TEST_DEVICE_IOREMAP, "ioremap", false);
    one(&mut r, TEST_DEVICE_IOMAP, "pci_iomap", true);
    r.finish()
}
