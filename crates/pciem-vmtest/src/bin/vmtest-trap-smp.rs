//! Trap mode on two CPUs at once: nothing lost, per-CPU order kept.
//!
//! BAR0 of 1f0c:7e56 (`pciem_trapdrv.ko`) is in trap mode with no ranges.
//! One writer thread per CPU, pinned with sched_setaffinity, has the driver
//! run `seqstore` batches: on CPU c, for each i, `writel(c << 24 | i,
//! BAR0 + SEQ + 4c)` then `readl` it back (the driver counts mismatches).
//! ACCESSES (default 10^6) loads and stores are made in all, half per CPU.
//! The model thread drains the ring continuously and checks each store as
//! it arrives: at its CPU's slot, carrying the next index of that CPU. A
//! writer starts its next batch only once the model has taken its last one,
//! so with batches of 500 per CPU at most 1000 events wait in the
//! 1023-slot ring: the ring must never overflow.
//!
//! Checked: every store arrived exactly once and in its CPU's order, no
//! other event, event sequence numbers contiguous, ring overflow 0, every
//! read-back saw its store, and the `pciem_trap` counters moved by exactly
//! ACCESSES faults, ACCESSES/2 loads and ACCESSES/2 stores.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pciem_abi::{PCIEM_EVENT_CONFIG_WRITE, PCIEM_EVENT_MMIO_WRITE};
use pciem_vmtest::sysfs;
use pciem_vmtest::trapdrv::{pin_to_cpu, show, wait_eventfd, TrapDrv, TrapStats};
use pciem_vmtest::{Dev, Report, TEST_DEVICE_TRAP, TEST_VENDOR, TRAPDRV};

const SEQ: u64 = 0x3000;
const CPUS: usize = 2;
const BATCH: u64 = 500;

#[derive(Default)]
struct Shared {
    /// Per CPU: stores taken in order so far (= the next index expected).
    next: [AtomicU64; CPUS],
    stop: AtomicBool,
    events: AtomicU64,
    config_writes: AtomicU64,
    overflow: AtomicU64,
    problems: Mutex<Vec<String>>,
}

impl Shared {
    fn problem(&self, p: String) {
        let mut v = self.problems.lock().unwrap();
        if v.len() < 20 {
            v.push(p);
        }
    }
}

fn model(dev: &Dev, efd: i32, sh: &Shared) {
    let ring = match dev.map_ring() {
        Ok(r) => r,
        Err(e) => {
            sh.problem(format!("mmap the ring: {e}"));
            return;
        }
    };
    let mut last_seq: Option<u64> = None;
    let mut idle_since = Instant::now();
    while !sh.stop.load(Ordering::Acquire) {
        let mut any = false;
        while let Some(ev) = ring.pop() {
            any = true;
            sh.events.fetch_add(1, Ordering::Relaxed);
            if let Some(s) = last_seq {
                if ev.seq != s + 1 {
                    sh.problem(format!("sequence gap: {s} then {}", ev.seq));
                }
            }
            last_seq = Some(ev.seq);
            if ev.r#type == PCIEM_EVENT_CONFIG_WRITE {
                // The driver enabling the device while it probed.
                sh.config_writes.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let slot = ev.offset.wrapping_sub(SEQ) / 4;
            let ok_shape = ev.r#type == PCIEM_EVENT_MMIO_WRITE
                && ev.bar == 0
                && ev.size == 4
                && ev.offset >= SEQ
                && ev.offset % 4 == 0
                && (slot as usize) < CPUS;
            if !ok_shape {
                sh.problem(format!("unexpected event {}", show(&ev)));
                continue;
            }
            let cpu = slot as usize;
            let want = sh.next[cpu].load(Ordering::Relaxed);
            if ev.data >> 24 != cpu as u64 || ev.data & 0xff_ffff != want {
                sh.problem(format!(
                    "CPU {cpu}: expected index {want}, got {} (seq {})",
                    show(&ev),
                    ev.seq
                ));
            }
            // Resynchronise on the value seen, so one fault is one report.
            sh.next[cpu].store((ev.data & 0xff_ffff) + 1, Ordering::Release);
        }
        sh.overflow.store(ring.overflow(), Ordering::Release);
        if any {
            idle_since = Instant::now();
        } else if idle_since.elapsed() < Duration::from_millis(5) {
            std::thread::yield_now();
        } else {
            wait_eventfd(efd, 2);
        }
    }
    // A final drain after the writers are done.
    while let Some(ev) = ring.pop() {
        sh.problem(format!("event after the end: {}", show(&ev)));
    }
    sh.overflow.store(ring.overflow(), Ordering::Release);
}

