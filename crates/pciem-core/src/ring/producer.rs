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

/// The producer's private state: its own copy of `tail`, the last `head`
/// it loaded, the next sequence number and the overflow count.
///
/// The kernel embeds this as `struct pciem_rs_producer` (same fields, same
/// layout; `kernel/rust/pciem_rs.h`), which is why it is `#[repr(C)]` and
/// separate from the ring: [`push`](Producer::push) takes the ring to
/// publish into.
///
/// [`push`](Producer::push) and [`try_push`](Producer::try_push) load the
/// shared `head` only when the cached copy says the ring is full, so while
/// there is room a push touches no cache line the consumer writes: in a
/// ping-pong that is one cross-core cache miss less per event. The cache can
/// only be behind the real `head` (the consumer only advances it), so it
/// never makes the producer believe in room that is not there; a consumer
/// that moves `head` backwards (scribbling) just sees its "unread" slots
/// reused, which it could have garbled anyway.
///
/// The producer never reads back its own `tail` or `overflow` from shared
/// memory, and masks the shared `head` it does read, so a consumer that
/// scribbles on the ring page cannot make it write outside the ring, loop
/// or panic. Even the private fields are masked before use, so a garbage
/// `Producer` (say, uninitialised kernel memory) is harmless too.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Producer {
    tail: u32,
    /// Last `head` loaded from the ring, masked when used (`reserved` in
    /// older versions of the C header: C never looks at it).
    cached_head: u32,
    next_seq: u64,
    overflow: u64,
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<Producer>() == 24);
    assert!(offset_of!(Producer, tail) == 0);
    assert!(offset_of!(Producer, cached_head) == 4);
    assert!(offset_of!(Producer, next_seq) == 8);
    assert!(offset_of!(Producer, overflow) == 16);
};

impl Producer {
    /// A producer for a fresh (zeroed) ring: tail 0, first sequence number 0,
    /// no overflow.
    pub const fn new() -> Self {
        Self {
            tail: 0,
            cached_head: 0,
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

    /// Publishes `event` with the next sequence number (the `seq` field of
    /// `event` is ignored) and returns that number.
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
        if self.publish(ring, event, seq) {
            Ok(seq)
        } else {
            self.overflow = self.overflow.wrapping_add(1);
            // Release: pairs with the consumer's acquire load of `overflow`.
            // The count lives in `self`, never read back from the page, so a
            // consumer resetting the shared copy cannot make it go wrong.
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
        let seq = self.next_seq;
        if self.publish(ring, event, seq) {
            self.next_seq = seq.wrapping_add(1);
            Some(seq)
        } else {
            None
        }
    }

    /// Publishes the longest prefix of `events` that fits, with consecutive
    /// sequence numbers, and returns its length. One acquire load of `head`
    /// (always fresh, and kept as the cached copy) and one release store of
    /// `tail` for the whole batch. Events that did
    /// not fit are neither numbered nor counted as overflow: retry them, or
    /// [`push`](Producer::push) them to account for them as lost.
    pub fn try_push_batch<const N: usize>(
        &mut self,
        ring: &SharedRing<N>,
        events: &[pciem_event],
    ) -> usize {
        let mask = mask::<N>();
        let tail = self.tail & mask;
        let head = ring.head().load(Acquire) & mask;
        self.cached_head = head;
        // Free slots, keeping one empty: in 0..N, whatever `head` says.
        let free = head.wrapping_sub(tail).wrapping_sub(1) & mask;
        let count = events.len().min(free as usize);
        let mut index = tail;
        for event in events.iter().take(count) {
            let mut copy = *event;
            copy.seq = self.next_seq;
            self.next_seq = self.next_seq.wrapping_add(1);
            // SAFETY: `index` runs over the `count <= free` slots from `tail`
            // on; the acquire load of `head` above saw the consumer release
            // them, and the consumer will not read them before the release
            // store of `tail` below.
            unsafe { ring.slot(index).write(&copy) };
            index = index.wrapping_add(1) & mask;
        }
        if count != 0 {
            self.tail = index;
            ring.tail().store(index, Release);
        }
        count
    }

    /// Writes `event` numbered `seq` at `tail` and publishes it, or returns
    /// false if the ring is full.
    #[inline(always)]
    fn publish<const N: usize>(
        &mut self,
        ring: &SharedRing<N>,
        event: &pciem_event,
        seq: u64,
    ) -> bool {
        let mask = mask::<N>();
        let tail = self.tail & mask;
        let next = tail.wrapping_add(1) & mask;
        if next == self.cached_head & mask {
            // Looks full: see how far the consumer got. Acquire: pairs with
            // the consumer's release store of `head`, so its reads of the
            // slots we are about to reuse happen before our writes (the
            // cached value was loaded the same way, so slots it freed are
            // safe too). Masked: a scribbled `head` can make us think the
            // ring is full or empty (and so garble what the consumer sees),
            // never index outside.
            let head = ring.head().load(Acquire) & mask;
            self.cached_head = head;
            if next == head {
                return false;
            }
        }
        let mut copy = *event;
        copy.seq = seq;
        // SAFETY: `tail` is ours until we publish it below; the consumer
        // released every slot before the cached `head`, whose acquire load
        // (now or earlier) synchronised with that release, and
        // `tail != head - 1` means `tail` is among them.
        unsafe { ring.slot(tail).write(&copy) };
        self.tail = next;
        // Release: the slot write above happens before the consumer's
        // acquire load that observes this `tail`.
        ring.tail().store(next, Release);
        true
    }
}
