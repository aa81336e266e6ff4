//! Scenario: INTx with level semantics (1f0c:7e54, interrupt pin A, no
//! MSI). The test driver's handler acknowledges as uio_pci_generic does:
//! if the status register's Interrupt Status bit is set it sets Interrupt
//! Disable and counts; `intx_enable` clears Interrupt Disable again. So:
//! asserting runs the handler once; while the line stays asserted each
//! re-enable runs it again (the line is level); deasserting clears the
//! status bit and stops it; an assert while Interrupt Disable is set (by
//! setpci) is held until it clears; a line masked by the irq core
//! (disable_irq) is delivered on enable_irq; a handler that returns while
//! the line is still asserted runs again.

use std::path::Path;
use std::time::Duration;

use pciem_abi::{
    PCIEM_IRQ_AUTO, PCIEM_IRQ_FLAG_ASSERT, PCIEM_IRQ_FLAG_DEASSERT, PCIEM_IRQ_INTX, PCIEM_IRQ_MSI,
    PCIEM_IRQ_MSIX,
};
use pciem_core::config::Bar;
use pciem_core::ConfigBuilder;
use pciem_vmtest::bringup::bring_up;
use pciem_vmtest::sysfs::{self, config_read, testdrv_irqs, wait_until};
use pciem_vmtest::{Dev, Report, TEST_VENDOR};

const DEVICE: u16 = 0x7e54;

fn count(path: &Path) -> u64 {
    testdrv_irqs(path).first().copied().unwrap_or(u64::MAX)
}

fn status_bit(path: &Path) -> bool {
    config_read(path, 6, 2).is_some_and(|s| s & 0x8 != 0)
}

fn intx_disabled(path: &Path) -> bool {
    config_read(path, 4, 2).is_some_and(|c| c & 0x400 != 0)
}

fn reaches(path: &Path, n: u64) -> bool {
    wait_until(Duration::from_secs(3), || count(path) == n)
}

fn stays(path: &Path, n: u64) -> bool {
    std::thread::sleep(Duration::from_millis(200));
    count(path) == n
}

