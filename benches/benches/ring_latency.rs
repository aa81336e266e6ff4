//! `cargo bench --bench ring_latency`: the pciem-core ring's one-way
//! latency and throughput, next to the bare cache-line ping-pong floor and
//! peers doing the same job, and its eventfd wake-up next to a bare eventfd
//! ping-pong. Ends with a summary table from the recorded samples and
//! writes `target/pciem-bench/ring_latency.{csv,png}`.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use pciem_abi::pciem_event;
use pciem_bench::affinity::{pin_current, two_cpus};
use pciem_bench::pingpong::{
    CacheLinePingPong, EventfdPingPong, PciemRing, QueuePingPong, QueueStream, RingEventfdPingPong,
    SpscQueue,
};
use pciem_bench::plot::{bar_chart, Bar, BarKind};
use pciem_bench::report::{format_table, out_dir, write_csv};
use pciem_bench::stats::{median, Recorder};

static RECORDER: Recorder = Recorder::new();

/// Samples per benchmark (criterion's measurement phase).
const SAMPLES: usize = 30;
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

/// Records one sample's one-way latency (half the round-trip time per
/// iteration) and returns what criterion should see for it.
fn one_way(name: &str, iters: u64, round_trips: Duration) -> Duration {
    let one_way = round_trips / 2;
    RECORDER.record(name, vec![one_way.as_nanos() as f64 / iters.max(1) as f64]);
    one_way
}

fn queue_latency<Q: SpscQueue + 'static>(c: &mut Criterion, name: &str, echo_cpu: usize) {
    let mut pp = QueuePingPong::<Q>::start(echo_cpu).expect("start echo thread");
    c.benchmark_group("one-way-latency")
        .bench_function(name, |b| {
            b.iter_custom(|iters| one_way(name, iters, pp.round_trips(iters)))
        });
    assert_eq!(pp.mismatches, 0, "{name}: echoes came back wrong");
}

fn queue_throughput<Q: SpscQueue + 'static>(c: &mut Criterion, name: &str, sink_cpu: usize) {
    let mut s = QueueStream::<Q>::start(sink_cpu).expect("start sink thread");
    let mut g = c.benchmark_group("throughput");
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function(BenchmarkId::new(name, BATCH), |b| {
        b.iter_custom(|iters| {
            let d = s.send(iters * BATCH);
            RECORDER.record(
                &format!("{name}/throughput"),
                vec![(iters * BATCH) as f64 / d.as_secs_f64().max(1e-12)],
            );
            d
        })
    });
}

fn main() {
    let (cpu_a, cpu_b) = two_cpus().expect("two CPUs");
    pin_current(cpu_a).expect("pin the measuring thread");
    let mut c = Criterion::default()
        .sample_size(SAMPLES)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let test_mode = std::env::args().any(|a| a == "--test");

    // The floor first, then each mechanism, so they share the machine's
    // state of the moment as closely as sequential runs can.
    let mut floor = CacheLinePingPong::start(cpu_b).expect("start echo thread");
    c.benchmark_group("one-way-latency")
        .bench_function("floor", |b| {
            b.iter_custom(|iters| one_way("floor", iters, floor.round_trips(iters)))
        });
    drop(floor);
    queue_latency::<PciemRing>(&mut c, "pciem-ring", cpu_b);
    queue_latency::<Rtrb>(&mut c, "rtrb", cpu_b);
    queue_latency::<ArrayQueue>(&mut c, "crossbeam-array-queue", cpu_b);
    queue_latency::<CrossbeamChannel>(&mut c, "crossbeam-channel", cpu_b);
    queue_latency::<StdMpsc>(&mut c, "std-mpsc", cpu_b);

    let mut efd = EventfdPingPong::start(cpu_b).expect("start echo thread");
    c.benchmark_group("wakeup-latency")
        .bench_function("eventfd-floor", |b| {
            b.iter_custom(|iters| one_way("eventfd-floor", iters, efd.round_trips(iters)))
        });
    assert_eq!(efd.errors, 0, "eventfd ping-pong: failed system calls");
    drop(efd);
    let mut ring_efd = RingEventfdPingPong::start(cpu_b).expect("start echo thread");
    c.benchmark_group("wakeup-latency")
        .bench_function("pciem-ring-eventfd", |b| {
            b.iter_custom(|iters| one_way("pciem-ring-eventfd", iters, ring_efd.round_trips(iters)))
        });
    assert_eq!(ring_efd.errors, 0, "ring + eventfd ping-pong: errors");
    drop(ring_efd);

    queue_throughput::<PciemRing>(&mut c, "pciem-ring", cpu_b);
    queue_throughput::<Rtrb>(&mut c, "rtrb", cpu_b);
    queue_throughput::<ArrayQueue>(&mut c, "crossbeam-array-queue", cpu_b);
    queue_throughput::<CrossbeamChannel>(&mut c, "crossbeam-channel", cpu_b);
    queue_throughput::<StdMpsc>(&mut c, "std-mpsc", cpu_b);

    c.final_summary();
    summarise(test_mode);
}

