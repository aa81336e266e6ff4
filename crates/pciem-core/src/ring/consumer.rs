//! The consumer side: the device process (and the mock backend's model).

use pciem_abi::{pciem_event, PCIEM_RING_SIZE};

use pciem_abi::{PCIEM_RING_CONSUMER_AWAKE, PCIEM_RING_CONSUMER_SLEEPING};

use super::shared::{mask, SharedRing};
use super::sync::fence;
use super::sync::Ordering::{Acquire, Relaxed, Release, SeqCst};

/// Pops events from a [`SharedRing`] it owns.
///
/// Keeps its own position (the copy of `head` in shared memory is only ever
/// written by it) and takes slot `pos % N` when its ticket is `pos + 1`, so
/// a producer that scribbles on the ring can garble events but never make it
/// read outside the ring, loop or panic.
#[derive(Debug)]
pub struct Consumer<const N: usize = PCIEM_RING_SIZE> {
    ring: SharedRing<N>,
    /// Slots taken so far (never reset); the next slot is `pos % N` and is
    /// published when its ticket reads `pos + 1`.
    pos: u64,
}

impl<const N: usize> Consumer<N> {
    /// A consumer of `ring`, resuming where the ring's `head` says the last
    /// consumer stopped (at the start for a fresh ring).
    ///
    /// The position is recovered from the ticket of the slot before `head`,
    /// which the last consumer took: that ticket is the position itself.
    /// If it does not fit `head` (a fresh ring, or a scribbled one), the
    /// consumer starts in the first lap, at `head`.
    pub fn new(ring: SharedRing<N>) -> Self {
        let mask = mask::<N>();
        // Relaxed is enough: only consumers write `head`, and the one before
        // us (if any) handed the ring over by some synchronising means.
        let head = ring.head().load(Relaxed) & mask;
        let last = ring.slot(head.wrapping_sub(1)).ticket();
        let pos = if last != 0 && last as u32 & mask == head {
            last
        } else {
            u64::from(head)
        };
        Self { ring, pos }
    }

    /// Says the consumer is draining the ring and will look again before
    /// it sleeps, so the producer need not signal the eventfd for each
    /// event (`PCIEM_RING_CONSUMER_AWAKE`). A consumer that calls this must
    /// go to sleep only through [`prepare_to_sleep`](Consumer::prepare_to_sleep);
    /// one that never calls it is signalled after every event.
    pub fn set_awake(&self) {
        self.ring
            .consumer_state()
            .store(PCIEM_RING_CONSUMER_AWAKE, Release);
    }

    /// Says the consumer is about to sleep on the eventfd, then looks at
    /// the ring once more: `true` if it is empty (sleep now: the producer
    /// will signal the next event), `false` if an event came in meanwhile
    /// (call [`set_awake`](Consumer::set_awake) and drain instead). The
    /// full fence between the store and the look pairs with the producer's
    /// fence between publishing and loading the state, so an event is
    /// never published unseen by both.
    pub fn prepare_to_sleep(&self) -> bool {
        self.ring
            .consumer_state()
            .store(PCIEM_RING_CONSUMER_SLEEPING, SeqCst);
        fence(SeqCst);
        self.is_empty()
    }

    /// The ring this consumer reads.
    pub fn ring(&self) -> &SharedRing<N> {
        &self.ring
    }

    /// Events taken so far (the position in the producer's stream).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The ticket slot `pos % N` carries once it is published.
    #[inline(always)]
    fn expected(pos: u64) -> u64 {
        pos.wrapping_add(1)
    }

    /// Takes the event at the consumer's position if its ticket is out,
    /// advancing the position but not yet handing the slot back (the
    /// caller stores `head` through [`release`](Consumer::release)).
    #[inline(always)]
    fn take(&mut self) -> Option<pciem_event> {
        let slot = self.ring.slot(self.pos as u32);
        let ticket = slot.ticket();
        if ticket != Self::expected(self.pos) {
            return None;
        }
        // SAFETY: the acquire load of the ticket synchronised with the
        // producer's release store publishing this slot; the producer will
        // not write it again before `release` stores a `head` past it.
        let event = unsafe { slot.read(ticket) };
        self.pos = self.pos.wrapping_add(1);
        Some(event)
    }

    /// Hands every slot before `self.pos` back to the producer.
    #[inline(always)]
    fn release(&self) {
        // Release: our reads of the slots happen before the producer's
        // acquire load that sees the new `head` and reuses them.
        self.ring
            .head()
            .store(self.pos as u32 & mask::<N>(), Release);
    }

    /// Takes the oldest published event, or `None` if the ring is empty.
    #[inline]
    pub fn pop(&mut self) -> Option<pciem_event> {
        let event = self.take()?;
        self.release();
        Some(event)
    }

    /// Takes up to `out.len()` events (and at most the ring's capacity),
    /// oldest first, into the front of `out` and returns how many. One
    /// release store of `head` (if anything was taken) for the whole batch.
    pub fn pop_batch(&mut self, out: &mut [pciem_event]) -> usize {
        let mut count = 0;
        let limit = out.len().min(SharedRing::<N>::CAPACITY);
        for dst in &mut out[..limit] {
            let Some(event) = self.take() else { break };
            *dst = event;
            count += 1;
        }
        if count != 0 {
            self.release();
        }
        count
    }

    /// Number of published events not yet taken, counted by the producer's
    /// `tail` (a snapshot: the producer may add more at any time).
    pub fn len(&self) -> usize {
        let mask = mask::<N>();
        let tail = self.ring.tail().load(Acquire) & mask;
        (tail.wrapping_sub(self.pos as u32) & mask) as usize
    }

    /// Whether the next event is not published yet (a snapshot; the same
    /// test [`pop`](Consumer::pop) makes).
    pub fn is_empty(&self) -> bool {
        self.ring.slot(self.pos as u32).ticket() != Self::expected(self.pos)
    }

    /// Events the producer dropped because the ring was full, as last
    /// published. After popping an event, this is at least the number of
    /// sequence numbers skipped before it.
    pub fn overflow(&self) -> u64 {
        self.ring.overflow()
    }
}
