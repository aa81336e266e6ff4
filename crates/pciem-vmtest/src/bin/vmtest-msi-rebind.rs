//! Scenario: an MSI vector held while masked reaches the driver that
//! unmasks it, even when that is a new driver instance with new Linux irqs
//! (issue 17: pciem.ko delivered it through the irq number cached at the
//! injection, which after a rebind is gone or another device's).
//!
//! Device A (1f0c:7e50, one maskable MSI vector) is bound to the test
//! driver; vector 0 is masked behind the driver's back (setpci on the Mask
//! Bits) and injected, so its Pending bit is set. The driver unbinds (its
//! irq is freed), device B (1f0c:7e51, one MSI vector) is brought up and
//! bound, which may take the freed irq number, and A's driver binds again:
//! its request_irq() unmasks vector 0. The pending interrupt must reach A's
//! new handler, once, and nothing may reach B.

use std::path::Path;

use pciem_abi::PCIEM_IRQ_MSI;
use pciem_core::config::{Bar, MsiCap};
use pciem_core::ConfigBuilder;
use pciem_vmtest::bringup::bring_up;
use pciem_vmtest::sysfs::{self, config_read, pci_name, setpci, testdrv_irqs, wait_until};
use pciem_vmtest::sysfs::{irq_counts_steady as steady, wait_irq_counts as wait_counts};
use pciem_vmtest::{Report, TESTDRV, TEST_DEVICE_IOMAP, TEST_DEVICE_IOREMAP, TEST_VENDOR};

/// The Linux irqs of the device's MSI vectors (`msi_irqs/`), sorted.
fn msi_irqs(dev: &Path) -> Vec<u32> {
    let mut irqs: Vec<u32> = std::fs::read_dir(dev.join("msi_irqs"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    irqs.sort_unstable();
    irqs
}

fn main() {
    let mut r = Report::new("msi-rebind");
    r.check(
        sysfs::modules_loaded(),
        "pciem.ko and pciem_testdrv.ko are loaded",
    );
    let space = |device| {
        ConfigBuilder::new(TEST_VENDOR, device)
            .class(0x0b, 0x40, 0x00)
            .bar(0, Bar::memory32(4096))
            .msi(MsiCap::new(1).maskable(true))
            .build()
    };
    let Some((dev_a, _inst_a, a)) = bring_up(&mut r, space(TEST_DEVICE_IOMAP), TEST_DEVICE_IOMAP)
    else {
        r.finish()
    };
    let Some(msi) = sysfs::find_capability(&a, 0x05) else {
        r.check(false, "MSI capability found");
        r.finish()
    };
    // 64-bit maskable layout: Mask Bits at +0x10, Pending Bits at +0x14.
    let pending = |p: &Path| config_read(p, msi + 0x14, 4).unwrap_or(0);
    r.step("INJECT_IRQ MSI 0", dev_a.inject(PCIEM_IRQ_MSI, 0, 0));
    r.check(wait_counts(&a, &[1]), "delivered to A's driver");

    let mask = format!("{:x}.l=1", msi + 0x10);
    let (ok, out) = setpci(&a, &mask);
    r.check(ok, format!("setpci {mask} (mask vector 0) {out}"));
    r.step(
        "INJECT_IRQ MSI 0 (masked)",
        dev_a.inject(PCIEM_IRQ_MSI, 0, 0),
    );
    r.check(steady(&a, &[1]), "nothing delivered while masked");
    r.check(pending(&a) & 1 == 1, "Pending Bit 0 is set");
    let old_irqs = msi_irqs(&a);

    let name = pci_name(&a);
    let drivers = format!("/sys/bus/pci/drivers/{TESTDRV}");
    r.step(
        format!("unbind {name}"),
        std::fs::write(format!("{drivers}/unbind"), &name),
    );
    r.check(sysfs::driver_of(&a).is_none(), "A has no driver");
    r.check(pending(&a) & 1 == 1, "Pending Bit 0 survives the unbind");

    let Some((_dev_b, _inst_b, b)) =
        bring_up(&mut r, space(TEST_DEVICE_IOREMAP), TEST_DEVICE_IOREMAP)
    else {
        r.finish()
    };
    let b_irqs = msi_irqs(&b);
    println!(
        "A's irq before the rebind: {old_irqs:?}; B's: {b_irqs:?}{}",
        if b_irqs.iter().any(|i| old_irqs.contains(i)) {
            " (B took A's old irq)"
        } else {
            ""
        }
    );

    r.step(
        format!("bind {name} again"),
        std::fs::write(format!("{drivers}/bind"), &name),
    );
    r.check(
        wait_until(std::time::Duration::from_secs(3), || {
            sysfs::driver_of(&a).as_deref() == Some(TESTDRV)
        }),
        "A bound again",
    );
    println!("A's irq after the rebind: {:?}", msi_irqs(&a));
    r.check(
        wait_counts(&a, &[1]),
        format!(
            "the pending vector reached A's new handler: {:?}",
            testdrv_irqs(&a)
        ),
    );
    r.check(steady(&a, &[1]), "once");
    r.check(
        testdrv_irqs(&b) == [0],
        format!("nothing reached B: {:?}", testdrv_irqs(&b)),
    );
    r.check(pending(&a) & 1 == 0, "Pending Bit 0 is cleared");
    r.finish()
}
