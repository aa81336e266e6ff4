//! The producer side: the kernel module's, and the mock backend's.

use pciem_abi::pciem_event;

use super::shared::{mask, SharedRing};
use super::sync::Ordering::{Acquire, Release};

/// The ring was full: the event was not written. It was given sequence
/// number `seq` and counted in the ring's overflow counter, so the consumer
/// will see the gap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("event ring full: event {seq} dropped and counted as overflow")]
pub struct RingFull {
    /// Sequence number the dropped event was given.
    pub seq: u64,
}

/// The producer's private state: its position (slots filled so far), the
/// last `head` it loaded, the next sequence number and the overflow count.
///
/// The kernel embeds this as `struct pciem_rs_producer` (same fields, same
/// layout; `kernel/rust/pciem_rs.h`), which is why it is `#[repr(C)]` and
/// separate from the ring: [`push`](Producer::push) takes the ring to
/// publish into.
///
/// A push writes the event's body into slot `pos % N`, publishes it by
/// storing the slot's ticket (`pos + 1`, release), then stores `tail` (the
/// new position modulo `N`, release) for consumers that count. The consumer
/// polls the ticket, so the event and the news of it arrive in one cache
/// line. [`push`](Producer::push) and [`try_push`](Producer::try_push) load
/// the shared `head` only when the cached copy says the ring is full, so
/// while there is room a push touches no cache line the consumer writes.
/// The cache can only be behind the real `head` (the consumer only advances
/// it), so it never makes the producer believe in room that is not there; a
/// consumer that moves `head` backwards (scribbling) just sees its "unread"
/// slots reused, which it could have garbled anyway.
///
/// The producer never reads back tickets, `tail` or `overflow` from shared
/// memory, and masks the shared `head` it does read, so a consumer that
/// scribbles on the ring page cannot make it write outside the ring, loop
/// or panic. Even the private fields are masked before use, so a garbage
/// `Producer` (say, uninitialised kernel memory) is harmless too.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Producer {
    /// Slots filled so far (never reset); the next slot is `pos % N` and
    /// gets ticket `pos + 1`.
    pos: u64,
    /// Last `head` loaded from the ring, masked when used.
    cached_head: u32,
    reserved: u32,
    next_seq: u64,
    overflow: u64,
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<Producer>() == 32);
    assert!(offset_of!(Producer, pos) == 0);
    assert!(offset_of!(Producer, cached_head) == 8);
    assert!(offset_of!(Producer, next_seq) == 16);
    assert!(offset_of!(Producer, overflow) == 24);
};

impl Producer {
    /// A producer for a fresh (zeroed) ring: position 0, first sequence
    /// number 0, no overflow.
    pub const fn new() -> Self {
        Self {
            pos: 0,
            cached_head: 0,
            reserved: 0,
            next_seq: 0,
            overflow: 0,
        }
    }

    /// Sequence number the next event will get (= events published plus
    /// events lost so far).
    pub const fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Events this producer dropped because the ring was full.
    pub const fn overflow(&self) -> u64 {
        self.overflow
    }

    /// Events this producer has published (the next slot's ticket is this
    /// plus one).
    pub const fn published(&self) -> u64 {
        self.pos
    }

    /// Publishes `event` with the next sequence number (the `seq` and
    /// `ticket` fields of `event` are ignored) and returns that number.
    ///
    /// If the ring is full the event is dropped, never overwriting an unread
    /// one: the sequence number is used up, the overflow counter is
    /// incremented and published, and `Err(RingFull { seq })` says which
    /// event was lost.
    ///
    /// Constant time, no allocation, no panicking path on any ring contents:
    /// this is the kernel's hot path.
    #[inline]
    pub fn push<const N: usize>(
        &mut self,
        ring: &SharedRing<N>,
        event: &pciem_event,
    ) -> Result<u64, RingFull> {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        if self.has_room(ring) {
            self.publish(ring, event, seq);
            Ok(seq)
        } else {
            self.overflow = self.overflow.wrapping_add(1);
            // Release: pairs with the consumer's acquire load of `overflow`.
            // Stored before the next ticket, so a consumer that takes the
            // next event sees at least this count. The count lives in
            // `self`, never read back from the page, so a consumer resetting
            // the shared copy cannot make it go wrong.
            ring.overflow_counter().store(self.overflow, Release);
            Err(RingFull { seq })
        }
    }

