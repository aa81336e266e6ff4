//! Not a scenario: the NVMe part of `cargo xtask bench-vm`. The same fio
//! jobs in the same guest boot against the Rust controller (`pciem-nvme`)
//! and QEMU's built-in NVMe controller, one `BENCH` line per figure with
//! QEMU's as the baseline, and one I/O's path traced on each.
//!
//! `vmtest-nvme-bench MODEL-BIN QEMU-SERIAL`
//!
//! | figure | fio job (direct, libaio, 64 MiB region written first) |
//! |---|---|
//! | 4 KiB random read QD1: p50, p90, p99 latency (submission to completion), IOPS | `randread bs=4k iodepth=1`, 3 rounds taking turns, median round |
//! | 4 KiB random read QD16: IOPS | `randread bs=4k iodepth=16` |
//! | 128 KiB sequential read and write: MB/s | `read`/`write bs=128k iodepth=16` |
//! | the QD1 read with fio and the model on one vCPU | as the first, `--cpus_allowed=0`, model pinned to CPU 0 (QEMU's with fio pinned the same) |
//! | one QD1 read's path | nvme tracepoints, interrupt entry, kprobes on the model's pciem ioctls |
//!
//! Each job runs 1 s of ramp and 3 s of measurement. QEMU TCG on a shared
//! 2-core host slows and disturbs everything: read the ratios.

use std::path::Path;
use std::time::Duration;

use pciem_vmtest::nvme::{
    breakdown, fio, fio_job, mount_backing_tmpfs, trace_start, trace_stop, wait_ctrl, Ctrl,
    FioResult, Model, BACKING_DIR, MODEL_SERIAL,
};
use pciem_vmtest::sysfs::read_trim;
use pciem_vmtest::trapdrv::TrapStats;
use pciem_vmtest::Report;

const DISK_BYTES: u64 = 256 << 20;
const APPEAR: Duration = Duration::from_secs(60);
/// Rounds of the QD1 job, taking turns between the controllers.
const QD1_ROUNDS: usize = 3;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bin, serial] = &args[..] else {
        eprintln!("usage: vmtest-nvme-bench MODEL-BIN QEMU-SERIAL");
        std::process::exit(2)
    };
    let mut r = Report::new("nvme-bench");
    bench(&mut r, bin, serial);
    r.finish()
}

/// Completed I/Os of the namespace (reads + writes, from `stat`).
fn ios_done(c: &Ctrl) -> u64 {
    let stat = read_trim(&Path::new("/sys/block").join(&c.disk).join("stat")).unwrap_or_default();
    let f: Vec<u64> = stat
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    f.first().copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0)
}

