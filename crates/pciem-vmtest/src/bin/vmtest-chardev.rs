//! Scenario: a Rust device model on the chardev backend
//! (`pciem-backend-chardev`), driven by the test driver.
//!
//! The device process (this binary re-executed with `--device MODE`) runs
//! an "echo" model: BAR0+0x0 is watched; each driver write of `v` makes the
//! model store `2v + 1` at BAR0+0x4, count at BAR0+0x8 and raise MSI vector
//! 0; `start` puts a magic value at BAR0+0xC. The parent checks start →
//! BAR value, register write → event → model → register value plus an MSI
//! counted, a burst of writes all handled in order, then SIGTERM of the
//! device process → clean exit with no events lost, the device gone from
//! sysfs, its window released and the module's reference count back where
//! it was. It runs twice: with the default loop (io-uring, or the poll(2)
//! fallback, reported) and with poll(2) forced. The first run also
//! overflows the ring: the model stalls on a PAUSE write while the driver
//! writes 10 more values than the ring holds, and the device process must
//! report exactly those 10 as lost.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use pciem_backend_chardev::{LoopKind, RunOptions, Session, StopSignal, WaitMode};
use pciem_core::config::{Bar, MsiCap};
use pciem_core::ring::RING_CAPACITY;
use pciem_core::MmioWrite;
use pciem_core::{BuildError, ConfigBuilder, ConfigSpace, Device, Host, HostError, Irq, Watch};
use pciem_vmtest::sysfs::{self, testdrv_counter, testdrv_irqs, testdrv_read, testdrv_write};
use pciem_vmtest::{Report, TESTDRV, TEST_DEVICE_IOMAP, TEST_VENDOR};

const REG_IN: u64 = 0x0;
const REG_OUT: u64 = 0x4;
const REG_COUNT: u64 = 0x8;
const REG_MAGIC: u64 = 0xC;
const MAGIC: u32 = 0xC4A2_DE00;
/// Written to REG_IN: the model stalls until [`RESUME_FILE`] exists.
const PAUSE: u32 = 0xFFFF_FFFF;
const RESUME_FILE: &str = "/tmp/vmtest-chardev-resume";

const WATCHES: [Watch; 1] = [Watch {
    bar: 0,
    offset: REG_IN,
    width: 4,
}];

/// Ticks of the model's timer (`Host::set_timer`): every TICK from
/// start, TICKS times, each stored in REG_TICKS.
const REG_TICKS: u64 = 0x10;
const TICK: Duration = Duration::from_millis(20);
const TICKS: u32 = 5;

#[derive(Default)]
struct Echo {
    count: u32,
    ticks: u32,
}

impl Device for Echo {
    type Error = HostError;
    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        ConfigBuilder::new(TEST_VENDOR, TEST_DEVICE_IOMAP)
            .class(0x0b, 0x40, 0x00)
            .bar(0, Bar::memory32(4096))
            .msi(MsiCap::new(1))
            .build()
    }

    fn watches(&self) -> &[Watch] {
        &WATCHES
    }

    fn start(&mut self, host: &dyn Host) -> Result<(), HostError> {
        host.write_u32(0, REG_MAGIC, MAGIC)?;
        host.set_timer(1, TICK)
    }

    fn timer(&mut self, host: &dyn Host, _id: u32) -> Result<(), HostError> {
        self.ticks += 1;
        host.write_u32(0, REG_TICKS, self.ticks)?;
        if self.ticks < TICKS {
            host.set_timer(1, TICK)?;
        }
        Ok(())
    }

    fn mmio_write(&mut self, host: &dyn Host, w: MmioWrite) -> Result<(), HostError> {
        if w.bar != 0 || w.offset != REG_IN {
            return Ok(());
        }
        self.count += 1;
        host.write_u32(0, REG_OUT, (w.value as u32).wrapping_mul(2).wrapping_add(1))?;
        host.write_u32(0, REG_COUNT, self.count)?;
        if w.value as u32 == PAUSE {
            // Stall the event loop (bounded) so the driver can overflow the
            // ring behind it.
            let start = std::time::Instant::now();
            while !Path::new(RESUME_FILE).exists() && start.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_millis(5));
            }
            return Ok(());
        }
        host.raise_irq(Irq::Msi { vector: 0 })
    }
}

/// The device process: prints `READY <loop>` once registered, runs until
/// SIGTERM, prints `REPORT ...`.
fn device(mode: &str) -> ! {
    let wait = match mode {
        "poll" => WaitMode::Poll,
        _ => WaitMode::Auto,
    };
    let result = (|| -> Result<String, String> {
        let stop = StopSignal::new().map_err(|e| e.to_string())?;
        stop.on_termination().map_err(|e| e.to_string())?;
        let mut model = Echo::default();
        let options = RunOptions {
            wait,
            ..Default::default()
        };
        let mut session = Session::open(&model, options).map_err(|e| e.to_string())?;
        println!("READY {}", session.loop_kind());
        let _ = std::io::stdout().flush();
        let r = session.run(&mut model, &stop).map_err(|e| e.to_string())?;
        Ok(format!(
            "REPORT events={} lost={} overflow={} handler_errors={} count={} timers={} ticks={} errors={:?}",
            r.events, r.lost, r.overflow, r.handler_errors, model.count, r.timers, model.ticks, r.errors
        ))
    })();
    match result {
        Ok(line) => {
            println!("{line}");
            std::process::exit(0)
        }
        Err(e) => {
            println!("ERROR {e}");
            std::process::exit(1)
        }
    }
}

