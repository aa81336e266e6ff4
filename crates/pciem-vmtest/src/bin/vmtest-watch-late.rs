//! A driver store in the window between its ioremap and the arming of the
//! watch on that register is never lost without a word.
//!
//! Arming a hardware breakpoint sleeps (milliseconds), so it runs from a
//! work item after the ioremap tracer saw the driver's mapping; a driver
//! that writes the register first thing in probe() can store before the
//! watch is live. pciem.ko snapshots the register when it sees the mapping
//! and compares once armed. The test driver's `probe_write` parameter makes
//! probe() store a value to BAR0+0x0 right after mapping BAR0; the device
//! watches BAR0+0x0 from before REGISTER. One of two things must follow:
//! the store trapped (one MMIO_WRITE event carrying the value), or the
//! kernel log names the register and both values (both, when the store
//! landed just as the breakpoint went live). Neither would be the silent
//! loss this scenario exists to rule out.
//!
//! Then the same driver and device with BAR0 in trap mode (SET_BAR_MODE
//! before REGISTER, START after it): the mapping faults from the first
//! instruction after ioremap returns, so the probe-time store must arrive
//! as exactly one MMIO_WRITE event carrying the value (and nothing else
//! written to BAR0), with no "while its watch was being armed" warning.

use std::time::{Duration, Instant};

use pciem_abi::{PCIEM_BAR_MODE_TRAP, PCIEM_EVENT_MMIO_WRITE};
use pciem_vmtest::sysfs::{self, run};
use pciem_vmtest::{Dev, Report, TESTDRV, TEST_DEVICE_IOMAP, TEST_VENDOR};

const PARAM: &str = "/sys/module/pciem_testdrv/parameters/probe_write";
const VALUE: u32 = 0x5a5a_0001;

fn main() {
    let mut r = Report::new("watch-late");
    r.check(
        sysfs::modules_loaded(),
        "pciem.ko and pciem_testdrv.ko are loaded",
    );
    r.step(
        "probe_write = the test value",
        std::fs::write(PARAM, VALUE.to_string()),
    );
    let warning =
        format!("BAR0+0x0 changed from 0x0 to {VALUE:#x} while its watch was being armed");
    let rounds = 3;
    for round in 1..=rounds {
        println!("--- round {round}");
        let Some(dev) = r.step("open /dev/pciem", Dev::open()) else {
            break;
        };
        let Some(ring) = r.step("mmap the event ring", dev.map_ring()) else {
            break;
        };
        if r.step(
            "describe 1f0c:7e50",
            dev.describe_test_device(TEST_DEVICE_IOMAP),
        )
        .is_none()
        {
            break;
        }
        r.step("watch BAR0+0x0 before REGISTER", dev.watch(0, 0, 4));
        let (_, before) = run("dmesg", &[]);
        let warnings_before = before.matches(&warning).count();
        let Some(_inst) = r.step("REGISTER", dev.register()) else {
            break;
        };
        let path = sysfs::wait_device(TEST_VENDOR, TEST_DEVICE_IOMAP, Duration::from_secs(5));
        r.check(
            path.as_deref().and_then(sysfs::driver_of).as_deref() == Some(TESTDRV),
            "pciem_testdrv bound (its probe stored the test value)",
        );
        // Wait for whichever outcome comes: the arming work runs within
        // tens of milliseconds.
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut trapped = 0;
        let mut logged = false;
        while Instant::now() < deadline && trapped == 0 && !logged {
            while let Some(ev) = ring.pop() {
                if ev.r#type == PCIEM_EVENT_MMIO_WRITE && ev.offset == 0 {
                    trapped += usize::from(ev.data == u64::from(VALUE));
                }
            }
            let (_, log) = run("dmesg", &[]);
            logged = log.matches(&warning).count() > warnings_before;
            std::thread::sleep(Duration::from_millis(20));
        }
        println!(
            "INFO: round {round}: {}",
            if trapped > 0 {
                "the store trapped (the watch was armed first)"
            } else if logged {
                "the store came before arming and was reported in the kernel log"
            } else {
                "neither"
            }
        );
        r.check(
            trapped <= 1 && (trapped == 1 || logged),
            format!(
                "the probe-time store is one event or a log line naming it, never neither \
                 ({trapped} events, logged: {logged})"
            ),
        );
    }
    let any_warning = "while its watch was being armed";
    for round in 1..=2 {
        println!("--- trap round {round}");
        let Some(dev) = r.step("open /dev/pciem", Dev::open()) else {
            break;
        };
        let Some(ring) = r.step("mmap the event ring", dev.map_ring()) else {
            break;
        };
        if r.step(
            "describe 1f0c:7e50",
            dev.describe_test_device(TEST_DEVICE_IOMAP),
        )
        .is_none()
        {
            break;
        }
        r.step(
            "SET_BAR_MODE BAR0 trap",
            dev.set_bar_mode(0, PCIEM_BAR_MODE_TRAP),
        );
        let (_, before) = run("dmesg", &[]);
        let warnings_before = before.matches(any_warning).count();
        let Some(_inst) = r.step("REGISTER", dev.register()) else {
            break;
        };
        let path = sysfs::wait_device(TEST_VENDOR, TEST_DEVICE_IOMAP, Duration::from_secs(5));
        r.check(
            path.as_deref()
                .is_some_and(|p| sysfs::driver_of(p).is_none()),
            "in sysfs after REGISTER, no driver bound before START",
        );
        r.step("START", dev.start());
        let bound = path.as_deref().is_some_and(|p| {
            sysfs::wait_until(Duration::from_secs(10), || {
                sysfs::driver_of(p).as_deref() == Some(TESTDRV) && p.join("irq_kind").exists()
            })
        });
        r.check(
            bound,
            "pciem_testdrv bound after START (its probe stored the test value)",
        );
        // The store is in the ring before probe() returned; wait a little
        // for anything that should not be there either.
        let mut writes = Vec::new();
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline {
            while let Some(ev) = ring.pop() {
                if ev.r#type == PCIEM_EVENT_MMIO_WRITE {
                    writes.push((ev.bar, ev.offset, ev.size, ev.data));
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        r.check(
            writes == [(0, 0, 4, u64::from(VALUE))],
            format!(
                "the probe-time store is exactly one MMIO_WRITE event BAR0+0x0/4 = {VALUE:#x} \
                 ({writes:x?})"
            ),
        );
        let (_, after) = run("dmesg", &[]);
        let warnings = after.matches(any_warning).count();
        r.check(
            warnings == warnings_before,
            format!(
                "no \"{any_warning}\" warning for a trapped BAR ({} new)",
                warnings - warnings_before
            ),
        );
    }
    r.step("probe_write = 0", std::fs::write(PARAM, "0"));
    r.finish()
}
