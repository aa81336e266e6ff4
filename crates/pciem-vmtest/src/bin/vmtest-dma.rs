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
//! Run as `vmtest-dma ADDR:SIZE`, the `p2p_regions=` entry pciem.ko was
//! loaded with.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pciem_abi::{
    pciem_dma_indirect, pciem_dma_op, PCIEM_ATOMIC_CAS, PCIEM_ATOMIC_FETCH_ADD,
    PCIEM_ATOMIC_FETCH_AND, PCIEM_ATOMIC_FETCH_OR, PCIEM_ATOMIC_FETCH_SUB, PCIEM_ATOMIC_FETCH_XOR,
    PCIEM_ATOMIC_SWAP, PCIEM_DMA_MAX_LEN, PCIEM_IOCTL_DMA_READ,
};
use pciem_vmtest::sysfs::{self, driver_of, parse_num, read_hex, wait_device, wait_until};
use pciem_vmtest::{Dev, Report, DMADRV, TEST_DEVICE_DMA, TEST_VENDOR};

const PAGE: u64 = 4096;
/// A bus address far above any RAM the VM has.
const UNMAPPED: u64 = 1 << 46;

/// Deterministic pseudo-random bytes (xorshift64*), different per seed.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

fn errno<T>(r: &io::Result<T>) -> Option<i32> {
    r.as_ref().err().and_then(io::Error::raw_os_error)
}

/// One of the driver's buffers: its bus address and its CPU view.
struct Buf {
    name: &'static str,
    addr: u64,
    size: u64,
    file: File,
}

impl Buf {
    fn open(pdev: &Path, name: &'static str) -> io::Result<Self> {
        let num = |attr: String| {
            read_hex(&pdev.join(&attr))
                .ok_or_else(|| io::Error::other(format!("{attr} unreadable")))
        };
        let addr = num(format!("{name}_addr"))?;
        let size = num(format!("{name}_size"))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(pdev.join(format!("dma_{name}")))?;
        Ok(Self {
            name,
            addr,
            size,
            file,
        })
    }

    fn cpu_read(&self, off: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut v = vec![0; len];
        self.file.read_exact_at(&mut v, off)?;
        Ok(v)
    }

    fn cpu_write(&self, off: u64, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, off)
    }

    fn cpu_u64(&self, off: u64) -> io::Result<u64> {
        let v = self.cpu_read(off, 8)?;
        Ok(u64::from_le_bytes(v.try_into().expect("8 bytes")))
    }
}

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

/// Each atomic once, from a known value, against hand-computed results.
fn atomics(r: &mut Report, dev: &Dev, b: &Buf) {
    let off = 0x1000;
    let cases: [(&str, u64, u32, u64, u64, u64); 8] = [
        // (name, before, op, operand, compare, after)
        (
            "fetch-add wraps",
            u64::MAX - 0xf,
            PCIEM_ATOMIC_FETCH_ADD,
            0x20,
            0,
            0x10,
        ),
        (
            "fetch-sub wraps",
            5,
            PCIEM_ATOMIC_FETCH_SUB,
            7,
            0,
            u64::MAX - 1,
        ),
        (
            "swap",
            0x1111,
            PCIEM_ATOMIC_SWAP,
            0xdead_beef_0000_0001,
            0,
            0xdead_beef_0000_0001,
        ),
        ("cas match", 42, PCIEM_ATOMIC_CAS, 99, 42, 99),
        ("cas mismatch", 42, PCIEM_ATOMIC_CAS, 99, 41, 42),
        (
            "and",
            0xff00_ff00_ff00_ff00,
            PCIEM_ATOMIC_FETCH_AND,
            0x0ff0_0ff0_0ff0_0ff0,
            0,
            0x0f00_0f00_0f00_0f00,
        ),
        (
            "or",
            0x8000_0000_0000_00f0,
            PCIEM_ATOMIC_FETCH_OR,
            0x0f,
            0,
            0x8000_0000_0000_00ff,
        ),
        (
            "xor",
            0xaaaa_aaaa_aaaa_aaaa,
            PCIEM_ATOMIC_FETCH_XOR,
            0xffff_0000_ffff_0000,
            0,
            0x5555_aaaa_5555_aaaa,
        ),
    ];
    for (name, before, op, operand, compare, after) in cases {
        if b.cpu_write(off, &before.to_le_bytes()).is_err() {
            r.check(false, format!("{} atomic {name}: set the word", b.name));
            continue;
        }
        let res = dev.dma_atomic(b.addr + off, op, operand, compare);
        let mem = b.cpu_u64(off).ok();
        r.check(
            matches!(res, Ok(v) if v == before) && mem == Some(after),
            format!(
                "{} atomic {name}: old {before:#x} returned, memory {after:#x} ({res:?}, memory {mem:x?})",
                b.name
            ),
        );
    }
    // Malformed atomics change nothing.
    let _ = b.cpu_write(off, &7u64.to_le_bytes());
    let res = dev.dma_atomic(b.addr + off + 4, PCIEM_ATOMIC_FETCH_ADD, 1, 0);
    r.check(
        errno(&res) == Some(libc::EINVAL),
        format!("unaligned atomic -> EINVAL ({res:?})"),
    );
    for op in [0, 8, 99] {
        let res = dev.dma_atomic(b.addr + off, op, 1, 0);
        r.check(
            errno(&res) == Some(libc::EINVAL),
            format!("unknown atomic op {op} -> EINVAL ({res:?})"),
        );
    }
    r.check(
        b.cpu_u64(off).ok() == Some(7),
        "memory unchanged by the rejected atomics",
    );
    let res = dev.dma_atomic(UNMAPPED, PCIEM_ATOMIC_SWAP, 1, 0);
    r.check(
        errno(&res) == Some(libc::ENXIO),
        format!("atomic at an unmapped bus address -> ENXIO ({res:?})"),
    );
}

