//! `cargo bench --bench ring_latency`: the pciem-core ring's one-way
//! latency and throughput, next to the bare cache-line ping-pong floor and
//! peers doing the same job, and its eventfd wake-up next to a bare eventfd
//! ping-pong. Ends with a summary table from the recorded samples and
//! writes `target/pciem-bench/ring_latency.{csv,png}`.
//!
//! The floor is a lower bound by construction: each round measures a bare
//! word moved each way in three layouts (two fixed lines, one shared line,
//! a run of rotating lines as a ring's slots), and the round's floor is the
//! fastest of them. A mechanism that still beats it is reported loudly: the
//! floor, or the measurement, is then wrong on that machine.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use pciem_abi::pciem_event;
use pciem_bench::affinity::{pin_current, two_cpus};
use pciem_bench::pingpong::{
    CacheLinePingPong, EventfdPingPong, FloorLayout, PciemRing, QueuePingPong, QueueStream,
    RingEventfdPingPong, SpscQueue,
};
use pciem_bench::plot::{Bar, BarKind};
use pciem_bench::report::{criterion_test_mode, format_table, publish, Summary};
use pciem_bench::ringv1::RingV1;
use pciem_bench::stats::{chunked_ns_per_op, median, paired_ratio, Recorder};

static RECORDER: Recorder = Recorder::new();

/// Samples per benchmark in criterion's pass.
const SAMPLES: usize = 20;
/// Rounds of the interleaved pass the summary is computed from.
const ROUNDS: usize = 15;
/// Events per throughput iteration.
const BATCH: u64 = 4096;
const QUEUE_SLOTS: usize = 1024;

struct Rtrb;
impl SpscQueue for Rtrb {
    type Tx = rtrb::Producer<pciem_event>;
    type Rx = rtrb::Consumer<pciem_event>;
    fn pair() -> (Self::Tx, Self::Rx) {
        rtrb::RingBuffer::new(QUEUE_SLOTS)
    }
    #[inline]
    fn try_send(tx: &mut Self::Tx, event: &pciem_event) -> bool {
        tx.push(*event).is_ok()
    }
    #[inline]
    fn try_recv(rx: &mut Self::Rx) -> Option<pciem_event> {
        rx.pop().ok()
    }
    // rtrb's chunk API, so that in the throughput runs it batches as the
    // pciem-core ring does.
    fn try_send_batch(tx: &mut Self::Tx, events: &[pciem_event]) -> usize {
        let n = events.len().min(tx.slots());
        match tx.write_chunk_uninit(n) {
            Ok(chunk) if n != 0 => chunk.fill_from_iter(events.iter().copied()),
            _ => 0,
        }
    }
    fn try_recv_batch(rx: &mut Self::Rx, out: &mut [pciem_event]) -> usize {
        let n = out.len().min(rx.slots());
        match rx.read_chunk(n) {
            Ok(chunk) if n != 0 => out.iter_mut().zip(chunk).map(|(o, e)| *o = e).count(),
            _ => 0,
        }
    }
}

struct ArrayQueue;
impl SpscQueue for ArrayQueue {
    type Tx = std::sync::Arc<crossbeam_queue::ArrayQueue<pciem_event>>;
    type Rx = std::sync::Arc<crossbeam_queue::ArrayQueue<pciem_event>>;
    fn pair() -> (Self::Tx, Self::Rx) {
        let q = std::sync::Arc::new(crossbeam_queue::ArrayQueue::new(QUEUE_SLOTS));
        (q.clone(), q)
    }
    #[inline]
    fn try_send(tx: &mut Self::Tx, event: &pciem_event) -> bool {
        tx.push(*event).is_ok()
    }
    #[inline]
    fn try_recv(rx: &mut Self::Rx) -> Option<pciem_event> {
        rx.pop()
    }
}

