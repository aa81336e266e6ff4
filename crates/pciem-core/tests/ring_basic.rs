//! Single-threaded behaviour of the event ring: FIFO order, capacity,
//! overflow accounting, batches and wrap-around.
#![cfg(all(feature = "std", not(loom)))]

use core::ptr::NonNull;

use pciem_abi::{pciem_event, PCIEM_EVENT_MMIO_WRITE, PCIEM_RING_SIZE};
use pciem_core::ring::{
    channel, channel_sized, Consumer, HeapRing, Producer, RingFull, SharedRing, RING_CAPACITY,
};

/// An event whose payload encodes `n`, so a test can tell events apart.
fn event(n: u64) -> pciem_event {
    pciem_event {
        seq: 0xdead_beef, // ignored by the producer
        r#type: PCIEM_EVENT_MMIO_WRITE,
        bar: (n % 6) as u32,
        offset: n.wrapping_mul(4),
        data: !n,
        size: 4,
        flags: 0,
        timestamp_ns: n.wrapping_mul(1000),
        id: 0,
        ticket: 0xfeed, // replaced by the producer
    }
}

/// `e` is event `n` numbered `seq`; its ticket says it was published (the
/// exact tickets are checked by `ring_tickets_number_slots_not_events`).
fn assert_is(e: &pciem_event, n: u64, seq: u64) {
    let mut expected = event(n);
    expected.seq = seq;
    expected.ticket = e.ticket;
    assert_eq!(*e, expected);
    assert_ne!(e.ticket, 0, "a popped event carries its ticket");
}

#[test]
fn ring_fifo_and_seq_assignment() {
    let (mut tx, mut rx) = channel();
    assert!(rx.is_empty());
    assert_eq!(rx.pop(), None);
    for n in 0..10 {
        assert_eq!(tx.push(&event(n)), Ok(n));
    }
    assert_eq!(rx.len(), 10);
    for n in 0..10 {
        assert_is(&rx.pop().expect("event"), n, n);
    }
    assert_eq!(rx.pop(), None);
    assert!(rx.is_empty());
    assert_eq!(rx.overflow(), 0);
}

#[test]
fn ring_full_counts_overflow_without_overwriting() {
    let (mut tx, mut rx) = channel();
    for n in 0..RING_CAPACITY as u64 {
        assert_eq!(tx.push(&event(n)), Ok(n));
    }
    assert_eq!(rx.len(), RING_CAPACITY);
    // Three more do not fit: dropped, numbered, counted.
    for n in 0..3u64 {
        let seq = RING_CAPACITY as u64 + n;
        assert_eq!(tx.push(&event(seq)), Err(RingFull { seq }));
    }
    assert_eq!(rx.overflow(), 3);
    assert_eq!(tx.state().overflow(), 3);
    assert_eq!(tx.ring().overflow(), 3);
    // The queued events are intact, in order.
    for n in 0..RING_CAPACITY as u64 {
        assert_is(&rx.pop().expect("event"), n, n);
    }
    // After draining, the next event is published with the next number.
    let seq = RING_CAPACITY as u64 + 3;
    assert_eq!(tx.push(&event(7)), Ok(seq));
    assert_is(&rx.pop().expect("event"), 7, seq);
    assert_eq!(rx.overflow(), 3);
}

#[test]
fn ring_try_push_leaves_no_trace_when_full() {
    let (mut tx, mut rx) = channel_sized::<4>();
    for n in 0..3 {
        assert_eq!(tx.try_push(&event(n)), Some(n));
    }
    assert_eq!(tx.try_push(&event(99)), None);
    assert_eq!(tx.state().next_seq(), 3);
    assert_eq!(rx.overflow(), 0);
    assert_is(&rx.pop().expect("event"), 0, 0);
    assert_eq!(tx.try_push(&event(3)), Some(3));
    for n in 1..4 {
        assert_is(&rx.pop().expect("event"), n, n);
    }
    assert_eq!(rx.pop(), None);
}

#[test]
fn ring_batches_wrap_around() {
    let (mut tx, mut rx) = channel_sized::<8>();
    let events: Vec<pciem_event> = (0..20).map(event).collect();
    let mut out = [pciem_event::default(); 5];
    let mut sent = 0usize;
    let mut received = 0u64;
    // Uneven batch sizes make head and tail wrap at different points.
    while received < 20 {
        sent += tx.try_push_batch(&events[sent..(sent + 3).min(20)]);
        let got = rx.pop_batch(&mut out[..(received as usize % 5) + 1]);
        for e in &out[..got] {
            assert_is(e, received, received);
            received += 1;
        }
        assert!(rx.len() <= 7);
    }
    assert_eq!(sent, 20);
    assert_eq!(tx.state().next_seq(), 20);
    assert_eq!(rx.pop_batch(&mut out), 0);
    assert_eq!(rx.pop_batch(&mut []), 0);
}

#[test]
fn ring_batch_push_stops_at_capacity() {
    let (mut tx, mut rx) = channel_sized::<8>();
    let events: Vec<pciem_event> = (0..10).map(event).collect();
    assert_eq!(tx.try_push_batch(&events), 7);
    assert_eq!(tx.try_push_batch(&events[7..]), 0);
    assert_eq!(tx.state().next_seq(), 7);
    assert_eq!(rx.overflow(), 0);
    let mut out = [pciem_event::default(); 16];
    assert_eq!(rx.pop_batch(&mut out), 7);
    for (n, e) in out[..7].iter().enumerate() {
        assert_is(e, n as u64, n as u64);
    }
    assert_eq!(tx.try_push_batch(&events[7..]), 3);
    assert_eq!(rx.pop_batch(&mut out), 3);
    assert_is(&out[2], 9, 9);
}

