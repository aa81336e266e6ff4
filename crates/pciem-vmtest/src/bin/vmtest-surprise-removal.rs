//! Surprise removal (`PCIEM_IOCTL_SURPRISE_REMOVE`) with a driver's I/O in
//! flight.
//!
//! `vmtest-surprise-removal PROTOPCIEM_KO PROTOPCIEM_BIN`. The trap test
//! device (1f0c:7e56, `pciem_trapdrv.ko`) is modelled by this binary
//! re-executed as `vmtest-surprise-removal model TIMEOUT_US`, which owns
//! the `/dev/pciem` files, answers model reads below 0x100 with
//! `ANSWER | offset`, never answers [`DEAD`], counts the driver's stores
//! and takes commands on stdin (`pin CPU`, `remove`, `after`, `writes`).
//!
//! Checked, each step able to fail:
//! 1. A model-answered read of [`DEAD`] waits (1 s read timeout) while the
//!    model is asked to remove the device: the read completes all-ones
//!    at once, not by timing out, the driver's remove() runs, the device
//!    leaves the bus; afterwards the model's interrupts and DMA fail with
//!    ENODEV and a second removal with EALREADY; the device's files close
//!    cleanly (no live device left).
//! 2. A `loop` of read-increment-store on plain BAR memory is running
//!    when the device is removed: while the removal waits for the command
//!    to finish, configuration reads of the device return all-ones; the
//!    loop ends on the all-ones value (its last store is 0xffffffff + 1 =
//!    0) and the stores after the removal never reached the model.
//! 3. ProtoPCIem run with `--surprise-remove-at-command 2`: the first ADD
//!    works, the second is in flight when the card vanishes; it fails with
//!    an errno (no hang), the card leaves the bus, the driver's open file
//!    answers ENODEV, protopciem.ko unloads, the device process exits
//!    cleanly on SIGTERM saying the card was removed mid-command.
//!
//! Then the kernel log has no BUG/WARNING/Oops line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use pciem_abi::{
    PCIEM_EVENT_FLAG_POSTED, PCIEM_EVENT_MMIO_READ, PCIEM_EVENT_MMIO_WRITE, PCIEM_EVENT_RESET,
    PCIEM_RESET_REINSERT, PCIEM_TRAP_READ_MODEL,
};
use pciem_vmtest::device::ioctl_at;
use pciem_vmtest::klog;
use pciem_vmtest::model_process::CommandInput;
use pciem_vmtest::model_process::ModelProcess;
use pciem_vmtest::protocard::{errno_of, signal, start_device, Card, DEVICE, VENDOR};
use pciem_vmtest::sysfs::{self, wait_until};
use pciem_vmtest::trapdrv::{pin_to_cpu, TrapDrv};
use pciem_vmtest::{Dev, Report, TEST_DEVICE_TRAP, TEST_VENDOR, TRAPDRV};
use protopciem::uapi::{protopciem_compute, PROTOPCIEM_IOCTL_ADD};

/// A register the model never answers.
const DEAD: u64 = 0x110;
/// Plain BAR memory: stores are events, loads read the backing.
const PLAIN: u64 = 0x400;
/// What the model answers to a read of offset `o` below 0x100.
const ANSWER: u64 = 0xC0DE_0000;
const LAST_RESULT: &str = "/sys/module/pciem_trapdrv/parameters/last_result";
const LIVE: &str = "/sys/module/pciem/parameters/live_devices";
/// Iterations of the read-increment-store loop of step 2.
/// (20 000 took under 300 ms under TCG: the removal must come while
/// most are still to run, and leave time to read config space.)
const LOOPS: u64 = 500_000;
/// The read timeout of step 1 (the module's maximum).
const LONG_TIMEOUT_US: u32 = 1_000_000;

// ---- the model (child process) -------------------------------------------

