//! Scenario: DMA issued by the device process against memory a real driver
//! (`pciem_dmadrv.ko`) allocated with the DMA API.
//!
//! Every transfer is checked on both sides: what the device reads must be
//! what the driver's CPU view holds (written through the driver's sysfs
//! binary files), and what the device writes must show up there, with the
//! bytes around it untouched. Then the seven atomics against hand-computed
//! values, PRP transfers (PRP1 only, PRP2 as the second page, a chained
//! list), peer-to-peer inside the `p2p_regions=` whitelist, and each bad
//! request with the errno it must get.
//!
//! Run as `vmtest-dma ADDR:SIZE POOL`: the carved-out `p2p_regions=` entry
//! pciem.ko was loaded with, then its second entry, the BAR pool (so a
//! peer PCIem device's BAR is a legal P2P target).

mod atomics;
mod p2p;
mod prp;

use std::path::{Path, PathBuf};
use std::time::Duration;

use pciem_abi::{pciem_dma_op, PCIEM_ATOMIC_FETCH_ADD, PCIEM_DMA_MAX_LEN, PCIEM_IOCTL_DMA_READ};
use pciem_vmtest::dmadrv::{errno, pattern, Buf};
use pciem_vmtest::sysfs::{self, driver_of, parse_num, wait_device, wait_until};
use pciem_vmtest::{Dev, Report, DMADRV, TEST_DEVICE_DMA, TEST_DEVICE_UNBOUND, TEST_VENDOR};

/// Bytes in a page (PRP layout and transfer sizes).
pub const PAGE: u64 = 4096;
/// A bus address far above any RAM the VM has.
pub const UNMAPPED: u64 = 1 << 46;

/// Read and write `len` bytes at `off` of `b`, checking both sides.
fn transfer(r: &mut Report, dev: &Dev, b: &Buf, off: u64, len: usize, seed: u64) {
    let what = format!("{} +{off:#x} len {len}", b.name);
    let host = pattern(seed, len);
    if r.step(format!("{what}: driver fills"), b.cpu_write(off, &host))
        .is_none()
    {
        return;
    }
    let mut got = vec![0u8; len];
    let res = dev.dma_read(b.addr + off, &mut got);
    r.check(
        res.is_ok() && got == host,
        format!("{what}: DMA_READ returns the driver's bytes ({res:?})"),
    );

    let before = (off > 0).then(|| b.cpu_read(off - 1, 1).ok()).flatten();
    let end = off + len as u64;
    let after = (end < b.size).then(|| b.cpu_read(end, 1).ok()).flatten();
    let dev_data = pattern(seed ^ 0xd00d, len);
    let res = dev.dma_write(b.addr + off, &dev_data);
    let seen = b.cpu_read(off, len).unwrap_or_default();
    r.check(
        res.is_ok() && seen == dev_data,
        format!("{what}: DMA_WRITE lands in the driver's buffer ({res:?})"),
    );
    let before_now = (off > 0).then(|| b.cpu_read(off - 1, 1).ok()).flatten();
    let after_now = (end < b.size).then(|| b.cpu_read(end, 1).ok()).flatten();
    r.check(
        before == before_now && after == after_now,
        format!("{what}: the bytes just outside are untouched"),
    );
}

fn transfers(r: &mut Report, dev: &Dev, b: &Buf) {
    let cases = [
        (0, 1),
        (PAGE - 3, 7),
        (0, PAGE as usize),
        (PAGE - 1, PAGE as usize + 2),
        (100, 3 * PAGE as usize + 123),
        (0, b.size as usize),
    ];
    for (i, (off, len)) in cases.into_iter().enumerate() {
        transfer(r, dev, b, off, len, b.addr ^ i as u64);
    }
}

