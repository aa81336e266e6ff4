//! `ring`: arbitrary interleavings of produce (counted `push`, retrying
//! `try_push`, `try_push_batch`), consume (`pop`, `pop_batch`) and overflow
//! on a small heap ring, checked against a queue model.
//!
//! Each event carries a unique tag in its payload fields (independent of
//! the ring's own `seq`), so the checks see loss, duplication and
//! reordering directly: every pop must return the model's oldest event,
//! field for field; every dropped event must be a counted overflow; and
//! the consumer's view of the losses (the gaps in `seq`) must add up to
//! the overflow counter.
//!
//! Input format (see [`crate::wire`]): mode u8 (mod 6: a model run on 2, 4,
//! 8, 16 or 1024 slots, or the untrusted-peer run of `hostile`), then
//! until the end: op kind u8, count u8 (and, for a scribble, its value).

use std::collections::VecDeque;

use core::ptr::{addr_of_mut, NonNull};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use pciem_abi::{pciem_event, PCIEM_RING_SIZE};
use pciem_core::ring::{
    channel_sized, Consumer, HeapConsumer, HeapProducer, HeapRing, Producer, RingFull, SharedRing,
    RING_CAPACITY,
};

use crate::wire::{Reader, Writer};

/// The event with tag `tag`: every field but `seq` derived from it.
fn event(tag: u64) -> pciem_event {
    pciem_event {
        r#type: (tag % 7) as u32,
        bar: (tag % 6) as u32,
        offset: tag.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        size: (tag % 9) as u32,
        data: !tag,
        timestamp_ns: tag,
        id: tag ^ 0x5555,
        // The producer overwrites it; a value that would show if it did not.
        seq: u64::MAX - tag,
        ..Default::default()
    }
}

/// Run one input; panics on any broken invariant.
pub fn run(data: &[u8]) {
    let mut r = Reader::new(data);
    match r.u8() % 6 {
        0 => Model::<2>::new().run(&mut r),
        1 => Model::<4>::new().run(&mut r),
        2 => Model::<8>::new().run(&mut r),
        3 => Model::<16>::new().run(&mut r),
        4 => Model::<1024>::new().run(&mut r),
        _ => hostile(&mut r),
    }
}

/// Stores `value` into a `u32` word of the ring page, as a misbehaving
/// peer would.
///
/// # Safety
/// `word` points into live ring memory that is otherwise accessed only
/// atomically or by this thread.
unsafe fn scribble32(word: *mut u32, value: u32) {
    // SAFETY: the caller's contract; an atomic store never races.
    unsafe { AtomicU32::from_ptr(word) }.store(value, Ordering::Release);
}

