//! A guest booted without `memmap=` runs a trapped device end to end.
//!
//! Runs in the second boot of `cargo xtask vm-test` (scenario lines
//! prefixed `nomemmap`): no carve-out on the kernel command line, pciem.ko
//! loaded without `phys_region=`. A device whose only BAR is trapped and
//! 64-bit registers anyway: its BAR is backed by ordinary pages and
//! addressed in free address space above 4 GiB. `pciem_trapdrv` binds after
//! START, its probe read is answered by the model, a store reaches the
//! model and the backing, a model-answered register reads the model's
//! value. A device with a directly mapped BAR is refused with ENOSPC and a
//! reason. Closing the files removes the device and its window.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pciem_abi::{
    PCIEM_BAR_MEM_TYPE_64, PCIEM_BAR_MODE_TRAP, PCIEM_EVENT_FLAG_POSTED, PCIEM_EVENT_MMIO_READ,
    PCIEM_EVENT_MMIO_WRITE, PCIEM_TRAP_READ_MODEL,
};
use pciem_vmtest::sysfs::{self, run};
use pciem_vmtest::trapdrv::TrapDrv;
use pciem_vmtest::{Dev, MappedBar, Report, TEST_DEVICE_TRAP, TEST_VENDOR};

/// The model-answered register and what the model answers there.
const MODEL_REG: u64 = 0x0;
const MODEL_VALUE: u64 = 0x600d_cafe;
/// A plain register: stored and reported.
const PLAIN_REG: u64 = 0x40;

fn iomem_has(name: &str) -> bool {
    std::fs::read_to_string("/proc/iomem").is_ok_and(|s| s.contains(name))
}

/// The start of the `pciem trap window` line of /proc/iomem.
fn trap_window_start() -> Option<u64> {
    let iomem = std::fs::read_to_string("/proc/iomem").ok()?;
    let line = iomem.lines().find(|l| l.ends_with(": pciem trap window"))?;
    let (lo, _) = line.trim().split_once('-')?;
    u64::from_str_radix(lo, 16).ok()
}

/// 1f0c:7e56 with one 16 KiB 64-bit BAR0, trapped or directly mapped.
fn describe(dev: &Dev, trapped: bool) -> std::io::Result<()> {
    dev.create()?;
    dev.add_bar(0, 16 << 10, PCIEM_BAR_MEM_TYPE_64)?;
    dev.set_identity(TEST_VENDOR, TEST_DEVICE_TRAP, 0x0b_40_00)?;
    if trapped {
        dev.set_bar_mode(0, PCIEM_BAR_MODE_TRAP)?;
    }
    Ok(())
}

