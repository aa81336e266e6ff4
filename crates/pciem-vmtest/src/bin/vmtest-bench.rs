//! The VM benchmark (`cargo xtask bench-vm`): the real kernel path
//! measured inside the guest, every figure beside a baseline taken in the
//! same guest in the same run.
//!
//! | measurement | baseline |
//! |---|---|
//! | events/s: a burst of driver stores to a watched register, each one a hardware-breakpoint trap and a ring event, consumed by this process | the same burst to the same register unwatched (plain stores) |
//! | MSI injections/s by `INJECT_IRQ`, and the interrupts the driver counted | a null ioctl (`GET_VERSION`) on the same file |
//! | MSI by irqfd: eventfd signals/s and interrupts counted | `write(2)` of the same eventfd with nothing bound |
//! | DMA_READ / DMA_WRITE bandwidth for 4 KiB … 4 MiB on a DMA-coherent buffer (median of 5 passes, taking turns with the baseline) | `memcpy` of the same size between two buffers of this process |
//! | ProtoPCIem ADD round trip through `protopciem.ko` and the Rust device process (p50/p99 of 10,000) | `LAST_COMPLETION`, an ioctl of the same driver that does not touch the card |
//!
//! `vmtest-bench [KO DEVICE-CMD [ARGS...]]`: with the ProtoPCIem driver
//! module and the device process command (as for `vmtest-protopciem`), the
//! round trip is measured too.
//!
//! Each result is one line `BENCH <metric> <value> <unit> <baseline metric>
//! <baseline value>`, parsed by xtask. The program also checks what it
//! measures (no event lost or reordered, the data DMA'd is the data
//! written) and exits non-zero when a check fails, so a number never comes
//! from a broken run. QEMU TCG slows everything: read the ratios.

use std::hint::black_box;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use pciem_abi::{PCIEM_EVENT_MMIO_WRITE, PCIEM_IRQ_MSI};
use pciem_vmtest::device::{eventfd, signal};
use pciem_vmtest::dmadrv::{pattern, Buf};
use pciem_vmtest::protocard::{percentile, start_device, Card, DEVICE, DEV_PATH, VENDOR};
use pciem_vmtest::sysfs::{self, testdrv_irqs, wait_until};
use pciem_vmtest::{Dev, Report, TEST_DEVICE_DMA, TEST_DEVICE_IOMAP, TEST_VENDOR};
use protopciem::uapi::PROTOPCIEM_IOCTL_ADD;

/// Stores in one event burst. Under TCG a trapped store costs tens of
/// microseconds, so this is about a second.
const BURST: u32 = 20_000;
/// Injections (and eventfd signals) per interrupt measurement.
const INJECTIONS: u32 = 20_000;
/// Bytes moved per bandwidth pass (at least `MIN_ROUNDS` transfers), and
/// passes per size.
const BYTES_PER_POINT: usize = 8 << 20;
const PASSES: usize = 5;
const MIN_ROUNDS: usize = 4;
/// ProtoPCIem round trips timed.
const ROUND_TRIPS: usize = 10_000;
const SIZES: [usize; 6] = [4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20];

/// One result line for xtask.
fn bench(metric: &str, value: f64, unit: &str, base_metric: &str, base_value: f64) {
    println!("BENCH {metric} {value:.3} {unit} {base_metric} {base_value:.3}");
}