/// One writer: pinned to `cpu`, `per_cpu` stores (and as many loads).
fn writer(cmd: &Path, cpu: usize, per_cpu: u64, sh: &Shared) -> Result<Duration, String> {
    pin_to_cpu(cpu).map_err(|e| format!("pin to CPU {cpu}: {e}"))?;
    let f = OpenOptions::new()
        .write(true)
        .open(cmd)
        .map_err(|e| format!("open {}: {e}", cmd.display()))?;
    let start = Instant::now();
    let mut done = 0u64;
    while done < per_cpu {
        let n = BATCH.min(per_cpu - done);
        let line = format!("seqstore {SEQ:#x} {done} {n}");
        f.write_at(line.as_bytes(), 0)
            .map_err(|e| format!("CPU {cpu}: `{line}`: {e}"))?;
        done += n;
        // Flow control: the model has taken this batch before the next.
        let wait = Instant::now();
        while sh.next[cpu].load(Ordering::Acquire) < done {
            if wait.elapsed() > Duration::from_secs(20) {
                return Err(format!(
                    "CPU {cpu}: the model took {} of {done} stores",
                    sh.next[cpu].load(Ordering::Acquire)
                ));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    Ok(start.elapsed())
}

fn main() {
    let mut r = Report::new("trap-smp");
    let accesses: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    r.check(
        sysfs::modules_loaded() && Path::new("/sys/bus/pci/drivers").join(TRAPDRV).exists(),
        "pciem.ko and pciem_trapdrv.ko are loaded",
    );
    // SAFETY: sysconf has no pointer arguments.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    r.check(
        online >= CPUS as i64,
        format!("{online} CPUs online (need {CPUS})"),
    );
    let per_cpu = accesses / (2 * CPUS as u64);
    run_all(&mut r, per_cpu);
    r.check_klog_clean();
    r.finish();
}

fn run_all(r: &mut Report, per_cpu: u64) {
    let Some(dev) = r.step("open /dev/pciem", Dev::open()) else {
        return;
    };
    let Some(efd) = r.step("SET_EVENTFD", dev.attach_eventfd()) else {
        return;
    };
    if r.step(
        "describe 1f0c:7e56, BAR0 in trap mode",
        dev.describe_trap_device(),
    )
    .is_none()
    {
        return;
    }
    let Some(inst) = r.step("REGISTER", dev.register()) else {
        return;
    };
    let Some(path) = sysfs::wait_device(TEST_VENDOR, TEST_DEVICE_TRAP, Duration::from_secs(5))
    else {
        r.check(false, "1f0c:7e56 is in sysfs after REGISTER");
        return;
    };
    let sh = Shared::default();
    std::thread::scope(|s| {
        let m = s.spawn(|| model(&dev, efd.as_raw_fd(), &sh));
        body(r, &dev, &path, per_cpu, &sh);
        sh.stop.store(true, Ordering::Release);
        if m.join().is_err() {
            r.check(false, "the model thread ended cleanly");
        }
    });
    r.check(
        sh.overflow.load(Ordering::Acquire) == 0,
        format!("ring overflow 0 ({})", sh.overflow.load(Ordering::Acquire)),
    );
    let problems = sh.problems.lock().unwrap().clone();
    r.check(
        problems.is_empty(),
        format!("every store arrived once, in its CPU's order, nothing else: {problems:?}"),
    );
    drop(inst);
    drop(dev);
}

fn body(r: &mut Report, dev: &Dev, path: &Path, per_cpu: u64, sh: &Shared) {
    r.step("START", dev.start());
    // The driver link appears before probe() runs; `cmd` once it returned.
    let bound = sysfs::wait_until(Duration::from_secs(10), || {
        sysfs::driver_of(path).as_deref() == Some(TRAPDRV) && path.join("cmd").exists()
    });
    r.check(bound, format!("{TRAPDRV} bound after START"));
    if !bound {
        return;
    }
    let drv = TrapDrv::new(path);
    let Some(s0) = TrapStats::read(path) else {
        r.check(false, "pciem_trap readable");
        return;
    };
    let cmd = path.join("cmd");
    let start = Instant::now();
    let results: Vec<Result<Duration, String>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..CPUS)
            .map(|cpu| {
                let cmd = &cmd;
                s.spawn(move || writer(cmd, cpu, per_cpu, sh))
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("writer panicked".into())))
            .collect()
    });
    let took = start.elapsed();
    for (cpu, res) in results.iter().enumerate() {
        r.check(
            res.is_ok(),
            format!("CPU {cpu}: {per_cpu} stores + {per_cpu} loads ({res:?})"),
        );
    }
    let total = per_cpu * 2 * CPUS as u64;
    println!(
        "MEASURE: trap-smp: {total} trapped accesses on {CPUS} CPUs in {:.1} s ({:.0} accesses/s)",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64()
    );
    for cpu in 0..CPUS {
        let n = sh.next[cpu].load(Ordering::Acquire);
        r.check(
            n == per_cpu,
            format!("CPU {cpu}: the model took {n} of {per_cpu} stores"),
        );
    }
    let events = sh.events.load(Ordering::Acquire) - sh.config_writes.load(Ordering::Acquire);
    r.check(
        events == per_cpu * CPUS as u64,
        format!("{events} BAR events in all"),
    );
    r.check(
        drv.seq_errors() == Some(0),
        format!(
            "every read-back saw its store ({:?} mismatches)",
            drv.seq_errors()
        ),
    );
    let d = TrapStats::read(path).unwrap_or_default().since(&s0);
    r.check(
        d.faults == total && d.loads == total / 2 && d.stores == total / 2,
        format!(
            "pciem_trap moved by {total} faults, {} loads, {} stores ({d:?})",
            total / 2,
            total / 2
        ),
    );
    r.check(
        d.read_timeouts == 0 && d.undecodable == 0 && d.untrapped == 0,
        format!("no timeouts, undecodable or untrapped ({d:?})"),
    );
}
