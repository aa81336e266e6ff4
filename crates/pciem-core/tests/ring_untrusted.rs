//! A peer that scribbles on the shared ring page (any value in `head`,
//! `tail`, `overflow` or a slot's `ticket`, even concurrently) must never
//! make the other side access memory outside the ring, panic or loop.
#![cfg(not(loom))]

use core::ptr::{addr_of, addr_of_mut, NonNull};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use pciem_abi::{pciem_event, pciem_shared_ring, PCIEM_RING_SIZE};
use pciem_core::ring::{Consumer, Producer, SharedRing, RING_CAPACITY};

const CANARY: u8 = 0xA5;
const GUARD: usize = 4096;
const MASK: u32 = PCIEM_RING_SIZE as u32 - 1;

/// A ring with guard bytes on both sides, to catch any out-of-bounds write.
#[repr(C, align(128))]
struct Guarded {
    before: [u8; GUARD],
    ring: pciem_shared_ring,
    after: [u8; GUARD],
}

impl Guarded {
    fn new() -> Box<Self> {
        Box::new(Self {
            before: [CANARY; GUARD],
            ring: pciem_shared_ring::default(),
            after: [CANARY; GUARD],
        })
    }

    fn ring_ptr(&mut self) -> NonNull<pciem_shared_ring> {
        NonNull::from(&mut self.ring)
    }

    fn assert_guards_intact(&self) {
        assert!(
            self.before.iter().all(|&b| b == CANARY),
            "write before the ring"
        );
        assert!(
            self.after.iter().all(|&b| b == CANARY),
            "write after the ring"
        );
    }
}

/// xorshift64*: deterministic "random" scribbles without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Values a hostile peer might write: edges, just-out-of-range, and noise.
fn scribbles() -> Vec<u32> {
    let mut values = vec![
        0,
        1,
        MASK - 1,
        MASK,
        MASK + 1,
        MASK + 2,
        2 * MASK,
        0x7fff_ffff,
        0x8000_0000,
        u32::MAX - 1,
        u32::MAX,
    ];
    let mut rng = Rng(0x1234_5678_9abc_def1);
    values.extend((0..200).map(|_| rng.next() as u32));
    values
}

/// Writes `value` into a `u32` word of the page, as the peer would.
///
/// # Safety
/// `word` points into live ring memory and nothing accesses it concurrently
/// except through atomics.
unsafe fn scribble(word: *mut u32, value: u32) {
    // SAFETY: the caller's contract; an atomic store never races.
    unsafe { AtomicU32::from_ptr(word) }.store(value, Ordering::Release);
}

fn read_tail(ring: NonNull<pciem_shared_ring>) -> u32 {
    // SAFETY: the ring is live; atomic load of an aligned `u32`.
    unsafe { AtomicU32::from_ptr(addr_of!((*ring.as_ptr()).tail).cast_mut()) }
        .load(Ordering::Acquire)
}

fn read_head(ring: NonNull<pciem_shared_ring>) -> u32 {
    // SAFETY: as in `read_tail`.
    unsafe { AtomicU32::from_ptr(addr_of!((*ring.as_ptr()).head).cast_mut()) }
        .load(Ordering::Acquire)
}

#[test]
fn ring_producer_survives_scribbled_head() {
    let mut memory = Guarded::new();
    let raw = memory.ring_ptr();
    // SAFETY: `memory` outlives the view; this is the only producer and
    // there is no consumer.
    let view = unsafe { SharedRing::from_raw(raw) };
    let mut producer = Producer::new();
    let mut published = 0u64;
    let batch = [pciem_event::default(); 40];
    for value in scribbles() {
        // SAFETY: `raw` is live; this thread is the only one touching it.
        unsafe { scribble(addr_of_mut!((*raw.as_ptr()).head), value) };
        // Whatever `head` says, the producer's view of the free space is
        // what the masked value implies; it never believes in more.
        let head = value & MASK;
        let tail = read_tail(raw);
        let free = (head.wrapping_sub(tail).wrapping_sub(1) & MASK) as usize;
        let pushed = producer.try_push_batch(&view, &batch);
        assert_eq!(pushed, free.min(batch.len()), "head {value:#x}");
        published += pushed as u64;
        for _ in 0..3 {
            match producer.push(&view, &pciem_event::default()) {
                Ok(_) => published += 1,
                Err(full) => assert_eq!(full.seq + 1, producer.next_seq()),
            }
            if producer.try_push(&view, &pciem_event::default()).is_some() {
                published += 1;
            }
        }
        assert!(
            read_tail(raw) <= MASK,
            "tail {:#x} out of range",
            read_tail(raw)
        );
        memory.assert_guards_intact();
    }
    assert_eq!(published + producer.overflow(), producer.next_seq());
    assert!(
        producer.overflow() > 0,
        "some scribbles must look like a full ring"
    );
}