/// Malformed plain DMA requests.
fn bad_dma(r: &mut Report, dev: &Dev, b: &Buf) {
    let mut buf = vec![0u8; 64];
    let res = dev.dma_read(UNMAPPED, &mut buf);
    r.check(
        errno(&res) == Some(libc::EFAULT),
        format!(
            "DMA_READ of an unmapped bus address -> EFAULT, refused by the DMA check ({res:?})"
        ),
    );
    let res = dev.dma_write(UNMAPPED, &buf);
    r.check(
        errno(&res) == Some(libc::EFAULT),
        format!(
            "DMA_WRITE to an unmapped bus address -> EFAULT, refused by the DMA check ({res:?})"
        ),
    );
    if let Ok(bar) = dev.bar_info(2) {
        let res = dev.dma_read(bar.bus_addr, &mut buf);
        r.check(
            errno(&res) == Some(libc::EFAULT),
            format!(
                "DMA_READ of a BAR (no DMA mapping) at {:#x} -> EFAULT ({res:?})",
                bar.bus_addr
            ),
        );
    }
    let res = dev.dma_read(b.addr, &mut []);
    r.check(
        errno(&res) == Some(libc::EINVAL),
        format!("zero-length DMA_READ -> EINVAL ({res:?})"),
    );
    let mut big = vec![0u8; PCIEM_DMA_MAX_LEN as usize + 1];
    let res = dev.dma_read(b.addr, &mut big);
    r.check(
        errno(&res) == Some(libc::EINVAL),
        format!("DMA_READ over PCIEM_DMA_MAX_LEN -> EINVAL ({res:?})"),
    );
    let res = dev.dma_write(b.addr, &big);
    r.check(
        errno(&res) == Some(libc::EINVAL),
        format!("DMA_WRITE over PCIEM_DMA_MAX_LEN -> EINVAL ({res:?})"),
    );
    drop(big);
    let res = dev.dma_read(u64::MAX - 10, &mut buf);
    r.check(
        errno(&res) == Some(libc::EINVAL),
        format!("DMA_READ whose bus range wraps -> EINVAL ({res:?})"),
    );
    let op = pciem_dma_op {
        bus_addr: b.addr,
        user_addr: buf.as_mut_ptr() as u64,
        length: 8,
        flags: 1,
        reserved: 0,
    };
    // SAFETY: the kernel writes at most 8 bytes into `buf`, which is live.
    let res = unsafe { dev.dma_raw(PCIEM_IOCTL_DMA_READ, &op) };
    r.check(
        errno(&res) == Some(libc::EINVAL),
        format!("DMA_READ with flags set -> EINVAL ({res:?})"),
    );
    let op = pciem_dma_op {
        bus_addr: b.addr,
        user_addr: 16,
        length: 8,
        flags: 0,
        reserved: 0,
    };
    // SAFETY: address 16 is in the never-mapped first page of the process:
    // the kernel's copy faults and writes nothing.
    let res = unsafe { dev.dma_raw(PCIEM_IOCTL_DMA_READ, &op) };
    r.check(
        errno(&res) == Some(libc::EFAULT),
        format!("DMA_READ into an unmapped user buffer -> EFAULT ({res:?})"),
    );
}

fn parse_region(arg: &str) -> Option<(u64, u64)> {
    let (a, s) = arg.split_once(':')?;
    let size = match s.strip_suffix('M') {
        Some(m) => parse_num(m)? << 20,
        None => match s.strip_suffix('K') {
            Some(k) => parse_num(k)? << 10,
            None => parse_num(s)?,
        },
    };
    Some((parse_num(a)?, size))
}

fn find_pdev(r: &mut Report) -> Option<PathBuf> {
    let pdev = wait_device(TEST_VENDOR, TEST_DEVICE_DMA, Duration::from_secs(10));
    r.check(pdev.is_some(), "the DMA test device is on the bus");
    let pdev = pdev?;
    // The driver's files appear after its probe, after the driver link.
    let bound = wait_until(Duration::from_secs(10), || {
        driver_of(&pdev).as_deref() == Some(DMADRV) && pdev.join("dma_prp").exists()
    });
    r.check(bound, "pciem_dmadrv bound to it");
    bound.then_some(pdev)
}