fn main() {
    let mut r = Report::new("trap-nomemmap");
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    r.check(
        !cmdline.contains("memmap="),
        format!("the guest booted without memmap= ({})", cmdline.trim()),
    );
    r.check(
        std::fs::read_to_string("/sys/module/pciem/parameters/phys_region")
            .is_ok_and(|s| s.trim().is_empty() || s.trim() == "(null)"),
        "pciem.ko is loaded without phys_region=",
    );
    let (_, log) = run("dmesg", &[]);
    r.check(
        log.contains("no BAR pool (phys_region= not set)"),
        "pciem.ko said it has no BAR pool",
    );

    // A directly mapped BAR needs the pool: refused, with a reason.
    if let Some(dev) = r.step("open /dev/pciem", Dev::open()) {
        r.step("describe a watch-mode device", describe(&dev, false));
        let err = dev.register().err().and_then(|e| e.raw_os_error());
        r.check(
            err == Some(libc::ENOSPC),
            format!("REGISTER of a directly mapped BAR fails with ENOSPC (got {err:?})"),
        );
        let (_, log) = run("dmesg", &[]);
        r.check(
            log.contains("needs the BAR pool, and pciem.ko was loaded without phys_region="),
            "the log names the missing pool",
        );
    }

    let Some(dev) = r.step("open /dev/pciem", Dev::open()) else {
        r.finish()
    };
    r.step(
        "describe 1f0c:7e56 with a 64-bit trapped BAR0",
        describe(&dev, true),
    );
    r.step(
        "BAR0+0x0 is answered by the model",
        dev.add_trap_range(0, PCIEM_TRAP_READ_MODEL, MODEL_REG, 4),
    );
    // Generous: TCG on a loaded host can stall a vCPU for milliseconds,
    // and this scenario is about addresses and backing, not timing.
    r.step("read timeout 1 s", dev.set_read_timeout(1_000_000));
    let Some(inst) = r.step("REGISTER", dev.register()) else {
        r.finish()
    };
    let window = trap_window_start();
    r.check(
        window.is_some_and(|a| a >= 1 << 32),
        format!("/proc/iomem has a pciem trap window above 4 GiB ({window:#x?})"),
    );
    let info = dev.bar_info(0).ok();
    r.check(
        info.is_some_and(|i| Some(i.bus_addr) == window && i.size == 16 << 10),
        format!(
            "BAR0 lies at the window's start ({:#x?})",
            info.map(|i| i.bus_addr)
        ),
    );
    let Some(bar) = r.step("mmap BAR0", inst.map_bar(0, 16 << 10)) else {
        r.finish()
    };
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        // The model: answer waited reads, collect stores.
        let model = s.spawn(|| {
            let (Ok(ring), Ok(resp)) = (dev.map_ring(), inst.map_responses()) else {
                return (0, Vec::new());
            };
            let mut reads = 0u32;
            let mut stores = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match ring.pop() {
                    Some(ev)
                        if ev.r#type == PCIEM_EVENT_MMIO_READ
                            && ev.flags & PCIEM_EVENT_FLAG_POSTED == 0 =>
                    {
                        reads += 1;
                        resp.answer(ev.id, MODEL_VALUE + u64::from(reads));
                    }
                    Some(ev) if ev.r#type == PCIEM_EVENT_MMIO_WRITE => {
                        stores.push((ev.offset, ev.data));
                    }
                    Some(_) => {}
                    None => std::thread::yield_now(),
                }
            }
            (reads, stores)
        });
        drive(&mut r, &dev, &bar, &stop);
        stop.store(true, Ordering::Relaxed);
        let (reads, stores) = model.join().unwrap_or_default();
        r.check(reads == 2, format!("the model answered 2 reads ({reads})"));
        r.check(
            stores.contains(&(PLAIN_REG, 0x1234_5678)),
            format!("the store reached the model as an event ({stores:x?})"),
        );
    });

    drop(bar);
    drop(inst);
    drop(dev);
    let gone = sysfs::wait_until(Duration::from_secs(5), || {
        sysfs::find_devices(TEST_VENDOR, TEST_DEVICE_TRAP).is_empty()
    });
    r.check(gone, "closing the files removed the device");
    r.check(
        !iomem_has("pciem trap window"),
        "the trap window left /proc/iomem",
    );
    r.finish()
}

/// The driver's side, while the model thread runs.
fn drive(r: &mut Report, dev: &Dev, bar: &MappedBar, stop: &AtomicBool) {
    r.step("START", dev.start());
    let path = sysfs::wait_device(TEST_VENDOR, TEST_DEVICE_TRAP, Duration::from_secs(5));
    let Some(path) = path else {
        r.check(false, "the device is on the bus");
        stop.store(true, Ordering::Relaxed);
        return;
    };
    let drv = TrapDrv::new(&path);
    let deadline = Instant::now() + Duration::from_secs(5);
    while drv.probe_value().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    r.check(
        drv.probe_value() == Some(MODEL_VALUE + 1),
        format!(
            "pciem_trapdrv's probe read BAR0+0x0 = the model's answer ({:#x?})",
            drv.probe_value()
        ),
    );
    let v = drv.cmd(&format!("rl {MODEL_REG:#x}")).ok();
    r.check(
        v == Some(MODEL_VALUE + 2),
        format!("readl of the model register answered by the model ({v:#x?})"),
    );
    r.step(
        "writel BAR0+0x40",
        drv.cmd(&format!("wl {PLAIN_REG:#x} 0x12345678")),
    );
    r.check(
        bar.read32(PLAIN_REG as usize) == 0x1234_5678,
        "the store landed in the page-backed BAR the process maps",
    );
    bar.write32(PLAIN_REG as usize + 4, 0xabcd_0001);
    let v = drv.cmd(&format!("rl {:#x}", PLAIN_REG + 4)).ok();
    r.check(
        v == Some(0xabcd_0001),
        format!("the driver reads what the process wrote into the backing ({v:#x?})"),
    );
    std::thread::sleep(Duration::from_millis(50));
}
