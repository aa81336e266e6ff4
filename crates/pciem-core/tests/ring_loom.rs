//! loom models of the ring protocol: every interleaving (and every value a
//! load may legally return under the C++ memory model) of a producer and a
//! consumer on a tiny ring.
//!
//! Run with:
//! `RUSTFLAGS="--cfg loom" cargo test -p pciem-core --release ring`
//!
//! Slots are loom `UnsafeCell`s, so loom itself fails a model in which the
//! consumer reads a slot the producer is still writing (or the producer
//! rewrites one the consumer is still reading) without a happens-before
//! edge: an unpublished or torn slot. Payloads are also checked against the
//! sequence number, which catches stale slots.
#![cfg(all(loom, feature = "std"))]

use loom::thread;
use pciem_abi::pciem_event;
use pciem_core::ring::{channel_sized, HeapConsumer, RingFull};

/// Event number `n`, with a payload derived from it.
fn event(n: u64) -> pciem_event {
    pciem_event {
        offset: n,
        data: !n,
        id: n.wrapping_mul(3),
        ..Default::default()
    }
}

fn check_payload(e: &pciem_event) {
    assert_eq!(e.offset, e.seq, "slot holds another event's payload");
    assert_eq!(e.data, !e.seq);
    assert_eq!(e.id, e.seq.wrapping_mul(3));
    assert_ne!(e.ticket, 0, "an event is taken only once its ticket is out");
}

/// Pops until `count` events arrived, yielding to loom while empty.
fn receive<const N: usize>(rx: &mut HeapConsumer<N>, count: u64, batch: bool) -> Vec<u64> {
    let mut seen = Vec::new();
    let mut buf = [pciem_event::default(); 2];
    while (seen.len() as u64) < count {
        let got = if batch {
            rx.pop_batch(&mut buf)
        } else {
            match rx.pop() {
                Some(e) => {
                    buf[0] = e;
                    1
                }
                None => 0,
            }
        };
        if got == 0 {
            thread::yield_now();
        }
        for e in &buf[..got] {
            check_payload(e);
            seen.push(e.seq);
        }
    }
    seen
}

/// Capacity 1: every event reuses the slot the consumer just released, so
/// both hand-offs (the slot's ticket: producer to consumer; `head`: consumer
/// to producer) are exercised on each event.
#[test]
fn ring_loom_publish_consume_single_slot() {
    loom::model(|| {
        let (mut tx, mut rx) = channel_sized::<2>();
        let producer = thread::spawn(move || {
            for n in 0..3 {
                while tx.try_push(&event(n)).is_none() {
                    thread::yield_now();
                }
            }
            tx.state().next_seq()
        });
        let seen = receive(&mut rx, 3, false);
        assert_eq!(producer.join().expect("producer"), 3);
        assert_eq!(seen, [0, 1, 2]);
        assert_eq!(rx.pop(), None);
        assert_eq!(rx.overflow(), 0);
    });
}

/// Batches on both sides over a ring of capacity 3; five events wrap it, so
/// the producer rewrites slots the consumer has released.
#[test]
fn ring_loom_batches() {
    loom::model(|| {
        let (mut tx, mut rx) = channel_sized::<4>();
        let producer = thread::spawn(move || {
            let events: Vec<pciem_event> = (0..5).map(event).collect();
            let mut sent = 0;
            while sent < events.len() {
                let pushed = tx.try_push_batch(&events[sent..]);
                if pushed == 0 {
                    thread::yield_now();
                }
                sent += pushed;
            }
        });
        let seen = receive(&mut rx, 5, true);
        producer.join().expect("producer");
        assert_eq!(seen, [0, 1, 2, 3, 4]);
    });
}

/// Concurrent overflow: the producer never blocks, so events are lost
/// depending on the interleaving; every loss must be counted, the counter
/// must cover every gap the consumer has seen so far, and nothing may be
/// seen twice or out of order.
#[test]
fn ring_loom_overflow_accounting() {
    const PUSHES: u64 = 3;
    loom::model(|| {
        let (mut tx, mut rx) = channel_sized::<2>();
        let producer = thread::spawn(move || {
            let mut lost = 0;
            for n in 0..PUSHES {
                match tx.push(&event(n)) {
                    Ok(seq) => assert_eq!(seq, n),
                    Err(RingFull { seq }) => {
                        assert_eq!(seq, n);
                        lost += 1;
                    }
                }
            }
            assert_eq!(tx.state().overflow(), lost);
            lost
        });
        let mut seen: Vec<u64> = Vec::new();
        let check = |e: pciem_event, overflow: u64, seen: &mut Vec<u64>| {
            check_payload(&e);
            let next = seen.last().map_or(0, |s| s + 1);
            assert!(e.seq >= next, "seq {} after {:?}", e.seq, seen.last());
            seen.push(e.seq);
            // Losses before an event are published before the event.
            let gaps = e.seq + 1 - seen.len() as u64;
            assert!(
                overflow >= gaps,
                "{gaps} lost before {} but overflow {overflow}",
                e.seq
            );
        };
        // Consume concurrently with the producer...
        for _ in 0..2 {
            if let Some(e) = rx.pop() {
                let overflow = rx.overflow();
                check(e, overflow, &mut seen);
            }
        }
        let lost = producer.join().expect("producer");
        // ...then drain what is left.
        while let Some(e) = rx.pop() {
            let overflow = rx.overflow();
            check(e, overflow, &mut seen);
        }
        assert_eq!(rx.overflow(), lost);
        assert_eq!(seen.len() as u64 + lost, PUSHES);
    });
}

/// The sleep/wake handshake (`consumer_state`): a consumer that said it is
/// awake is not signalled, and one going to sleep never misses an event.
/// The "eventfd" is an atomic flag the producer sets when
/// `consumer_needs_signal` says so; a consumer whose last look found the
/// ring empty goes to "sleep" and must then find the flag set. Lost
/// wake-ups (both sides reading stale values) would fail the assertion.
#[test]
fn ring_loom_sleep_handshake_loses_no_wakeup() {
    use loom::sync::atomic::{AtomicBool, Ordering};
    use loom::sync::Arc;

    loom::model(|| {
        let (mut tx, mut rx) = channel_sized::<2>();
        let signalled = Arc::new(AtomicBool::new(false));
        rx.set_awake();
        let flag = signalled.clone();
        let producer = thread::spawn(move || {
            tx.push(&event(0)).expect("room for one event");
            if tx.consumer_needs_signal() {
                flag.store(true, Ordering::Release);
            }
        });
        // The consumer: look, then get ready to sleep and look once more.
        let mut got = rx.pop().is_some();
        if !got {
            if rx.prepare_to_sleep() {
                // Sleeping: the producer must have signalled (or will:
                // wait for it to finish, as the eventfd would).
                producer.join().expect("producer");
                assert!(
                    signalled.load(Ordering::Acquire),
                    "consumer slept on an empty ring and nobody signalled"
                );
                got = rx.pop().is_some();
            } else {
                rx.set_awake();
                got = rx.pop().is_some();
                producer.join().expect("producer");
            }
        } else {
            producer.join().expect("producer");
        }
        assert!(got, "the event was delivered");
    });
}