fn main() {
    let region = std::env::args().nth(1).and_then(|a| parse_region(&a));
    let pool = std::env::args().nth(2).and_then(|a| parse_region(&a));
    let mut r = Report::new("dma");
    r.check(
        sysfs::modules_loaded() && Path::new("/sys/bus/pci/drivers").join(DMADRV).exists(),
        "pciem.ko, pciem_testdrv.ko and pciem_dmadrv.ko are loaded",
    );

    // Before REGISTER there is no device to master the bus.
    if let Some(early) = r.step("open /dev/pciem", Dev::open()) {
        let _ = early.describe_test_device(TEST_DEVICE_DMA);
        let mut buf = [0u8; 8];
        let res = early.dma_read(0x1000, &mut buf);
        r.check(
            errno(&res) == Some(libc::ENODEV),
            format!("DMA_READ before REGISTER -> ENODEV ({res:?})"),
        );
    }

    // A device no driver binds to: Bus Master Enable stays clear, so it
    // may not touch host memory, as real hardware may not.
    if let Some(idle) = r.step("open /dev/pciem", Dev::open()) {
        let _ = idle.describe_test_device(TEST_DEVICE_UNBOUND);
        let inst = idle.register();
        r.check(inst.is_ok(), "register a device no driver binds");
        let mut buf = [0u8; 8];
        let res = idle.dma_read(0x1000, &mut buf);
        r.check(
            errno(&res) == Some(libc::EPERM),
            format!("DMA_READ without bus mastering -> EPERM ({res:?})"),
        );
        let res = idle.dma_atomic(0x1000, PCIEM_ATOMIC_FETCH_ADD, 1, 0);
        r.check(
            errno(&res) == Some(libc::EPERM),
            format!("DMA_ATOMIC without bus mastering -> EPERM ({res:?})"),
        );
        let peer = region.map_or(0, |(base, _)| base);
        let res = idle.p2p_read(peer, &mut buf);
        r.check(
            errno(&res) == Some(libc::EPERM),
            format!("P2P_READ without bus mastering -> EPERM ({res:?})"),
        );
    }

    let Some(dev) = r.step("open /dev/pciem", Dev::open()) else {
        r.finish()
    };
    let described = dev.describe_test_device(TEST_DEVICE_DMA);
    r.step("describe the DMA test device", described);
    let Some(_inst) = r.step("register it", dev.register()) else {
        r.finish()
    };
    let Some(pdev) = find_pdev(&mut r) else {
        r.finish()
    };
    let coherent = r.step("coherent buffer", Buf::open(&pdev, "coherent"));
    let stream = r.step("streaming buffer", Buf::open(&pdev, "stream"));
    let prp_buf = r.step("PRP pages", Buf::open(&pdev, "prp"));
    let (Some(coherent), Some(stream), Some(prp_buf)) = (coherent, stream, prp_buf) else {
        r.finish()
    };
    println!(
        "INFO: coherent {:#x}+{:#x}, stream {:#x}+{:#x}, prp {:#x}+{:#x}",
        coherent.addr, coherent.size, stream.addr, stream.size, prp_buf.addr, prp_buf.size
    );

    transfers(&mut r, &dev, &coherent);
    transfers(&mut r, &dev, &stream);
    atomics::atomics(&mut r, &dev, &coherent);
    atomics::atomic_race(&mut r, &dev, &coherent, &pdev);
    let res = stream.cpu_write(8, &40u64.to_le_bytes());
    let old = dev.dma_atomic(stream.addr + 8, PCIEM_ATOMIC_FETCH_ADD, 2, 0);
    r.check(
        res.is_ok() && matches!(old, Ok(40)) && stream.cpu_u64(8).ok() == Some(42),
        format!("stream atomic fetch-add: 40 + 2 = 42 ({old:?})"),
    );
    prp::prp(&mut r, &dev, &prp_buf);
    bad_dma(&mut r, &dev, &coherent);
    p2p::p2p(&mut r, &dev, region, coherent.addr);
    p2p::peer_bar(&mut r, &dev, pool);
    r.finish()
}
