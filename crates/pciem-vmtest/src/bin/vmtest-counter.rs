//! Scenario (e): the walkthrough's counter device, written in C against the
//! generated header (`examples/c/counter_device.c`, built statically),
//! exercised by the test driver: every write of 1 to CONTROL (0x00)
//! advances COUNTER (0x08), and an MSI arrives every 10 counts.
//!
//! Usage: `vmtest-counter [PATH]`, PATH defaulting to `/bin/counter_device`.

use std::process::{Command, Stdio};
use std::time::Duration;

use pciem_vmtest::sysfs::{self, testdrv_irqs, testdrv_read, testdrv_write, wait_until};
use pciem_vmtest::{Report, TESTDRV};

const VENDOR: u16 = 0x1234;
const DEVICE: u16 = 0x5678;
const REG_CONTROL: u64 = 0x00;
const REG_COUNTER: u64 = 0x08;
const WRITES: u32 = 25;

fn main() {
    let mut r = Report::new("counter");
    r.check(
        sysfs::modules_loaded(),
        "pciem.ko and pciem_testdrv.ko are loaded",
    );
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/bin/counter_device".to_string());
    let mut kid = match Command::new(&path).stdout(Stdio::null()).spawn() {
        Ok(k) => k,
        Err(e) => {
            r.check(false, format!("start {path}: {e}"));
            r.finish()
        }
    };
    r.check(true, format!("started {path} (pid {})", kid.id()));
    let Some(dev) = sysfs::wait_device(VENDOR, DEVICE, Duration::from_secs(10)) else {
        r.check(false, "the counter device 1234:5678 appeared");
        let _ = kid.kill();
        r.finish()
    };
    let bound = wait_until(Duration::from_secs(5), || {
        sysfs::driver_of(&dev).as_deref() == Some(TESTDRV)
    });
    r.check(
        bound,
        format!("{TESTDRV} bound to {}", sysfs::pci_name(&dev)),
    );
    // The device process arms its watchpoint once the driver has mapped
    // BAR0; give a retrying program a moment.
    std::thread::sleep(Duration::from_millis(500));

    let start = testdrv_read(&dev, REG_COUNTER).unwrap_or(u32::MAX);
    r.check(start == 0, format!("COUNTER starts at 0 (read {start:#x})"));
    let irq0 = testdrv_irqs(&dev).first().copied().unwrap_or(0);
    let mut advanced = 0;
    for i in 1..=WRITES {
        if testdrv_write(&dev, REG_CONTROL, 1).is_err() {
            break;
        }
        let ok = wait_until(Duration::from_secs(3), || {
            testdrv_read(&dev, REG_COUNTER).ok() == Some(i)
        });
        if !ok {
            break;
        }
        advanced = i;
    }
    r.check(
        advanced == WRITES,
        format!("COUNTER followed each of {WRITES} writes of 1 to CONTROL (reached {advanced})"),
    );
    let want = (WRITES / 10) as u64;
    let got = wait_until(Duration::from_secs(3), || {
        testdrv_irqs(&dev).first().copied().unwrap_or(0) == irq0 + want
    });
    let irqs = testdrv_irqs(&dev).first().copied().unwrap_or(0) - irq0;
    r.check(got, format!("{want} MSIs for {WRITES} counts (got {irqs})"));
    // No extra interrupt shows up later.
    std::thread::sleep(Duration::from_millis(300));
    r.check(
        testdrv_irqs(&dev).first().copied().unwrap_or(0) == irq0 + want,
        "no spurious MSI afterwards",
    );

    let _ = kid.kill();
    let _ = kid.wait();
    r.check(
        wait_until(Duration::from_secs(5), || !dev.exists()),
        "the device left the bus when the counter process died",
    );
    r.finish()
}
