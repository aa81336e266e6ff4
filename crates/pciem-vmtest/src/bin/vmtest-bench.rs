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
//! | ProtoPCIem ADD round trip through `protopciem.ko` and the Rust device process  (p50/p99 of 10,000, or of those made in 40 s, at least 1,000) | `LAST_COMPLETION`, an ioctl of the same driver that does not touch the card |
//! | trap mode, ns per access (`pciem_trapdrv`'s timed loops, timed in the kernel access by access; median access of a pass, best of up to 11 passes): a trapped store (stored + MMIO_WRITE), a trapped load from the backing, a model-answered read (response page / COMPLETE_READ), the busy-polled doorbell → model → MSI → driver round trip; beside them an untrapped store and load, a watchpoint-trapped store (watch mode), an irq_work self-IPI | a null ioctl (`GET_VERSION`), median batch of 100, best pass, taking turns with the rest |
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
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pciem_abi::{
    PCIEM_EVENT_CONFIG_WRITE, PCIEM_EVENT_FLAG_POSTED, PCIEM_EVENT_MMIO_READ,
    PCIEM_EVENT_MMIO_WRITE, PCIEM_IRQ_MSI, PCIEM_RING_CONSUMER_AWAKE, PCIEM_RING_CONSUMER_LEGACY,
    PCIEM_TRAP_READ_MODEL,
};
use pciem_vmtest::device::{eventfd, signal};
use pciem_vmtest::dmadrv::{pattern, Buf};
use pciem_vmtest::protocard::{percentile, start_device, Card, DEVICE, DEV_PATH, VENDOR};
use pciem_vmtest::sysfs::{self, testdrv_irqs, wait_until};
use pciem_vmtest::trapdrv::{pin_to_cpu, show, TrapDrv, TrapStats, TRAP_BAR0_SIZE};
use pciem_vmtest::{
    Dev, Instance, Report, TEST_DEVICE_DMA, TEST_DEVICE_IOMAP, TEST_DEVICE_TRAP, TEST_VENDOR,
    TRAPDRV,
};
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
/// Passes of the DMA-check cost comparison (see `dma_check_cost`).
const CHECK_PASSES: usize = 9;
const MIN_ROUNDS: usize = 4;
/// ProtoPCIem round trips timed.
const ROUND_TRIPS: usize = 10_000;
/// ... or as many as fit in this time (at least [`MIN_ROUND_TRIPS`]): on a
/// loaded host a round trip can take 8 ms instead of 0.4, and the guest
/// gives the whole benchmark 180 s.
const ROUND_TRIP_BUDGET: Duration = Duration::from_secs(40);
const MIN_ROUND_TRIPS: usize = 1_000;
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

/// One pciem_dmadrv device in DMA check mode `mode`, with its coherent
/// buffer; the device stays while the returned `Dev` and `Instance` live.
fn dma_device(r: &mut Report, mode: u32, name: &str) -> Option<(Dev, Instance, Buf)> {
    let dev = r.step(format!("{name}: open /dev/pciem"), Dev::open())?;
    r.step(
        format!("{name}: describe 1f0c:7e52"),
        dev.describe_test_device(TEST_DEVICE_DMA),
    )?;
    r.step(format!("{name}: SET_DMA_CHECK"), dev.set_dma_check(mode))?;
    let inst = r.step(format!("{name}: REGISTER"), dev.register())?;
    // The new device is the one whose checker reports this mode.
    let want = format!("mode {name}");
    let mut path = None;
    wait_until(Duration::from_secs(5), || {
        path = sysfs::find_devices(TEST_VENDOR, TEST_DEVICE_DMA)
            .into_iter()
            .find(|p| {
                p.join("coherent_addr").exists()
                    && sysfs::read_trim(&p.join("pciem_dma_check"))
                        .is_ok_and(|s| s.lines().next() == Some(&want))
            });
        path.is_some()
    });
    let Some(path) = path else {
        r.check(false, format!("{name}: the DMA driver bound the device"));
        return None;
    };
    let buf = r.step(
        format!("{name}: coherent buffer"),
        Buf::open(&path, "coherent"),
    )?;
    Some((dev, inst, buf))
}