fn main() {
    let mut r = Report::new("intx");
    r.check(
        sysfs::modules_loaded(),
        "pciem.ko and pciem_testdrv.ko are loaded",
    );
    let space = ConfigBuilder::new(TEST_VENDOR, DEVICE)
        .class(0x0b, 0x40, 0x00)
        .bar(0, Bar::memory32(4096))
        .interrupt_pin(1)
        .build();
    let Some((dev, _inst, path)) = bring_up(&mut r, space, DEVICE) else {
        r.finish()
    };
    let kind = sysfs::read_trim(&path.join("irq_kind")).unwrap_or_default();
    r.check(kind == "intx", format!("the driver uses INTx ({kind})"));
    let irq = sysfs::read_hex(&path.join("irq")).unwrap_or(0);
    r.check(irq > 0, format!("the device has a Linux irq ({irq})"));
    r.check(
        count(&path) == 0 && !status_bit(&path) && !intx_disabled(&path),
        "no interrupt yet, Interrupt Status clear, Interrupt Disable clear",
    );

    r.step(
        "INJECT_IRQ INTx assert",
        dev.inject(PCIEM_IRQ_INTX, 0, PCIEM_IRQ_FLAG_ASSERT),
    );
    r.check(reaches(&path, 1), "the handler ran once");
    r.check(status_bit(&path), "Interrupt Status is set while asserted");
    r.check(
        intx_disabled(&path),
        "the handler set Interrupt Disable to acknowledge",
    );
    r.check(stays(&path, 1), "no storm: masked at the function");

    r.step(
        "driver re-enables INTx",
        std::fs::write(path.join("intx_enable"), "1"),
    );
    r.check(
        reaches(&path, 2),
        "still asserted: the handler runs again (level)",
    );

    r.step(
        "INJECT_IRQ INTx deassert",
        dev.inject(PCIEM_IRQ_INTX, 0, PCIEM_IRQ_FLAG_DEASSERT),
    );
    r.check(!status_bit(&path), "Interrupt Status clears on deassert");
    r.step(
        "driver re-enables INTx",
        std::fs::write(path.join("intx_enable"), "1"),
    );
    r.check(
        stays(&path, 2) && !intx_disabled(&path),
        "deasserted: re-enabling runs nothing",
    );

    // Interrupt Disable set from outside: the assert is held.
    let (ok, out) = sysfs::setpci(&path, "COMMAND=0400:0400");
    r.check(
        ok && intx_disabled(&path),
        format!("setpci sets Interrupt Disable {out}"),
    );
    r.step(
        "INJECT_IRQ INTx assert (disabled)",
        dev.inject(PCIEM_IRQ_INTX, 0, 0),
    );
    r.check(
        stays(&path, 2) && status_bit(&path),
        "held while disabled, but Interrupt Status shows it",
    );
    let (ok, out) = sysfs::setpci(&path, "COMMAND=0000:0400");
    r.check(ok, format!("setpci clears Interrupt Disable {out}"));
    r.check(
        reaches(&path, 3),
        "the held interrupt runs when Interrupt Disable clears",
    );
    r.step(
        "deassert",
        dev.inject(PCIEM_IRQ_INTX, 0, PCIEM_IRQ_FLAG_DEASSERT),
    );
    r.step("re-enable", std::fs::write(path.join("intx_enable"), "1"));

    // Masked by the irq core (disable_irq): delivered on enable_irq.
    r.step(
        "driver masks its irq",
        std::fs::write(path.join("mask_vec"), "0"),
    );
    r.step("INJECT_IRQ AUTO (INTx)", dev.inject(PCIEM_IRQ_AUTO, 0, 0));
    r.check(stays(&path, 3), "nothing runs while the irq is masked");
    r.step(
        "driver unmasks its irq",
        std::fs::write(path.join("unmask_vec"), "0"),
    );
    r.check(reaches(&path, 4), "the asserted line runs on unmask");
    r.step(
        "deassert",
        dev.inject(PCIEM_IRQ_INTX, 0, PCIEM_IRQ_FLAG_DEASSERT),
    );

    // A handler that returns with the line still asserted runs again at
    // once: with intx_burst 3 it acknowledges only on its third run.
    r.step(
        "driver acknowledges every 3rd run",
        std::fs::write(path.join("intx_burst"), "3"),
    );
    r.step("re-enable", std::fs::write(path.join("intx_enable"), "1"));
    r.step("INJECT_IRQ INTx assert", dev.inject(PCIEM_IRQ_INTX, 0, 0));
    r.check(
        reaches(&path, 7) && stays(&path, 7),
        format!(
            "one assertion, three handler runs while it stayed asserted ({})",
            count(&path)
        ),
    );
    r.step(
        "deassert",
        dev.inject(PCIEM_IRQ_INTX, 0, PCIEM_IRQ_FLAG_DEASSERT),
    );
    r.step(
        "burst back to 1",
        std::fs::write(path.join("intx_burst"), "1"),
    );

    let errno = |res: std::io::Result<()>| res.err().and_then(|e| e.raw_os_error());
    r.check(
        errno(dev.inject(PCIEM_IRQ_INTX, 1, 0)) == Some(libc::EINVAL),
        "INTx vector 1: EINVAL",
    );
    r.check(
        errno(dev.inject(
            PCIEM_IRQ_INTX,
            0,
            PCIEM_IRQ_FLAG_ASSERT | PCIEM_IRQ_FLAG_DEASSERT,
        )) == Some(libc::EINVAL),
        "ASSERT and DEASSERT together: EINVAL",
    );
    r.check(
        errno(dev.inject(PCIEM_IRQ_INTX, 0, 0x80)) == Some(libc::EINVAL),
        "unknown INTx flag: EINVAL",
    );
    r.check(
        errno(dev.inject(PCIEM_IRQ_MSI, 0, 0)) == Some(libc::EOPNOTSUPP),
        "MSI on a device without MSI: EOPNOTSUPP",
    );
    r.check(
        errno(dev.inject(PCIEM_IRQ_MSIX, 0, 0)) == Some(libc::EOPNOTSUPP),
        "MSI-X on a device without MSI-X: EOPNOTSUPP",
    );
    r.check(stays(&path, 7), "refused requests ran nothing");

    // A device without an interrupt pin has no INTx.
    let nopin = ConfigBuilder::new(TEST_VENDOR, 0x7e5d)
        .bar(0, Bar::memory32(4096))
        .build();
    if let (Some(space), Some(d2)) = (
        r.step("build a device without a pin", nopin),
        r.step("open /dev/pciem", Dev::open()),
    ) {
        r.step("SET_CONFIG_IMAGE", d2.set_image(space.image()));
        if let Some(_i2) = r.step("REGISTER", d2.register()) {
            r.check(
                errno(d2.inject(PCIEM_IRQ_INTX, 0, 0)) == Some(libc::EOPNOTSUPP),
                "INTx on a device without an interrupt pin: EOPNOTSUPP",
            );
            r.check(
                errno(d2.inject(PCIEM_IRQ_AUTO, 0, 0)) == Some(libc::EIO),
                "AUTO with nothing enabled: EIO",
            );
        }
    }
    r.finish()
}