/// The device's fetch-add racing the driver's CPU increments of one word:
/// no update may be lost on either side.
fn atomic_race(r: &mut Report, dev: &Dev, b: &Buf, pdev: &Path) {
    const OFF: u64 = 0x2000;
    const CPU_INCS: u64 = 1_000_000;
    const DEV_ADDS: u64 = 3000;
    if b.cpu_write(OFF, &0u64.to_le_bytes()).is_err() {
        r.check(false, "atomic race: clear the word");
        return;
    }
    let hammer = pdev.join("hammer");
    let cpu = std::thread::spawn(move || {
        let res = std::fs::write(&hammer, format!("{OFF} {CPU_INCS}"));
        (res, std::time::Instant::now())
    });
    let mut dev_ok = true;
    for _ in 0..DEV_ADDS {
        dev_ok &= dev
            .dma_atomic(b.addr + OFF, PCIEM_ATOMIC_FETCH_ADD, 1, 0)
            .is_ok();
    }
    let dev_done = std::time::Instant::now();
    let (cpu_res, cpu_done) = cpu.join().expect("hammer thread");
    let total = b.cpu_u64(OFF).ok();
    println!(
        "INFO: atomic race: the CPU loop ended {} the device's",
        if cpu_done > dev_done {
            "after"
        } else {
            "before"
        }
    );
    r.check(
        dev_ok && cpu_res.is_ok() && total == Some(CPU_INCS + DEV_ADDS),
        format!(
            "atomic race: {CPU_INCS} CPU increments + {DEV_ADDS} device fetch-adds = {} (got {total:?}, {cpu_res:?})",
            CPU_INCS + DEV_ADDS
        ),
    );
}

