//! Scenario (d): `kill -9` of the device process while the test driver is
//! bound. The driver's remove() runs, the device leaves the bus, and both
//! modules then unload cleanly.
//!
//! Run as `vmtest-kill`; it re-executes itself with `--child` as the device
//! process.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use pciem_vmtest::sysfs::{self, find_devices, testdrv_counter, wait_until};
use pciem_vmtest::{Dev, Report, TESTDRV, TEST_DEVICE_IOMAP, TEST_VENDOR};

fn child() -> ! {
    let dev = Dev::open().expect("open /dev/pciem");
    dev.describe_test_device(TEST_DEVICE_IOMAP)
        .expect("describe");
    let inst = dev.register().expect("register");
    let _bar = inst.map_bar(0, 4096).expect("map BAR0");
    let _ring = dev.map_ring().expect("map ring");
    // Let the parent watch us die with everything open and mapped.
    let _ = dev.watch(0, 0, 4);
    println!("READY");
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--child") {
        child();
    }
    let mut r = Report::new("kill");
    r.check(
        sysfs::modules_loaded(),
        "pciem.ko and pciem_testdrv.ko are loaded",
    );
    let removes0 = testdrv_counter("removes").unwrap_or(0);
    let exe = std::env::current_exe().expect("current_exe");
    let mut kid = match Command::new(exe)
        .arg("--child")
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(k) => k,
        Err(e) => {
            r.check(false, format!("spawn the device process: {e}"));
            r.finish()
        }
    };
    let mut line = String::new();
    let out = kid.stdout.take().expect("piped stdout");
    let _ = BufReader::new(out).read_line(&mut line);
    r.check(
        line.trim() == "READY",
        "the device process registered its device",
    );
    let dev = find_devices(TEST_VENDOR, TEST_DEVICE_IOMAP).pop();
    let Some(dev) = dev else {
        r.check(false, "device present in sysfs");
        let _ = kid.kill();
        r.finish()
    };
    r.check(
        sysfs::driver_of(&dev).as_deref() == Some(TESTDRV),
        "the test driver is bound",
    );
    let (ok, _) = sysfs::run("rmmod", &["pciem"]);
    r.check(!ok, "rmmod pciem is refused while a device is alive");

    r.step("kill -9 the device process", kid.kill());
    let _ = kid.wait();
    r.check(
        wait_until(Duration::from_secs(5), || !dev.exists()),
        "the device left the bus",
    );
    r.check(
        testdrv_counter("removes") == Some(removes0 + 1),
        "the driver's remove() ran",
    );
    let (ok, out) = sysfs::run("rmmod", &["pciem_testdrv"]);
    r.check(ok, format!("rmmod pciem_testdrv {out}"));
    let (ok, out) = sysfs::run("rmmod", &["pciem"]);
    r.check(ok, format!("rmmod pciem {out}"));
    r.check(
        !std::path::Path::new("/dev/pciem").exists(),
        "/dev/pciem is gone",
    );
    let (_, log) = sysfs::run("dmesg", &[]);
    let bad: Vec<&str> = log
        .lines()
        .filter(|l| {
            [
                "BUG:",
                "WARNING:",
                "Call Trace",
                "Oops",
                "general protection",
            ]
            .iter()
            .any(|p| l.contains(p))
        })
        .collect();
    r.check(
        bad.is_empty(),
        format!("no BUG/WARNING/Oops in the kernel log {bad:?}"),
    );
    r.finish()
}