/// What DMA checking costs: DMA_READ and DMA_WRITE of 4 KiB and 1 MiB,
/// nanoseconds per transfer, on a device in enforce mode beside one with
/// checking off, taking turns, CHECK_PASSES times; each figure is its best
/// pass: interference (the host descheduling a vCPU) only ever adds time,
/// and the difference sought is a few percent.
fn dma_check_cost(r: &mut Report) {
    let Some((off, _off_inst, off_buf)) = dma_device(r, pciem_abi::PCIEM_DMA_CHECK_OFF, "off")
    else {
        return;
    };
    let Some((on, _on_inst, on_buf)) = dma_device(r, pciem_abi::PCIEM_DMA_CHECK_ENFORCE, "enforce")
    else {
        return;
    };
    for (size, label) in [(4usize << 10, "4KiB"), (1 << 20, "1MiB")] {
        let data = pattern(11, size);
        let mut host = vec![0u8; size];
        let mut t: [Vec<f64>; 4] = Default::default();
        for _ in 0..CHECK_PASSES {
            let runs: [(&Dev, &Buf, bool); 4] = [
                (&off, &off_buf, false),
                (&on, &on_buf, false),
                (&off, &off_buf, true),
                (&on, &on_buf, true),
            ];
            for (i, (dev, buf, write)) in runs.into_iter().enumerate() {
                let bw = if write {
                    bandwidth(size, || dev.dma_write(buf.addr, &data))
                } else {
                    bandwidth(size, || dev.dma_read(buf.addr, &mut host))
                };
                let Some(bw) = r.step(format!("dma check cost: {label} run {i}"), bw) else {
                    return;
                };
                t[i].push(size as f64 / bw * 1e9);
            }
        }
        let best = |v: Vec<f64>| v.into_iter().fold(f64::INFINITY, f64::min);
        let [off_r, on_r, off_w, on_w] = t.map(best);
        bench(
            &format!("dma-read-{label}-checked-ns"),
            on_r,
            "ns",
            &format!("dma-read-{label}-unchecked-ns"),
            off_r,
        );
        bench(
            &format!("dma-write-{label}-checked-ns"),
            on_w,
            "ns",
            &format!("dma-write-{label}-unchecked-ns"),
            off_w,
        );
    }
    let faults = sysfs::find_devices(TEST_VENDOR, TEST_DEVICE_DMA)
        .iter()
        .filter_map(|p| sysfs::read_trim(&p.join("pciem_dma_check")).ok())
        .collect::<Vec<_>>();
    r.check(
        faults.iter().all(|s| {
            s.lines().filter_map(|l| l.split_once(' ')).all(|(k, v)| {
                !matches!(
                    k,
                    "unmapped" | "outside" | "wrong_direction" | "after_unmap"
                ) || v == "0"
            })
        }),
        format!("dma check cost: no violation while measuring ({faults:?})"),
    );
}

