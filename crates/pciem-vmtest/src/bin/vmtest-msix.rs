//! Scenario: MSI-X with the vector table and PBA in BAR0 (1f0c:7e53, eight
//! entries). The test driver allocates every entry and counts interrupts
//! per entry; each entry is injected a different number of times and the
//! counts must match exactly. An entry the driver masks (its vector
//! control bit, in BAR memory) is held: its PBA bit is set and nothing is
//! delivered, until the driver unmasks it. The Function Mask (set and
//! cleared with setpci) holds every entry the same way. Bad requests fail
//! with an errno.
//!
//! x86 without interrupt remapping grants multi-message MSI only one
//! vector, so this is where delivery to several vectors is proven.

use std::path::Path;
use std::time::Duration;

use pciem_abi::{PCIEM_IRQ_AUTO, PCIEM_IRQ_FLAG_ASSERT, PCIEM_IRQ_MSI, PCIEM_IRQ_MSIX};
use pciem_core::config::{Bar, MsixCap};
use pciem_core::ConfigBuilder;
use pciem_vmtest::bringup::bring_up;
use pciem_vmtest::sysfs::{self, testdrv_irqs, wait_until};
use pciem_vmtest::sysfs::{irq_counts_steady as steady, wait_irq_counts as wait_counts};
use pciem_vmtest::{MappedBar, Report, TESTDRV, TEST_VENDOR};

const DEVICE: u16 = 0x7e53;
const ENTRIES: u32 = 8;
const TABLE: usize = 0x800;
const PBA: usize = 0xC00;

fn pba_bit(bar0: &MappedBar, entry: u32) -> bool {
    bar0.read32(PBA + 4 * (entry as usize / 32)) & (1 << (entry % 32)) != 0
}

fn entry_masked(bar0: &MappedBar, entry: u32) -> bool {
    bar0.read32(TABLE + 16 * entry as usize + 12) & 1 != 0
}

