//! The consumer side: the device process (and the mock backend's model).

use pciem_abi::{pciem_event, PCIEM_RING_SIZE};

use super::shared::{mask, SharedRing};
use super::sync::Ordering::{Acquire, Release};

/// Pops events from a [`SharedRing`] it owns.
///
/// Keeps its own `head` (the copy in shared memory is only ever written by
/// it) and masks every `tail` it loads, so a producer that scribbles on the
/// ring can garble events but never make it read outside the ring, loop or
/// panic.
#[derive(Debug)]
pub struct Consumer<const N: usize = PCIEM_RING_SIZE> {
    ring: SharedRing<N>,
    /// Next slot to read; always `< N`.
    head: u32,
    /// Last `tail` loaded (acquire), masked: events up to it are known to
    /// be published, so `pop` need not touch the producer's cache line
    /// again until it catches up.
    tail: u32,
}

impl<const N: usize> Consumer<N> {
    /// A consumer of `ring`, resuming at the ring's current `head` (0 for a
    /// fresh ring).
    pub fn new(ring: SharedRing<N>) -> Self {
        // Relaxed is enough: only consumers write `head`, and the one before
        // us (if any) handed the ring over by some synchronising means.
        let head = ring.head().load(super::sync::Ordering::Relaxed) & mask::<N>();
        Self {
            ring,
            head,
            tail: head,
        }
    }

    /// The ring this consumer reads.
    pub fn ring(&self) -> &SharedRing<N> {
        &self.ring
    }

    /// Loads the producer's `tail` (acquire) into the cache and returns it.
    #[inline(always)]
    fn load_tail(&mut self) -> u32 {
        // Acquire: pairs with the producer's release store of `tail`, so the
        // slot writes before it are visible to the reads that follow. Masked
        // because the producer's side of the page is not trusted.
        self.tail = self.ring.tail().load(Acquire) & mask::<N>();
        self.tail
    }

    /// Takes the oldest published event, or `None` if the ring is empty.
    #[inline]
    pub fn pop(&mut self) -> Option<pciem_event> {
        let head = self.head;
        if head == self.tail && head == self.load_tail() {
            return None;
        }
        // SAFETY: `head != tail`, and `tail` came from an acquire load that
        // synchronised with the producer's release store publishing every
        // slot from `head` up to it; the producer will not write this slot
        // again before our release store of `head` below hands it back.
        let event = unsafe { self.ring.slot(head).read() };
        self.head = head.wrapping_add(1) & mask::<N>();
        // Release: our read of the slot happens before the producer's acquire
        // load that sees the new `head` and reuses the slot.
        self.ring.head().store(self.head, Release);
        Some(event)
    }

    /// Takes up to `out.len()` events, oldest first, into the front of `out`
    /// and returns how many. One acquire load of `tail` and (if anything
    /// was taken) one release store of `head` for the whole batch.
    pub fn pop_batch(&mut self, out: &mut [pciem_event]) -> usize {
        if out.is_empty() {
            return 0;
        }
        let head = self.head;
        let tail = self.load_tail();
        let available = tail.wrapping_sub(head) & mask::<N>();
        let count = out.len().min(available as usize);
        let mut index = head;
        for slot in out.iter_mut().take(count) {
            // SAFETY: the `count <= available` slots from `head` on were
            // published by the release store of the `tail` we acquired above
            // and are ours until the release store of `head` below.
            *slot = unsafe { self.ring.slot(index).read() };
            index = index.wrapping_add(1) & mask::<N>();
        }
        if count != 0 {
            self.head = index;
            // Release: as in `pop`, for all the slots at once.
            self.ring.head().store(index, Release);
        }
        count
    }

    /// Number of published events not yet taken (a snapshot: the producer
    /// may add more at any time).
    pub fn len(&self) -> usize {
        let tail = self.ring.tail().load(Acquire) & mask::<N>();
        (tail.wrapping_sub(self.head) & mask::<N>()) as usize
    }

    /// Whether no published event is waiting (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Events the producer dropped because the ring was full, as last
    /// published. After popping an event, this is at least the number of
    /// sequence numbers skipped before it.
    pub fn overflow(&self) -> u64 {
        self.ring.overflow()
    }
}