struct CrossbeamChannel;
impl SpscQueue for CrossbeamChannel {
    type Tx = crossbeam_channel::Sender<pciem_event>;
    type Rx = crossbeam_channel::Receiver<pciem_event>;
    fn pair() -> (Self::Tx, Self::Rx) {
        crossbeam_channel::bounded(QUEUE_SLOTS)
    }
    #[inline]
    fn try_send(tx: &mut Self::Tx, event: &pciem_event) -> bool {
        tx.try_send(*event).is_ok()
    }
    #[inline]
    fn try_recv(rx: &mut Self::Rx) -> Option<pciem_event> {
        rx.try_recv().ok()
    }
}

struct StdMpsc;
impl SpscQueue for StdMpsc {
    type Tx = std::sync::mpsc::SyncSender<pciem_event>;
    type Rx = std::sync::mpsc::Receiver<pciem_event>;
    fn pair() -> (Self::Tx, Self::Rx) {
        std::sync::mpsc::sync_channel(QUEUE_SLOTS)
    }
    #[inline]
    fn try_send(tx: &mut Self::Tx, event: &pciem_event) -> bool {
        tx.try_send(*event).is_ok()
    }
    #[inline]
    fn try_recv(rx: &mut Self::Rx) -> Option<pciem_event> {
        rx.try_recv().ok()
    }
}

/// Criterion's view of one mechanism: one-way latency is half of each
/// round trip.
fn criterion_latency(c: &mut Criterion, name: &str, mut round_trips: impl FnMut(u64) -> Duration) {
    c.benchmark_group("one-way-latency")
        .bench_function(name, |b| b.iter_custom(|iters| round_trips(iters) / 2));
}

fn criterion_throughput<Q: SpscQueue + 'static>(c: &mut Criterion, name: &str, sink_cpu: usize) {
    let mut s = QueueStream::<Q>::start(sink_cpu).expect("start sink thread");
    let mut g = c.benchmark_group("throughput");
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function(BenchmarkId::new(name, BATCH), |b| {
        b.iter_custom(|iters| s.send(iters * BATCH))
    });
}

/// One interleaved sample (per-chunk one-way latencies in ns, or events/s):
/// start its echo thread on `cpu`, warm up, measure for `budget`, stop.
type Sampler = fn(cpu: usize, budget: Duration) -> Vec<f64>;

/// Round trips per chunk of a busy-polling sample, and of a sleeping one.
const SPIN_CHUNK: u64 = 200;
const SLEEP_CHUNK: u64 = 10;

fn halve(v: Vec<f64>) -> Vec<f64> {
    v.into_iter().map(|x| x / 2.0).collect()
}

fn queue_sample<Q: SpscQueue + 'static>(cpu: usize, budget: Duration) -> Vec<f64> {
    let mut pp = QueuePingPong::<Q>::start(cpu).expect("start echo thread");
    pp.round_trips(1000);
    let ns = halve(chunked_ns_per_op(budget, SPIN_CHUNK, |k| pp.round_trips(k)));
    assert_eq!(pp.mismatches, 0, "echoes came back wrong");
    ns
}

fn floor_sample(layout: FloorLayout, cpu: usize, budget: Duration) -> Vec<f64> {
    let mut pp = CacheLinePingPong::start_layout(cpu, layout).expect("start echo thread");
    pp.round_trips(1000);
    halve(chunked_ns_per_op(budget, SPIN_CHUNK, |k| pp.round_trips(k)))
}

fn floor_two_lines(cpu: usize, budget: Duration) -> Vec<f64> {
    floor_sample(FloorLayout::TwoLines, cpu, budget)
}

fn floor_one_line(cpu: usize, budget: Duration) -> Vec<f64> {
    floor_sample(FloorLayout::OneLine, cpu, budget)
}

fn floor_rotating(cpu: usize, budget: Duration) -> Vec<f64> {
    floor_sample(FloorLayout::Rotating, cpu, budget)
}

/// The round's floor: the sample, among the floor layouts' samples of the
/// round just measured, with the lowest median.
fn best_floor_of_last_round() -> Option<Vec<f64>> {
    FloorLayout::ALL
        .iter()
        .filter_map(|l| RECORDER.samples(l.name()).pop())
        .filter_map(|mut v| {
            v.sort_by(f64::total_cmp);
            Some((median(&v)?, v))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, v)| v)
}