#[test]
fn ring_raw_view_matches_abi_layout() {
    let memory = HeapRing::new();
    let raw = memory.as_ptr();
    assert_eq!(raw as usize % 128, 0, "heap ring must be 128-byte aligned");
    let raw = NonNull::new(raw).expect("non-null");
    // SAFETY: `memory` outlives both views; one producer, one consumer.
    let (ptx, prx) = unsafe { (SharedRing::from_raw(raw), SharedRing::from_raw(raw)) };
    let mut producer = Producer::new();
    let mut consumer = Consumer::new(prx);
    for n in 0..5 {
        producer.push(&ptx, &event(n)).expect("room");
    }
    // Read the page through the ABI struct, as the C side would see it.
    // SAFETY: no other access runs concurrently in this single thread.
    let page = unsafe { &*raw.as_ptr() };
    assert_eq!(page.tail, 5);
    assert_eq!(page.head, 0);
    for n in 0..5u64 {
        assert_is(&page.events[n as usize], n, n);
        assert_eq!(page.events[n as usize].ticket, n + 1);
    }
    assert_eq!(page.events[5].ticket, 0, "unwritten slots keep ticket 0");
    assert_eq!(consumer.pop().map(|e| e.seq), Some(0));
    // SAFETY: as above.
    let page = unsafe { &*raw.as_ptr() };
    assert_eq!(page.head, 1);
    assert_eq!(page.overflow, 0);
    assert_eq!(SharedRing::<PCIEM_RING_SIZE>::CAPACITY, RING_CAPACITY);
}

#[test]
fn ring_consumer_resumes_at_shared_head() {
    let memory = HeapRing::new();
    let raw = NonNull::new(memory.as_ptr()).expect("non-null");
    // SAFETY: `memory` outlives all views; the first consumer is dropped
    // before the second is created, so at most one consumer at a time.
    let ptx = unsafe { SharedRing::from_raw(raw) };
    let mut producer = Producer::new();
    for n in 0..4 {
        producer.push(&ptx, &event(n)).expect("room");
    }
    {
        // SAFETY: see above.
        let mut first = Consumer::new(unsafe { SharedRing::from_raw(raw) });
        assert_eq!(first.pop().map(|e| e.seq), Some(0));
        assert_eq!(first.pop().map(|e| e.seq), Some(1));
    }
    // SAFETY: see above.
    let mut second = Consumer::new(unsafe { SharedRing::from_raw(raw) });
    assert_eq!(second.len(), 2);
    assert_eq!(second.pop().map(|e| e.seq), Some(2));
    assert_eq!(second.pop().map(|e| e.seq), Some(3));
    assert_eq!(second.pop(), None);
}

#[test]
fn ring_tickets_number_slots_not_events() {
    // Tickets count published slots; `seq` also counts lost events. Lose
    // three, then wrap the tiny ring twice: every popped ticket is its
    // position + 1, whatever the seq gap.
    let (mut tx, mut rx) = channel_sized::<4>();
    for n in 0..3 {
        assert_eq!(tx.push(&event(n)), Ok(n));
    }
    for n in 3..6 {
        assert_eq!(tx.push(&event(n)), Err(RingFull { seq: n }));
    }
    let mut position = 0u64;
    let mut seqs = Vec::new();
    for round in 0..4u64 {
        while let Some(e) = rx.pop() {
            assert_eq!(e.ticket, position + 1);
            position += 1;
            seqs.push(e.seq);
        }
        assert_eq!(rx.position(), position);
        assert!(rx.is_empty());
        for n in 0..3 {
            tx.push(&event(100 + round * 3 + n))
                .expect("room after draining");
        }
    }
    while rx.pop().is_some() {}
    assert_eq!(tx.state().published(), 15);
    assert_eq!(rx.position(), 15);
    assert_eq!(&seqs[..4], &[0, 1, 2, 6]);
    assert_eq!(rx.overflow(), 3);
}

#[test]
fn ring_consumer_resumes_after_full_laps() {
    // A second consumer recovers its position from the ticket before
    // `head`, even when `head` is back at slot 0 after whole laps.
    let memory = HeapRing::<PCIEM_RING_SIZE>::new();
    let raw = NonNull::new(memory.as_ptr()).expect("non-null");
    // SAFETY: `memory` outlives all views; consumers follow one another.
    let ptx = unsafe { SharedRing::from_raw(raw) };
    let mut producer = Producer::new();
    {
        // SAFETY: see above.
        let mut first = Consumer::new(unsafe { SharedRing::from_raw(raw) });
        for lap in 0..2u64 {
            for n in 0..PCIEM_RING_SIZE as u64 / 2 {
                producer.push(&ptx, &event(n)).expect("room");
                producer.push(&ptx, &event(n)).expect("room");
                first.pop().expect("event");
                first.pop().expect("event");
            }
            assert_eq!(first.position(), (lap + 1) * PCIEM_RING_SIZE as u64);
        }
    }
    producer.push(&ptx, &event(9)).expect("room");
    // SAFETY: see above; the first consumer is gone.
    let mut second = Consumer::new(unsafe { SharedRing::from_raw(raw) });
    assert_eq!(second.position(), 2 * PCIEM_RING_SIZE as u64);
    let e = second.pop().expect("the event after two laps");
    assert_eq!((e.data, e.ticket), (!9, 2 * PCIEM_RING_SIZE as u64 + 1));
}

#[test]
fn ring_halves_are_send() {
    fn assert_send<T: Send>() {}
    assert_send::<pciem_core::ring::HeapProducer>();
    assert_send::<pciem_core::ring::HeapConsumer>();
    assert_send::<SharedRing>();
    assert_send::<Consumer>();
}
