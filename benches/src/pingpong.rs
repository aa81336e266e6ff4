//! Ping-pong and streaming drivers.
//!
//! One-way latency is measured as half a round trip between two pinned
//! threads (the measuring thread and an echo thread), each direction over
//! its own queue, so no clock is compared across cores. Every mechanism,
//! the baselines included, is driven the same way.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pciem_abi::pciem_event;
use pciem_backend_mock::Doorbell;
use pciem_core::ring::{channel, HeapConsumer, HeapProducer};

use crate::affinity::pin_current;
use crate::BenchError;

/// Event type the measuring side sends to make an echo or sink thread
/// exit (not a real `PCIEM_EVENT_*`).
const STOP: u32 = u32::MAX;

/// A single-producer/single-consumer queue of [`pciem_event`]s, the job
/// all peers are compared on. Both operations must not block.
pub trait SpscQueue {
    /// The sending half.
    type Tx: Send + 'static;
    /// The receiving half.
    type Rx: Send + 'static;
    /// A new queue holding about 1024 events.
    fn pair() -> (Self::Tx, Self::Rx);
    /// Send `event` if there is room; `false` if full.
    fn try_send(tx: &mut Self::Tx, event: &pciem_event) -> bool;
    /// Take the oldest event, if any.
    fn try_recv(rx: &mut Self::Rx) -> Option<pciem_event>;
    /// Send the longest prefix of `events` that fits; returns its length.
    /// The default sends one by one; a queue with a batch API overrides it.
    fn try_send_batch(tx: &mut Self::Tx, events: &[pciem_event]) -> usize {
        events.iter().take_while(|e| Self::try_send(tx, e)).count()
    }
    /// Take up to `out.len()` events; returns how many.
    fn try_recv_batch(rx: &mut Self::Rx, out: &mut [pciem_event]) -> usize {
        let mut n = 0;
        for slot in out.iter_mut() {
            match Self::try_recv(rx) {
                Some(e) => *slot = e,
                None => break,
            }
            n += 1;
        }
        n
    }
}

/// The pciem-core ring (its heap-backed channel).
#[derive(Debug)]
pub struct PciemRing;

impl SpscQueue for PciemRing {
    type Tx = HeapProducer;
    type Rx = HeapConsumer;
    fn pair() -> (HeapProducer, HeapConsumer) {
        channel()
    }
    #[inline]
    fn try_send(tx: &mut HeapProducer, event: &pciem_event) -> bool {
        tx.try_push(event).is_some()
    }
    #[inline]
    fn try_recv(rx: &mut HeapConsumer) -> Option<pciem_event> {
        rx.pop()
    }
    fn try_send_batch(tx: &mut HeapProducer, events: &[pciem_event]) -> usize {
        tx.try_push_batch(events)
    }
    fn try_recv_batch(rx: &mut HeapConsumer, out: &mut [pciem_event]) -> usize {
        rx.pop_batch(out)
    }
}

#[inline]
fn send_spin<Q: SpscQueue>(tx: &mut Q::Tx, event: &pciem_event) {
    while !Q::try_send(tx, event) {
        core::hint::spin_loop();
    }
}

#[inline]
fn recv_spin<Q: SpscQueue>(rx: &mut Q::Rx) -> pciem_event {
    loop {
        if let Some(e) = Q::try_recv(rx) {
            return e;
        }
        core::hint::spin_loop();
    }
}

/// Spawns `body` on a thread pinned to `cpu`; returns once the thread is
/// pinned, or the pinning error (the body then never runs, so no caller
/// spins forever waiting for a peer that is not there).
fn spawn_pinned<T: Send + 'static>(
    cpu: usize,
    body: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<Option<T>>, BenchError> {
    let (pinned_tx, pinned_rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(format!("bench-peer-cpu{cpu}"))
        .spawn(move || {
            let pinned = pin_current(cpu);
            let ok = pinned.is_ok();
            let _ = pinned_tx.send(pinned);
            ok.then(body)
        })
        .map_err(|e| BenchError::Affinity { cpu, source: e })?;
    match pinned_rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => {
            let _ = handle.join();
            Err(e)
        }
        Err(_) => {
            let _ = handle.join();
            Err(BenchError::Affinity {
                cpu,
                source: io::Error::other("peer thread died before pinning"),
            })
        }
    }
}