/// The untrusted-peer mode: the ABI-sized ring over raw memory, as the
/// kernel page is, with the fuzzer also scribbling on `head`, `tail`,
/// `overflow` and slot tickets (random, or forged to look published)
/// between operations. Nothing can be promised about the events
/// then, only that neither side reads or writes outside the ring
/// (AddressSanitizer watches the allocation's edges), panics or loops, and
/// that the indices they publish stay in range and the producer's own
/// accounting (published + dropped = numbered) holds.
fn hostile(r: &mut Reader<'_>) {
    let memory = HeapRing::new();
    let raw = NonNull::new(memory.as_ptr()).expect("heap ring");
    // SAFETY: `memory` outlives both views, which serve one producer and
    // one consumer; the ring is fresh.
    let (pview, cview) = unsafe { (SharedRing::from_raw(raw), SharedRing::from_raw(raw)) };
    let mut producer = Producer::new();
    let mut consumer = Consumer::new(cview);
    let mut published = 0u64;
    let mask = (PCIEM_RING_SIZE - 1) as u32;
    let mut out = vec![pciem_event::default(); 64];
    let mut ops = 0;
    while !r.is_empty() && ops < 512 {
        ops += 1;
        let kind = r.u8() % 8;
        let n = r.u8() as usize;
        let published_before = published;
        let mut took = false;
        match kind {
            0 => {
                for _ in 0..n % 8 + 1 {
                    published += producer.push(&pview, &event(0)).is_ok() as u64;
                }
            }
            1 => published += producer.try_push(&pview, &event(1)).is_some() as u64,
            2 => {
                let batch = vec![event(2); n % 40];
                let pushed = producer.try_push_batch(&pview, &batch);
                assert!(pushed <= batch.len());
                published += pushed as u64;
            }
            3 => {
                // Bounded: a pop that never reported empty would be the bug.
                let taken = (0..n % 8 + 1)
                    .take_while(|_| consumer.pop().is_some())
                    .count();
                assert!(taken <= n % 8 + 1);
                took = taken > 0;
            }
            4 => {
                let got = consumer.pop_batch(&mut out[..n % 64]);
                assert!(got <= n % 64);
                took = got > 0;
            }
            5 | 6 => {
                let value = r.u32();
                // SAFETY: `raw` is live; only this thread touches it.
                let word = unsafe {
                    if kind == 5 {
                        addr_of_mut!((*raw.as_ptr()).head)
                    } else {
                        addr_of_mut!((*raw.as_ptr()).tail)
                    }
                };
                // SAFETY: as above, and the views access the word only
                // atomically.
                unsafe { scribble32(word, value) };
            }
            _ => {
                let value = r.u64();
                let index = value as usize % PCIEM_RING_SIZE;
                // Odd counts scribble a slot's ticket: with the top bit set,
                // the ticket that slot would carry if it were published in
                // the consumer's current lap.
                let pos = consumer.position();
                let forged = pos + 1 + (index.wrapping_sub(pos as usize) % PCIEM_RING_SIZE) as u64;
                let ticket = if value >> 63 == 1 { forged } else { value };
                // SAFETY: `raw` is live; only this thread touches it, and
                // the views access these words only atomically.
                let (word, stored) = unsafe {
                    if n % 2 == 1 {
                        (addr_of_mut!((*raw.as_ptr()).events[index].ticket), ticket)
                    } else {
                        (addr_of_mut!((*raw.as_ptr()).overflow), value)
                    }
                };
                // SAFETY: as above.
                unsafe { AtomicU64::from_ptr(word) }.store(stored, Ordering::Release);
            }
        }
        assert!(
            consumer.len() <= RING_CAPACITY,
            "consumer sees {} events",
            consumer.len()
        );
        assert_eq!(
            published + producer.overflow(),
            producer.next_seq(),
            "producer accounting"
        );
        // An index a side has just published is in range.
        // SAFETY: atomic loads of live, aligned words.
        let (head, tail) = unsafe {
            (
                AtomicU32::from_ptr(addr_of_mut!((*raw.as_ptr()).head)).load(Ordering::Acquire),
                AtomicU32::from_ptr(addr_of_mut!((*raw.as_ptr()).tail)).load(Ordering::Acquire),
            )
        };
        if published > published_before {
            assert!(tail <= mask, "producer published tail {tail:#x}");
        }
        if took {
            assert!(head <= mask, "consumer published head {head:#x}");
        }
    }
    // `memory`, declared first, is dropped after both views.
}

struct Model<const N: usize> {
    producer: HeapProducer<N>,
    consumer: HeapConsumer<N>,
    /// Published, not yet consumed: `(seq, tag)`.
    queue: VecDeque<(u64, u64)>,
    /// Next tag to hand out (tags are never reused).
    next_tag: u64,
    /// Sequence number the producer must give next.
    next_seq: u64,
    /// Events the producer dropped (counted `push` on a full ring).
    lost: u64,
    /// Sequence numbers of the dropped events, oldest first.
    lost_seqs: VecDeque<u64>,
    /// Last `seq` the consumer saw, and the gaps it saw before it.
    last_seen: Option<u64>,
    gaps: u64,
    /// Events popped so far: the next popped event's ticket is this + 1.
    taken: u64,
}

impl<const N: usize> Model<N> {
    const CAPACITY: usize = N - 1;

    fn new() -> Self {
        let (producer, consumer) = channel_sized::<N>();
        Self {
            producer,
            consumer,
            queue: VecDeque::new(),
            next_tag: 0,
            next_seq: 0,
            lost: 0,
            lost_seqs: VecDeque::new(),
            last_seen: None,
            gaps: 0,
            taken: 0,
        }
    }

    fn tag(&mut self) -> u64 {
        self.next_tag += 1;
        self.next_tag
    }