/// Pins process `pid` to CPU `cpu`.
fn pin(pid: i32, cpu: usize) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and
    // sched_setaffinity only touch the set we pass.
    unsafe {
        let mut set: libc::cpu_set_t = core::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(pid, core::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Unpins process `pid` (CPUs 0 and 1).
fn unpin(pid: i32) -> std::io::Result<()> {
    // SAFETY: as in `pin`.
    unsafe {
        let mut set: libc::cpu_set_t = core::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::CPU_SET(1, &mut set);
        if libc::sched_setaffinity(pid, core::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// One timed fio job on `c`: `extra` plus the common timing options and
/// total-latency percentiles. On the Rust controller (`pci` given), prints
/// the trapped accesses per completed I/O.
fn job(
    r: &mut Report,
    c: &Ctrl,
    name: &str,
    extra: &[&str],
    pci: Option<&Path>,
) -> Option<FioResult> {
    let mut a: Vec<&str> = extra.to_vec();
    a.extend([
        "--size=64M",
        "--time_based=1",
        "--runtime=3",
        "--ramp_time=1",
        "--lat_percentiles=1",
        "--clat_percentiles=0",
    ]);
    let before = (pci.and_then(TrapStats::read), ios_done(c));
    let res = fio(&fio_job(name, &c.dev(), &a));
    let after = (pci.and_then(TrapStats::read), ios_done(c));
    if let (Some(b), Some(a)) = (before.0, after.0) {
        let ios = (after.1 - before.1).max(1) as f64;
        println!(
            "INFO: {name} on {}: {:.2} trapped stores, {:.2} loads, {:.2} model reads per I/O ({} I/Os), {} read timeouts",
            c.dev(),
            (a.stores - b.stores) as f64 / ios,
            (a.loads - b.loads) as f64 / ios,
            (a.model_reads - b.model_reads) as f64 / ios,
            after.1 - before.1,
            a.read_timeouts - b.read_timeouts
        );
    }
    match res {
        Ok(res) if res.error == 0 => Some(res),
        Ok(res) => {
            r.check(
                false,
                format!("fio {name} on {}: error {}", c.dev(), res.error),
            );
            None
        }
        Err(e) => {
            r.check(false, format!("fio {name} on {}: {e}", c.dev()));
            None
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn bench_line(metric: &str, unit: &str, ours: f64, qemu: f64) {
    println!("BENCH {metric} {ours:.3} {unit} qemu-nvme {qemu:.3}");
}

fn bench(r: &mut Report, bin: &str, qemu_serial: &str) {
    if r.step(
        "mount a tmpfs for the backing file",
        mount_backing_tmpfs(512),
    )
    .is_none()
    {
        return;
    }
    let disk = Path::new(BACKING_DIR).join("bench.img");
    let Some(m) = r.step(
        "start the model",
        Model::start(
            bin,
            &disk,
            DISK_BYTES,
            512,
            Path::new("/tmp/pciem-nvme-bench.log"),
        ),
    ) else {
        return;
    };
    let (Some(ours), Some(theirs)) = (
        wait_ctrl(MODEL_SERIAL, APPEAR),
        wait_ctrl(qemu_serial, APPEAR),
    ) else {
        r.check(false, "both controllers appear");
        m.show_output("model");
        return;
    };
    // Both namespaces written first, so no read hits a hole.
    for c in [&ours, &theirs] {
        let args = fio_job(
            "fill",
            &c.dev(),
            &["--rw=write", "--bs=1M", "--iodepth=4", "--size=64M"],
        );
        r.step(format!("fill 64 MiB of {}", c.dev()), fio(&args));
    }
    let pci = ours.sys().join("device");
    let pci = Some(pci.as_path());

    // QD1 4 KiB random reads, rounds taking turns.
    let qd1: &[&str] = &["--rw=randread", "--bs=4k", "--iodepth=1"];
    let (mut o_rounds, mut q_rounds) = (Vec::new(), Vec::new());
    for _ in 0..QD1_ROUNDS {
        let (Some(o), Some(q)) = (
            job(r, &ours, "randread-4k-qd1", qd1, pci),
            job(r, &theirs, "randread-4k-qd1", qd1, None),
        ) else {
            return;
        };
        println!(
            "INFO: randread-4k-qd1 round: ours p50 {} p90 {} p99 {} us, {:.0} IOPS; QEMU's p50 {} p90 {} p99 {} us, {:.0} IOPS",
            o.read_clat_p50_us, o.read_clat_p90_us, o.read_clat_p99_us, o.read_iops,
            q.read_clat_p50_us, q.read_clat_p90_us, q.read_clat_p99_us, q.read_iops
        );
        o_rounds.push(o);
        q_rounds.push(q);
    }
    let med = |v: &[FioResult], f: fn(&FioResult) -> f64| median(v.iter().map(f).collect());
    for (metric, f) in [
        (
            "p50",
            (|x: &FioResult| x.read_clat_p50_us) as fn(&FioResult) -> f64,
        ),
        ("p90", |x| x.read_clat_p90_us),
        ("p99", |x| x.read_clat_p99_us),
    ] {
        bench_line(
            &format!("nvme-randread-4k-qd1-{metric}-us"),
            "us",
            med(&o_rounds, f),
            med(&q_rounds, f),
        );
    }
    bench_line(
        "nvme-randread-4k-qd1-iops",
        "io/s",
        med(&o_rounds, |x| x.read_iops),
        med(&q_rounds, |x| x.read_iops),
    );

    let (Some(o), Some(q)) = (
        job(
            r,
            &ours,
            "randread-4k-qd16",
            &["--rw=randread", "--bs=4k", "--iodepth=16"],
            pci,
        ),
        job(
            r,
            &theirs,
            "randread-4k-qd16",
            &["--rw=randread", "--bs=4k", "--iodepth=16"],
            None,
        ),
    ) else {
        return;
    };
    bench_line(
        "nvme-randread-4k-qd16-iops",
        "io/s",
        o.read_iops,
        q.read_iops,
    );
    let mbps = |kib_s: f64| kib_s * 1024.0 / 1e6;
    let seq_r: &[&str] = &["--rw=read", "--bs=128k", "--iodepth=16"];
    let (Some(o), Some(q)) = (
        job(r, &ours, "read-128k-qd16", seq_r, pci),
        job(r, &theirs, "read-128k-qd16", seq_r, None),
    ) else {
        return;
    };
    bench_line(
        "nvme-read-128k-qd16-MBps",
        "MB/s",
        mbps(o.read_kib_s),
        mbps(q.read_kib_s),
    );
    let seq_w: &[&str] = &["--rw=write", "--bs=128k", "--iodepth=16"];
    let (Some(o), Some(q)) = (
        job(r, &ours, "write-128k-qd16", seq_w, pci),
        job(r, &theirs, "write-128k-qd16", seq_w, None),
    ) else {
        return;
    };
    bench_line(
        "nvme-write-128k-qd16-MBps",
        "MB/s",
        mbps(o.write_kib_s),
        mbps(q.write_kib_s),
    );

    // The wake-up experiment: fio and the model on one vCPU, so the
    // doorbell's wake-up needs no second vCPU to be scheduled.
    let one_cpu: &[&str] = &[
        "--rw=randread",
        "--bs=4k",
        "--iodepth=1",
        "--cpus_allowed=0",
    ];
    if r.step("pin the model to CPU 0", pin(m.pid(), 0)).is_some() {
        let (Some(o), Some(q)) = (
            job(r, &ours, "randread-4k-qd1-onecpu", one_cpu, pci),
            job(r, &theirs, "randread-4k-qd1-onecpu", one_cpu, None),
        ) else {
            return;
        };
        bench_line(
            "nvme-randread-4k-qd1-onecpu-p50-us",
            "us",
            o.read_clat_p50_us,
            q.read_clat_p50_us,
        );
        bench_line(
            "nvme-randread-4k-qd1-onecpu-iops",
            "io/s",
            o.read_iops,
            q.read_iops,
        );
        r.step("unpin the model", unpin(m.pid()));
    }

    // One I/O's path, traced: the same QD1 4 KiB reads on both.
    let mut totals = Vec::new();
    for (c, who) in [
        (&ours, "the Rust controller"),
        (&theirs, "QEMU's controller"),
    ] {
        if r.step(format!("trace QD1 reads on {}", c.dev()), trace_start())
            .is_none()
        {
            return;
        }
        let res = fio(&fio_job(
            "traced",
            &c.dev(),
            &[
                "--rw=randread",
                "--bs=4k",
                "--iodepth=1",
                "--size=64M",
                "--time_based=1",
                "--runtime=2",
                "--lat_percentiles=1",
                "--clat_percentiles=0",
            ],
        ));
        let Some(trace) = r.step("read the trace", trace_stop()) else {
            return;
        };
        let fio_p50 = res.as_ref().map_or(f64::NAN, |x| x.read_clat_p50_us);
        match breakdown(&trace, &c.name) {
            Some((n, segs)) => {
                println!(
                    "INFO: breakdown of a QD1 4 KiB read on {who} ({}), median of {n} I/Os:",
                    c.name
                );
                for (seg, us) in &segs {
                    println!("INFO:   {seg:<55} {us:>9.1} us");
                }
                println!(
                    "INFO:   {:<55} {fio_p50:>9.1} us",
                    "fio's latency p50 (same run, traced)"
                );
                totals.push(segs.last().map_or(f64::NAN, |s| s.1));
            }
            None => {
                r.check(
                    false,
                    format!("the trace of {} has whole QD1 I/Os", c.dev()),
                );
                return;
            }
        }
    }
    bench_line(
        "nvme-qd1-traced-setup-to-complete-us",
        "us",
        totals[0],
        totals[1],
    );
    drop(m);
}