fn module_refcnt() -> Option<u64> {
    sysfs::read_hex(Path::new("/sys/module/pciem/refcnt"))
}

fn read_line(out: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    let _ = out.read_line(&mut line);
    line.trim().to_string()
}

/// Stalls the model, writes `RING_CAPACITY + extra` values, resumes it and
/// checks the backlog is handled in order; returns the writes the model
/// handled (the lost ones excluded).
fn overflow(r: &mut Report, path: &Path, count0: u32, extra: usize) -> u32 {
    let _ = std::fs::remove_file(RESUME_FILE);
    r.step("driver writes PAUSE", testdrv_write(path, REG_IN, PAUSE));
    r.check(
        sysfs::wait_until(Duration::from_secs(5), || {
            testdrv_read(path, REG_COUNT).ok() == Some(count0 + 1)
        }),
        "the model took PAUSE and stalls",
    );
    let total = RING_CAPACITY + extra;
    let mut ok = std::fs::write(path.join("reg_offset"), "0").is_ok();
    for i in 0..total {
        ok &= std::fs::write(path.join("reg"), format!("{i}")).is_ok();
    }
    r.check(
        ok,
        format!("the driver wrote {total} values behind the stalled model"),
    );
    r.step("resume the model", std::fs::write(RESUME_FILE, b"go"));
    let backlog = count0 + 1 + RING_CAPACITY as u32;
    r.check(
        sysfs::wait_until(Duration::from_secs(60), || {
            testdrv_read(path, REG_COUNT).ok() == Some(backlog)
        }),
        format!(
            "the model handled the {RING_CAPACITY} writes the ring kept (count {:?}, want {backlog})",
            testdrv_read(path, REG_COUNT).ok()
        ),
    );
    r.check(
        testdrv_read(path, REG_OUT).ok() == Some(2 * (RING_CAPACITY as u32 - 1) + 1),
        "the last write the ring kept was handled last",
    );
    // The next event shows the gap in sequence numbers.
    r.step("driver writes 0x7777", testdrv_write(path, REG_IN, 0x7777));
    r.check(
        sysfs::wait_until(Duration::from_secs(5), || {
            testdrv_read(path, REG_OUT).ok() == Some(2 * 0x7777 + 1)
        }),
        "the model handles writes after the overflow",
    );
    let _ = std::fs::remove_file(RESUME_FILE);
    backlog + 1
}