    fn run(mut self, r: &mut Reader<'_>) {
        let mut ops = 0;
        while !r.is_empty() && ops < 512 {
            ops += 1;
            let kind = r.u8() % 7;
            let count = r.u8() as usize;
            match kind {
                0 => (0..count % 8 + 1).for_each(|_| self.push()),
                1 => (0..count % 8 + 1).for_each(|_| self.try_push()),
                2 => self.try_push_batch(count % 24),
                3 => (0..count % 8 + 1).for_each(|_| self.pop()),
                4 => self.pop_batch(count % 24),
                5 => self.push_until_overflow(count % 4 + 1),
                _ => self.drain(),
            }
            self.check_counts();
        }
        self.finish();
    }

    fn push(&mut self) {
        let tag = self.tag();
        let seq = self.next_seq;
        self.next_seq += 1;
        match self.producer.push(&event(tag)) {
            Ok(s) => {
                assert!(
                    self.queue.len() < Self::CAPACITY,
                    "push into a full ring succeeded"
                );
                assert_eq!(s, seq, "push numbered {s}, expected {seq}");
                self.queue.push_back((seq, tag));
            }
            Err(RingFull { seq: s }) => {
                assert_eq!(
                    self.queue.len(),
                    Self::CAPACITY,
                    "push refused with room left"
                );
                assert_eq!(s, seq, "dropped event numbered {s}, expected {seq}");
                self.lost += 1;
                self.lost_seqs.push_back(seq);
            }
        }
    }

    fn try_push(&mut self) {
        let tag = self.tag();
        match self.producer.try_push(&event(tag)) {
            Some(s) => {
                assert!(
                    self.queue.len() < Self::CAPACITY,
                    "try_push into a full ring"
                );
                assert_eq!(s, self.next_seq);
                self.queue.push_back((s, tag));
                self.next_seq += 1;
            }
            None => assert_eq!(
                self.queue.len(),
                Self::CAPACITY,
                "try_push refused with room"
            ),
        }
    }

    fn try_push_batch(&mut self, n: usize) {
        let tags: Vec<u64> = (0..n).map(|_| self.tag()).collect();
        let events: Vec<pciem_event> = tags.iter().map(|&t| event(t)).collect();
        let pushed = self.producer.try_push_batch(&events);
        let room = Self::CAPACITY - self.queue.len();
        assert_eq!(
            pushed,
            n.min(room),
            "batch of {n} with {room} free took {pushed}"
        );
        for &tag in tags.iter().take(pushed) {
            self.queue.push_back((self.next_seq, tag));
            self.next_seq += 1;
        }
    }

    fn push_until_overflow(&mut self, extra: usize) {
        while self.queue.len() < Self::CAPACITY {
            self.push();
        }
        for _ in 0..extra {
            self.push();
        }
    }

    /// Check a popped event against the model's oldest.
    fn took(&mut self, got: &pciem_event) {
        let (seq, tag) = self
            .queue
            .pop_front()
            .unwrap_or_else(|| panic!("popped seq {} from an empty ring", got.seq));
        let mut want = event(tag);
        want.seq = seq;
        // Tickets number published slots, not sequence numbers.
        self.taken += 1;
        want.ticket = self.taken;
        assert_eq!(*got, want, "popped event is not the oldest one published");
        // The consumer's view of losses: the gap before this event.
        let expected_next = self.last_seen.map_or(0, |s| s + 1);
        assert!(got.seq >= expected_next, "seq went backwards");
        let gap = got.seq - expected_next;
        // Exactly the events dropped between the two were lost.
        let dropped_between = self
            .lost_seqs
            .iter()
            .filter(|&&s| s >= expected_next && s < got.seq)
            .count() as u64;
        assert_eq!(
            gap, dropped_between,
            "seq gap {gap} but {dropped_between} dropped"
        );
        self.gaps += gap;
        self.last_seen = Some(got.seq);
        // The overflow counter covers at least the losses seen so far.
        assert!(self.consumer.overflow() >= self.gaps);
    }

    fn pop(&mut self) {
        match self.consumer.pop() {
            Some(e) => self.took(&e),
            None => assert!(
                self.queue.is_empty(),
                "pop found nothing with events published"
            ),
        }
    }