fn eventfd_sample(cpu: usize, budget: Duration) -> Vec<f64> {
    let mut pp = EventfdPingPong::start(cpu).expect("start echo thread");
    pp.round_trips(100);
    let ns = halve(chunked_ns_per_op(budget, SLEEP_CHUNK, |k| {
        pp.round_trips(k)
    }));
    assert_eq!(pp.errors, 0, "eventfd ping-pong: failed system calls");
    ns
}

fn ring_eventfd_sample(cpu: usize, budget: Duration) -> Vec<f64> {
    let mut pp = RingEventfdPingPong::start(cpu).expect("start echo thread");
    pp.round_trips(100);
    let ns = halve(chunked_ns_per_op(budget, SLEEP_CHUNK, |k| {
        pp.round_trips(k)
    }));
    assert_eq!(pp.errors, 0, "ring + eventfd ping-pong: errors");
    ns
}

/// Events per second streamed one way to a sink on `cpu`.
fn throughput_sample<Q: SpscQueue + 'static>(cpu: usize, budget: Duration) -> Vec<f64> {
    let mut s = QueueStream::<Q>::start(cpu).expect("start sink thread");
    s.send(BATCH);
    let ns = chunked_ns_per_op(budget, BATCH, |k| s.send(k));
    ns.into_iter().map(|x| 1e9 / x).collect()
}

/// (name, the floor it is compared with, colour, latency sampler (none:
/// derived, the best floor layout of the round), throughput sampler)
type Mechanism = (
    &'static str,
    &'static str,
    BarKind,
    Option<Sampler>,
    Option<Sampler>,
);

/// Names of the floors: beating these is what the loud warning is about.
const FLOORS: [&str; 5] = [
    "floor",
    "floor-two-lines",
    "floor-one-line",
    "floor-rotating",
    "eventfd-floor",
];

const MECHANISMS: [Mechanism; 12] = [
    (
        "floor-two-lines",
        "floor",
        BarKind::Floor,
        Some(floor_two_lines),
        None,
    ),
    (
        "floor-one-line",
        "floor",
        BarKind::Floor,
        Some(floor_one_line),
        None,
    ),
    (
        "floor-rotating",
        "floor",
        BarKind::Floor,
        Some(floor_rotating),
        None,
    ),
    ("floor", "floor", BarKind::Floor, None, None),
    (
        "pciem-ring",
        "floor",
        BarKind::Pciem,
        Some(queue_sample::<PciemRing>),
        Some(throughput_sample::<PciemRing>),
    ),
    (
        "rtrb",
        "floor",
        BarKind::Peer,
        Some(queue_sample::<Rtrb>),
        Some(throughput_sample::<Rtrb>),
    ),
    (
        "crossbeam-array-queue",
        "floor",
        BarKind::Peer,
        Some(queue_sample::<ArrayQueue>),
        Some(throughput_sample::<ArrayQueue>),
    ),
    (
        "crossbeam-channel",
        "floor",
        BarKind::Peer,
        Some(queue_sample::<CrossbeamChannel>),
        Some(throughput_sample::<CrossbeamChannel>),
    ),
    (
        "std-mpsc",
        "floor",
        BarKind::Peer,
        Some(queue_sample::<StdMpsc>),
        Some(throughput_sample::<StdMpsc>),
    ),
    (
        "pciem-ring-v1",
        "floor",
        BarKind::Former,
        Some(queue_sample::<RingV1>),
        None,
    ),
    (
        "eventfd-floor",
        "eventfd-floor",
        BarKind::Floor,
        Some(eventfd_sample),
        None,
    ),
    (
        "pciem-ring-eventfd",
        "eventfd-floor",
        BarKind::Pciem,
        Some(ring_eventfd_sample),
        None,
    ),
];