/// Stores `value` as the ticket of slot `index`, as a hostile producer would.
///
/// # Safety
/// `ring` is live and its tickets are accessed only atomically meanwhile.
unsafe fn scribble_ticket(ring: NonNull<pciem_shared_ring>, index: usize, value: u64) {
    let index = index % PCIEM_RING_SIZE;
    // SAFETY: the caller's contract; `index` is in bounds and the ticket an
    // aligned `u64`.
    unsafe { AtomicU64::from_ptr(addr_of_mut!((*ring.as_ptr()).events[index].ticket)) }
        .store(value, Ordering::Release);
}

#[test]
fn ring_consumer_survives_scribbled_tail() {
    let mut memory = Guarded::new();
    let raw = memory.ring_ptr();
    // SAFETY: `memory` outlives the consumer; there is no producer.
    let consumer = Consumer::new(unsafe { SharedRing::from_raw(raw) });
    for value in scribbles() {
        // SAFETY: `raw` is live; this thread is the only one touching it.
        unsafe { scribble(addr_of_mut!((*raw.as_ptr()).tail), value) };
        // `len` counts by the masked `tail`; popping ignores it.
        assert_eq!(consumer.len(), (value & MASK) as usize, "tail {value:#x}");
        assert!(consumer.is_empty(), "no ticket, no event (tail {value:#x})");
        memory.assert_guards_intact();
    }
}

#[test]
fn ring_consumer_survives_scribbled_tickets() {
    let mut memory = Guarded::new();
    let raw = memory.ring_ptr();
    // SAFETY: `memory` outlives the consumer; there is no producer.
    let mut consumer = Consumer::new(unsafe { SharedRing::from_raw(raw) });
    let mut out = vec![pciem_event::default(); PCIEM_RING_SIZE * 2];
    let mut rng = Rng(0x0bad_5eed);
    for (i, value) in scribbles().into_iter().enumerate() {
        // Forge "published" tickets for the next `forged` positions (more
        // than a lap, sometimes) and noise after them.
        let pos = consumer.position();
        let forged = value as usize % (PCIEM_RING_SIZE * 2);
        for j in 0..PCIEM_RING_SIZE {
            let expected = pos + j as u64 + 1;
            let ticket = if j < forged {
                expected
            } else {
                let noise = rng.next();
                if noise == expected {
                    noise + 1
                } else {
                    noise
                }
            };
            // SAFETY: `raw` is live; this thread is the only one touching it.
            unsafe { scribble_ticket(raw, pos as usize + j, ticket) };
        }
        // A lap of forged slots at most: slot `pos` comes round again with
        // ticket `pos + 1`, not `pos + N + 1`.
        let taken = if i % 2 == 0 {
            consumer.pop_batch(&mut out)
        } else {
            // Bounded: a loop that never ended would be the bug.
            (0..PCIEM_RING_SIZE * 4)
                .take_while(|_| consumer.pop().is_some())
                .count()
        };
        let lap_limit = if i % 2 == 0 {
            RING_CAPACITY
        } else {
            PCIEM_RING_SIZE
        };
        assert_eq!(taken, forged.min(lap_limit), "forged {forged}");
        assert_eq!(consumer.position(), pos + taken as u64);
        assert_eq!(read_head(raw), consumer.position() as u32 & MASK);
        memory.assert_guards_intact();
    }
}

