//! Scenario: multi-message MSI with per-vector masking (1f0c:7e50, four
//! vectors capable, maskable). The test driver asks for as many vectors as
//! it can get and counts per vector; every granted vector is injected a
//! different number of times. A vector the driver masks (disable_irq, which
//! writes the Mask Bits register) is held: its Pending bit is set in config
//! space and it is delivered, once, when the driver unmasks it.
//!
//! x86 without interrupt remapping grants a multi-message MSI device only
//! one vector; the scenario prints what was granted and checks every one
//! (multi-vector delivery is proven with MSI-X in vmtest-msix).

use std::path::Path;

use pciem_abi::PCIEM_IRQ_MSI;
use pciem_core::config::{Bar, MsiCap};
use pciem_core::ConfigBuilder;
use pciem_vmtest::bringup::bring_up;
use pciem_vmtest::sysfs::{self, config_read, testdrv_irqs};
use pciem_vmtest::sysfs::{irq_counts_steady as steady, wait_irq_counts as wait_counts};
use pciem_vmtest::{Report, TEST_DEVICE_IOMAP, TEST_VENDOR};

fn main() {
    let mut r = Report::new("msi");
    r.check(
        sysfs::modules_loaded(),
        "pciem.ko and pciem_testdrv.ko are loaded",
    );
    let space = ConfigBuilder::new(TEST_VENDOR, TEST_DEVICE_IOMAP)
        .class(0x0b, 0x40, 0x00)
        .bar(0, Bar::memory32(4096))
        .msi(MsiCap::new(4).maskable(true))
        .build();
    let Some((dev, _inst, path)) = bring_up(&mut r, space, TEST_DEVICE_IOMAP) else {
        r.finish()
    };
    let Some(msi) = sysfs::find_capability(&path, 0x05) else {
        r.check(false, "MSI capability found");
        r.finish()
    };
    let ctl = config_read(&path, msi + 2, 2).unwrap_or(0);
    let enabled = 1u32 << ((ctl >> 4) & 7);
    let granted = testdrv_irqs(&path).len();
    println!("the PCI core granted {granted} of 4 MSI vectors (Multiple Message Enable {enabled})");
    r.check(
        ctl & 1 == 1 && granted >= 1 && granted as u32 <= enabled,
        format!("MSI enabled with {granted} vector(s) in use, {enabled} enabled"),
    );

    let mut want = vec![0u64; granted];
    let mut ok = true;
    for v in 0..granted {
        for _ in 0..=v {
            ok &= dev.inject(PCIEM_IRQ_MSI, v as u32, 0).is_ok();
            want[v] += 1;
            ok &= wait_counts(&path, &want);
        }
    }
    r.check(
        ok,
        format!("vector v injected v+1 times: {:?}", testdrv_irqs(&path)),
    );
    r.check(
        dev.inject(PCIEM_IRQ_MSI, enabled, 0)
            .err()
            .and_then(|e| e.raw_os_error())
            == Some(libc::EINVAL),
        format!("vector {enabled} (beyond those enabled): EINVAL"),
    );

    // 64-bit maskable layout: Mask Bits at +0x10, Pending Bits at +0x14.
    let mask = |p: &Path| config_read(p, msi + 0x10, 4).unwrap_or(0);
    let pending = |p: &Path| config_read(p, msi + 0x14, 4).unwrap_or(0);
    r.step(
        "the driver masks vector 0",
        std::fs::write(path.join("mask_vec"), "0"),
    );
    r.check(mask(&path) & 1 == 1, "Mask Bit 0 is set in config space");
    r.step(
        "INJECT_IRQ MSI vector 0 (masked)",
        dev.inject(PCIEM_IRQ_MSI, 0, 0),
    );
    r.check(steady(&path, &want), "nothing delivered while masked");
    r.check(pending(&path) & 1 == 1, "Pending Bit 0 is set");
    r.step(
        "the driver unmasks vector 0",
        std::fs::write(path.join("unmask_vec"), "0"),
    );
    want[0] += 1;
    r.check(wait_counts(&path, &want), "delivered on unmask");
    r.check(pending(&path) & 1 == 0, "Pending Bit 0 is cleared");
    r.check(steady(&path, &want), "and delivered exactly once");
    r.finish()
}