fn per_sec(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

fn burst(path: &Path, n: u32) -> std::io::Result<Duration> {
    std::fs::write(path.join("reg_burst"), n.to_string())?;
    let ns = sysfs::read_trim(&path.join("reg_burst"))?
        .parse::<u64>()
        .map_err(std::io::Error::other)?;
    Ok(Duration::from_nanos(ns))
}

/// Events into the ring: trapped stores against plain stores.
fn events(r: &mut Report, dev: &Dev, path: &Path) {
    let Some(ring) = r.step("mmap the event ring", dev.map_ring()) else {
        return;
    };
    r.step("reg_offset 0", std::fs::write(path.join("reg_offset"), "0"));
    let Some(plain) = r.step("unwatched burst", burst(path, BURST)) else {
        return;
    };
    ring.drain();
    let lost_before = ring.overflow();
    if r.step("SET_WATCHPOINT BAR0+0x0", dev.watch(0, 0, 4))
        .is_none()
    {
        return;
    }
    ring.drain();
    let writer_path = path.to_path_buf();
    let writer = std::thread::spawn(move || burst(&writer_path, BURST));
    // Consume while the driver stores: the ring holds 1023 events, the
    // burst is 20 times that, so nothing survives unless this keeps up.
    let mut seen = 0u32;
    let mut in_order = true;
    let mut last_seq = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen < BURST && Instant::now() < deadline {
        match ring.pop() {
            Some(ev) if ev.r#type == PCIEM_EVENT_MMIO_WRITE && ev.offset == 0 => {
                seen += 1;
                in_order &= ev.data == u64::from(seen);
                in_order &= last_seq.is_none_or(|s: u64| ev.seq == s + 1);
                last_seq = Some(ev.seq);
            }
            Some(_) => {}
            None => {
                if writer.is_finished() && ring.overflow() != lost_before {
                    break;
                }
                std::hint::spin_loop();
            }
        }
    }
    let trapped = match writer.join() {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => {
            r.check(false, format!("watched burst: {e}"));
            return;
        }
        Err(_) => {
            r.check(false, "the burst thread panicked");
            return;
        }
    };
    let lost = ring.overflow() - lost_before;
    r.check(
        seen == BURST && lost == 0,
        format!("all {BURST} events arrived ({seen} seen, {lost} lost to overflow)"),
    );
    r.check(
        in_order,
        "each event carries the value stored, in order, with contiguous sequence numbers",
    );
    println!(
        "INFO: {BURST} stores: watched {:.1} ms, unwatched {:.3} ms",
        trapped.as_secs_f64() * 1e3,
        plain.as_secs_f64() * 1e3
    );
    bench(
        "ring-events-per-s",
        per_sec(u64::from(BURST), trapped),
        "events/s",
        "untrapped-stores-per-s",
        per_sec(u64::from(BURST), plain),
    );
}

/// Waits until the driver's count for vector 0 stops moving.
/// Runs `op` [`INJECTIONS`] times and returns how long that took; on the
/// first failure records it in `r` (naming `what`) and returns `None`.
fn timed(
    r: &mut Report,
    what: &str,
    mut op: impl FnMut() -> std::io::Result<()>,
) -> Option<Duration> {
    let t = Instant::now();
    for _ in 0..INJECTIONS {
        if let Err(e) = op() {
            r.check(false, format!("{what} failed: {e}"));
            return None;
        }
    }
    Some(t.elapsed())
}

fn settled_count(path: &Path) -> u64 {
    let mut last = testdrv_irqs(path).first().copied().unwrap_or(0);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = testdrv_irqs(path).first().copied().unwrap_or(0);
        if now == last {
            return now;
        }
        last = now;
    }
}

/// MSI injection by ioctl and by irqfd.
fn interrupts(r: &mut Report, dev: &Dev, path: &Path) {
    // Baseline: the cheapest ioctl this file answers.
    let Some(null_ioctl) = timed(r, "GET_VERSION", || dev.version().map(drop)) else {
        return;
    };

    let before = settled_count(path);
    let Some(inject) = timed(r, "INJECT_IRQ", || dev.inject(PCIEM_IRQ_MSI, 0, 0)) else {
        return;
    };
    let delivered = settled_count(path) - before;
    // Injections that find the previous one still queued coalesce into
    // one interrupt, as MSI writes to a busy vector would not; the count
    // says how many handler runs the driver saw.
    r.check(
        delivered >= 1 && delivered <= u64::from(INJECTIONS),
        format!("the driver counted {delivered} of {INJECTIONS} injected MSIs"),
    );
    bench(
        "msi-inject-per-s",
        per_sec(u64::from(INJECTIONS), inject),
        "ioctls/s",
        "null-ioctl-per-s",
        per_sec(u64::from(INJECTIONS), null_ioctl),
    );
    bench(
        "msi-delivered-per-s",
        per_sec(delivered, inject),
        "irqs/s",
        "msi-inject-per-s",
        per_sec(u64::from(INJECTIONS), inject),
    );

    // irqfd: the baseline is the same eventfd write with nothing bound.
    let Some(efd) = r.step("eventfd", eventfd()) else {
        return;
    };
    let Some(bare) = timed(r, "eventfd write", || signal(&efd)) else {
        return;
    };
    let Some(efd) = r.step("eventfd", eventfd()) else {
        return;
    };
    if r.step(
        "SET_IRQFD MSI 0",
        dev.set_irqfd(efd.as_raw_fd(), PCIEM_IRQ_MSI, 0, 0),
    )
    .is_none()
    {
        return;
    }
    let before = settled_count(path);
    let Some(signalled) = timed(r, "eventfd write", || signal(&efd)) else {
        return;
    };
    let delivered = settled_count(path) - before;
    r.check(
        delivered >= 1 && delivered <= u64::from(INJECTIONS),
        format!("the driver counted {delivered} interrupts for {INJECTIONS} irqfd signals"),
    );
    bench(
        "irqfd-signal-per-s",
        per_sec(u64::from(INJECTIONS), signalled),
        "writes/s",
        "bare-eventfd-write-per-s",
        per_sec(u64::from(INJECTIONS), bare),
    );
    bench(
        "irqfd-delivered-per-s",
        per_sec(delivered, signalled),
        "irqs/s",
        "irqfd-signal-per-s",
        per_sec(u64::from(INJECTIONS), signalled),
    );
}