fn main() {
    let (cpu_a, cpu_b) = two_cpus().expect("two CPUs");
    pin_current(cpu_a).expect("pin the measuring thread");
    let mut c = Criterion::default()
        .sample_size(SAMPLES)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let test_mode = criterion_test_mode();

    // Criterion's pass: its own statistics for each mechanism in turn.
    for layout in FloorLayout::ALL {
        let mut floor = CacheLinePingPong::start_layout(cpu_b, layout).expect("start echo thread");
        criterion_latency(&mut c, layout.name(), |n| floor.round_trips(n));
    }
    let mut ring = QueuePingPong::<PciemRing>::start(cpu_b).expect("start echo thread");
    criterion_latency(&mut c, "pciem-ring", |n| ring.round_trips(n));
    drop(ring);
    let mut rtrb = QueuePingPong::<Rtrb>::start(cpu_b).expect("start echo thread");
    criterion_latency(&mut c, "rtrb", |n| rtrb.round_trips(n));
    drop(rtrb);
    let mut aq = QueuePingPong::<ArrayQueue>::start(cpu_b).expect("start echo thread");
    criterion_latency(&mut c, "crossbeam-array-queue", |n| aq.round_trips(n));
    drop(aq);
    let mut cc = QueuePingPong::<CrossbeamChannel>::start(cpu_b).expect("start echo thread");
    criterion_latency(&mut c, "crossbeam-channel", |n| cc.round_trips(n));
    drop(cc);
    let mut mpsc = QueuePingPong::<StdMpsc>::start(cpu_b).expect("start echo thread");
    criterion_latency(&mut c, "std-mpsc", |n| mpsc.round_trips(n));
    drop(mpsc);
    let mut v1 = QueuePingPong::<RingV1>::start(cpu_b).expect("start echo thread");
    criterion_latency(&mut c, "pciem-ring-v1", |n| v1.round_trips(n));
    drop(v1);
    let mut efd = EventfdPingPong::start(cpu_b).expect("start echo thread");
    criterion_latency(&mut c, "eventfd-floor", |n| efd.round_trips(n));
    drop(efd);
    let mut ring_efd = RingEventfdPingPong::start(cpu_b).expect("start echo thread");
    criterion_latency(&mut c, "pciem-ring-eventfd", |n| ring_efd.round_trips(n));
    drop(ring_efd);
    criterion_throughput::<PciemRing>(&mut c, "pciem-ring", cpu_b);
    criterion_throughput::<Rtrb>(&mut c, "rtrb", cpu_b);
    criterion_throughput::<ArrayQueue>(&mut c, "crossbeam-array-queue", cpu_b);
    criterion_throughput::<CrossbeamChannel>(&mut c, "crossbeam-channel", cpu_b);
    criterion_throughput::<StdMpsc>(&mut c, "std-mpsc", cpu_b);
    c.final_summary();

    // The summary's pass: rounds in which every mechanism takes one short
    // sample, so all of them see the same load, each paired with its floor
    // of the same round.
    let (rounds, budget) = if test_mode {
        (1, Duration::from_millis(1))
    } else {
        (ROUNDS, Duration::from_millis(25))
    };
    for _ in 0..rounds {
        for (name, _, _, latency, throughput) in MECHANISMS {
            match latency {
                Some(sample) => RECORDER.record(name, sample(cpu_b, budget)),
                None => {
                    let best = best_floor_of_last_round().expect("the floor layouts ran first");
                    RECORDER.record(name, best);
                }
            }
            if let Some(t) = throughput {
                RECORDER.record(&format!("{name}/throughput"), t(cpu_b, budget));
            }
        }
    }
    summarise(test_mode, rounds);
}

/// How far below its floor a mechanism may measure before that counts as
/// beating it: the run-to-run noise of a paired ratio on a shared machine
/// (a mechanism doing the floor's work plus more can still come out a
/// percent or two below it).
const FLOOR_NOISE: f64 = 0.03;

/// The mechanisms (not floors) whose median ratio to their floor is below
/// 1 by more than [`FLOOR_NOISE`], with the ratio.
fn floor_beaten(medians: &std::collections::BTreeMap<&str, (f64, f64)>) -> Vec<String> {
    medians
        .iter()
        .filter(|(name, (_, ratio))| !FLOORS.contains(name) && *ratio < 1.0 - FLOOR_NOISE)
        .map(|(name, (_, ratio))| format!("{name} ({ratio:.3}x)"))
        .collect()
}

