//! Scenario: config writes that change state become CONFIG_WRITE events
//! (offset, size, value); FLR and D3hot→D0 become RESET events and reset
//! the function's configuration (BARs keep their addresses).
//!
//! First with `setpci` on a device no driver binds (1f0c:7e5f): command
//! register, a device-specific register the image makes writable, BAR0,
//! MSI enable, PM state (D3hot, then D0: a reset), Initiate FLR (a bit that
//! reads 0, so the write changes nothing and only RESET is reported), and
//! a write to a read-only register, which reports nothing. Then with the
//! test driver's own actions on 1f0c:7e55: enabling the device and MSI at
//! probe, an FLR through sysfs `reset`, a D3hot→D0 cycle, and unbinding;
//! MSI still works after each reset (the PCI core restored the state).

use std::path::Path;
use std::time::Duration;

use pciem_abi::{
    pciem_event, PCIEM_EVENT_CONFIG_WRITE, PCIEM_EVENT_RESET, PCIEM_IRQ_MSI, PCIEM_RESET_D3HOT_D0,
    PCIEM_RESET_FLR,
};
use pciem_core::config::{Bar, MsiCap, PcieCap, PmCap};
use pciem_core::{ConfigBuilder, ConfigWrite};
use pciem_vmtest::sysfs::{self, config_read, setpci, testdrv_irqs, wait_until};
use pciem_vmtest::{Dev, Report, Ring, TESTDRV, TEST_DEVICE_UNBOUND, TEST_VENDOR};

const BOUND: u16 = 0x7e55;
/// A device-specific register (outside every capability) made writable.
const DEVREG: u16 = 0xF0;

fn image(device: u16) -> Option<pciem_abi::pciem_config_image> {
    let space = ConfigBuilder::new(TEST_VENDOR, device)
        .class(0x0b, 0x40, 0x00)
        .bar(0, Bar::memory32(4096))
        .msi(MsiCap::new(1))
        .pm(PmCap::default())
        .pcie(PcieCap::endpoint(1, 1))
        .build()
        .ok()?;
    let mut img = space.into_image();
    let at = usize::from(DEVREG);
    img.wmask[at..at + 4].fill(0xFF);
    Some(img)
}

fn is_write(e: &pciem_event, offset: u16) -> bool {
    e.r#type == PCIEM_EVENT_CONFIG_WRITE && ConfigWrite::from_event(e).offset == offset
}

fn is_reset(e: &pciem_event, kind: u64) -> bool {
    e.r#type == PCIEM_EVENT_RESET && e.data == kind
}

/// Waits for a CONFIG_WRITE at `offset` and checks its width and value.
fn expect_write(r: &mut Report, ring: &Ring, what: &str, offset: u16, width: u8, value: u32) {
    let (ev, seen) = ring.wait_for(Duration::from_secs(2), |e| is_write(e, offset));
    match ev {
        Some(e) => r.check(
            ConfigWrite::from_event(&e)
                == ConfigWrite {
                    offset,
                    width,
                    value,
                }
                && e.data == u64::from(value),
            format!(
                "{what}: CONFIG_WRITE offset {offset:#x} width {width} value {value:#x} ({e:?})"
            ),
        ),
        None => r.check(
            false,
            format!("{what}: a CONFIG_WRITE at {offset:#x} (saw {seen:?})"),
        ),
    };
}

fn setpci_step(r: &mut Report, path: &Path, assignment: &str) {
    let (ok, out) = setpci(path, assignment);
    r.check(ok, format!("setpci {assignment} {out}"));
}

