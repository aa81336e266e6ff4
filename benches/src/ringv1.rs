//! Version 1 of PCIem's ring protocol, as it shipped until ABI version 2,
//! kept only as a baseline: the consumer polls the shared `tail` and the
//! producer caches `head`, so every event moves two cache lines (the slot,
//! then `tail`). `cargo bench --bench ring_latency` runs it beside the
//! current ring (`pciem-ring`, which polls each slot's ticket) to show
//! what the change bought. Not used by PCIem.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use pciem_abi::pciem_event;

use crate::pingpong::SpscQueue;

const SLOTS: usize = 1024;
const MASK: u32 = SLOTS as u32 - 1;

/// An index on a 128-byte line pair of its own, as in `pciem_shared_ring`.
#[repr(C, align(128))]
struct Index(AtomicU32);

/// An event slot.
#[repr(C, align(64))]
struct Slot(UnsafeCell<pciem_event>);

struct Shared {
    head: Index,
    tail: Index,
    slots: Box<[Slot]>,
}

// SAFETY: the indices are atomics; a slot is accessed by one side at a time
// under the protocol (the producer until it publishes `tail` past it, the
// consumer until it publishes `head` past it), with release/acquire pairs
// ordering the hand-overs.
unsafe impl Sync for Shared {}

/// Sending half.
pub struct RingV1Tx {
    shared: Arc<Shared>,
    tail: u32,
    cached_head: u32,
}

/// Receiving half.
pub struct RingV1Rx {
    shared: Arc<Shared>,
    head: u32,
    cached_tail: u32,
}

/// The version-1 protocol as an [`SpscQueue`].
#[derive(Debug)]
pub struct RingV1;

impl SpscQueue for RingV1 {
    type Tx = RingV1Tx;
    type Rx = RingV1Rx;

    fn pair() -> (RingV1Tx, RingV1Rx) {
        let slots = (0..SLOTS)
            .map(|_| Slot(UnsafeCell::new(pciem_event::default())))
            .collect();
        let shared = Arc::new(Shared {
            head: Index(AtomicU32::new(0)),
            tail: Index(AtomicU32::new(0)),
            slots,
        });
        (
            RingV1Tx {
                shared: shared.clone(),
                tail: 0,
                cached_head: 0,
            },
            RingV1Rx {
                shared,
                head: 0,
                cached_tail: 0,
            },
        )
    }

    #[inline]
    fn try_send(tx: &mut RingV1Tx, event: &pciem_event) -> bool {
        let next = (tx.tail + 1) & MASK;
        if next == tx.cached_head {
            // Acquire: the consumer's reads of freed slots happen before our
            // writes.
            tx.cached_head = tx.shared.head.0.load(Ordering::Acquire) & MASK;
            if next == tx.cached_head {
                return false;
            }
        }
        let Some(slot) = tx.shared.slots.get(tx.tail as usize) else {
            return false;
        };
        // SAFETY: slot `tail` is the producer's until the store of `tail`
        // below publishes it; the acquire load of `head` showed the consumer
        // is done with it.
        unsafe { slot.0.get().write_volatile(*event) };
        tx.tail = next;
        // Release: the slot write happens before the consumer's acquire load
        // that sees this `tail`.
        tx.shared.tail.0.store(next, Ordering::Release);
        true
    }

    #[inline]
    fn try_recv(rx: &mut RingV1Rx) -> Option<pciem_event> {
        if rx.head == rx.cached_tail {
            // Acquire: pairs with the producer's release store of `tail`.
            rx.cached_tail = rx.shared.tail.0.load(Ordering::Acquire) & MASK;
            if rx.head == rx.cached_tail {
                return None;
            }
        }
        let slot = rx.shared.slots.get(rx.head as usize)?;
        // SAFETY: the slot was published by the `tail` we acquired and is
        // ours until the release store of `head` below.
        let event = unsafe { slot.0.get().read_volatile() };
        rx.head = (rx.head + 1) & MASK;
        // Release: our read happens before the producer reuses the slot.
        rx.shared.head.0.store(rx.head, Ordering::Release);
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_full_and_empty() {
        let (mut tx, mut rx) = RingV1::pair();
        assert!(RingV1::try_recv(&mut rx).is_none());
        let mut e = pciem_event::default();
        for i in 0..SLOTS as u64 - 1 {
            e.data = i;
            assert!(RingV1::try_send(&mut tx, &e));
        }
        assert!(!RingV1::try_send(&mut tx, &e), "full after {}", SLOTS - 1);
        for i in 0..SLOTS as u64 - 1 {
            assert_eq!(RingV1::try_recv(&mut rx).map(|e| e.data), Some(i));
        }
        assert!(RingV1::try_recv(&mut rx).is_none());
        assert!(RingV1::try_send(&mut tx, &e));
    }
}