/// Latency in microseconds of each call of `f`, sorted.
/// Stops early after `budget` once `min` calls were made.
fn latencies(
    n: usize,
    min: usize,
    budget: Duration,
    mut f: impl FnMut() -> bool,
) -> Option<Vec<Duration>> {
    let mut times = Vec::with_capacity(n);
    let start = Instant::now();
    for k in 0..n {
        if k >= min && start.elapsed() > budget {
            break;
        }
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
    let add = latencies(ROUND_TRIPS, MIN_ROUND_TRIPS, ROUND_TRIP_BUDGET, || {
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
    let n = add.len();
    r.check(
        wrong == 0,
        format!("{n} ADD round trips all return 2 x DATA ({wrong} wrong)"),
    );
    let Some(null) = latencies(n, n, ROUND_TRIP_BUDGET, || card.last().is_ok()) else {
        r.check(false, "LAST_COMPLETION failed");
        return;
    };
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "INFO: ProtoPCIem ADD n={n}: p50 {:.1} us p99 {:.1} us min {:.1} us max {:.1} us",
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
        per_sec(n as u64, total),
        "cmds/s",
        "null-driver-ioctls-per-s",
        per_sec(n as u64, null.iter().sum()),
    );
}

// ---- trap mode -----------------------------------------------------------

/// Passes of the trap-mode figures: every mechanism and the null ioctl take
/// turns, PASSES times, and each figure is its median pass.
const TRAP_PASSES: usize = 11;
/// ... but no more passes once a phase has run this long (at least
/// [`MIN_TRAP_PASSES`]): a wait across the two vCPUs lasts as long as the
/// other vCPU's host thread is descheduled, so on a loaded host a pass can
/// take many times its usual second, and the guest gives the whole
/// benchmark 180 s.
const TRAP_PHASE_BUDGET: Duration = Duration::from_secs(30);
const MIN_TRAP_PASSES: usize = 3;
/// Null ioctls (`GET_VERSION`) per pass.
const NULL_IOCTLS: u32 = 20_000;
const NULL_BATCH: u32 = 100;
/// Accesses per pass, per mechanism: the untrapped ones are cheap, a
/// trapped one costs a fault (tens of µs under TCG), a round trip more.
const PLAIN_ACCESSES: u64 = 200_000;
const LOOP_ITERATIONS: u64 = 200_000;
const TRAPPED_ACCESSES: u64 = 4_000;
const MODEL_READS: u64 = 400;
const BUSY_ROUND_TRIPS: u64 = 300;
const IRQ_WORKS: u64 = 4_000;
/// Watched stores per command: watch mode has no back-pressure, so a
/// command never stores more than the ring's 1023 slots, and the next
/// starts once the model has taken them all.
const WATCHED_STORES: u64 = 1_000;
/// The model-answered reads' timeout for the benchmark device: the
/// maximum (1 s) instead of 10 ms, because on a loaded host a vCPU thread
/// of QEMU can be descheduled for more than 10 ms, and an all-ones read is
/// not a measurement (the check that none timed out stays).
const BENCH_READ_TIMEOUT_US: u32 = pciem_abi::PCIEM_READ_TIMEOUT_MAX_US;
/// BAR0 offsets of the trap-bench device (1f0c:7e56, 16 KiB).
const REG_PLAIN: u64 = 0x100; // default policy (trap mode) / never watched
const REG_WATCHED: u64 = 0x200; // watch mode: the one watchpoint
const REG_MODEL: u64 = 0x1000; // READ_MODEL range 0x1000..0x1100
const REG_DOORBELL: u64 = 0x2000; // default policy; the model answers with MSI 0
/// CPUs: the driver side (sysfs writes, the kernel's timed loops) and the
/// model thread, each pinned to its own.
const DRIVER_CPU: usize = 0;
const MODEL_CPU: usize = 1;

/// What the model answers for a model-answered read at `offset`.
fn model_value(offset: u64) -> u64 {
    0x5a00_0000 | offset
}

/// The benchmark's device model, busy-polling the ring (never sleeping on
/// the eventfd): counts stores, rings MSI 0 for each doorbell store,
/// answers waited reads through the response page or `COMPLETE_READ`.
#[derive(Default)]
struct TrapModel {
    stop: AtomicBool,
    /// Answer waited reads with `COMPLETE_READ` instead of the page.
    by_ioctl: AtomicBool,
    /// Poll the ring with a null ioctl between empty polls instead of a
    /// spin hint (rows named `…-syspoll`): a model that still never
    /// sleeps, but leaves its CPU to the kernel between polls.
    syspoll: AtomicBool,
    /// Poll the ring with the spin hint (`pause`) of
    /// [`std::hint::spin_loop`] between empty polls (rows named
    /// `…-pause`); otherwise in a bare loop, because under QEMU TCG a model
    /// spinning on `pause` often saw each event only 4 or 8 ms (one or two
    /// guest ticks) late.
    pause: AtomicBool,
    /// Stores seen at the register the figure stores to.
    stores: AtomicU64,
    doorbells: AtomicU64,
    reads: AtomicU64,
    overflow: AtomicU64,
    problems: Mutex<Vec<String>>,
}

impl TrapModel {
    fn problem(&self, p: String) {
        let mut v = self.problems.lock().unwrap();
        if v.len() < 20 {
            v.push(p);
        }
    }

    /// `store_reg`: where the measured stores go (each counted).
    fn run(&self, dev: &Dev, inst: Option<&Instance>, store_reg: u64) {
        if let Err(e) = pin_to_cpu(MODEL_CPU) {
            self.problem(format!("model: pin to CPU {MODEL_CPU}: {e}"));
        }
        let ring = match dev.map_ring() {
            Ok(r) => r,
            Err(e) => return self.problem(format!("model: mmap the ring: {e}")),
        };
        let resp = match inst.map(Instance::map_responses).transpose() {
            Ok(r) => r,
            Err(e) => return self.problem(format!("model: mmap the responses: {e}")),
        };
        let mut last_seq: Option<u64> = None;
        while !self.stop.load(Ordering::Acquire) {
            let Some(ev) = ring.pop() else {
                if self.syspoll.load(Ordering::Relaxed) {
                    let _ = dev.version();
                } else if self.pause.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
                continue;
            };
            if last_seq.is_some_and(|s| ev.seq != s + 1) {
                self.problem(format!("sequence gap before {}", ev.seq));
            }
            last_seq = Some(ev.seq);
            match ev.r#type {
                PCIEM_EVENT_MMIO_WRITE if ev.offset == store_reg && ev.size == 4 => {
                    self.stores.fetch_add(1, Ordering::Relaxed);
                }
                PCIEM_EVENT_MMIO_WRITE if ev.offset == REG_DOORBELL && ev.size == 4 => {
                    if let Err(e) = dev.inject(PCIEM_IRQ_MSI, 0, 0) {
                        self.problem(format!("INJECT_IRQ: {e}"));
                    }
                    self.doorbells.fetch_add(1, Ordering::Relaxed);
                }
                PCIEM_EVENT_MMIO_READ if ev.flags & PCIEM_EVENT_FLAG_POSTED == 0 => {
                    let value = model_value(ev.offset);
                    match (&resp, self.by_ioctl.load(Ordering::Relaxed)) {
                        (Some(resp), false) => resp.answer(ev.id, value),
                        _ => {
                            if let Err(e) = dev.complete_read(ev.id, value) {
                                self.problem(format!("COMPLETE_READ {:#x}: {e}", ev.id));
                            }
                        }
                    }
                    self.reads.fetch_add(1, Ordering::Relaxed);
                }
                // The driver enabling the device, bus mastering, MSI.
                PCIEM_EVENT_CONFIG_WRITE => {}
                _ => self.problem(format!("unexpected event {}", show(&ev))),
            }
        }
        self.overflow.store(ring.overflow(), Ordering::Release);
    }
}

/// The ring's `consumer_state` word, written by this process (the
/// consumer) through a mapping of its own: [`PCIEM_RING_CONSUMER_AWAKE`]
/// while the busy-polling model drains (the producer then queues no
/// eventfd wake-up, so no self-IPI, per event), or
/// [`PCIEM_RING_CONSUMER_LEGACY`] for the rows named `…-legacy` (a
/// wake-up per event, as before ABI 3's consumer_state).
struct ConsumerState {
    map: NonNull<pciem_abi::pciem_shared_ring>,
}

impl ConsumerState {
    fn map(dev: &Dev) -> std::io::Result<Self> {
        let len = core::mem::size_of::<pciem_abi::pciem_shared_ring>();
        // SAFETY: a fresh shared mapping of the ring, chosen by the kernel.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                dev.raw(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        NonNull::new(p.cast())
            .map(|map| Self { map })
            .ok_or_else(|| std::io::Error::other("mmap gave NULL"))
    }

    fn set(&self, state: u32) {
        // SAFETY: `consumer_state` is an aligned u32 inside the live
        // mapping; the kernel only loads it (atomically).
        unsafe {
            AtomicU32::from_ptr(core::ptr::addr_of_mut!((*self.map.as_ptr()).consumer_state))
        }
        .store(state, Ordering::SeqCst);
    }
}

impl Drop for ConsumerState {
    fn drop(&mut self) {
        self.set(PCIEM_RING_CONSUMER_LEGACY);
        // SAFETY: unmaps exactly the mapping made in `map`.
        unsafe {
            libc::munmap(
                self.map.as_ptr().cast(),
                core::mem::size_of::<pciem_abi::pciem_shared_ring>(),
            )
        };
    }
}

/// `res`'s value; an error is a failed check naming `what` (a success
/// prints nothing: the passes would print dozens of lines).
fn quiet<T, E: std::fmt::Display>(r: &mut Report, what: &str, res: Result<T, E>) -> Option<T> {
    match res {
        Ok(v) => Some(v),
        Err(e) => {
            r.check(false, format!("{what}: {e}"));
            None
        }
    }
}

/// Nanoseconds per `GET_VERSION` ioctl, the null-ioctl baseline:
/// [`NULL_IOCTLS`] in batches of [`NULL_BATCH`], `(median batch, mean)`
/// per ioctl. The median batch leaves out the batches a timer interrupt or
/// a descheduled vCPU thread fell into, as the per-access median of the
/// kernel-timed figures does.
fn null_ioctl_ns(dev: &Dev) -> std::io::Result<(f64, f64)> {
    let mut batches = Vec::new();
    let start = Instant::now();
    for _ in 0..NULL_IOCTLS / NULL_BATCH {
        let t = Instant::now();
        for _ in 0..NULL_BATCH {
            dev.version()?;
        }
        batches.push(t.elapsed().as_nanos() as f64 / f64::from(NULL_BATCH));
    }
    let mean = start.elapsed().as_nanos() as f64 / f64::from(NULL_IOCTLS);
    Ok((median(batches), mean))
}

/// One timed command of `pciem_trapdrv` (`time_… N` or `time_… OFF N`),
/// timed in the kernel access by access: `(median, mean)` nanoseconds per
/// access.
fn per_op_ns(drv: &TrapDrv, op: &str, off: Option<u64>, n: u64) -> std::io::Result<(f64, f64)> {
    let line = match off {
        Some(off) => format!("{op} {off:#x} {n}"),
        None => format!("{op} {n}"),
    };
    let err = |e: std::io::Error| std::io::Error::other(format!("`{line}`: {e}"));
    let total = drv.cmd(&line).map_err(err)?;
    let p50 = drv.cmd("time_pct 50").map_err(err)?;
    Ok((p50 as f64, total as f64 / n as f64))
}

/// Per-pass samples of each figure, by name, in the order first seen.
#[derive(Default)]
struct Samples(Vec<(String, Vec<f64>)>);

impl Samples {
    fn push(&mut self, name: &str, v: f64) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, vs)) => vs.push(v),
            None => self.0.push((name.to_string(), vec![v])),
        }
    }

    fn all(&self, name: &str) -> Vec<f64> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    fn median(&self, name: &str) -> Option<f64> {
        let v = self.all(name);
        (!v.is_empty()).then(|| median(v))
    }

    /// The best (lowest) pass: what the figure reports. Interference
    /// only ever adds time here (a vCPU thread descheduled by the host
    /// makes every wait across the two vCPUs of a pass take ~8 ms), so the
    /// fastest pass is the cleanest; the median of the passes is printed
    /// beside it.
    fn best(&self, name: &str) -> Option<f64> {
        self.all(name).into_iter().reduce(f64::min)
    }
}