fn main() {
    let mut r = Report::new("msix");
    r.check(
        sysfs::modules_loaded(),
        "pciem.ko and pciem_testdrv.ko are loaded",
    );
    let space = ConfigBuilder::new(TEST_VENDOR, DEVICE)
        .class(0x0b, 0x40, 0x00)
        .bar(0, Bar::memory32(4096))
        .msix(MsixCap {
            table_size: ENTRIES,
            table_bar: 0,
            table_offset: TABLE as u32,
            pba_bar: 0,
            pba_offset: PBA as u32,
        })
        .build();
    let Some((dev, inst, path)) = bring_up(&mut r, space, DEVICE) else {
        r.finish()
    };
    let kind = sysfs::read_trim(&path.join("irq_kind")).unwrap_or_default();
    r.check(kind == "msix", format!("the driver uses MSI-X ({kind})"));
    let Some(bar0) = r.step("mmap BAR0", inst.map_bar(0, 4096)) else {
        r.finish()
    };
    let mut want = vec![0u64; ENTRIES as usize];
    r.check(
        testdrv_irqs(&path) == want,
        format!(
            "the driver counts {ENTRIES} entries, all zero ({:?})",
            testdrv_irqs(&path)
        ),
    );
    r.check(
        (0..ENTRIES).all(|e| !entry_masked(&bar0, e)),
        "the driver unmasked every entry in the table (BAR memory)",
    );

    // Entry e injected e + 1 times, one at a time.
    let mut ok = true;
    for e in 0..ENTRIES {
        for _ in 0..=e {
            ok &= dev.inject(PCIEM_IRQ_MSIX, e, 0).is_ok();
            want[e as usize] += 1;
            ok &= wait_counts(&path, &want);
        }
    }
    r.check(
        ok,
        format!(
            "entry e injected e+1 times: counts per entry {:?}",
            testdrv_irqs(&path)
        ),
    );

    // Per-entry mask: held in the PBA, delivered on unmask.
    r.step(
        "the driver masks entry 3",
        std::fs::write(path.join("mask_vec"), "3"),
    );
    r.check(
        entry_masked(&bar0, 3),
        "entry 3's mask bit is set in the table",
    );
    r.step(
        "INJECT_IRQ MSI-X entry 3 (masked)",
        dev.inject(PCIEM_IRQ_MSIX, 3, 0),
    );
    r.check(
        steady(&path, &want),
        "nothing is delivered while entry 3 is masked",
    );
    r.check(pba_bit(&bar0, 3), "entry 3's PBA bit is set");
    r.check(
        (0..ENTRIES).filter(|&e| e != 3).all(|e| !pba_bit(&bar0, e)),
        "no other PBA bit is set",
    );
    r.step(
        "INJECT_IRQ MSI-X entry 4 (not masked)",
        dev.inject(PCIEM_IRQ_MSIX, 4, 0),
    );
    want[4] += 1;
    r.check(
        wait_counts(&path, &want),
        "entry 4 is delivered while entry 3 is masked",
    );
    r.step(
        "the driver unmasks entry 3",
        std::fs::write(path.join("unmask_vec"), "3"),
    );
    want[3] += 1;
    r.check(
        wait_counts(&path, &want),
        format!(
            "the held entry 3 is delivered on unmask ({:?})",
            testdrv_irqs(&path)
        ),
    );
    r.check(!pba_bit(&bar0, 3), "entry 3's PBA bit is cleared");
    r.check(steady(&path, &want), "and delivered exactly once");

    // Function Mask, set and cleared with setpci.
    let cap = sysfs::find_capability(&path, 0x11);
    r.check(
        cap.is_some(),
        format!("the MSI-X capability is found at {cap:x?}"),
    );
    let ctrl = cap.map(|c| format!("{:x}.w", c + 2)).unwrap_or_default();
    let (ok, out) = sysfs::setpci(&path, &format!("{ctrl}=4000:4000"));
    r.check(ok, format!("setpci sets the Function Mask {out}"));
    r.step(
        "INJECT_IRQ MSI-X entry 1 (function masked)",
        dev.inject(PCIEM_IRQ_MSIX, 1, 0),
    );
    r.check(
        steady(&path, &want),
        "nothing is delivered while the function is masked",
    );
    r.check(pba_bit(&bar0, 1), "entry 1's PBA bit is set");
    let (ok, out) = sysfs::setpci(&path, &format!("{ctrl}=0000:4000"));
    r.check(ok, format!("setpci clears the Function Mask {out}"));
    want[1] += 1;
    r.check(
        wait_counts(&path, &want),
        "entry 1 is delivered when the Function Mask clears",
    );
    r.check(!pba_bit(&bar0, 1), "entry 1's PBA bit is cleared");

    // AUTO picks MSI-X once the driver enabled it.
    r.step("INJECT_IRQ AUTO vector 6", dev.inject(PCIEM_IRQ_AUTO, 6, 0));
    want[6] += 1;
    r.check(wait_counts(&path, &want), "AUTO delivered MSI-X entry 6");

    let einval = |res: std::io::Result<()>| res.err().and_then(|e| e.raw_os_error());
    r.check(
        einval(dev.inject(PCIEM_IRQ_MSIX, ENTRIES, 0)) == Some(libc::EINVAL),
        "entry 8 of an 8-entry table: EINVAL",
    );
    r.check(
        einval(dev.inject(PCIEM_IRQ_MSIX, 0, PCIEM_IRQ_FLAG_ASSERT)) == Some(libc::EINVAL),
        "INTx flags on MSI-X: EINVAL",
    );
    r.check(
        einval(dev.inject(PCIEM_IRQ_MSI, 0, 0)) == Some(libc::EOPNOTSUPP),
        "MSI on a device without MSI: EOPNOTSUPP",
    );
    r.check(
        einval(dev.inject(9, 0, 0)) == Some(libc::EINVAL),
        "unknown kind 9: EINVAL",
    );
    r.check(steady(&path, &want), "refused requests delivered nothing");

    // Unbound: MSI-X is off, injection is refused.
    let name = sysfs::pci_name(&path);
    let drv = Path::new("/sys/bus/pci/drivers").join(TESTDRV);
    r.step(
        "unbind the driver",
        std::fs::write(drv.join("unbind"), &name),
    );
    r.check(
        einval(dev.inject(PCIEM_IRQ_MSIX, 0, 0)) == Some(libc::EIO),
        "MSI-X injection without a driver: EIO",
    );
    r.step("bind it again", std::fs::write(drv.join("bind"), &name));
    let zero = vec![0u64; ENTRIES as usize];
    r.check(
        wait_until(Duration::from_secs(3), || testdrv_irqs(&path) == zero),
        "the rebound driver counts from zero",
    );
    r.step("INJECT_IRQ MSI-X entry 7", dev.inject(PCIEM_IRQ_MSIX, 7, 0));
    let mut want = zero;
    want[7] = 1;
    r.check(wait_counts(&path, &want), "the rebound driver gets entry 7");
    r.finish()
}