    fn pop_batch(&mut self, n: usize) {
        let mut out = vec![pciem_event::default(); n];
        let got = self.consumer.pop_batch(&mut out);
        assert_eq!(got, n.min(self.queue.len()), "pop_batch of {n} took {got}");
        for e in out.iter().take(got) {
            self.took(e);
        }
    }

    fn drain(&mut self) {
        while let Some(e) = self.consumer.pop() {
            self.took(&e);
        }
        assert!(self.queue.is_empty(), "drain left published events behind");
    }

    fn check_counts(&self) {
        assert_eq!(self.consumer.len(), self.queue.len(), "consumer len");
        assert_eq!(self.consumer.is_empty(), self.queue.is_empty());
        assert_eq!(self.consumer.position(), self.taken, "consumer position");
        assert_eq!(
            self.producer.state().published(),
            self.taken + self.queue.len() as u64,
            "producer position"
        );
        assert_eq!(
            self.producer.state().overflow(),
            self.lost,
            "producer overflow"
        );
        assert_eq!(self.consumer.overflow(), self.lost, "published overflow");
        assert_eq!(self.producer.ring().overflow(), self.lost);
        assert_eq!(self.producer.state().next_seq(), self.next_seq);
    }

    /// Drain, then publish one more event so every loss lies before a seen
    /// event: the gaps must then add up to the overflow counter exactly.
    fn finish(mut self) {
        self.drain();
        let tag = self.tag();
        let seq = self
            .producer
            .try_push(&event(tag))
            .expect("an empty ring takes an event");
        assert_eq!(seq, self.next_seq);
        self.queue.push_back((seq, tag));
        self.next_seq += 1;
        self.drain();
        assert_eq!(
            self.gaps, self.lost,
            "seq gaps do not add up to the overflow counter"
        );
        self.check_counts();
    }
}

/// Corpus seeds: fill/overflow/drain cycles, batches that straddle the wrap
/// point, and a long run on the ABI's ring size.
pub fn seeds() -> crate::Seeds {
    let ops = |size: u8, ops: &[(u8, u8)]| {
        let mut w = Writer::new();
        w.u8(size);
        for &(k, n) in ops {
            w.u8(k).u8(n);
        }
        w.finish()
    };
    vec![
        ("tiny-overflow", ops(0, &[(5, 3), (3, 0), (0, 2), (6, 0)])),
        (
            "wrap-batches",
            ops(2, &[(2, 5), (4, 3), (2, 7), (4, 10), (2, 23), (6, 0)]),
        ),
        (
            "interleaved",
            ops(
                3,
                &[
                    (0, 3),
                    (3, 1),
                    (1, 7),
                    (3, 2),
                    (5, 0),
                    (4, 4),
                    (0, 7),
                    (6, 0),
                ],
            ),
        ),
        (
            "abi-size",
            ops(4, &[(2, 23), (2, 23), (4, 17), (0, 7), (3, 7), (6, 0)]),
        ),
        (
            "overflow-then-refill",
            ops(1, &[(5, 2), (1, 3), (4, 1), (1, 1), (0, 1), (6, 0)]),
        ),
        ("hostile-peer", hostile_seed()),
    ]
}

/// Batches, a `head` scribbled to all ones, a `tail` scribbled past the
/// ring, the overflow counter reset, tickets forged and garbled, pops and
/// pushes in between.
fn hostile_seed() -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(5);
    w.u8(2).u8(39);
    w.u8(5).u8(0).u32(0xFFFF_FFFF);
    w.u8(0).u8(7);
    w.u8(6).u8(0).u32(0x8000_0400);
    w.u8(4).u8(63);
    w.u8(3).u8(7);
    w.u8(7).u8(0).u64(0);
    w.u8(0).u8(3);
    w.u8(5).u8(0).u32(1023);
    w.u8(2).u8(39);
    w.u8(6).u8(0).u32(7);
    w.u8(4).u8(63);
    w.u8(7).u8(1).u64((1 << 63) | 3);
    w.u8(7).u8(1).u64((1 << 63) | 4);
    w.u8(4).u8(63);
    w.u8(7).u8(3).u64(0x1234_5678);
    w.u8(3).u8(7);
    w.finish()
}