/// The median of `v` (not empty).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Bytes per second of `rounds` transfers of `size` bytes by `f`.
fn bandwidth(size: usize, mut f: impl FnMut() -> std::io::Result<()>) -> std::io::Result<f64> {
    let rounds = (BYTES_PER_POINT / size).max(MIN_ROUNDS);
    f()?; // warm: page tables, caches
    let t = Instant::now();
    for _ in 0..rounds {
        f()?;
    }
    Ok((size * rounds) as f64 / t.elapsed().as_secs_f64().max(1e-9))
}

/// DMA_READ and DMA_WRITE against memcpy.
fn dma(r: &mut Report) {
    let Some(dev) = r.step("open /dev/pciem", Dev::open()) else {
        return;
    };
    if r.step(
        "describe 1f0c:7e52",
        dev.describe_test_device(TEST_DEVICE_DMA),
    )
    .is_none()
    {
        return;
    }
    let Some(_inst) = r.step("REGISTER", dev.register()) else {
        return;
    };
    let Some(path) = sysfs::wait_device(TEST_VENDOR, TEST_DEVICE_DMA, Duration::from_secs(5))
    else {
        r.check(false, "DMA test device visible in sysfs");
        return;
    };
    let buf = wait_until(Duration::from_secs(5), || {
        path.join("coherent_addr").exists()
    })
    .then(|| Buf::open(&path, "coherent"));
    let Some(buf) = r.step(
        "the DMA driver's coherent buffer",
        buf.unwrap_or_else(|| Err(std::io::Error::other("driver did not bind"))),
    ) else {
        return;
    };
    let max = *SIZES.last().unwrap_or(&0);
    if (buf.size as usize) < max {
        r.check(
            false,
            format!("coherent buffer of {} bytes < {max}", buf.size),
        );
        return;
    }
    let data = pattern(7, max);
    r.step("driver fills the buffer", buf.cpu_write(0, &data));
    let mut host = vec![0u8; max];
    for size in SIZES {
        // The three mechanisms take turns, PASSES times, and each reports
        // its median pass: a slow phase of the emulator hits all three.
        let src = pattern(9, size);
        let mut dst = vec![0u8; size];
        let (mut reads, mut writes, mut copies) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..PASSES {
            let read = bandwidth(size, || dev.dma_read(buf.addr, &mut host[..size]));
            let Some(read) = r.step(format!("DMA_READ {size} bytes"), read) else {
                return;
            };
            let write = bandwidth(size, || dev.dma_write(buf.addr, &data[..size]));
            let Some(write) = r.step(format!("DMA_WRITE {size} bytes"), write) else {
                return;
            };
            let copy = bandwidth(size, || {
                black_box(&mut dst).copy_from_slice(black_box(&src));
                Ok(())
            })
            .unwrap_or(0.0);
            reads.push(read);
            writes.push(write);
            copies.push(copy);
        }
        r.check(
            host[..size] == data[..size],
            format!("DMA_READ of {size} bytes returned the driver's data"),
        );
        let (read, write, copy) = (median(reads), median(writes), median(copies));
        let label = if size >= 1 << 20 {
            format!("{}MiB", size >> 20)
        } else {
            format!("{}KiB", size >> 10)
        };
        bench(
            &format!("dma-read-{label}"),
            read / 1e6,
            "MB/s",
            &format!("memcpy-{label}"),
            copy / 1e6,
        );
        bench(
            &format!("dma-write-{label}"),
            write / 1e6,
            "MB/s",
            &format!("memcpy-{label}"),
            copy / 1e6,
        );
    }
    let back = buf.cpu_read(0, max);
    r.check(
        back.as_ref().is_ok_and(|b| b[..] == data[..]),
        "after the DMA_WRITE rounds the driver sees the data written",
    );
}

