//! `cargo bench --bench mock_roundtrip`: a driver-side MMIO write to a
//! watched register, through the mock backend's event ring to a device
//! model on its own thread, which raises MSI, observed by the harness
//! spinning on `poll_irq`. Measured with the device thread busy-polling
//! and sleeping on its eventfd, next to a bare cache-line round trip and a
//! bare eventfd round trip in the same run. Prints p50/p99 and commands/s
//! and writes `target/pciem-bench/mock_roundtrip.{csv,png}`.

use std::time::{Duration, Instant};

use criterion::Criterion;
use pciem_backend_mock::{DeviceWait, Harness};
use pciem_bench::affinity::{pin_current, two_cpus};
use pciem_bench::pingpong::{CacheLinePingPong, EventfdPingPong};
use pciem_bench::plot::{Bar, BarKind};
use pciem_bench::report::{criterion_test_mode, format_table, publish, Summary};
use pciem_bench::stats::{chunked_ns_per_op, mean, paired_ratio, percentile, Recorder};
use pciem_core::config::{Bar as PciBar, MsiCap};
use pciem_core::{
    BuildError, ConfigBuilder, ConfigSpace, Device, Host, HostError, Irq, MmioWrite, Watch,
};

static RECORDER: Recorder = Recorder::new();
/// Samples per benchmark in criterion's pass.
const SAMPLES: usize = 20;
/// Rounds of the interleaved pass the summary is computed from.
const ROUNDS: usize = 10;
/// MSI message the harness programs; the device's interrupts must carry it.
const MSI_ADDRESS: u64 = 0xfee0_0000;
const MSI_DATA: u16 = 0x4a;

/// The smallest useful device: every write to its doorbell register (BAR0
/// offset 0) raises MSI vector 0.
struct DoorbellDevice;

const WATCHES: [Watch; 1] = [Watch {
    bar: 0,
    offset: 0,
    width: 4,
}];

impl Device for DoorbellDevice {
    type Error = HostError;
    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        ConfigBuilder::new(0x1234, 0xbe11)
            .bar(0, PciBar::memory32(4096))
            .msi(MsiCap::new(1))
            .build()
    }
    fn watches(&self) -> &[Watch] {
        &WATCHES
    }
    fn mmio_write(&mut self, host: &dyn Host, _w: MmioWrite) -> Result<(), HostError> {
        host.raise_irq(Irq::Msi { vector: 0 })
    }
}

/// A harness whose device thread runs on `device_cpu` (threads inherit
/// their creator's CPU mask, so the caller is moved there for the spawn
/// and back to `driver_cpu` after).
fn harness(wait: DeviceWait, driver_cpu: usize, device_cpu: usize) -> Harness<DoorbellDevice> {
    pin_current(device_cpu).expect("pin for the spawn");
    let mut h = Harness::threaded_with(DoorbellDevice, wait).expect("plug the device in");
    pin_current(driver_cpu).expect("pin the driver");
    h.enable_msi(MSI_ADDRESS, MSI_DATA).expect("enable MSI");
    h
}

/// `iters` commands: write the doorbell, spin until the MSI is seen.
/// Returns every command's own latency in ns.
fn commands(h: &mut Harness<DoorbellDevice>, iters: u64) -> Vec<f64> {
    let mut each = Vec::with_capacity(iters as usize);
    for i in 0..iters {
        let t = Instant::now();
        h.write32(0, 0, i as u32).expect("doorbell write");
        let irq = loop {
            if let Some(irq) = h.poll_irq() {
                break irq;
            }
            core::hint::spin_loop();
        };
        each.push(t.elapsed().as_nanos() as f64);
        assert_eq!(irq.data, u32::from(MSI_DATA), "wrong MSI");
    }
    each
}

/// Criterion's measurement of `iters` commands.
fn timed_commands(h: &mut Harness<DoorbellDevice>, iters: u64) -> Duration {
    let start = Instant::now();
    commands(h, iters);
    start.elapsed()
}

/// One round's sample of a mode: every command's latency for `budget`.
fn mock_sample(wait: DeviceWait, cpus: (usize, usize), budget: Duration) -> Vec<f64> {
    let mut h = harness(wait, cpus.0, cpus.1);
    commands(&mut h, 200);
    let start = Instant::now();
    let mut all = Vec::new();
    while start.elapsed() < budget {
        all.extend(commands(&mut h, 100));
    }
    assert!(
        h.device_errors().is_empty(),
        "device errors: {:?}",
        h.device_errors()
    );
    all
}

/// One round's sample of the busy floor: per-chunk mean cache-line round
/// trip in ns (a command is a round trip: write there, MSI back).
fn floor_sample(cpus: (usize, usize), budget: Duration) -> Vec<f64> {
    let mut pp = CacheLinePingPong::start(cpus.1).expect("start echo thread");
    pp.round_trips(1000);
    chunked_ns_per_op(budget, 100, |k| pp.round_trips(k))
}

fn eventfd_sample(cpus: (usize, usize), budget: Duration) -> Vec<f64> {
    let mut pp = EventfdPingPong::start(cpus.1).expect("start echo thread");
    pp.round_trips(100);
    // Half a round trip: one wake-up, which is what a command costs when
    // only the device sleeps (the driver spins on `poll_irq`).
    let v = chunked_ns_per_op(budget, 10, |k| pp.round_trips(k) / 2);
    assert_eq!(pp.errors, 0, "eventfd ping-pong: failed system calls");
    v
}