fn with_setpci(r: &mut Report) {
    println!("--- setpci on an unbound device");
    let Some(img) = image(TEST_DEVICE_UNBOUND) else {
        r.check(false, "pciem-core builds the image");
        return;
    };
    let Some(dev) = r.step("open /dev/pciem", Dev::open()) else {
        return;
    };
    let Some(ring) = r.step("mmap the event ring", dev.map_ring()) else {
        return;
    };
    r.step("SET_CONFIG_IMAGE", dev.set_image(&img));
    let Some(_inst) = r.step("REGISTER", dev.register()) else {
        return;
    };
    let Some(path) = sysfs::wait_device(TEST_VENDOR, TEST_DEVICE_UNBOUND, Duration::from_secs(5))
    else {
        r.check(false, "device 1f0c:7e5f visible");
        return;
    };
    r.check(sysfs::driver_of(&path).is_none(), "no driver is bound");
    let (Some(msi), Some(pm), Some(pcie)) = (
        sysfs::find_capability(&path, 0x05),
        sysfs::find_capability(&path, 0x01),
        sysfs::find_capability(&path, 0x10),
    ) else {
        r.check(false, "MSI, PM and PCIe capabilities found");
        return;
    };
    std::thread::sleep(Duration::from_millis(100));
    ring.drain();

    let cmd = config_read(&path, 4, 2).unwrap_or(0);
    setpci_step(r, &path, &format!("COMMAND={:04x}", cmd | 0x40));
    expect_write(r, &ring, "command register", 4, 2, cmd | 0x40);

    setpci_step(r, &path, &format!("{DEVREG:x}.l=deadbeef"));
    expect_write(r, &ring, "device-specific register", DEVREG, 4, 0xdead_beef);
    r.check(
        config_read(&path, DEVREG, 4) == Some(0xdead_beef),
        "the device-specific register holds the value",
    );

    let bar0 = config_read(&path, 0x10, 4).unwrap_or(0);
    setpci_step(r, &path, "BASE_ADDRESS_0=ffffffff");
    expect_write(r, &ring, "BAR0 sizing", 0x10, 4, 0xffff_ffff);
    r.check(
        config_read(&path, 0x10, 4) == Some(0xffff_f000),
        "BAR0 reads back its 4K size mask",
    );
    setpci_step(r, &path, &format!("BASE_ADDRESS_0={bar0:08x}"));
    expect_write(r, &ring, "BAR0 restored", 0x10, 4, bar0);

    setpci_step(r, &path, &format!("{:x}.w=1:1", msi + 2));
    let ctl = config_read(&path, msi + 2, 2).unwrap_or(0);
    r.check(ctl & 1 == 1, "MSI Enable is set");
    expect_write(r, &ring, "MSI enable", msi + 2, 2, ctl);

    ring.drain();
    setpci_step(r, &path, "VENDOR_ID=1111");
    let (ev, _) = ring.wait_for(Duration::from_millis(300), |e| {
        e.r#type == PCIEM_EVENT_CONFIG_WRITE
    });
    r.check(
        ev.is_none() && config_read(&path, 0, 2) == Some(TEST_VENDOR as u32),
        "a write to the read-only vendor ID changes nothing and reports nothing",
    );

    // D3hot, then D0: a reset.
    setpci_step(r, &path, &format!("{:x}.w=3:3", pm + 4));
    expect_write(r, &ring, "PM state D3hot", pm + 4, 2, 3);
    setpci_step(r, &path, &format!("{:x}.w=0:3", pm + 4));
    expect_write(r, &ring, "PM state D0", pm + 4, 2, 0);
    let (ev, seen) = ring.wait_for(Duration::from_secs(2), |e| {
        is_reset(e, PCIEM_RESET_D3HOT_D0)
    });
    r.check(
        ev.is_some(),
        format!("D3hot→D0 without No_Soft_Reset: RESET D3HOT_D0 (saw {seen:?})"),
    );
    r.check(
        config_read(&path, 4, 2) == Some(0)
            && config_read(&path, DEVREG, 4) == Some(0)
            && config_read(&path, msi + 2, 2).is_some_and(|c| c & 1 == 0),
        "the reset restored command, MSI control and the device register",
    );
    r.check(
        config_read(&path, 0x10, 4) == Some(bar0),
        "BAR0 kept its address",
    );

    // Initiate FLR reads as 0: nothing changes, RESET is still reported.
    setpci_step(r, &path, &format!("COMMAND={:04x}", 0x40));
    ring.drain();
    setpci_step(r, &path, &format!("{:x}.w=8000:8000", pcie + 8));
    let (ev, seen) = ring.wait_for(Duration::from_secs(2), |e| is_reset(e, PCIEM_RESET_FLR));
    r.check(ev.is_some(), format!("Initiate FLR: RESET FLR ({seen:?})"));
    r.check(
        !seen.iter().any(|e| is_write(e, pcie + 8)),
        "and no CONFIG_WRITE for a write that changed no bit",
    );
    r.check(
        config_read(&path, 4, 2) == Some(0),
        "the FLR restored the command register",
    );
    r.check(ring.overflow() == 0, "no ring overflow");
}

