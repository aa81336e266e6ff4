//! A model that cannot run while the driver's CPU waits for it: the read
//! ends in a counted, logged completion timeout, never a hang.
//!
//! A model-answered read spins on the faulting CPU with interrupts off.
//! When the device process can only run on that same CPU — pinned there,
//! or in a one-CPU guest (`cargo xtask vm-test` runs this scenario again
//! in a `-smp 1` boot, lines prefixed `onecpu`) — it cannot answer, and
//! every such read must complete all-ones after the device's read timeout.
//! With a second CPU free, the same read is answered.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use pciem_abi::{PCIEM_EVENT_FLAG_POSTED, PCIEM_EVENT_MMIO_READ, PCIEM_TRAP_READ_MODEL};
use pciem_vmtest::sysfs::{self, run};
use pciem_vmtest::trapdrv::{pin_to_cpu, TrapDrv, TrapStats};
use pciem_vmtest::{Dev, Report, TEST_DEVICE_TRAP, TEST_VENDOR};

/// The model-answered register and its value.
const REG: u64 = 0x8;
const VALUE: u64 = 0x5157_0001;
/// The device's read timeout.
const TIMEOUT_US: u32 = 20_000;
/// Reads made while the model cannot run.
const STALLED_READS: u64 = 5;

fn main() {
    let mut r = Report::new("trap-stall");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("INFO: {cpus} CPU(s) online");
    let Some(dev) = r.step("open /dev/pciem", Dev::open()) else {
        r.finish()
    };
    r.step(
        "describe 1f0c:7e56, BAR0 trapped",
        dev.describe_trap_device(),
    );
    r.step(
        "BAR0+0x0..0x10 answered by the model",
        dev.add_trap_range(0, PCIEM_TRAP_READ_MODEL, 0, 0x10),
    );
    r.step(
        format!("read timeout {TIMEOUT_US} us"),
        dev.set_read_timeout(TIMEOUT_US),
    );
    let Some(inst) = r.step("REGISTER", dev.register()) else {
        r.finish()
    };
    let stop = AtomicBool::new(false);
    let answered = AtomicU32::new(0);
    std::thread::scope(|s| {
        let model = s.spawn(|| {
            // The model lives on CPU 0 only.
            if pin_to_cpu(0).is_err() {
                return false;
            }
            let (Ok(ring), Ok(resp)) = (dev.map_ring(), inst.map_responses()) else {
                return false;
            };
            while !stop.load(Ordering::Relaxed) {
                match ring.pop() {
                    Some(ev)
                        if ev.r#type == PCIEM_EVENT_MMIO_READ
                            && ev.flags & PCIEM_EVENT_FLAG_POSTED == 0 =>
                    {
                        answered.fetch_add(1, Ordering::Relaxed);
                        resp.answer(ev.id, VALUE);
                    }
                    Some(_) => {}
                    None => std::thread::yield_now(),
                }
            }
            true
        });
        drive(&mut r, &dev, cpus, &answered);
        stop.store(true, Ordering::Relaxed);
        r.check(
            model.join().unwrap_or(false),
            "the model thread ran pinned to CPU 0",
        );
    });
    drop(inst);
    drop(dev);
    r.check(
        sysfs::wait_until(Duration::from_secs(5), || {
            sysfs::find_devices(TEST_VENDOR, TEST_DEVICE_TRAP).is_empty()
        }),
        "closing the device removes it",
    );
    r.finish()
}

fn drive(r: &mut Report, dev: &Dev, cpus: usize, answered: &AtomicU32) {
    r.step("START", dev.start());
    let Some(path) = sysfs::wait_device(TEST_VENDOR, TEST_DEVICE_TRAP, Duration::from_secs(5))
    else {
        r.check(false, "the device is on the bus");
        return;
    };
    if !r.check(
        sysfs::wait_until(Duration::from_secs(5), || path.join("cmd").exists()),
        "pciem_trapdrv bound",
    ) {
        return;
    }
    let drv = TrapDrv::new(&path);

    // The driver's CPU is the model's only CPU.
    r.step("pin this thread to CPU 0", pin_to_cpu(0));
    let (_, log) = run("dmesg", &[]);
    let logged_before = log.matches("the model did not answer").count();
    let before = TrapStats::read(&path);
    let before_answered = answered.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let mut all_ones = 0;
    for _ in 0..STALLED_READS {
        if drv.cmd(&format!("rl {REG:#x}")).ok() == Some(0xffff_ffff) {
            all_ones += 1;
        }
    }
    let took = t0.elapsed();
    r.check(
        all_ones == STALLED_READS,
        format!("{all_ones} of {STALLED_READS} reads with the model stuck behind them completed all-ones"),
    );
    let min = Duration::from_micros(u64::from(TIMEOUT_US) * STALLED_READS);
    r.check(
        took >= min && took < Duration::from_secs(5),
        format!("they took the timeout each and no more ({took:?} for {STALLED_READS} x {TIMEOUT_US} us)"),
    );
    let delta = TrapStats::read(&path).zip(before).map(|(a, b)| a.since(&b));
    r.check(
        delta.is_some_and(|d| d.read_timeouts == STALLED_READS && d.model_reads == STALLED_READS),
        format!("pciem_trap counted {STALLED_READS} model reads, all timed out ({delta:?})"),
    );
    std::thread::sleep(Duration::from_millis(100));
    println!(
        "INFO: the model saw {} of those reads late",
        answered.load(Ordering::Relaxed) - before_answered
    );
    // Logged once per device: by these reads, or already by the probe's
    // read if that one ran on CPU 0 too.
    let (_, log) = run("dmesg", &[]);
    let new_lines = log.matches("the model did not answer").count() - logged_before;
    let pci = sysfs::pci_name(&path);
    let ours = log
        .lines()
        .any(|l| l.contains(&format!("{pci}: BAR0+0x")) && l.contains("did not answer"));
    r.check(
        new_lines <= 1 && ours,
        format!("the timeout is in the kernel log, once for {pci} ({new_lines} new lines)"),
    );

    if cpus < 2 {
        println!("INFO: one CPU: no CPU is free for the model, so no read can be answered");
        return;
    }
    // With CPU 1 for the driver, the model on CPU 0 answers.
    r.step("pin this thread to CPU 1", pin_to_cpu(1));
    let v = drv.cmd(&format!("rl {REG:#x}")).ok();
    r.check(
        v == Some(VALUE),
        format!("with a CPU free for the model the same read is answered ({v:#x?})"),
    );
}