/// PRP transfers over the driver's PRP pages.
fn prp(r: &mut Report, dev: &Dev, b: &Buf) {
    let pg = |k: u64| b.addr + k * PAGE;
    let entries = |page: u64, off: u64, list: &[u64]| {
        let bytes: Vec<u8> = list.iter().flat_map(|e| e.to_le_bytes()).collect();
        b.cpu_write(page * PAGE + off, &bytes)
    };
    // Data pages 0..40 hold known bytes.
    let img = pattern(0x5eed, 40 * PAGE as usize);
    if r.step("PRP data pages filled", b.cpu_write(0, &img))
        .is_none()
    {
        return;
    }
    let at = |k: u64, off: usize, len: usize| {
        let s = k as usize * PAGE as usize + off;
        img[s..s + len].to_vec()
    };

    // PRP1 only.
    let mut got = vec![0; 100];
    let res = dev.prp_read(pg(0) + 16, 0, &mut got);
    r.check(
        res.is_ok() && got == at(0, 16, 100),
        format!("PRP1 only, in-page offset: read ({res:?})"),
    );

    // PRP2 is the second page.
    let len = 2048 + 3000;
    let expect = [at(1, 2048, 2048), at(5, 0, 3000)].concat();
    let mut got = vec![0; len];
    let res = dev.prp_read(pg(1) + 2048, pg(5), &mut got);
    r.check(
        res.is_ok() && got == expect,
        format!("PRP2 as the second page: read ({res:?})"),
    );
    let data = pattern(0xabc, len);
    let res = dev.prp_write(pg(1) + 2048, pg(5), &data);
    let seen = [
        b.cpu_read(PAGE + 2048, 2048).unwrap_or_default(),
        b.cpu_read(5 * PAGE, 3000).unwrap_or_default(),
    ]
    .concat();
    let untouched = b.cpu_read(PAGE, 2048).ok() == Some(at(1, 0, 2048))
        && b.cpu_read(5 * PAGE + 3000, 1).ok() == Some(at(5, 3000, 1));
    r.check(
        res.is_ok() && seen == data && untouched,
        format!("PRP2 as the second page: write lands, neighbours untouched ({res:?})"),
    );
    let _ = b.cpu_write(0, &img);

    // A chained list: PRP2 points 16 bytes before the end of page 48 (one
    // data entry, then the chain to page 49), which holds three more.
    let order = [10u64, 11, 20, 13, 30];
    let ok = entries(48, PAGE - 16, &[pg(11), pg(49)]).is_ok()
        && entries(49, 0, &[pg(20), pg(13), pg(30)]).is_ok();
    r.check(ok, "PRP lists written in pages 48 and 49");
    let len = 4 * PAGE as usize + 1000;
    let expect: Vec<u8> = order
        .iter()
        .enumerate()
        .flat_map(|(i, &k)| at(k, 0, if i == 4 { 1000 } else { PAGE as usize }))
        .collect();
    let mut got = vec![0; len];
    let res = dev.prp_read(pg(10), pg(48) + PAGE - 16, &mut got);
    r.check(
        res.is_ok() && got == expect,
        format!("chained PRP list: read gathers pages 10, 11, 20, 13, 30 ({res:?})"),
    );
    let data = pattern(0xfeed, len);
    let res = dev.prp_write(pg(10), pg(48) + PAGE - 16, &data);
    let seen: Vec<u8> = order
        .iter()
        .enumerate()
        .flat_map(|(i, &k)| {
            b.cpu_read(k * PAGE, if i == 4 { 1000 } else { PAGE as usize })
                .unwrap_or_default()
        })
        .collect();
    r.check(
        res.is_ok() && seen == data && b.cpu_read(12 * PAGE, 16).ok() == Some(at(12, 0, 16)),
        format!("chained PRP list: write scatters into the same pages ({res:?})"),
    );

    // A loop: page 50 chains to 51, which chains back to 50.
    let ok = entries(50, PAGE - 16, &[pg(0), pg(51) + PAGE - 16]).is_ok()
        && entries(51, PAGE - 16, &[pg(1), pg(50) + PAGE - 16]).is_ok();
    let mut got = vec![0; 10 * PAGE as usize];
    let res = dev.prp_read(pg(2), pg(50) + PAGE - 16, &mut got);
    r.check(
        ok && errno(&res) == Some(libc::ELOOP),
        format!("PRP list that loops -> ELOOP ({res:?})"),
    );

    // Over-long: 21 list pages of one data entry each, chained in order,
    // for a transfer that needs 29 entries: more list pages than any valid
    // transfer needs.
    let mut ok = true;
    for k in 40..=60u64 {
        ok &= entries(k, PAGE - 16, &[pg(0), pg(k + 1) + PAGE - 16]).is_ok();
    }
    let mut got = vec![0; 30 * PAGE as usize];
    let res = dev.prp_read(pg(2), pg(40) + PAGE - 16, &mut got);
    r.check(
        ok && errno(&res) == Some(libc::E2BIG),
        format!("over-long PRP list chain -> E2BIG ({res:?})"),
    );

    let mut got = vec![0; 2 * PAGE as usize];
    let res = dev.prp_read(pg(0), pg(5) + 8, &mut got);
    r.check(
        errno(&res) == Some(libc::EINVAL),
        format!("PRP2 data pointer not page aligned -> EINVAL ({res:?})"),
    );
    let res = dev.prp_read(pg(0), UNMAPPED, &mut got);
    r.check(
        errno(&res) == Some(libc::ENXIO),
        format!("PRP2 at an unmapped bus address -> ENXIO ({res:?})"),
    );
    let res = dev.prp_read(pg(0), 0, &mut []);
    r.check(
        errno(&res) == Some(libc::EINVAL),
        format!("zero-length PRP transfer -> EINVAL ({res:?})"),
    );
    let mut big = vec![0; PCIEM_DMA_MAX_LEN as usize + 1];
    let res = dev.prp_read(pg(0), pg(48), &mut big);
    r.check(
        errno(&res) == Some(libc::EINVAL),
        format!("PRP transfer over PCIEM_DMA_MAX_LEN -> EINVAL ({res:?})"),
    );
    let mut small = [0u8; 8];
    let req = pciem_dma_indirect {
        prp1: pg(0),
        user_addr: small.as_mut_ptr() as u64,
        length: 8,
        flags: 0x80,
        ..Default::default()
    };
    // SAFETY: the kernel writes at most 8 bytes into `small`, which is live.
    let res = unsafe { dev.dma_indirect_raw(&req) };
    r.check(
        errno(&res) == Some(libc::EINVAL),
        format!("unknown PRP flags -> EINVAL ({res:?})"),
    );
}

