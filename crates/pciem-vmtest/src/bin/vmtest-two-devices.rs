//! Scenario (c): two devices at once, each on its own bus and domain, both
//! bound and working, removed independently: closing one leaves the other
//! fully working.

use std::time::Duration;

use pciem_vmtest::sysfs::{
    self, find_devices, pci_name, testdrv_counter, testdrv_read, wait_until,
};
use pciem_vmtest::{
    Dev, Report, TESTDRV, TEST_DEVICE_IOMAP, TEST_DEVICE_IOREMAP, TEST_DEVICE_UNBOUND, TEST_VENDOR,
};

fn main() {
    let mut r = Report::new("two-devices");
    r.check(
        sysfs::modules_loaded(),
        "pciem.ko and pciem_testdrv.ko are loaded",
    );
    let removes0 = testdrv_counter("removes").unwrap_or(0);

    let mut devs = Vec::new();
    for id in [TEST_DEVICE_IOMAP, TEST_DEVICE_IOREMAP] {
        let dev = match Dev::open() {
            Ok(d) => d,
            Err(e) => {
                r.check(false, format!("open /dev/pciem: {e}"));
                r.finish()
            }
        };
        r.step(
            format!("describe 1f0c:{id:04x}"),
            dev.describe_test_device(id),
        );
        let Some(inst) = r.step(format!("REGISTER 1f0c:{id:04x}"), dev.register()) else {
            r.finish()
        };
        devs.push((id, dev, inst));
    }

    let a = find_devices(TEST_VENDOR, TEST_DEVICE_IOMAP);
    let b = find_devices(TEST_VENDOR, TEST_DEVICE_IOREMAP);
    let (Some(a), Some(b)) = (a.first().cloned(), b.first().cloned()) else {
        r.check(false, "both devices in sysfs");
        r.finish()
    };
    let (na, nb) = (pci_name(&a), pci_name(&b));
    let dom = |n: &str| n.split(':').next().unwrap_or("").to_string();
    r.check(
        dom(&na) != dom(&nb),
        format!("distinct domains: {na} and {nb}"),
    );
    for p in [&a, &b] {
        r.check(
            sysfs::driver_of(p).as_deref() == Some(TESTDRV),
            format!("{TESTDRV} bound to {}", pci_name(p)),
        );
    }
    let ba = devs[0].1.bar_info(0).map(|q| q.bus_addr).unwrap_or(0);
    let bb = devs[1].1.bar_info(0).map(|q| q.bus_addr).unwrap_or(0);
    r.check(
        ba != bb && ba != 0 && bb != 0,
        format!("distinct BAR0 addresses {ba:#x} {bb:#x}"),
    );

    // Each device's memory is its own.
    let ma = devs[0].2.map_bar(0, 4096);
    let mb = devs[1].2.map_bar(0, 4096);
    if let (Ok(ma), Ok(mb)) = (&ma, &mb) {
        ma.write32(0xc, 0xaaaa_0001);
        mb.write32(0xc, 0xbbbb_0002);
        r.check(
            testdrv_read(&a, 0xc).ok() == Some(0xaaaa_0001)
                && testdrv_read(&b, 0xc).ok() == Some(0xbbbb_0002),
            "each driver instance reads its own device's BAR",
        );
    } else {
        r.check(false, "map both BAR0s");
    }
    drop(ma);
    drop(mb);

    // Remove the first one only.
    let first = devs.remove(0);
    drop(first);
    r.check(
        wait_until(Duration::from_secs(5), || !a.exists()),
        format!("closing the first device's files removed {na}"),
    );
    r.check(
        testdrv_counter("removes") == Some(removes0 + 1),
        "the driver's remove() ran once",
    );
    r.check(b.exists(), format!("{nb} is still present"));
    let (_, dev_b, inst_b) = &devs[0];
    if let Ok(mb) = inst_b.map_bar(0, 4096) {
        mb.write32(0x10, 0x5eed_0003);
        r.check(
            testdrv_read(&b, 0x10).ok() == Some(0x5eed_0003),
            "the second device still works",
        );
    } else {
        r.check(false, "map BAR0 of the second device");
    }
    r.step("the second device's ioctls still work", dev_b.bar_info(0));

    devs.clear();
    r.check(
        wait_until(Duration::from_secs(5), || !b.exists()),
        format!("closing the second device's files removed {nb}"),
    );
    r.check(
        testdrv_counter("removes") == Some(removes0 + 2),
        "the driver's remove() ran for each device",
    );
    let iomem = std::fs::read_to_string("/proc/iomem").unwrap_or_default();
    r.check(!iomem.contains("pciem window"), "both windows are released");

    // The pool space is reusable.
    if let Ok(dev) = Dev::open() {
        let ok = dev.describe_test_device(TEST_DEVICE_IOMAP).is_ok() && dev.register().is_ok();
        r.check(ok, "a new device registers in the freed pool space");
    }
    exhaust(&mut r);
    r.finish()
}

/// Registers devices until the pool is full: the failure is ENOSPC, the
/// earlier devices are unaffected, and closing one makes room again.
fn exhaust(r: &mut Report) {
    let mut live = Vec::new();
    let mut err = None;
    for _ in 0..256 {
        let Ok(dev) = Dev::open() else { break };
        if let Err(e) = dev.describe_test_device(TEST_DEVICE_UNBOUND) {
            err = Some(e);
            break;
        }
        match dev.register() {
            Ok(inst) => live.push((dev, inst)),
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    let n = live.len();
    r.check(
        n >= 2 && err.as_ref().and_then(|e| e.raw_os_error()) == Some(libc::ENOSPC),
        format!("{n} devices fill the pool, the next REGISTER fails with ENOSPC ({err:?})"),
    );
    r.check(
        find_devices(TEST_VENDOR, TEST_DEVICE_UNBOUND).len() == n,
        format!("all {n} devices are on the bus"),
    );
    live.pop();
    let again = Dev::open().and_then(|d| {
        d.describe_test_device(TEST_DEVICE_UNBOUND)?;
        let i = d.register()?;
        Ok((d, i))
    });
    r.check(again.is_ok(), "after closing one, a new device fits");
    drop(again);
    live.clear();
    r.check(
        wait_until(Duration::from_secs(10), || {
            find_devices(TEST_VENDOR, TEST_DEVICE_UNBOUND).is_empty()
        }),
        "closing them all removes every device",
    );
}