#[test]
fn ring_consumer_survives_concurrent_scribbler() {
    let mut memory = Guarded::new();
    let raw = memory.ring_ptr();
    let page = raw.as_ptr() as usize;
    let stop = Arc::new(AtomicBool::new(false));
    let scribbler = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let ring = NonNull::new(page as *mut pciem_shared_ring).expect("non-null");
            let mut rng = Rng(99);
            while !stop.load(Ordering::Relaxed) {
                let r = rng.next();
                // Small tickets, so that some match what the consumer wants.
                // SAFETY: `memory` outlives this thread (joined below); the
                // consumer only loads tickets and `tail` atomically.
                unsafe {
                    scribble_ticket(ring, r as usize, r >> 54);
                    scribble(addr_of_mut!((*ring.as_ptr()).tail), r as u32);
                }
            }
        })
    };
    // SAFETY: `memory` outlives the consumer; the scribbler plays a hostile
    // producer that only stores tickets and `tail` atomically. Bodies it
    // leaves alone, so the consumer's volatile body reads race with nothing.
    let mut consumer = Consumer::new(unsafe { SharedRing::from_raw(raw) });
    let mut out = [pciem_event::default(); 64];
    let mut taken = 0u64;
    for i in 0..200_000 {
        taken += if i % 2 == 0 {
            consumer.pop_batch(&mut out) as u64
        } else {
            u64::from(consumer.pop().is_some())
        };
        assert!(consumer.len() <= MASK as usize);
    }
    stop.store(true, Ordering::Relaxed);
    scribbler.join().expect("scribbler");
    assert_eq!(consumer.position(), taken);
    assert_eq!(read_head(raw), taken as u32 & MASK);
    memory.assert_guards_intact();
}

#[test]
fn ring_producer_never_trusts_shared_overflow_or_tail() {
    let mut memory = Guarded::new();
    let raw = memory.ring_ptr();
    // SAFETY: `memory` outlives the view; single producer, no consumer.
    let view = unsafe { SharedRing::from_raw(raw) };
    let mut producer = Producer::new();
    for _ in 0..RING_CAPACITY + 2 {
        let _ = producer.push(&view, &pciem_event::default());
    }
    assert_eq!(view.overflow(), 2);
    // The consumer "resets" the counter and moves `tail` under our feet.
    // SAFETY: single-threaded; plain writes to a live page.
    unsafe {
        (*raw.as_ptr()).overflow = 0;
        scribble(addr_of_mut!((*raw.as_ptr()).tail), 5);
    }
    assert!(producer.push(&view, &pciem_event::default()).is_err());
    // The producer republishes its own count, not the scribbled one + 1.
    assert_eq!(view.overflow(), 3);
    assert_eq!(producer.overflow(), 3);
    // And keeps filling from its private tail: freeing one slot lets
    // exactly one event in, at the slot after the last one it wrote.
    // SAFETY: as above.
    unsafe { scribble(addr_of_mut!((*raw.as_ptr()).head), 1) };
    assert!(producer.push(&view, &pciem_event::default()).is_ok());
    assert_eq!(read_tail(raw), 0);
    // SAFETY: as above.
    let page = unsafe { &*raw.as_ptr() };
    assert_eq!(page.events[RING_CAPACITY].ticket, RING_CAPACITY as u64 + 1);
    memory.assert_guards_intact();
}

#[test]
fn ring_garbage_producer_state_stays_in_bounds() {
    let mut memory = Guarded::new();
    let raw = memory.ring_ptr();
    // SAFETY: `memory` outlives the view; single producer, no consumer.
    let view = unsafe { SharedRing::from_raw(raw) };
    for fill in [0xffu8, 0x80, 0x5a] {
        // As if the kernel embedded an uninitialised `pciem_rs_producer`.
        // SAFETY: `Producer` is five integers in `#[repr(C)]`: every bit
        // pattern is a valid value.
        let mut producer: Producer = unsafe { core::mem::transmute([fill; 32]) };
        for _ in 0..PCIEM_RING_SIZE + 3 {
            let _ = producer.push(&view, &pciem_event::default());
            assert!(read_tail(raw) <= MASK);
        }
        memory.assert_guards_intact();
    }
}

#[test]
fn ring_producer_survives_concurrent_scribbler() {
    let mut memory = Guarded::new();
    let raw = memory.ring_ptr();
    let head = addr_of_mut!(memory.ring.head) as usize;
    let stop = Arc::new(AtomicBool::new(false));
    let scribbler = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut rng = Rng(42);
            let head = head as *mut u32;
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: `memory` outlives this thread (joined below); the
                // producer only loads `head` atomically.
                unsafe { scribble(head, rng.next() as u32) };
            }
        })
    };
    // SAFETY: `memory` outlives the view; single producer; the scribbler
    // plays a hostile consumer that only stores `head` atomically.
    let view = unsafe { SharedRing::from_raw(raw) };
    let mut producer = Producer::new();
    let mut published = 0u64;
    for _ in 0..200_000 {
        if producer.push(&view, &pciem_event::default()).is_ok() {
            published += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    scribbler.join().expect("scribbler");
    assert_eq!(published + producer.overflow(), 200_000);
    assert!(read_tail(raw) <= MASK);
    memory.assert_guards_intact();
}