fn summarise(test_mode: bool, rounds: usize) {
    let med = |name: &str| median(&RECORDER.last_sorted(name, rounds));
    let mut rows = Vec::new();
    let mut bars = Vec::new();
    let mut medians = std::collections::BTreeMap::new();
    for (name, floor, kind, _, _) in MECHANISMS {
        let (Some(m), Some(ratio)) = (
            med(name),
            paired_ratio(&RECORDER.samples(name), &RECORDER.samples(floor)),
        ) else {
            eprintln!("{name}: no samples");
            continue;
        };
        medians.insert(name, (m, ratio));
        let throughput = med(&format!("{name}/throughput"))
            .map_or_else(|| "-".to_owned(), |t| format!("{:.1}", t / 1e6));
        rows.push(vec![
            name.to_owned(),
            format!("{m:.1}"),
            format!("{ratio:.2}"),
            floor.to_owned(),
            throughput,
        ]);
        bars.push(Bar {
            label: name.to_owned(),
            value_ns: m,
            note: format!("{m:.0} ns  {ratio:.2}x"),
            kind,
        });
    }
    let header = [
        "name",
        "median_ns",
        "ratio_to_floor",
        "floor",
        "Mevents_per_s",
    ];
    println!(
        "\nSummary: one-way latency, median of {rounds} interleaved rounds; ratio_to_floor is the median \
         of per-round ratios to the floor measured in the same round"
    );
    print!("{}", format_table(&header, &rows));

    let goal = |ok: bool| if ok { "met" } else { "MISSED" };
    let mut goals = String::new();
    if let Some((ring, ratio)) = medians.get("pciem-ring").copied() {
        let peers = [
            "rtrb",
            "crossbeam-array-queue",
            "crossbeam-channel",
            "std-mpsc",
        ];
        let not_below: Vec<&str> = peers
            .iter()
            .copied()
            .filter(|p| medians.get(p).is_some_and(|(v, _)| *v <= ring))
            .collect();
        let which = if not_below.is_empty() {
            String::new()
        } else {
            format!(" (not below {})", not_below.join(", "))
        };
        goals += &format!(
            "goal pciem-ring <= 1.5x floor: {} ({ratio:.2}x)\n",
            goal(ratio <= 1.5)
        );
        goals += &format!(
            "goal pciem-ring below every peer: {}{which}\n",
            goal(not_below.is_empty())
        );
    }
    if let Some(ratio) = paired_ratio(
        &RECORDER.samples("pciem-ring"),
        &RECORDER.samples("pciem-ring-v1"),
    ) {
        goals += &format!(
            "pciem-ring / pciem-ring-v1 (ABI-2 tickets against version-1 tail polling, \
             paired by round): {ratio:.2}x\n"
        );
    }
    if let Some((_, ratio)) = medians.get("pciem-ring-eventfd").copied() {
        goals += &format!(
            "goal pciem-ring-eventfd <= 1.2x eventfd-floor: {} ({ratio:.2}x)\n",
            goal(ratio <= 1.2)
        );
    }
    let beaten = floor_beaten(&medians);
    if !beaten.is_empty() {
        let warning = format!(
            "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             !!! FLOOR BEATEN: {} ran below the floor measured in the same rounds.\n\
             !!! The floor is meant to be a lower bound; on this machine it is not\n\
             !!! (or the run was too noisy): ratios to the floor here mean nothing.\n\
             !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n",
            beaten.join(", ")
        );
        eprint!("{warning}");
        goals += &warning;
    } else {
        goals += &format!(
            "floor: a lower bound in this run (no mechanism more than {:.0}% below it)\n",
            FLOOR_NOISE * 100.0
        );
    }
    publish(
        &Summary {
            name: "ring_latency",
            title: "one-way latency per mechanism (median, log scale)",
            header: &header,
            rows: &rows,
            goals: &goals,
            bars: &bars,
        },
        test_mode,
    );
}