fn model_main(timeout_us: u32, port: bool) -> ! {
    let code = match model(timeout_us, port) {
        Ok(()) => 0,
        Err(e) => {
            println!("ERR {e}");
            1
        }
    };
    std::process::exit(code)
}

fn model(timeout_us: u32, port: bool) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // Any CPU until told otherwise: START's probe read spins on a kernel
    // worker on either CPU, and must find the model on the other.
    allow_all_cpus()?;
    let dev = Dev::open()?;
    let efd = dev.attach_eventfd()?;
    dev.describe_trap_device()?;
    dev.add_trap_range(0, PCIEM_TRAP_READ_MODEL, 0, 0x100)?;
    dev.add_trap_range(0, PCIEM_TRAP_READ_MODEL, DEAD, 4)?;
    dev.set_read_timeout(timeout_us)?;
    if port {
        dev.set_root_port()?;
    }
    let early = errno(dev.surprise_remove());
    let inst = dev.register()?;
    let ring = dev.map_ring()?;
    let resp = inst.map_responses()?;
    dev.start()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "EARLY {early}")?;
    writeln!(out, "OK registered")?;
    out.flush()?;
    let mut writes = 0u64;
    let mut resets = 0u64;
    let mut input = CommandInput::default();
    loop {
        while let Some(ev) = ring.pop() {
            if ev.r#type == PCIEM_EVENT_RESET && ev.data == PCIEM_RESET_REINSERT {
                resets += 1;
            }
            if ev.r#type == PCIEM_EVENT_MMIO_READ
                && ev.flags & PCIEM_EVENT_FLAG_POSTED == 0
                && ev.offset < 0x100
            {
                resp.answer(ev.id, ANSWER | ev.offset);
            }
            if ev.r#type == PCIEM_EVENT_MMIO_WRITE {
                writes += 1;
            }
        }
        let Some(cmds) = input.wait(efd.as_raw_fd())? else {
            return Ok(()); // the scenario is done with the model
        };
        for cmd in cmds {
            if cmd == "resets" {
                writeln!(out, "RESETS {resets}")?;
                out.flush()?;
                continue;
            }
            writeln!(out, "{}", command(&dev, &cmd, writes))?;
            out.flush()?;
        }
    }
}

