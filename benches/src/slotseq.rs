//! A prototype of the ring protocol proposed in docs/performance.md, for
//! measurement only: the consumer polls the next slot's sequence word
//! instead of a shared `tail`, so the event and the news of it arrive in
//! the same cache line, and the consumer hands a slot back by writing the
//! sequence number the producer expects there a lap later (no shared
//! `head` either). Not the ABI's ring and not used by PCIem.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pciem_abi::pciem_event;

use crate::pingpong::SpscQueue;

const SLOTS: usize = 1024;

/// One slot: the sequence word (the event's `seq` field) and the other
/// seven words of a `pciem_event`, on one 64-byte line.
#[repr(C, align(64))]
struct Slot {
    seq: AtomicU64,
    words: [AtomicU64; 7],
}

struct Shared {
    slots: Box<[Slot]>,
}

/// Sending half.
pub struct SlotSeqTx {
    shared: Arc<Shared>,
    pos: u64,
}

/// Receiving half.
pub struct SlotSeqRx {
    shared: Arc<Shared>,
    pos: u64,
}

const _: () = assert!(core::mem::size_of::<pciem_event>() == 64);

fn words_of(e: &pciem_event) -> [u64; 8] {
    // SAFETY: `pciem_event` is 64 bytes (checked above) of integers with no
    // padding (pciem-abi derives zerocopy's `IntoBytes` for it, which
    // refuses padding), so all 64 bytes are initialised and read as eight
    // `u64`s; `read_unaligned` needs no alignment.
    unsafe { core::ptr::read_unaligned((e as *const pciem_event).cast::<[u64; 8]>()) }
}

fn event_of(w: [u64; 8]) -> pciem_event {
    // SAFETY: every bit pattern is a valid `pciem_event` (integers only).
    unsafe { core::mem::transmute::<[u64; 8], pciem_event>(w) }
}

/// The prototype queue (its `seq` field carries the protocol's sequence
/// number, so an event's own `seq` is replaced by its position).
#[derive(Debug)]
pub struct SlotSeqRing;

impl SpscQueue for SlotSeqRing {
    type Tx = SlotSeqTx;
    type Rx = SlotSeqRx;
    fn pair() -> (SlotSeqTx, SlotSeqRx) {
        // Slot i starts free for position i.
        let slots = (0..SLOTS as u64)
            .map(|i| Slot {
                seq: AtomicU64::new(i),
                words: Default::default(),
            })
            .collect();
        let shared = Arc::new(Shared { slots });
        (
            SlotSeqTx {
                shared: shared.clone(),
                pos: 0,
            },
            SlotSeqRx { shared, pos: 0 },
        )
    }

    #[inline]
    fn try_send(tx: &mut SlotSeqTx, event: &pciem_event) -> bool {
        let Some(slot) = tx.shared.slots.get(tx.pos as usize % SLOTS) else {
            return false;
        };
        // Acquire: pairs with the consumer's release hand-back, so its
        // reads of the slot happen before our writes.
        if slot.seq.load(Ordering::Acquire) != tx.pos {
            return false;
        }
        for (dst, w) in slot.words.iter().zip(words_of(event).into_iter().skip(1)) {
            dst.store(w, Ordering::Relaxed);
        }
        // Release: publishes the words above with the sequence word.
        slot.seq.store(tx.pos + 1, Ordering::Release);
        tx.pos += 1;
        true
    }

    #[inline]
    fn try_recv(rx: &mut SlotSeqRx) -> Option<pciem_event> {
        let slot = rx.shared.slots.get(rx.pos as usize % SLOTS)?;
        let seq = slot.seq.load(Ordering::Acquire);
        if seq != rx.pos + 1 {
            return None;
        }
        let mut w = [0u64; 8];
        w[0] = rx.pos;
        for (dst, src) in w.iter_mut().skip(1).zip(&slot.words) {
            *dst = src.load(Ordering::Relaxed);
        }
        // Release: our reads happen before the producer's next writes here.
        slot.seq.store(rx.pos + SLOTS as u64, Ordering::Release);
        rx.pos += 1;
        Some(event_of(w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_full_and_empty() {
        let (mut tx, mut rx) = SlotSeqRing::pair();
        assert!(SlotSeqRing::try_recv(&mut rx).is_none());
        let mut e = pciem_event::default();
        for i in 0..SLOTS as u64 {
            e.data = i;
            assert!(SlotSeqRing::try_send(&mut tx, &e));
        }
        assert!(!SlotSeqRing::try_send(&mut tx, &e), "full after {SLOTS}");
        for i in 0..SLOTS as u64 {
            let got = SlotSeqRing::try_recv(&mut rx).unwrap();
            assert_eq!((got.seq, got.data), (i, i));
        }
        assert!(SlotSeqRing::try_recv(&mut rx).is_none());
        assert!(SlotSeqRing::try_send(&mut tx, &e));
    }
}