/// Malformed plain DMA requests.
fn bad_dma(r: &mut Report, dev: &Dev, b: &Buf) {
    let mut buf = vec![0u8; 64];
    let res = dev.dma_read(UNMAPPED, &mut buf);
    r.check(
        errno(&res) == Some(libc::ENXIO),
        format!("DMA_READ of an unmapped bus address -> ENXIO ({res:?})"),
    );
    let res = dev.dma_write(UNMAPPED, &buf);
    r.check(
        errno(&res) == Some(libc::ENXIO),
        format!("DMA_WRITE to an unmapped bus address -> ENXIO ({res:?})"),
    );
    if let Ok(bar) = dev.bar_info(2) {
        let res = dev.dma_read(bar.bus_addr, &mut buf);
        r.check(
            errno(&res) == Some(libc::ENXIO),
            format!(
                "DMA_READ of a BAR (not RAM) at {:#x} -> ENXIO ({res:?})",
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

fn p2p(r: &mut Report, dev: &Dev, region: Option<(u64, u64)>, ram: u64) {
    let Some((base, size)) = region else {
        r.check(
            false,
            "P2P: pass the p2p_regions entry ADDR:SIZE as the argument",
        );
        return;
    };
    let data = pattern(0x9292, 5000);
    let res = dev.p2p_write(base + 100, &data);
    r.check(
        res.is_ok(),
        format!("P2P_WRITE inside the region ({res:?})"),
    );
    let mut got = vec![0; 5000];
    let res = dev.p2p_read(base + 100, &mut got);
    r.check(
        res.is_ok() && got == data,
        format!("P2P_READ returns what was written ({res:?})"),
    );
    let whole = pattern(0x4242, size as usize);
    let res = dev.p2p_write(base, &whole);
    let mut got = vec![0; size as usize];
    let res2 = dev.p2p_read(base, &mut got);
    r.check(
        res.is_ok() && res2.is_ok() && got == whole,
        format!("P2P round trip of the whole region ({res:?}, {res2:?})"),
    );
    let mut one = [0u8; 1];
    let res = dev.p2p_read(base + size - 1, &mut one);
    r.check(
        res.is_ok() && one[0] == whole[size as usize - 1],
        format!("P2P_READ of the region's last byte ({res:?})"),
    );
    let mut buf = vec![0; 20];
    for (what, addr) in [
        ("straddling the region's end", base + size - 10),
        ("just below the region", base - 4096),
        ("in RAM (the driver's coherent buffer)", ram),
        ("far outside", UNMAPPED),
    ] {
        let res = dev.p2p_read(addr, &mut buf);
        r.check(
            errno(&res) == Some(libc::EACCES),
            format!("P2P_READ {what} -> EACCES ({res:?})"),
        );
        let res = dev.p2p_write(addr, &buf);
        r.check(
            errno(&res) == Some(libc::EACCES),
            format!("P2P_WRITE {what} -> EACCES ({res:?})"),
        );
    }
    let res = dev.p2p_read(base, &mut []);
    r.check(
        errno(&res) == Some(libc::EINVAL),
        format!("zero-length P2P_READ -> EINVAL ({res:?})"),
    );
    let res = dev.dma_read(base, &mut buf);
    r.check(
        errno(&res) == Some(libc::ENXIO),
        format!("plain DMA_READ of the peer region (not RAM) -> ENXIO ({res:?})"),
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
    atomics(&mut r, &dev, &coherent);
    atomic_race(&mut r, &dev, &coherent, &pdev);
    let res = stream.cpu_write(8, &40u64.to_le_bytes());
    let old = dev.dma_atomic(stream.addr + 8, PCIEM_ATOMIC_FETCH_ADD, 2, 0);
    r.check(
        res.is_ok() && matches!(old, Ok(40)) && stream.cpu_u64(8).ok() == Some(42),
        format!("stream atomic fetch-add: 40 + 2 = 42 ({old:?})"),
    );
    prp(&mut r, &dev, &prp_buf);
    bad_dma(&mut r, &dev, &coherent);
    p2p(&mut r, &dev, region, coherent.addr);
    r.finish()
}