fn with_driver(r: &mut Report) {
    println!("--- driver actions on 1f0c:{BOUND:04x}");
    let Some(img) = image(BOUND) else {
        r.check(false, "pciem-core builds the image");
        return;
    };
    let Some(dev) = r.step("open /dev/pciem", Dev::open()) else {
        return;
    };
    let Some(ring) = r.step("mmap the event ring", dev.map_ring()) else {
        return;
    };
    r.step("SET_CONFIG_IMAGE", dev.set_image(&img));
    let Some(_inst) = r.step("REGISTER", dev.register()) else {
        return;
    };
    let Some(path) = sysfs::wait_device(TEST_VENDOR, BOUND, Duration::from_secs(5)) else {
        r.check(false, "device visible");
        return;
    };
    r.check(
        wait_until(Duration::from_secs(3), || {
            sysfs::driver_of(&path).as_deref() == Some(TESTDRV)
        }),
        "the test driver is bound",
    );
    let Some(msi) = sysfs::find_capability(&path, 0x05) else {
        r.check(false, "MSI capability found");
        return;
    };
    let Some(pm) = sysfs::find_capability(&path, 0x01) else {
        r.check(false, "PM capability found");
        return;
    };

    let (ev, _) = ring.wait_for(Duration::from_secs(2), |e| {
        is_write(e, 4) && e.data & 0x6 == 0x6
    });
    r.check(
        ev.is_some_and(|e| e.size == 2),
        "probe: CONFIG_WRITE enabling memory and bus mastering",
    );
    let (ev, _) = ring.wait_for(Duration::from_secs(2), |e| {
        is_write(e, msi + 2) && e.data & 1 == 1
    });
    r.check(ev.is_some(), "probe: CONFIG_WRITE enabling MSI");

    let irqs = |p: &Path| testdrv_irqs(p).first().copied().unwrap_or(u64::MAX);
    let mut n = irqs(&path);
    let mut msi_works = |r: &mut Report, what: &str| {
        let ok = dev.inject(PCIEM_IRQ_MSI, 0, 0).is_ok()
            && wait_until(Duration::from_secs(3), || irqs(&path) == n + 1);
        n += 1;
        r.check(ok, format!("MSI is delivered {what}"));
    };
    msi_works(r, "before any reset");

    ring.drain();
    r.step(
        "FLR through sysfs reset",
        std::fs::write(path.join("reset"), "1"),
    );
    let (ev, seen) = ring.wait_for(Duration::from_secs(3), |e| is_reset(e, PCIEM_RESET_FLR));
    r.check(
        ev.is_some(),
        format!("RESET FLR event ({} events seen)", seen.len()),
    );
    let (ev, _) = ring.wait_for(Duration::from_secs(2), |e| {
        is_write(e, msi + 2) && e.data & 1 == 1
    });
    r.check(
        ev.is_some(),
        "the PCI core's restore re-enabled MSI (CONFIG_WRITE)",
    );
    msi_works(r, "after the FLR");

    ring.drain();
    r.step(
        "driver cycles D3hot→D0",
        std::fs::write(path.join("d3_cycle"), "1"),
    );
    let (ev, seen) = ring.wait_for(Duration::from_secs(3), |e| {
        is_write(e, pm + 4) && e.data & 3 == 3
    });
    r.check(
        ev.is_some(),
        format!("CONFIG_WRITE of PMCSR to D3hot ({} events)", seen.len()),
    );
    let (ev, _) = ring.wait_for(Duration::from_secs(3), |e| {
        is_reset(e, PCIEM_RESET_D3HOT_D0)
    });
    r.check(ev.is_some(), "RESET D3HOT_D0 event");
    msi_works(r, "after D3hot→D0");

    ring.drain();
    let name = sysfs::pci_name(&path);
    let drv = Path::new("/sys/bus/pci/drivers").join(TESTDRV);
    r.step(
        "unbind the driver",
        std::fs::write(drv.join("unbind"), &name),
    );
    let (ev, seen) = ring.wait_for(Duration::from_secs(2), |e| {
        is_write(e, msi + 2) && e.data & 1 == 0
    });
    r.check(
        ev.is_some(),
        format!("unbind: CONFIG_WRITE disabling MSI ({} events)", seen.len()),
    );
    let (ev, _) = ring.wait_for(Duration::from_secs(2), |e| {
        is_write(e, 4) && e.data & 0x4 == 0
    });
    r.check(ev.is_some(), "unbind: CONFIG_WRITE clearing bus mastering");
    r.check(ring.overflow() == 0, "no ring overflow");
}

fn main() {
    let mut r = Report::new("config-events");
    r.check(
        sysfs::modules_loaded(),
        "pciem.ko and pciem_testdrv.ko are loaded",
    );
    with_setpci(&mut r);
    with_driver(&mut r);
    r.finish()
}