/// Allows the calling thread every CPU.
fn allow_all_cpus() -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and
    // sched_setaffinity only touch the set we pass.
    unsafe {
        let mut set: libc::cpu_set_t = core::mem::zeroed();
        for cpu in 0..libc::CPU_SETSIZE as usize {
            libc::CPU_SET(cpu, &mut set);
        }
        if libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn errno(r: std::io::Result<()>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

fn command(dev: &Dev, cmd: &str, writes: u64) -> String {
    let mut it = cmd.split_whitespace();
    match (it.next(), it.next()) {
        (Some("pin"), Some(cpu)) => match cpu.parse().map(pin_to_cpu) {
            Ok(Ok(())) => format!("OK {cmd}"),
            _ => format!("ERR {cmd}"),
        },
        (Some("remove"), None) => format!("REMOVE {}", errno(dev.surprise_remove())),
        (Some("reinsert"), None) => format!("REINSERT {}", errno(dev.reinsert())),
        (Some("unpin"), None) => match allow_all_cpus() {
            Ok(()) => format!("OK {cmd}"),
            Err(_) => format!("ERR {cmd}"),
        },
        (Some("link"), None) => {
            // After a reinsertion: the link checks pass again (whatever
            // the driver enabled decides the rest).
            let irq = errno(dev.inject_msi(0));
            let mut buf = [0u8; 8];
            let dma = errno(dev.dma_read(0x1000, &mut buf));
            format!("LINK {irq} {dma}")
        }
        (Some("badreinsert"), None) => {
            let raw = |arg: *const pciem_abi::pciem_reinsert| {
                errno(ioctl_at(dev.raw(), pciem_abi::PCIEM_IOCTL_REINSERT, arg as usize).map(drop))
            };
            let flags = pciem_abi::pciem_reinsert {
                flags: 1,
                reserved: 0,
            };
            format!("BADREINSERT {} {}", raw(&flags), raw(core::ptr::null()))
        }
        (Some("after"), None) => {
            let irq = errno(dev.inject_msi(0));
            let mut buf = [0u8; 8];
            let dma = errno(dev.dma_read(0x1000, &mut buf));
            let again = errno(dev.surprise_remove());
            format!("AFTER {irq} {dma} {again}")
        }
        (Some("writes"), None) => format!("WRITES {writes}"),
        (Some("bad"), None) => {
            let raw = |arg: *const pciem_abi::pciem_surprise_remove| {
                errno(
                    ioctl_at(
                        dev.raw(),
                        pciem_abi::PCIEM_IOCTL_SURPRISE_REMOVE,
                        arg as usize,
                    )
                    .map(drop),
                )
            };
            let flags = pciem_abi::pciem_surprise_remove {
                flags: 1,
                reserved: 0,
            };
            let reserved = pciem_abi::pciem_surprise_remove {
                flags: 0,
                reserved: 1,
            };
            format!(
                "BAD {} {} {}",
                raw(&flags),
                raw(&reserved),
                raw(core::ptr::null())
            )
        }
        _ => format!("ERR unknown command {cmd}"),
    }
}

// ---- the scenario's side -------------------------------------------------

fn live_devices() -> Option<u64> {
    sysfs::read_trim(Path::new(LIVE))
        .ok()
        .and_then(|s| s.parse().ok())
}

fn last_result() -> Option<u64> {
    sysfs::read_hex(Path::new(LAST_RESULT))
}

fn removed_lines() -> usize {
    let (_, log) = sysfs::run("dmesg", &[]);
    log.lines()
        .filter(|l| l.contains("pciem_trapdrv") && l.contains("removed"))
        .count()
}

/// Spawns a model, waits for pciem_trapdrv to bind, pins the model to CPU
/// 1 (the driver's side runs on CPU 0: a waited read spins there with
/// interrupts off, and the removal request must still get through).
fn bound_model(r: &mut Report, timeout_us: u32, port: bool) -> Option<(ModelProcess, PathBuf)> {
    let mut m = r.step(
        "spawn the model",
        ModelProcess::spawn_self(&[&timeout_us.to_string(), if port { "port" } else { "bare" }]),
    )?;
    let early = m.expect("EARLY");
    r.check(
        early.as_deref() == Some(&format!("EARLY {}", libc::EINVAL)),
        format!("SURPRISE_REMOVE before REGISTER: EINVAL ({early:?})"),
    );
    if !r.check(m.expect("OK registered").is_some(), "the model registered") {
        let _ = m.kid.kill();
        return None;
    }
    let dev = sysfs::wait_device(TEST_VENDOR, TEST_DEVICE_TRAP, Duration::from_secs(5));
    // The driver link appears before probe() runs, its attributes after.
    let bound = dev.as_ref().is_some_and(|d| {
        wait_until(Duration::from_secs(10), || {
            sysfs::driver_of(d).as_deref() == Some(TRAPDRV) && d.join("cmd").exists()
        })
    });
    if !r.check(bound, "pciem_trapdrv bound to the trap device") {
        let _ = m.kid.kill();
        return None;
    }
    let dev = dev?;
    r.check(m.ask("pin 1", "OK").is_some(), "the model moved to CPU 1");
    Some((m, dev))
}

/// Step 1: a waited read in flight.
fn read_in_flight(r: &mut Report) {
    println!("--- a waited read in flight");
    let from = klog::now();
    let live0 = live_devices();
    let removes0 = removed_lines();
    let Some((mut m, dev)) = bound_model(r, LONG_TIMEOUT_US, false) else {
        return;
    };
    let td = TrapDrv::new(&dev);
    r.check(
        td.probe_value() == Some(ANSWER),
        format!("probe read the model's answer ({:?})", td.probe_value()),
    );
    r.check(
        sysfs::config_read(&dev, 0, 2) == Some(u32::from(TEST_VENDOR)),
        "the vendor ID reads 1f0c before the removal",
    );
    let bad = m.ask("bad", "BAD");
    r.check(
        bad.as_deref()
            == Some(&format!("BAD {} {} {}", libc::EINVAL, libc::EINVAL, libc::EFAULT)),
        format!("SURPRISE_REMOVE with flags, with reserved, with a NULL argument: EINVAL, EINVAL, EFAULT ({bad:?})"),
    );
    r.check(
        sysfs::driver_of(&dev).as_deref() == Some(TRAPDRV),
        "and the device is still there, bound",
    );
    let path = dev.clone();
    let reader = std::thread::spawn(move || {
        let _ = pin_to_cpu(0);
        let t0 = Instant::now();
        let res = TrapDrv::new(&path).cmd_only(&format!("rl {DEAD:#x}"));
        (res.is_ok(), t0.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    let asked = Instant::now();
    let reply = m.ask("remove", "REMOVE");
    r.check(
        reply.as_deref() == Some("REMOVE 0"),
        format!("SURPRISE_REMOVE succeeded ({reply:?})"),
    );
    let (ok, took) = reader.join().unwrap_or((false, Duration::ZERO));
    let since = asked.elapsed();
    r.check(
        ok && since < Duration::from_millis(500),
        format!(
            "the waited read ended {took:?} after it began, {since:?} after the removal request (read timeout 1 s)"
        ),
    );
    // Only this step's lines: earlier scenarios time reads out on purpose.
    let log = klog::since(from).join("\n");
    r.check(
        !log.contains("did not answer"),
        "it did not end in a read timeout (no timeout line in the kernel log)",
    );
    r.check(
        last_result() == Some(0xffff_ffff),
        format!("it read all-ones ({:x?})", last_result()),
    );
    r.check(
        wait_until(Duration::from_secs(10), || !dev.exists()),
        "the device left the bus",
    );
    r.check(
        wait_until(Duration::from_secs(5), || removed_lines() == removes0 + 1),
        "the driver's remove() ran once",
    );
    let reply = m.ask("after", "AFTER");
    r.check(
        reply.as_deref()
            == Some(&format!(
                "AFTER {} {} {}",
                libc::ENODEV,
                libc::ENODEV,
                libc::EALREADY
            )),
        format!("after removal: INJECT_IRQ and DMA ENODEV, a second removal EALREADY ({reply:?})"),
    );
    reinserted(r, &mut m, removes0 + 1, false);
    r.check(m.finish(), "the model exited cleanly");
    r.check(
        wait_until(Duration::from_secs(5), || live_devices() == live0),
        format!("no device left alive ({:?})", live_devices()),
    );
}

/// After a surprise removal: REINSERT brings the device back, the driver
/// probes it as new hardware and it works; it can be removed again.
/// `removes` is the number of "removed" lines of pciem_trapdrv so far.
fn reinserted(r: &mut Report, m: &mut ModelProcess, removes: usize, port: bool) -> bool {
    println!("--- reinsertion{}", if port { " (pciehp)" } else { "" });
    let from = klog::now();
    let bad = m.ask("badreinsert", "BADREINSERT");
    r.check(
        bad.as_deref() == Some(&format!("BADREINSERT {} {}", libc::EINVAL, libc::EFAULT)),
        format!("REINSERT with flags, with a NULL argument: EINVAL, EFAULT ({bad:?})"),
    );
    // The new driver's probe reads the model from a worker on either CPU.
    r.check(
        m.ask("unpin", "OK").is_some(),
        "the model may run on any CPU",
    );
    let reply = m.ask("reinsert", "REINSERT");
    if !r.check(
        reply.as_deref() == Some("REINSERT 0"),
        format!("REINSERT succeeded ({reply:?})"),
    ) {
        return false;
    }
    let dev = sysfs::wait_device(TEST_VENDOR, TEST_DEVICE_TRAP, Duration::from_secs(10));
    let bound = dev.as_ref().is_some_and(|d| {
        wait_until(Duration::from_secs(10), || {
            sysfs::driver_of(d).as_deref() == Some(TRAPDRV) && d.join("cmd").exists()
        })
    });
    if !r.check(
        bound,
        "the device is back and pciem_trapdrv probed it again",
    ) {
        for l in klog::since(from) {
            println!("INFO: klog: {l}");
        }
        return false;
    }
    let Some(dev) = dev else { return false };
    let _ = m.ask("pin 1", "OK");
    let td = TrapDrv::new(&dev);
    r.check(
        td.probe_value() == Some(ANSWER),
        format!(
            "the new probe read the model's answer ({:x?})",
            td.probe_value()
        ),
    );
    r.check(
        sysfs::config_read(&dev, 0, 2) == Some(u32::from(TEST_VENDOR)),
        "the vendor ID reads 1f0c again",
    );
    // The driver's side on CPU 0: a model-answered read spins with
    // interrupts off, and the model is on CPU 1.
    let on_cpu0 = |line: String| {
        let path = dev.clone();
        std::thread::spawn(move || {
            let _ = pin_to_cpu(0);
            TrapDrv::new(&path).cmd(&line).ok()
        })
        .join()
        .ok()
        .flatten()
    };
    let v = on_cpu0("rl 0x10".into());
    r.check(
        v == Some(ANSWER | 0x10),
        format!("a model-answered read works ({v:x?})"),
    );
    let w0 = m.ask("writes", "WRITES");
    let st = on_cpu0(format!("wl {PLAIN:#x} 0x77"));
    let v = on_cpu0(format!("rl {PLAIN:#x}"));
    let w1 = m.ask("writes", "WRITES");
    let count = |w: &Option<String>| {
        w.as_deref()
            .and_then(|s| s.strip_prefix("WRITES "))
            .and_then(|n| n.parse::<u64>().ok())
    };
    r.check(
        st.is_some() && v == Some(0x77) && count(&w1) > count(&w0),
        format!(
            "a store reaches the model and reads back ({v:x?}, writes {:?} -> {:?})",
            count(&w0),
            count(&w1)
        ),
    );
    let resets = m.ask("resets", "RESETS");
    r.check(
        resets.as_deref() == Some("RESETS 1"),
        format!("the model got one RESET event of PCIEM_RESET_REINSERT ({resets:?})"),
    );
    let link = m.ask("link", "LINK");
    r.check(
        link.as_deref().is_some_and(|l| {
            l.strip_prefix("LINK ")
                .is_some_and(|e| e.split(' ').all(|x| x != libc::ENODEV.to_string()))
        }),
        format!("INJECT_IRQ and DMA are no longer refused with ENODEV ({link:?})"),
    );
    let again = m.ask("reinsert", "REINSERT");
    r.check(
        again.as_deref() == Some(&format!("REINSERT {}", libc::EALREADY)),
        format!("a second REINSERT: EALREADY ({again:?})"),
    );
    let log = klog::since(from);
    r.check(
        log.iter().any(|l| l.contains("reinsertion requested"))
            && log.iter().any(|l| l.contains("reinserted")),
        "the kernel log says the device was reinserted",
    );
    // And it can be removed again.
    let reply = m.ask("remove", "REMOVE");
    r.check(
        reply.as_deref() == Some("REMOVE 0"),
        format!("a second SURPRISE_REMOVE succeeded ({reply:?})"),
    );
    r.check(
        wait_until(Duration::from_secs(10), || !dev.exists()),
        "the device left the bus again",
    );
    r.check(
        wait_until(Duration::from_secs(5), || removed_lines() == removes + 1),
        "the new driver instance's remove() ran once",
    );
    true
}

/// Step 2: a loop of stores in flight; configuration reads while the
/// removal waits for it.
fn loop_in_flight(r: &mut Report) {
    println!("--- a store loop in flight");
    let removes0 = removed_lines();
    let Some((mut m, dev)) = bound_model(r, 1_000_000, false) else {
        return;
    };
    let path = dev.clone();
    let looper = std::thread::spawn(move || {
        let _ = pin_to_cpu(0);
        let r = TrapDrv::new(&path).cmd_only(&format!("loop {LOOPS} {PLAIN:#x}"));
        if let Err(e) = &r {
            println!("INFO: the loop command failed: {e}");
        }
        r.is_ok()
    });
    // Some stores in, most still to come.
    let t0 = Instant::now();
    let mut before = None;
    while t0.elapsed() < Duration::from_secs(10) {
        before = m.ask("writes", "WRITES");
        if before.as_deref().is_some_and(|l| l != "WRITES 0") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = pciem_vmtest::trapdrv::TrapStats::read(&dev);
    println!(
        "INFO: before the removal: {before:?}, loop running: {}, {stats:?}",
        !looper.is_finished()
    );
    let reply = m.ask("remove", "REMOVE");
    r.check(
        reply.as_deref() == Some("REMOVE 0"),
        format!("SURPRISE_REMOVE succeeded ({reply:?})"),
    );
    // The removal waits for the command (its sysfs file is in use):
    // meanwhile the device is still listed and its config reads all-ones.
    let mut seen = None;
    while dev.exists() && !looper.is_finished() {
        if let Some(v) = sysfs::config_read(&dev, 0, 4) {
            seen = Some(v);
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    r.check(
        seen == Some(0xffff_ffff),
        format!("config reads all-ones while the removal waits ({seen:x?})"),
    );
    let ok = looper.join().unwrap_or(false);
    r.check(
        ok && last_result() == Some(0),
        format!(
            "the loop ended on all-ones (its last store 0xffffffff + 1 = 0: {:x?})",
            last_result()
        ),
    );
    let after = m.ask("writes", "WRITES");
    let count = |s: &Option<String>| {
        s.as_deref()
            .and_then(|l| l.strip_prefix("WRITES "))
            .and_then(|n| n.parse::<u64>().ok())
    };
    let (b, a) = (count(&before), count(&after));
    r.check(
        matches!((b, a), (Some(b), Some(a)) if b > 0 && a >= b && a < LOOPS),
        format!("the model saw the stores before the removal only ({b:?} at the request, {a:?} in all, of {LOOPS})"),
    );
    r.check(
        wait_until(Duration::from_secs(10), || !dev.exists()),
        "the device left the bus",
    );
    r.check(
        wait_until(Duration::from_secs(5), || removed_lines() == removes0 + 1),
        "the driver's remove() ran once",
    );
    r.check(m.finish(), "the model exited cleanly");
}

/// Step 4: below a virtual root port, pciehp does the removal.
fn below_root_port(r: &mut Report) {
    println!("--- below a root port: pciehp");
    let from = klog::now();
    let removes0 = removed_lines();
    let live0 = live_devices();
    let Some((mut m, dev)) = bound_model(r, LONG_TIMEOUT_US, true) else {
        return;
    };
    // /sys/bus/pci/devices/X links into the device tree, where the
    // device's directory sits inside its bridge's.
    let port = std::fs::canonicalize(&dev)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let port_name = sysfs::pci_name(&port);
    println!("INFO: device {} below {port_name}", sysfs::pci_name(&dev));
    r.check(
        sysfs::pci_name(&dev).ends_with(":01:00.0") && port_name.ends_with(":00:00.0"),
        "the device is 01:00.0, below the port at 00:00.0",
    );
    r.check(
        sysfs::driver_of(&port).as_deref() == Some("pcieport"),
        format!("portdrv bound to the port ({:?})", sysfs::driver_of(&port)),
    );
    let log = klog::since(from);
    for l in log
        .iter()
        .filter(|l| l.contains("pciehp") || l.contains("pcieport"))
    {
        println!("INFO: klog: {l}");
    }
    r.check(
        log.iter()
            .any(|l| l.contains("pciehp") && l.contains("HotPlug+")),
        "pciehp took the port's slot (its Slot # line)",
    );
    let path = dev.clone();
    let reader = std::thread::spawn(move || {
        let _ = pin_to_cpu(0);
        TrapDrv::new(&path)
            .cmd_only(&format!("rl {DEAD:#x}"))
            .is_ok()
    });
    std::thread::sleep(Duration::from_millis(300));
    let reply = m.ask("remove", "REMOVE");
    r.check(
        reply.as_deref() == Some("REMOVE 0"),
        format!("SURPRISE_REMOVE succeeded ({reply:?})"),
    );
    r.check(
        reader.join().unwrap_or(false) && last_result() == Some(0xffff_ffff),
        format!("the waited read ended all-ones ({:x?})", last_result()),
    );
    r.check(
        wait_until(Duration::from_secs(10), || !dev.exists()),
        "the device left the bus",
    );
    r.check(port.exists(), "the root port stays");
    r.check(
        wait_until(Duration::from_secs(5), || removed_lines() == removes0 + 1),
        "the driver's remove() ran once",
    );
    let log = klog::since(from);
    for l in log.iter().filter(|l| l.contains("pciehp")) {
        println!("INFO: klog: {l}");
    }
    r.check(
        log.iter()
            .any(|l| l.contains("pciehp") && l.contains("Link Down"))
            && log
                .iter()
                .any(|l| l.contains("pciehp") && l.contains("Card not present")),
        "pciehp saw the link go down and the card go away (its own log lines)",
    );
    let from = klog::now();
    if reinserted(r, &mut m, removes0 + 1, true) {
        let log = klog::since(from);
        for l in log
            .iter()
            .filter(|l| l.contains("pciehp") || l.contains("reinsert"))
        {
            println!("INFO: klog: {l}");
        }
        r.check(
            log.iter()
                .any(|l| l.contains("pciehp") && l.contains("Card present"))
                && log
                    .iter()
                    .any(|l| l.contains("pciehp") && l.contains("Link Up")),
            "pciehp saw the card come back and the link come up (its own log lines)",
        );
        r.check(
            sysfs::pci_name(&dev).ends_with(":01:00.0"),
            "the device is back at 01:00.0 below the port",
        );
    }
    r.check(m.finish(), "the model exited cleanly");
    r.check(
        wait_until(Duration::from_secs(5), || live_devices() == live0),
        format!("no device left alive ({:?})", live_devices()),
    );
    r.check(!port.exists(), "the root port left with the device's files");
}

/// Step 3: ProtoPCIem removed mid-command.
fn protopciem_mid_command(r: &mut Report, ko: &str, bin: &str) {
    println!("--- ProtoPCIem mid-command");
    let from = klog::now();
    let (ok, out) = sysfs::run("insmod", &[ko, "probe_reset=1"]);
    if !r.check(ok, format!("insmod {ko} probe_reset=1 {out}")) {
        return;
    }
    let cmd: Vec<String> = [
        bin,
        "--backend",
        "chardev",
        "--mode",
        "trap",
        "--surprise-remove-at-command",
        "2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let Some(mut kid) = start_device(r, &cmd) else {
        return;
    };
    finish_protopciem(r, &mut kid);
    let st = kid.wait();
    r.check(
        matches!(&st, Ok(s) if s.success()),
        format!("the device process exited cleanly ({st:?})"),
    );
    // remove() frees the buffers nobody maps while still bound: the DMA
    // checker reports no leak at unbind and no free of an unknown buffer.
    let dma_reports: Vec<String> = klog::since(from)
        .into_iter()
        .filter(|l| l.contains("DMA leak") || l.contains("which is not mapped"))
        .collect();
    r.check(
        dma_reports.is_empty(),
        format!("the DMA checker has nothing to say of ProtoPCIem's removal: {dma_reports:?}"),
    );
}

fn finish_protopciem(r: &mut Report, kid: &mut Child) {
    let dev = sysfs::wait_device(VENDOR, DEVICE, Duration::from_secs(5));
    let bound = dev.as_ref().is_some_and(|d| {
        wait_until(Duration::from_secs(10), || {
            sysfs::driver_of(d).as_deref() == Some("protopciem")
        })
    });
    let card = if bound {
        wait_until(Duration::from_secs(5), || {
            Path::new(pciem_vmtest::protocard::DEV_PATH).exists()
        });
        Card::open().ok()
    } else {
        None
    };
    let (Some(dev), Some(card)) = (dev, card) else {
        r.check(false, "protopciem bound and /dev/protopciem open");
        signal(kid, libc::SIGTERM);
        return;
    };
    let first = card.compute(PROTOPCIEM_IOCTL_ADD, 20);
    r.check(
        matches!(first, Ok(c) if c.result == 40),
        format!("the first ADD works ({first:?})"),
    );
    let mut c = protopciem_compute {
        data: 9,
        ..Default::default()
    };
    let t0 = Instant::now();
    // SAFETY: `c` is a live protopciem_compute, the ADD argument, and the
    // card's fd is open.
    let ret = unsafe { libc::ioctl(card.raw(), PROTOPCIEM_IOCTL_ADD as libc::c_ulong, &mut c) };
    let res = errno_of(ret);
    let took = t0.elapsed();
    r.check(
        matches!(res, Err(e) if e == libc::ENODEV || e == libc::EIO || e == libc::ETIMEDOUT)
            && took < Duration::from_secs(10),
        format!("the ADD in flight at the removal fails ({res:?}) after {took:?}"),
    );
    r.check(
        wait_until(Duration::from_secs(10), || !dev.exists()),
        "the card left the bus",
    );
    r.check(
        card.compute(PROTOPCIEM_IOCTL_ADD, 1).err() == Some(libc::ENODEV),
        "the open file answers ENODEV",
    );
    drop(card);
    let (ok, out) = sysfs::run("rmmod", &["protopciem"]);
    r.check(ok, format!("rmmod protopciem {out}"));
    r.check(signal(kid, libc::SIGTERM), "SIGTERM the device process");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("model") {
        let us = args
            .get(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(1_000_000);
        model_main(us, args.get(2).map(String::as_str) == Some("port"));
    }
    let mut r = Report::new("surprise-removal");
    let [ko, bin] = args.as_slice() else {
        r.check(
            false,
            "usage: vmtest-surprise-removal PROTOPCIEM_KO PROTOPCIEM_BIN",
        );
        r.finish()
    };
    r.check(
        sysfs::modules_loaded(),
        "pciem.ko and the test drivers are loaded",
    );
    // The driver's side waits on CPU 0 with interrupts off; this thread
    // (its timers) and the model stay on CPU 1.
    let _ = pin_to_cpu(1);
    read_in_flight(&mut r);
    loop_in_flight(&mut r);
    below_root_port(&mut r);
    // ProtoPCIem's probe reads its card from a worker on either CPU: its
    // device process must be free to run on the other.
    let _ = allow_all_cpus();
    protopciem_mid_command(&mut r, ko, bin);
    let (_, log) = sysfs::run("dmesg", &[]);
    for l in log
        .lines()
        .filter(|l| l.contains("surprise removal") || l.contains("removed ("))
    {
        println!("INFO: klog: {l}");
    }
    r.check_klog_clean();
    r.finish()
}