/// Round trips over two queues of type `Q`, busy-polling on both sides.
pub struct QueuePingPong<Q: SpscQueue> {
    tx: Q::Tx,
    rx: Q::Rx,
    echo: Option<JoinHandle<Option<()>>>,
    /// Echoes that came back with the wrong payload (must stay 0).
    pub mismatches: u64,
}

impl<Q: SpscQueue + 'static> QueuePingPong<Q> {
    /// Start the echo thread on `echo_cpu`.
    pub fn start(echo_cpu: usize) -> Result<Self, BenchError> {
        let (tx, mut echo_rx) = Q::pair();
        let (mut echo_tx, rx) = Q::pair();
        let echo = spawn_pinned(echo_cpu, move || loop {
            let e = recv_spin::<Q>(&mut echo_rx);
            if e.r#type == STOP {
                return;
            }
            send_spin::<Q>(&mut echo_tx, &e);
        })?;
        Ok(Self {
            tx,
            rx,
            echo: Some(echo),
            mismatches: 0,
        })
    }

    /// `iters` round trips; returns the total time.
    pub fn round_trips(&mut self, iters: u64) -> Duration {
        let mut event = pciem_event::default();
        let start = Instant::now();
        for i in 0..iters {
            event.data = i;
            send_spin::<Q>(&mut self.tx, &event);
            let back = recv_spin::<Q>(&mut self.rx);
            self.mismatches += u64::from(back.data != i);
        }
        start.elapsed()
    }
}

impl<Q: SpscQueue> Drop for QueuePingPong<Q> {
    fn drop(&mut self) {
        let stop = pciem_event {
            r#type: STOP,
            ..Default::default()
        };
        send_spin::<Q>(&mut self.tx, &stop);
        if let Some(t) = self.echo.take() {
            let _ = t.join();
        }
    }
}

/// Two 64-bit words alone on a 128-byte block (two cache lines, as the
/// adjacent-line prefetcher pairs them); both words share one line.
#[repr(C, align(128))]
#[derive(Debug, Default)]
struct Line {
    a: AtomicU64,
    b: AtomicU64,
}

/// Lines of the rotating floor per direction: as in a ring, consecutive
/// messages use consecutive lines, and a line comes back into use only
/// after this many messages.
const ROTATING_LINES: usize = 64;

/// How the floor's messages are laid out in memory. No queue can move a
/// message between two cores with less than one cache-line transfer each
/// way; which layout makes that transfer cheapest depends on the machine
/// (on some, a line the receiver already polls costs an extra invalidation
/// round; on others the prefetcher pulls the next of a run of lines early),
/// so the floor is the best of all three, measured in the same round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloorLayout {
    /// One line per direction, always the same (the classic ping-pong).
    TwoLines,
    /// Both directions in one line: each side writes its own word of it.
    OneLine,
    /// A run of 64 lines per direction, the message number
    /// choosing the line, as a ring's slots do.
    Rotating,
}

impl FloorLayout {
    /// Every layout, in the order the summary lists them.
    pub const ALL: [FloorLayout; 3] = [Self::TwoLines, Self::OneLine, Self::Rotating];