type Sampler = fn((usize, usize), Duration) -> Vec<f64>;

fn main() {
    let (cpu_a, cpu_b) = two_cpus().expect("two CPUs");
    pin_current(cpu_a).expect("pin the driver thread");
    let mut c = Criterion::default()
        .sample_size(SAMPLES)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let test_mode = criterion_test_mode();

    let mut floor = CacheLinePingPong::start(cpu_b).expect("start echo thread");
    c.benchmark_group("round-trip")
        .bench_function("floor-round-trip", |b| {
            b.iter_custom(|n| floor.round_trips(n))
        });
    drop(floor);
    let mut h = harness(DeviceWait::BusyPoll, cpu_a, cpu_b);
    c.benchmark_group("round-trip")
        .bench_function("mock-busy-poll", |b| {
            b.iter_custom(|n| timed_commands(&mut h, n))
        });
    drop(h);
    let mut efd = EventfdPingPong::start(cpu_b).expect("start echo thread");
    c.benchmark_group("round-trip")
        .bench_function("eventfd-wakeup", |b| {
            b.iter_custom(|n| efd.round_trips(n) / 2)
        });
    drop(efd);
    let mut h = harness(DeviceWait::Sleep, cpu_a, cpu_b);
    c.benchmark_group("round-trip")
        .bench_function("mock-eventfd-sleep", |b| {
            b.iter_custom(|n| timed_commands(&mut h, n))
        });
    drop(h);
    c.final_summary();

    // The summary's pass: interleaved rounds, as in ring_latency.
    let (rounds, budget) = if test_mode {
        (1, Duration::from_millis(1))
    } else {
        (ROUNDS, Duration::from_millis(40))
    };
    let samplers: [(&str, Sampler); 4] = [
        ("floor-round-trip", floor_sample),
        ("mock-busy-poll", |cpus, budget| {
            mock_sample(DeviceWait::BusyPoll, cpus, budget)
        }),
        ("eventfd-wakeup", eventfd_sample),
        ("mock-eventfd-sleep", |cpus, budget| {
            mock_sample(DeviceWait::Sleep, cpus, budget)
        }),
    ];
    for _ in 0..rounds {
        for (name, sample) in samplers {
            RECORDER.record(name, sample((cpu_a, cpu_b), budget));
        }
    }
    summarise(test_mode, rounds);
}

const ROWS: [(&str, &str, BarKind); 4] = [
    ("floor-round-trip", "floor-round-trip", BarKind::Floor),
    ("mock-busy-poll", "floor-round-trip", BarKind::Pciem),
    ("eventfd-wakeup", "eventfd-wakeup", BarKind::Floor),
    ("mock-eventfd-sleep", "eventfd-wakeup", BarKind::Pciem),
];

fn summarise(test_mode: bool, rounds: usize) {
    let header = [
        "name",
        "p50_ns",
        "p99_ns",
        "commands_per_s",
        "ratio_to_floor",
        "floor",
    ];
    let mut rows = Vec::new();
    let mut bars = Vec::new();
    let mut p50s = std::collections::BTreeMap::new();
    for (name, floor, kind) in ROWS {
        let v = RECORDER.last_sorted(name, rounds);
        let (Some(p50), Some(p99), Some(avg), Some(ratio)) = (
            percentile(&v, 50.0),
            percentile(&v, 99.0),
            mean(&v),
            paired_ratio(&RECORDER.samples(name), &RECORDER.samples(floor)),
        ) else {
            eprintln!("{name}: no samples");
            continue;
        };
        p50s.insert(name, p50);
        // The floors record per-chunk means, not per-operation times, so
        // their p99 would be a p99 of means: leave it out rather than
        // mislead.
        let p99 = if kind == BarKind::Floor {
            "-".to_owned()
        } else {
            format!("{p99:.0}")
        };
        rows.push(vec![
            name.to_owned(),
            format!("{p50:.0}"),
            p99,
            format!("{:.0}", 1e9 / avg),
            format!("{ratio:.2}"),
            floor.to_owned(),
        ]);
        bars.push(Bar {
            label: name.to_owned(),
            value_ns: p50,
            note: format!("{p50:.0} ns  {ratio:.2}x"),
            kind,
        });
    }
    println!(
        "\nSummary: write to a watched register -> device model -> MSI seen, per command, {rounds} \
         interleaved rounds; ratio is the median of per-round p50 ratios to the floor of the same round"
    );
    print!("{}", format_table(&header, &rows));
    let mut goals = String::new();
    if let Some(p50) = p50s.get("mock-busy-poll") {
        let verdict = if *p50 < 2000.0 { "met" } else { "MISSED" };
        goals = format!("goal mock-busy-poll p50 < 2 us: {verdict} ({p50:.0} ns)\n");
    }
    publish(
        &Summary {
            name: "mock_roundtrip",
            title: "mock round trip per command (p50, log scale)",
            header: &header,
            rows: &rows,
            goals: &goals,
            bars: &bars,
        },
        test_mode,
    );
}