/// Latency in microseconds of each call of `f`, sorted.
fn latencies(n: usize, mut f: impl FnMut() -> bool) -> Option<Vec<Duration>> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        if !f() {
            return None;
        }
        times.push(t.elapsed());
    }
    times.sort();
    Some(times)
}

/// ProtoPCIem compute round trips through the real driver.
fn protopciem(r: &mut Report, ko: &str, device_cmd: &[String]) {
    let (ok, out) = sysfs::run("insmod", &[ko]);
    if !r.check(ok, format!("insmod {ko} {out}")) {
        return;
    }
    if let Some(mut kid) = start_device(r, device_cmd) {
        let bound = sysfs::wait_device(VENDOR, DEVICE, Duration::from_secs(5)).is_some()
            && wait_until(Duration::from_secs(5), || Path::new(DEV_PATH).exists());
        // Watches are armed a moment after the driver maps BAR0.
        std::thread::sleep(Duration::from_secs(1));
        match r.step("open /dev/protopciem", Card::open()) {
            Some(card) if bound => round_trips(r, &card),
            _ => {
                r.check(false, "the card is bound and /dev/protopciem exists");
            }
        }
        let _ = kid.kill();
        let _ = kid.wait();
    }
    let (ok, out) = sysfs::run("rmmod", &["protopciem"]);
    r.check(ok, format!("rmmod protopciem {out}"));
}

fn round_trips(r: &mut Report, card: &Card) {
    let mut i = 0u32;
    let mut wrong = 0usize;
    let add = latencies(ROUND_TRIPS, || {
        i = i.wrapping_add(0x9e37_79b9);
        match card.compute(PROTOPCIEM_IOCTL_ADD, i) {
            Ok(c) => {
                wrong += usize::from(c.result != 2 * u64::from(i));
                true
            }
            Err(_) => false,
        }
    });
    let Some(add) = add else {
        r.check(false, "an ADD round trip failed");
        return;
    };
    r.check(
        wrong == 0,
        format!("{ROUND_TRIPS} ADD round trips all return 2 x DATA ({wrong} wrong)"),
    );
    let Some(null) = latencies(ROUND_TRIPS, || card.last().is_ok()) else {
        r.check(false, "LAST_COMPLETION failed");
        return;
    };
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "INFO: ProtoPCIem ADD n={ROUND_TRIPS}: p50 {:.1} us p99 {:.1} us min {:.1} us max {:.1} us",
        us(percentile(&add, 0.5)),
        us(percentile(&add, 0.99)),
        us(add[0]),
        us(add[add.len() - 1]),
    );
    for (q, name) in [(0.5, "p50"), (0.99, "p99")] {
        bench(
            &format!("protopciem-add-roundtrip-{name}"),
            us(percentile(&add, q)),
            "us",
            &format!("null-driver-ioctl-{name}"),
            us(percentile(&null, q)),
        );
    }
    let total: Duration = add.iter().sum();
    bench(
        "protopciem-add-commands-per-s",
        per_sec(ROUND_TRIPS as u64, total),
        "cmds/s",
        "null-driver-ioctls-per-s",
        per_sec(ROUND_TRIPS as u64, null.iter().sum()),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut r = Report::new("bench");
    r.check(
        sysfs::modules_loaded(),
        "pciem.ko and pciem_testdrv.ko are loaded",
    );
    if let Some(dev) = r.step("open /dev/pciem", Dev::open()) {
        let described = r.step(
            "describe 1f0c:7e50",
            dev.describe_test_device(TEST_DEVICE_IOMAP),
        );
        let inst = described.and_then(|_| r.step("REGISTER", dev.register()));
        let path = inst.as_ref().and_then(|_| {
            sysfs::wait_device(TEST_VENDOR, TEST_DEVICE_IOMAP, Duration::from_secs(5))
        });
        match path {
            Some(path) => {
                // The driver has bound once its irq_counts file exists.
                r.check(
                    wait_until(Duration::from_secs(5), || path.join("irq_counts").exists()),
                    "pciem_testdrv bound",
                );
                events(&mut r, &dev, &path);
                interrupts(&mut r, &dev, &path);
            }
            None => {
                r.check(false, "test device visible in sysfs");
            }
        }
    }
    dma(&mut r);
    if let [ko, device_cmd @ ..] = &args[..] {
        if device_cmd.is_empty() {
            r.check(false, "usage: vmtest-bench [KO DEVICE-CMD [ARGS...]]");
        } else {
            protopciem(&mut r, ko, device_cmd);
        }
    }
    r.finish()
}