    /// The name of the layout's row in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Self::TwoLines => "floor-two-lines",
            Self::OneLine => "floor-one-line",
            Self::Rotating => "floor-rotating",
        }
    }

    /// Lines the layout needs.
    fn lines(self) -> usize {
        match self {
            Self::TwoLines => 2,
            Self::OneLine => 1,
            Self::Rotating => 2 * ROTATING_LINES,
        }
    }

    /// The (ping, pong) words of message `seq`.
    #[inline]
    fn words(self, lines: &[Line], seq: u64) -> (&AtomicU64, &AtomicU64) {
        match self {
            Self::TwoLines => (&lines[0].a, &lines[1].a),
            Self::OneLine => (&lines[0].a, &lines[0].b),
            Self::Rotating => {
                let i = (seq % ROTATING_LINES as u64) as usize;
                (&lines[i].a, &lines[ROTATING_LINES + i].a)
            }
        }
    }
}

/// The physical floor: a bare word each way, in one of the
/// [`FloorLayout`]s, nothing else.
pub struct CacheLinePingPong {
    layout: FloorLayout,
    lines: Arc<[Line]>,
    stop: Arc<AtomicBool>,
    seq: u64,
    echo: Option<JoinHandle<Option<()>>>,
}

impl CacheLinePingPong {
    /// Start the echo thread on `echo_cpu`, two lines (the classic layout).
    pub fn start(echo_cpu: usize) -> Result<Self, BenchError> {
        Self::start_layout(echo_cpu, FloorLayout::TwoLines)
    }

    /// Start the echo thread on `echo_cpu` with messages laid out as
    /// `layout` says.
    pub fn start_layout(echo_cpu: usize, layout: FloorLayout) -> Result<Self, BenchError> {
        let lines: Arc<[Line]> = (0..layout.lines()).map(|_| Line::default()).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let (theirs, their_stop) = (lines.clone(), stop.clone());
        let echo = spawn_pinned(echo_cpu, move || {
            let mut seq = 0u64;
            loop {
                seq += 1;
                let (ping, pong) = layout.words(&theirs, seq);
                while ping.load(Ordering::Acquire) != seq {
                    if their_stop.load(Ordering::Relaxed) {
                        return;
                    }
                    core::hint::spin_loop();
                }
                pong.store(seq, Ordering::Release);
            }
        })?;
        Ok(Self {
            layout,
            lines,
            stop,
            seq: 0,
            echo: Some(echo),
        })
    }

    /// `iters` round trips; returns the total time.
    pub fn round_trips(&mut self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            self.seq += 1;
            let (ping, pong) = self.layout.words(&self.lines, self.seq);
            ping.store(self.seq, Ordering::Release);
            while pong.load(Ordering::Acquire) != self.seq {
                core::hint::spin_loop();
            }
        }
        start.elapsed()
    }
}

impl Drop for CacheLinePingPong {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.echo.take() {
            let _ = t.join();
        }
    }
}

/// A bare eventfd (counter semantics), for the wake-up baseline.
#[derive(Debug)]
pub struct EventFd(OwnedFd);

impl EventFd {
    /// A new eventfd, counter 0.
    pub fn new() -> Result<Self, BenchError> {
        // SAFETY: plain system call with no pointer arguments.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(BenchError::Eventfd(io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a fresh descriptor nothing else owns.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(raw) }))
    }