/// (name, the floor it is compared with, colour)
const ROWS: [(&str, &str, BarKind); 8] = [
    ("floor", "floor", BarKind::Floor),
    ("pciem-ring", "floor", BarKind::Pciem),
    ("rtrb", "floor", BarKind::Peer),
    ("crossbeam-array-queue", "floor", BarKind::Peer),
    ("crossbeam-channel", "floor", BarKind::Peer),
    ("std-mpsc", "floor", BarKind::Peer),
    ("eventfd-floor", "eventfd-floor", BarKind::Floor),
    ("pciem-ring-eventfd", "eventfd-floor", BarKind::Pciem),
];

fn summarise(test_mode: bool) {
    let med = |name: &str| median(&RECORDER.last_sorted(name, SAMPLES));
    let mut rows = Vec::new();
    let mut bars = Vec::new();
    let mut medians = std::collections::BTreeMap::new();
    for (name, floor, kind) in ROWS {
        let (Some(m), Some(f)) = (med(name), med(floor)) else {
            eprintln!("{name}: no samples (filtered out?)");
            continue;
        };
        medians.insert(name, m);
        let ratio = m / f;
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
    println!("\nSummary (one-way latency, median of {SAMPLES} samples; ratio to the floor in the same run):");
    print!("{}", format_table(&header, &rows));

    let goal = |ok: bool| if ok { "met" } else { "MISSED" };
    if let (Some(ring), Some(floor)) = (medians.get("pciem-ring"), medians.get("floor")) {
        println!(
            "goal pciem-ring <= 1.5x floor: {} ({:.2}x)",
            goal(*ring <= 1.5 * floor),
            ring / floor
        );
        let peers = [
            "rtrb",
            "crossbeam-array-queue",
            "crossbeam-channel",
            "std-mpsc",
        ];
        let slower: Vec<&str> = peers
            .iter()
            .copied()
            .filter(|p| medians.get(p).is_some_and(|v| v <= ring))
            .collect();
        println!(
            "goal pciem-ring below every peer: {}{}",
            goal(slower.is_empty()),
            if slower.is_empty() {
                String::new()
            } else {
                format!(" (not below {})", slower.join(", "))
            }
        );
    }
    if let (Some(ring), Some(floor)) = (
        medians.get("pciem-ring-eventfd"),
        medians.get("eventfd-floor"),
    ) {
        println!(
            "goal pciem-ring-eventfd <= 1.2x eventfd-floor: {} ({:.2}x)",
            goal(*ring <= 1.2 * floor),
            ring / floor
        );
    }
    if test_mode {
        // One iteration each, thread start-up included: a smoke run, not a
        // measurement, so nothing is written to the results.
        println!("(--test mode: single iterations, the figures above are not measurements)");
        return;
    }
    match write_csv("ring_latency.csv", &header, &rows) {
        Ok(p) => println!("wrote {}", p.display()),
        Err(e) => eprintln!("{e}"),
    }
    match out_dir().and_then(|d| {
        let p = d.join("ring_latency.png");
        bar_chart(
            &p,
            "one-way latency per mechanism (median, log scale)",
            &bars,
        )
        .map(|()| p)
    }) {
        Ok(p) => println!("wrote {}", p.display()),
        Err(e) => eprintln!("{e}"),
    }
}