fn one(r: &mut Report, mode: &str, with_overflow: bool) {
    println!("--- device process with --device {mode}");
    let refcnt0 = module_refcnt();
    let removes0 = testdrv_counter("removes").unwrap_or(0);
    let exe = std::env::current_exe().expect("current_exe");
    let mut kid: Child = match Command::new(exe)
        .args(["--device", mode])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(k) => k,
        Err(e) => {
            r.check(false, format!("spawn the device process: {e}"));
            return;
        }
    };
    let mut out = BufReader::new(kid.stdout.take().expect("piped stdout"));
    let ready = read_line(&mut out);
    if !r.check(
        ready.starts_with("READY "),
        format!("the device process registered its device ({ready:?})"),
    ) {
        let _ = kid.kill();
        let _ = kid.wait();
        return;
    }
    let kind = ready.trim_start_matches("READY ");
    println!("INFO: event loop in the guest: {kind}");
    let expected_kind = match mode {
        "poll" => LoopKind::Poll { fallback: None }.to_string(),
        _ => LoopKind::IoUring.to_string(),
    };
    r.check(
        kind == expected_kind || (mode != "poll" && kind.starts_with("poll (io-uring unavailable")),
        format!("the event loop is {expected_kind} or an explained fallback ({kind})"),
    );

    let Some(path) = sysfs::wait_device(TEST_VENDOR, TEST_DEVICE_IOMAP, Duration::from_secs(5))
    else {
        r.check(false, "device visible in sysfs");
        let _ = kid.kill();
        let _ = kid.wait();
        return;
    };
    r.check(
        sysfs::driver_of(&path).as_deref() == Some(TESTDRV),
        format!("{TESTDRV} bound to {}", sysfs::pci_name(&path)),
    );
    let refcnt_live = module_refcnt();
    r.check(
        refcnt0.is_some() && refcnt_live > refcnt0,
        format!("the live device's files pin pciem.ko (refcnt {refcnt0:?} -> {refcnt_live:?})"),
    );
    r.check(
        sysfs::wait_until(Duration::from_secs(2), || {
            testdrv_read(&path, REG_MAGIC).ok() == Some(MAGIC)
        }),
        "the driver reads the value the model's start() put in BAR0",
    );

    // One write at a time: register → event → model → register + MSI.
    let mut all = true;
    for i in 0..10u32 {
        let before = testdrv_irqs(&path).first().copied().unwrap_or(0);
        let value = 0x1000 + i * 7;
        if testdrv_write(&path, REG_IN, value).is_err() {
            all = false;
            break;
        }
        let echoed = sysfs::wait_until(Duration::from_secs(5), || {
            testdrv_read(&path, REG_OUT).ok() == Some(value * 2 + 1)
        });
        let irq = sysfs::wait_until(Duration::from_secs(5), || {
            testdrv_irqs(&path).first().copied().unwrap_or(0) > before
        });
        if !(echoed && irq) {
            println!("INFO: write {i} ({value:#x}): echoed {echoed}, MSI counted {irq}");
            all = false;
            break;
        }
    }
    r.check(
        all,
        "10 driver writes each came back as 2v+1 from the model, with one MSI each",
    );

    // A burst: every write is an event, handled in order.
    let irqs_before = testdrv_irqs(&path).first().copied().unwrap_or(0);
    let mut ok = true;
    for i in 0..20u32 {
        ok &= testdrv_write(&path, REG_IN, 0x5000 + i).is_ok();
    }
    r.check(ok, "the driver wrote 20 values back to back");
    r.check(
        sysfs::wait_until(Duration::from_secs(10), || {
            testdrv_read(&path, REG_COUNT).ok() == Some(30)
        }),
        format!(
            "the model counted all 30 writes (BAR0+0x8 = {:?})",
            testdrv_read(&path, REG_COUNT).ok()
        ),
    );
    r.check(
        testdrv_read(&path, REG_OUT).ok() == Some((0x5000 + 19) * 2 + 1),
        "the last value of the burst was handled last",
    );
    r.check(
        sysfs::wait_until(Duration::from_secs(5), || {
            testdrv_irqs(&path).first().copied().unwrap_or(0) > irqs_before
        }),
        "the burst raised MSIs",
    );

    let (count, lost) = if with_overflow {
        (overflow(r, &path, 30, 10), 10)
    } else {
        (30, 0)
    };
    // The model's timer ticks on its own (a timerfd on its event loop):
    // the driver sees each tick in BAR0+0x10, the last well before SIGTERM.
    r.check(
        sysfs::wait_until(Duration::from_secs(10), || {
            testdrv_read(&path, REG_TICKS).ok() == Some(TICKS)
        }),
        format!(
            "the driver reads the model's {TICKS} timer ticks in BAR0+0x10 ({:?})",
            testdrv_read(&path, REG_TICKS).ok()
        ),
    );

    // SIGTERM: the loop stops, everything is closed, the device goes.
    // SAFETY: kill() has no pointer arguments; the pid is our live child.
    let rc = unsafe { libc::kill(kid.id() as libc::pid_t, libc::SIGTERM) };
    r.check(rc == 0, "SIGTERM sent to the device process");
    let status = kid.wait();
    r.check(
        status.as_ref().is_ok_and(|s| s.success()),
        format!("the device process exited cleanly ({status:?})"),
    );
    let report = read_line(&mut out);
    println!("INFO: {report}");
    r.check(
        report.starts_with("REPORT ")
            && report.contains(&format!(" lost={lost} "))
            && report.contains(&format!(" overflow={lost} ")),
        format!("the device process reports {lost} lost events"),
    );
    r.check(
        report.contains(" handler_errors=0 ") && report.contains(&format!(" count={count} ")),
        format!("the model handled {count} writes without a host error"),
    );
    r.check(
        report.contains(&format!(" timers={TICKS} ticks={TICKS} ")),
        format!(
            "the model's timer (timerfd on the event loop) fired {TICKS} times, every {TICK:?}"
        ),
    );
    let mut stderr = String::new();
    if let Some(mut e) = kid.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    for l in stderr.lines() {
        println!("INFO: device stderr: {l}");
    }
    r.check(
        if lost == 0 {
            !stderr.contains("lost")
        } else {
            stderr.contains(&format!("{lost} events lost to ring overflow"))
        },
        "the device process said on stderr what it lost, and only then",
    );
    r.check(
        sysfs::wait_until(Duration::from_secs(5), || !path.exists()),
        "the device left the bus",
    );
    r.check(
        testdrv_counter("removes") == Some(removes0 + 1),
        "the driver's remove() ran",
    );
    let iomem = std::fs::read_to_string("/proc/iomem").unwrap_or_default();
    r.check(
        !iomem.contains("pciem window"),
        "the bridge window is released",
    );
    r.check(
        sysfs::wait_until(Duration::from_secs(2), || module_refcnt() == refcnt0),
        format!(
            "pciem.ko's reference count is back to {refcnt0:?} (every file closed): {:?}",
            module_refcnt()
        ),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--device") {
        device(args.get(2).map_or("auto", String::as_str));
    }
    let mut r = Report::new("chardev");
    r.check(
        sysfs::modules_loaded(),
        "pciem.ko and pciem_testdrv.ko are loaded",
    );
    one(&mut r, "auto", true);
    one(&mut r, "poll", false);
    r.finish()
}