    /// Publishes `event` if there is room and returns its sequence number;
    /// if the ring is full returns `None` and changes nothing (no sequence
    /// number used, no overflow counted), so the caller may retry.
    #[inline]
    pub fn try_push<const N: usize>(
        &mut self,
        ring: &SharedRing<N>,
        event: &pciem_event,
    ) -> Option<u64> {
        if !self.has_room(ring) {
            return None;
        }
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        self.publish(ring, event, seq);
        Some(seq)
    }

    /// Publishes the longest prefix of `events` that fits, with consecutive
    /// sequence numbers, and returns its length. One acquire load of `head`
    /// (always fresh, and kept as the cached copy) and one store of `tail`
    /// for the whole batch; each slot is still published by its own ticket,
    /// so the consumer may start on the first before the last is written.
    /// Events that did not fit are neither numbered nor counted as overflow:
    /// retry them, or [`push`](Producer::push) them to account for them as
    /// lost.
    pub fn try_push_batch<const N: usize>(
        &mut self,
        ring: &SharedRing<N>,
        events: &[pciem_event],
    ) -> usize {
        let mask = mask::<N>();
        let tail = self.pos as u32 & mask;
        let head = ring.head().load(Acquire) & mask;
        self.cached_head = head;
        // Free slots, keeping one empty: in 0..N, whatever `head` says.
        let free = head.wrapping_sub(tail).wrapping_sub(1) & mask;
        let count = events.len().min(free as usize);
        // A slice, not `iter().take(count)`: one bound for the loop.
        for event in &events[..count] {
            let seq = self.next_seq;
            self.next_seq = seq.wrapping_add(1);
            // The slot is among the `count <= free` slots from `tail` on,
            // which the acquire load of `head` above saw the consumer
            // release.
            self.fill(ring, event, seq);
        }
        if count != 0 {
            self.publish_tail(ring);
        }
        count
    }

    /// Whether slot `pos % N` is free, loading the shared `head` only if
    /// the cached one says the ring is full.
    #[inline(always)]
    fn has_room<const N: usize>(&mut self, ring: &SharedRing<N>) -> bool {
        let mask = mask::<N>();
        let next = (self.pos as u32).wrapping_add(1) & mask;
        if next != self.cached_head & mask {
            return true;
        }
        // Looks full: see how far the consumer got. Acquire: pairs with the
        // consumer's release store of `head`, so its reads of the slots we
        // are about to reuse happen before our writes (the cached value was
        // loaded the same way, so slots it freed are safe too). Masked: a
        // scribbled `head` can make us think the ring is full or empty (and
        // so garble what the consumer sees), never index outside.
        let head = ring.head().load(Acquire) & mask;
        self.cached_head = head;
        next != head
    }

    /// Writes `event` numbered `seq` into slot `pos % N` and publishes it,
    /// then `tail`; [`has_room`](Producer::has_room) said the slot is free.
    #[inline(always)]
    fn publish<const N: usize>(&mut self, ring: &SharedRing<N>, event: &pciem_event, seq: u64) {
        self.fill(ring, event, seq);
        self.publish_tail(ring);
    }

    /// Writes `event` numbered `seq` into slot `pos % N` and publishes it
    /// by its ticket. The caller has seen that the consumer released the
    /// slot (`has_room`, or the fresh `head` of `try_push_batch`).
    #[inline(always)]
    fn fill<const N: usize>(&mut self, ring: &SharedRing<N>, event: &pciem_event, seq: u64) {
        let slot = ring.slot(self.pos as u32);
        let mut copy = *event;
        copy.seq = seq;
        // SAFETY: the slot is ours until its ticket is published below: the
        // consumer released every slot before the `head` the caller loaded
        // (acquire, now or earlier, synchronising with that release), and
        // the caller checked that `pos % N` is among them.
        unsafe { slot.write(&copy) };
        self.pos = self.pos.wrapping_add(1);
        // Release: the body written above happens before the consumer's
        // acquire load that sees this ticket.
        slot.publish(self.pos);
    }

    /// Stores `tail` for consumers that count by it (`Consumer::len`,
    /// version-1 readers); release, so the slots before it are published
    /// when it is seen.
    #[inline(always)]
    fn publish_tail<const N: usize>(&self, ring: &SharedRing<N>) {
        ring.tail().store(self.pos as u32 & mask::<N>(), Release);
    }
}