    /// Add 1 to the counter (one `write(2)`).
    pub fn signal(&self) -> io::Result<()> {
        let one = 1u64;
        // SAFETY: writes 8 bytes from a live `u64` to our own descriptor.
        let n = unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
        if n == 8 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Block until the counter is non-zero and reset it (one `read(2)`).
    pub fn wait(&self) -> io::Result<()> {
        let mut v = 0u64;
        // SAFETY: reads 8 bytes into a live `u64` from our own descriptor.
        let n = unsafe { libc::read(self.0.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
        if n == 8 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// The wake-up floor: two eventfds, each side blocks in `read(2)` until
/// the other `write(2)`s.
pub struct EventfdPingPong {
    fds: Arc<(EventFd, EventFd, AtomicBool)>,
    echo: Option<JoinHandle<Option<()>>>,
    /// Failed system calls (must stay 0).
    pub errors: u64,
}

impl EventfdPingPong {
    /// Start the echo thread on `echo_cpu`.
    pub fn start(echo_cpu: usize) -> Result<Self, BenchError> {
        let fds = Arc::new((EventFd::new()?, EventFd::new()?, AtomicBool::new(false)));
        let theirs = fds.clone();
        let echo = spawn_pinned(echo_cpu, move || {
            let (ping, pong, stop) = &*theirs;
            while ping.wait().is_ok() && !stop.load(Ordering::Acquire) && pong.signal().is_ok() {}
        })?;
        Ok(Self {
            fds,
            echo: Some(echo),
            errors: 0,
        })
    }

    /// `iters` round trips; returns the total time.
    pub fn round_trips(&mut self, iters: u64) -> Duration {
        let (ping, pong, _) = &*self.fds;
        let start = Instant::now();
        for _ in 0..iters {
            if ping.signal().is_err() || pong.wait().is_err() {
                self.errors += 1;
            }
        }
        start.elapsed()
    }
}

impl Drop for EventfdPingPong {
    fn drop(&mut self) {
        self.fds.2.store(true, Ordering::Release);
        let _ = self.fds.0.signal();
        if let Some(t) = self.echo.take() {
            let _ = t.join();
        }
    }
}

/// One direction of the ring-plus-doorbell path: the pciem-core ring and
/// the mock backend's [`Doorbell`] (the sleep/wake handshake a device
/// process uses with the kernel's eventfd).
struct BelledRing {
    bell: Doorbell,
}

/// Round trips over two pciem-core rings whose consumers sleep on their
/// doorbell whenever the ring is empty.
pub struct RingEventfdPingPong {
    tx: HeapProducer,
    rx: HeapConsumer,
    bells: Arc<(BelledRing, BelledRing)>,
    echo: Option<JoinHandle<Option<()>>>,
    /// Failed system calls or wrong payloads (must stay 0).
    pub errors: u64,
}

impl RingEventfdPingPong {
    /// Start the echo thread on `echo_cpu`.
    pub fn start(echo_cpu: usize) -> Result<Self, BenchError> {
        let (tx, mut echo_rx) = channel();
        let (mut echo_tx, rx) = channel();
        let bell = || Doorbell::new().map_err(BenchError::Eventfd);
        let bells = Arc::new((BelledRing { bell: bell()? }, BelledRing { bell: bell()? }));
        let theirs = bells.clone();
        let echo = spawn_pinned(echo_cpu, move || {
            let (to_echo, from_echo) = (&theirs.0.bell, &theirs.1.bell);
            loop {
                if to_echo.wait_until(|| !echo_rx.is_empty()).is_err() {
                    return;
                }
                let Some(e) = echo_rx.pop() else { continue };
                if e.r#type == STOP {
                    return;
                }
                send_spin::<PciemRing>(&mut echo_tx, &e);
                if from_echo.ring().is_err() {
                    return;
                }
            }
        })?;
        Ok(Self {
            tx,
            rx,
            bells,
            echo: Some(echo),
            errors: 0,
        })
    }

    /// `iters` round trips; returns the total time.
    pub fn round_trips(&mut self, iters: u64) -> Duration {
        let (to_echo, from_echo) = (&self.bells.0.bell, &self.bells.1.bell);
        let mut event = pciem_event::default();
        let start = Instant::now();
        for i in 0..iters {
            event.data = i;
            send_spin::<PciemRing>(&mut self.tx, &event);
            let mut ok = to_echo.ring().is_ok();
            let rx = &self.rx;
            ok &= from_echo.wait_until(|| !rx.is_empty()).is_ok();
            ok &= self.rx.pop().map(|e| e.data) == Some(i);
            self.errors += u64::from(!ok);
        }
        start.elapsed()
    }
}

impl Drop for RingEventfdPingPong {
    fn drop(&mut self) {
        let stop = pciem_event {
            r#type: STOP,
            ..Default::default()
        };
        send_spin::<PciemRing>(&mut self.tx, &stop);
        let _ = self.bells.0.bell.signal();
        if let Some(t) = self.echo.take() {
            let _ = t.join();
        }
    }
}

/// A counter alone on its cache-line pair.
#[repr(C, align(128))]
#[derive(Debug, Default)]
struct Count(AtomicU64);

/// Events per batch when streaming.
pub const STREAM_BATCH: usize = 64;

/// Streams events one way, in batches, to a sink thread that counts them,
/// for throughput.
pub struct QueueStream<Q: SpscQueue> {
    tx: Q::Tx,
    consumed: Arc<Count>,
    sent: u64,
    sink: Option<JoinHandle<Option<()>>>,
}

impl<Q: SpscQueue + 'static> QueueStream<Q> {
    /// Start the sink thread on `sink_cpu`.
    pub fn start(sink_cpu: usize) -> Result<Self, BenchError> {
        let (tx, mut rx) = Q::pair();
        let consumed = Arc::new(Count::default());
        let theirs = consumed.clone();
        let sink = spawn_pinned(sink_cpu, move || {
            let mut n = 0u64;
            let mut buf = [pciem_event::default(); STREAM_BATCH];
            loop {
                let got = Q::try_recv_batch(&mut rx, &mut buf);
                if got == 0 {
                    core::hint::spin_loop();
                    continue;
                }
                if buf.iter().take(got).any(|e| e.r#type == STOP) {
                    return;
                }
                n += got as u64;
                // One store per batch: the counter's line moves once per
                // batch, not per event.
                theirs.0.store(n, Ordering::Release);
            }
        })?;
        Ok(Self {
            tx,
            consumed,
            sent: 0,
            sink: Some(sink),
        })
    }

    /// Send `events` events, in batches of [`STREAM_BATCH`], and wait
    /// until the sink has taken them all; returns the time.
    pub fn send(&mut self, events: u64) -> Duration {
        let batch = [pciem_event::default(); STREAM_BATCH];
        let start = Instant::now();
        let mut left = events;
        while left != 0 {
            let want = (left as usize).min(STREAM_BATCH);
            let sent = Q::try_send_batch(&mut self.tx, &batch[..want]);
            if sent == 0 {
                core::hint::spin_loop();
            }
            left -= sent as u64;
        }
        self.sent += events;
        while self.consumed.0.load(Ordering::Acquire) < self.sent {
            core::hint::spin_loop();
        }
        start.elapsed()
    }
}

impl<Q: SpscQueue> Drop for QueueStream<Q> {
    fn drop(&mut self) {
        let stop = pciem_event {
            r#type: STOP,
            ..Default::default()
        };
        send_spin::<Q>(&mut self.tx, &stop);
        if let Some(t) = self.sink.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu() -> usize {
        crate::affinity::allowed_cpus().unwrap()[0]
    }

    #[test]
    fn a_peer_that_cannot_be_pinned_is_an_error_not_a_hang() {
        assert!(matches!(
            QueuePingPong::<PciemRing>::start(usize::MAX),
            Err(BenchError::Affinity { .. })
        ));
        assert!(CacheLinePingPong::start(usize::MAX).is_err());
    }

    #[test]
    fn every_driver_round_trips_and_stops() {
        let mut q = QueuePingPong::<PciemRing>::start(cpu()).unwrap();
        assert!(q.round_trips(100) > Duration::ZERO);
        assert_eq!(q.mismatches, 0);
        drop(q);
        let mut c = CacheLinePingPong::start(cpu()).unwrap();
        c.round_trips(100);
        drop(c);
        let mut e = EventfdPingPong::start(cpu()).unwrap();
        e.round_trips(100);
        assert_eq!(e.errors, 0);
        drop(e);
        let mut r = RingEventfdPingPong::start(cpu()).unwrap();
        r.round_trips(100);
        assert_eq!(r.errors, 0);
        drop(r);
        let mut s = QueueStream::<PciemRing>::start(cpu()).unwrap();
        s.send(5000);
        assert_eq!(s.consumed.0.load(Ordering::Acquire), 5000);
    }
}
