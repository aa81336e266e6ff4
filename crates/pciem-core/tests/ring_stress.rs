//! Two threads, the real `PCIEM_RING_SIZE` ring, ten million events.
#![cfg(all(feature = "std", not(loom)))]

use pciem_abi::{pciem_event, PCIEM_EVENT_MMIO_WRITE};
use pciem_core::ring::{channel, HeapConsumer};

const EVENTS: u64 = 10_000_000;
const OVERFLOW_EVENTS: u64 = 1_000_000;

/// The payload the producer puts in event number `n`, so the consumer can
/// check the bytes it got belong to the sequence number it got (a torn or
/// stale slot would not match).
fn event(n: u64) -> pciem_event {
    pciem_event {
        r#type: PCIEM_EVENT_MMIO_WRITE,
        offset: n,
        data: n.rotate_left(17) ^ 0x5555_5555_5555_5555,
        timestamp_ns: !n,
        size: 4,
        ..Default::default()
    }
}

fn check_payload(e: &pciem_event) {
    assert_eq!(
        e.offset, e.seq,
        "payload of event {} is {}'s",
        e.seq, e.offset
    );
    assert_eq!(e.data, e.seq.rotate_left(17) ^ 0x5555_5555_5555_5555);
    assert_eq!(e.timestamp_ns, !e.seq);
    assert_eq!(e.r#type, PCIEM_EVENT_MMIO_WRITE);
}

/// Pops into `buf` until the producer thread is done and the ring is empty,
/// calling `each` on every event in order, with the overflow counter as
/// loaded right after the batch holding the event was taken.
fn drain(
    rx: &mut HeapConsumer,
    producer: &std::thread::JoinHandle<u64>,
    mut each: impl FnMut(&pciem_event, u64),
) {
    let mut buf = [pciem_event::default(); 64];
    loop {
        let n = rx.pop_batch(&mut buf);
        let overflow = rx.overflow();
        buf[..n].iter().for_each(|e| each(e, overflow));
        if n == 0 {
            if producer.is_finished() && rx.is_empty() {
                return;
            }
            std::thread::yield_now();
        }
    }
}

/// Nothing lost, duplicated or reordered: the producer retries when the
/// ring is full, so the consumer must see every sequence number once, in
/// order, with its own payload.
#[test]
fn ring_stress_ten_million_in_order() {
    let (mut tx, mut rx) = channel();
    let producer = std::thread::spawn(move || {
        let mut n = 0;
        let mut batch = [pciem_event::default(); 32];
        while n < EVENTS {
            // Alternate single pushes and batches to exercise both paths.
            if n % 1024 < 512 {
                match tx.try_push(&event(n)) {
                    Some(seq) => {
                        assert_eq!(seq, n);
                        n += 1;
                    }
                    None => std::thread::yield_now(),
                }
            } else {
                let len = (EVENTS - n).min(batch.len() as u64) as usize;
                for (i, e) in batch[..len].iter_mut().enumerate() {
                    *e = event(n + i as u64);
                }
                let pushed = tx.try_push_batch(&batch[..len]);
                if pushed == 0 {
                    std::thread::yield_now();
                }
                n += pushed as u64;
            }
        }
        assert_eq!(tx.state().next_seq(), EVENTS);
        tx.state().overflow()
    });

    let mut expected = 0u64;
    drain(&mut rx, &producer, |e, _| {
        assert_eq!(e.seq, expected, "lost, duplicated or reordered");
        check_payload(e);
        expected += 1;
    });
    let producer_overflow = producer.join().expect("producer thread");
    assert_eq!(expected, EVENTS);
    assert_eq!(producer_overflow, 0);
    assert_eq!(rx.overflow(), 0);
}

/// A consumer that is slower than the producer: events are lost, but never
/// silently. consumed + overflow == produced, sequence numbers strictly
/// increase, and the gaps add up exactly to the overflow counter (the
/// producer ends with one event it retries until it fits, so no loss can
/// hide after the last event seen).
#[test]
fn ring_stress_slow_consumer_accounts_every_loss() {
    let (mut tx, mut rx) = channel();
    let producer = std::thread::spawn(move || {
        let mut published = 0u64;
        for n in 0..OVERFLOW_EVENTS {
            match tx.push(&event(n)) {
                Ok(seq) => {
                    assert_eq!(seq, n);
                    published += 1;
                }
                Err(full) => assert_eq!(full.seq, n),
            }
        }
        assert_eq!(published + tx.state().overflow(), OVERFLOW_EVENTS);
        while tx.try_push(&event(OVERFLOW_EVENTS)).is_none() {
            std::thread::yield_now();
        }
        tx.state().next_seq()
    });

    // Wait until the ring has overflowed at least once, so the test always
    // covers losses however the threads are scheduled.
    while rx.overflow() == 0 && !producer.is_finished() {
        std::thread::yield_now();
    }
    let mut consumed = 0u64;
    let mut gaps = 0u64;
    let mut last: Option<u64> = None;
    let mut spin = 0u64;
    drain(&mut rx, &producer, |e, overflow| {
        check_payload(e);
        let expected_next = last.map_or(0, |s| s + 1);
        assert!(e.seq >= expected_next, "seq {} after {:?}", e.seq, last);
        gaps += e.seq - expected_next;
        // Every loss before this event was counted before it was published.
        assert!(
            overflow >= gaps,
            "{gaps} lost before {} but overflow {overflow}",
            e.seq
        );
        last = Some(e.seq);
        consumed += 1;
        // Be slow: burn a little time per event.
        for _ in 0..50 {
            spin = std::hint::black_box(spin.wrapping_add(1));
        }
    });
    let produced = producer.join().expect("producer thread");
    assert_eq!(produced, OVERFLOW_EVENTS + 1);
    assert_eq!(last, Some(OVERFLOW_EVENTS), "the final event must arrive");
    let overflow = rx.overflow();
    assert!(overflow > 0, "the slow consumer must have caused overflow");
    assert_eq!(gaps, overflow);
    assert_eq!(consumed + overflow, produced);
}

/// A version-1 consumer (one that polls `tail` and ignores the slot's last
/// word, as consumers did before ABI version 2) still gets every event, in
/// order and intact, from the version-2 producer: the producer stores
/// `tail` after the ticket, with release. Written here against the raw
/// page, the way such a consumer was written against the ABI text.
#[test]
fn ring_stress_version1_reader_gets_everything() {
    use core::ptr::{addr_of, addr_of_mut, NonNull};
    use core::sync::atomic::{AtomicU32, Ordering};
    use pciem_abi::PCIEM_RING_SIZE;
    use pciem_core::ring::{HeapRing, Producer, SharedRing};

    const V1_EVENTS: u64 = 1_000_000;
    let memory = std::sync::Arc::new(HeapRing::new());
    let page = memory.as_ptr() as usize;
    let producer = {
        let memory = std::sync::Arc::clone(&memory);
        std::thread::spawn(move || {
            let raw = NonNull::new(memory.as_ptr()).expect("non-null");
            // SAFETY: `memory` lives as long as this thread holds its Arc;
            // this is the only producer.
            let view = unsafe { SharedRing::from_raw(raw) };
            let mut producer = Producer::new();
            let mut n = 0;
            while n < V1_EVENTS {
                match producer.try_push(&view, &event(n)) {
                    Some(_) => n += 1,
                    None => std::thread::yield_now(),
                }
            }
        })
    };
    let ring = page as *mut pciem_abi::pciem_shared_ring;
    // SAFETY: an aligned u32 of the live page (`memory` is held by this
    // thread until the end), accessed only atomically.
    let tail = unsafe { AtomicU32::from_ptr(addr_of!((*ring).tail).cast_mut()) };
    // SAFETY: as for `tail`.
    let head = unsafe { AtomicU32::from_ptr(addr_of_mut!((*ring).head)) };
    let mut index = 0usize;
    let mut expected = 0u64;
    while expected < V1_EVENTS {
        if tail.load(Ordering::Acquire) as usize % PCIEM_RING_SIZE == index {
            std::thread::yield_now();
            continue;
        }
        // SAFETY: `index < PCIEM_RING_SIZE`; the slot was published before
        // the `tail` acquired above and stays ours until `head` moves.
        let e = unsafe { addr_of!((*ring).events[index]).read_volatile() };
        assert_eq!(e.seq, expected, "version-1 reader: events out of order");
        check_payload(&e);
        assert_eq!(e.ticket, expected + 1);
        index = (index + 1) % PCIEM_RING_SIZE;
        head.store(index as u32, Ordering::Release);
        expected += 1;
    }
    producer.join().expect("producer");
    assert_eq!(tail.load(Ordering::Acquire) as usize, index);
}