/// Measures `(name, op, offset, n)` in turns with the null ioctl, on
/// [`DRIVER_CPU`], for [`TRAP_PASSES`] passes or [`TRAP_PHASE_BUDGET`];
/// the samples go into `s`. Returns the number of passes made, `None`
/// after a failure.
fn trap_passes(
    r: &mut Report,
    dev: &Dev,
    drv: &TrapDrv,
    rows: &[(&'static str, &str, Option<u64>, u64)],
    model: &TrapModel,
    store_reg: u64,
    s: &mut Samples,
) -> Option<u64> {
    let state = quiet(
        r,
        "mmap the ring for consumer_state",
        ConsumerState::map(dev),
    )?;
    let start = Instant::now();
    let mut passes = 0;
    // Stores to `store_reg` made so far: the model counts them as events.
    let mut stored = 0;
    while passes < TRAP_PASSES && (passes < MIN_TRAP_PASSES || start.elapsed() < TRAP_PHASE_BUDGET)
    {
        passes += 1;
        let null = quiet(r, "GET_VERSION", null_ioctl_ns(dev))?;
        s.push("null-ioctl", null.0);
        s.push("null-ioctl (mean)", null.1);
        for &(name, op, off, n) in rows {
            // The model has taken every event of the rows before.
            if !wait_until(Duration::from_secs(10), || {
                model.stores.load(Ordering::Acquire) >= stored
            }) {
                r.check(
                    false,
                    format!("the model took {stored} stores before {name}"),
                );
                return None;
            }
            if op.starts_with("time_writel") && off == Some(store_reg) {
                stored += n;
            }
            // The model-answered read, answered both ways.
            if name == "trap-model-read-ioctl" {
                model.by_ioctl.store(true, Ordering::Release);
            }
            model
                .syspoll
                .store(name.ends_with("-syspoll"), Ordering::Release);
            model
                .pause
                .store(name.ends_with("-pause"), Ordering::Release);
            state.set(if name.ends_with("-legacy") {
                PCIEM_RING_CONSUMER_LEGACY
            } else {
                PCIEM_RING_CONSUMER_AWAKE
            });
            let v = per_op_ns(drv, op, off, n);
            state.set(PCIEM_RING_CONSUMER_AWAKE);
            model.by_ioctl.store(false, Ordering::Release);
            model.syspoll.store(false, Ordering::Release);
            model.pause.store(false, Ordering::Release);
            let (p50, mean) = quiet(r, name, v)?;
            s.push(name, p50);
            s.push(&format!("{name} (mean)"), mean);
        }
    }
    println!(
        "INFO: trap bench: {passes} passes in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Some(passes as u64)
}

/// A fresh 1f0c:7e56 (BAR0 16 KiB, one MSI vector) in trap mode with a
/// READ_MODEL range at [`REG_MODEL`], or in watch mode; registered, its
/// sysfs path once `pciem_trapdrv` is bound.
fn trap_device(r: &mut Report, dev: &Dev, trapped: bool) -> Option<(Instance, PathBuf)> {
    let described = if trapped {
        dev.describe_trap_device()
            .and_then(|()| dev.add_trap_range(0, PCIEM_TRAP_READ_MODEL, REG_MODEL, 0x100))
            .and_then(|()| dev.set_read_timeout(BENCH_READ_TIMEOUT_US))
    } else {
        dev.create()
            .and_then(|()| dev.add_bar(0, TRAP_BAR0_SIZE, pciem_abi::PCIEM_BAR_MEM_TYPE_32))
            .and_then(|()| dev.set_identity(TEST_VENDOR, TEST_DEVICE_TRAP, 0x0b_40_00))
    };
    let mode = if trapped { "trap" } else { "watch" };
    r.step(
        format!("describe 1f0c:7e56, BAR0 in {mode} mode"),
        described.and_then(|()| dev.add_msi(0)),
    )?;
    let inst = r.step("REGISTER", dev.register())?;
    let Some(path) = sysfs::wait_device(TEST_VENDOR, TEST_DEVICE_TRAP, Duration::from_secs(5))
    else {
        r.check(false, "1f0c:7e56 is in sysfs after REGISTER");
        return None;
    };
    Some((inst, path))
}

fn trapdrv_bound(r: &mut Report, path: &Path) -> bool {
    let bound = wait_until(Duration::from_secs(10), || {
        sysfs::driver_of(path).as_deref() == Some(TRAPDRV) && path.join("cmd").exists()
    });
    r.check(bound, format!("{TRAPDRV} bound"))
}

/// Watch mode: untrapped stores and loads, the watchpoint trap.
fn watch_phase(r: &mut Report, s: &mut Samples) {
    let Some(dev) = r.step("open /dev/pciem", Dev::open()) else {
        return;
    };
    let Some((_inst, path)) = trap_device(r, &dev, false) else {
        return;
    };
    if !trapdrv_bound(r, &path) {
        return;
    }
    let drv = TrapDrv::new(&path);
    if r.step(
        format!("SET_WATCHPOINT BAR0+{REG_WATCHED:#x}"),
        dev.watch(0, REG_WATCHED as u32, 4),
    )
    .is_none()
    {
        return;
    }
    let model = TrapModel::default();
    let rows = [
        ("loop-iteration", "time_loop", None, LOOP_ITERATIONS),
        (
            "untrapped-store",
            "time_writel",
            Some(REG_PLAIN),
            PLAIN_ACCESSES,
        ),
        (
            "untrapped-load",
            "time_readl",
            Some(REG_PLAIN),
            PLAIN_ACCESSES,
        ),
        (
            "watchpoint-store",
            "time_writel",
            Some(REG_WATCHED),
            WATCHED_STORES,
        ),
        (
            "watchpoint-store-legacy",
            "time_writel",
            Some(REG_WATCHED),
            WATCHED_STORES,
        ),
    ];
    let ok = std::thread::scope(|sc| {
        let m = sc.spawn(|| model.run(&dev, None, REG_WATCHED));
        let passes = pin_to_cpu(DRIVER_CPU)
            .ok()
            .and_then(|()| trap_passes(r, &dev, &drv, &rows, &model, REG_WATCHED, s));
        // The last events still on their way.
        let want = 2 * WATCHED_STORES * passes.unwrap_or(0);
        wait_until(Duration::from_secs(5), || {
            model.stores.load(Ordering::Acquire) >= want
        });
        model.stop.store(true, Ordering::Release);
        passes.filter(|_| m.join().is_ok())
    });
    unpin();
    let Some(passes) = ok else {
        r.check(false, "the watch-mode passes ran to the end");
        return;
    };
    let want = 2 * WATCHED_STORES * passes;
    let (got, lost) = (
        model.stores.load(Ordering::Acquire),
        model.overflow.load(Ordering::Acquire),
    );
    r.check(
        got == want && lost == 0,
        format!("watch mode: one event per watched store, none for the unwatched register ({got} of {want}, {lost} lost)"),
    );
    let problems = model.problems.lock().unwrap().clone();
    r.check(
        problems.is_empty(),
        format!("watch mode: the model saw nothing unexpected: {problems:?}"),
    );
}

/// Trap mode: stores, loads, model-answered reads (page and ioctl), the
/// busy-polled doorbell → MSI round trip.
fn trap_phase(r: &mut Report, s: &mut Samples) {
    let Some(dev) = r.step("open /dev/pciem", Dev::open()) else {
        return;
    };
    let Some((inst, path)) = trap_device(r, &dev, true) else {
        return;
    };
    let model = TrapModel::default();
    let rows = [
        ("loop-iteration", "time_loop", None, LOOP_ITERATIONS),
        (
            "trap-store",
            "time_writel",
            Some(REG_PLAIN),
            TRAPPED_ACCESSES,
        ),
        (
            "trap-store-legacy",
            "time_writel",
            Some(REG_PLAIN),
            TRAPPED_ACCESSES,
        ),
        (
            "trap-store-syspoll",
            "time_writel",
            Some(REG_PLAIN),
            TRAPPED_ACCESSES,
        ),
        (
            "trap-store-irqoff",
            "time_writel_irqoff",
            Some(REG_PLAIN),
            TRAPPED_ACCESSES,
        ),
        ("trap-load", "time_readl", Some(REG_PLAIN), TRAPPED_ACCESSES),
        (
            "trap-model-read-ioctl",
            "time_readl",
            Some(REG_MODEL),
            MODEL_READS,
        ),
        (
            "trap-model-read-page",
            "time_readl",
            Some(REG_MODEL),
            MODEL_READS,
        ),
        (
            "trap-model-read-page-syspoll",
            "time_readl",
            Some(REG_MODEL),
            MODEL_READS,
        ),
        (
            "trap-model-read-page-pause",
            "time_readl",
            Some(REG_MODEL),
            MODEL_READS,
        ),
        (
            "trap-roundtrip-busy",
            "time_roundtrip",
            Some(REG_DOORBELL),
            BUSY_ROUND_TRIPS,
        ),
        (
            "trap-roundtrip-busy-legacy",
            "time_roundtrip",
            Some(REG_DOORBELL),
            BUSY_ROUND_TRIPS,
        ),
        (
            "trap-roundtrip-busy-pause",
            "time_roundtrip",
            Some(REG_DOORBELL),
            BUSY_ROUND_TRIPS,
        ),
        (
            "trap-roundtrip-busy-irqoff",
            "time_roundtrip_irqoff",
            Some(REG_DOORBELL),
            BUSY_ROUND_TRIPS,
        ),
        ("irq-work-self-ipi", "time_irqwork", None, IRQ_WORKS),
    ];
    let mut irqs = None;
    let mut stats = None;
    let mut passes = 0;
    let ok = std::thread::scope(|sc| {
        let m = sc.spawn(|| model.run(&dev, Some(&inst), REG_PLAIN));
        let ok = (|| {
            pin_to_cpu(DRIVER_CPU).ok()?;
            r.step("START", dev.start())?;
            if !trapdrv_bound(r, &path) {
                return None;
            }
            let drv = TrapDrv::new(&path);
            r.step("irq_setup (one MSI vector)", drv.cmd("irq_setup"))?;
            let answer = r.step(
                "rl of the READ_MODEL register",
                drv.cmd(&format!("rl {REG_MODEL:#x}")),
            )?;
            r.check(
                answer == model_value(REG_MODEL),
                format!("the model answers the read ({answer:#x})"),
            );
            let irq0 = r.step("irq_count", drv.cmd("irq_count"))?;
            let s0 = TrapStats::read(&path)?;
            passes = trap_passes(r, &dev, &drv, &rows, &model, REG_PLAIN, s)?;
            irqs = drv.cmd("irq_count").ok().map(|n| n - irq0);
            stats = TrapStats::read(&path).map(|s1| s1.since(&s0));
            Some(())
        })()
        .is_some();
        wait_until(Duration::from_secs(5), || {
            model.stores.load(Ordering::Acquire) >= 4 * TRAPPED_ACCESSES * passes
        });
        model.stop.store(true, Ordering::Release);
        ok & m.join().is_ok()
    });
    unpin();
    if !ok {
        r.check(false, "the trap-mode passes ran to the end");
        return;
    }
    let (stores, doorbells, reads, lost) = (
        model.stores.load(Ordering::Acquire),
        model.doorbells.load(Ordering::Acquire),
        model.reads.load(Ordering::Acquire),
        model.overflow.load(Ordering::Acquire),
    );
    r.check(
        stores == 4 * TRAPPED_ACCESSES * passes && lost == 0,
        format!(
            "trap mode: one MMIO_WRITE per store ({stores} of {}, {lost} lost)",
            4 * TRAPPED_ACCESSES * passes
        ),
    );
    let rts = 4 * BUSY_ROUND_TRIPS * passes;
    r.check(
        doorbells == rts && irqs == Some(rts),
        format!("every doorbell answered by one MSI, counted by the driver ({doorbells} doorbells, {irqs:?} irqs, {rts} round trips)"),
    );
    // The probe's and the check's reads come on top.
    let model_reads = 4 * MODEL_READS * passes;
    r.check(
        reads == model_reads + 1,
        format!(
            "every model-answered read reached the model ({reads} of {})",
            model_reads + 1
        ),
    );
    r.check(
        stats.is_some_and(|d| {
            d.model_reads == model_reads
                && d.read_timeouts == 0
                && d.undecodable == 0
                && d.untrapped == 0
        }),
        format!("pciem_trap: {model_reads} model reads, no timeout, nothing undecodable or untrapped ({stats:?})"),
    );
    let problems = model.problems.lock().unwrap().clone();
    r.check(
        problems.is_empty(),
        format!("trap mode: the model saw nothing unexpected: {problems:?}"),
    );
}

/// Lets the calling thread run on every CPU again.
fn unpin() {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and
    // sched_setaffinity only touch the set we pass.
    unsafe {
        let mut set: libc::cpu_set_t = core::mem::zeroed();
        for cpu in 0..libc::CPU_SETSIZE as usize {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Trap mode against its baselines, every figure in nanoseconds per
/// access and as a ratio to a null ioctl of the same run.
fn trap_mode(r: &mut Report) {
    if !r.check(
        Path::new("/sys/bus/pci/drivers").join(TRAPDRV).exists(),
        "pciem_trapdrv.ko is loaded",
    ) {
        return;
    }
    let mut s = Samples::default();
    watch_phase(r, &mut s);
    // The watch-mode device is gone before the trap-mode one appears.
    r.check(
        wait_until(Duration::from_secs(5), || {
            sysfs::find_devices(TEST_VENDOR, TEST_DEVICE_TRAP).is_empty()
        }),
        "the watch-mode 1f0c:7e56 is removed",
    );
    trap_phase(r, &mut s);
    let Some(null) = s.best("null-ioctl") else {
        return;
    };
    let fmt = |name: &str| {
        s.all(name)
            .iter()
            .map(|v| format!("{v:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (name, _) in &s.0 {
        println!(
            "INFO: trap bench {name}: ns per op in each pass (median access unless mean): {}",
            fmt(name)
        );
    }
    for name in [
        "trap-store",
        "trap-store-legacy",
        "trap-store-syspoll",
        "trap-store-irqoff",
        "trap-load",
        "trap-model-read-page",
        "trap-model-read-ioctl",
        "trap-model-read-page-syspoll",
        "trap-model-read-page-pause",
        "trap-roundtrip-busy",
        "trap-roundtrip-busy-legacy",
        "trap-roundtrip-busy-pause",
        "trap-roundtrip-busy-irqoff",
        "untrapped-store",
        "untrapped-load",
        "watchpoint-store",
        "watchpoint-store-legacy",
        "irq-work-self-ipi",
    ] {
        if let Some(v) = s.best(name) {
            println!(
                "INFO: trap bench {name}: best pass {v:.0} ns, median pass {:.0} ns",
                s.median(name).unwrap_or(f64::NAN)
            );
            bench(&format!("{name}-ns"), v, "ns", "null-ioctl-ns", null);
        }
    }
    if let (Some(t), Some(w)) = (s.best("trap-store"), s.best("watchpoint-store")) {
        bench("trap-store-ns", t, "ns", "watchpoint-store-ns", w);
    }
    for (name, target) in [("trap-store", 2.0), ("trap-roundtrip-busy", 5.0)] {
        if let Some(v) = s.best(name) {
            let ratio = v / null;
            println!(
                "INFO: target: {name} {ratio:.2}x a null ioctl (target <= {target}x): {}",
                if ratio <= target { "met" } else { "MISSED" }
            );
        }
    }
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
    trap_mode(&mut r);
    dma(&mut r);
    dma_check_cost(&mut r);
    if let [ko, device_cmd @ ..] = &args[..] {
        if device_cmd.is_empty() {
            r.check(false, "usage: vmtest-bench [KO DEVICE-CMD [ARGS...]]");
        } else {
            protopciem(&mut r, ko, device_cmd);
        }
    }
    r.finish()
}
