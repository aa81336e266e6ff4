//! The ring's synchronisation primitives, swapped for loom's under
//! `cfg(loom)`.
//!
//! Everything the protocol does to shared memory goes through this module:
//! the index, ticket and overflow atomics, and [`Slot`] reads and writes. In a normal
//! build they are the real thing over memory that may be shared with another
//! process or the kernel; under `--cfg loom` they are loom's model-checked
//! equivalents, so the protocol code in `producer.rs` and `consumer.rs` that
//! loom explores is exactly the code that ships.

use pciem_abi::pciem_event;

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{fence, AtomicU32, AtomicU64};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64};

pub(crate) use core::sync::atomic::Ordering;

/// Words of a slot before its ticket: the first 56 bytes of a
/// `pciem_event`, everything but `ticket`.
pub(crate) const BODY_WORDS: usize = 7;

/// One event slot: the event's first 56 bytes and its `ticket`, laid out as
/// a `pciem_event`.
///
/// The body is not `Sync` by itself: whoever reads or writes it must hold
/// the right to (the producer owns a slot from the acquire load of `head`
/// that freed it until it publishes the ticket; the consumer from the
/// acquire load that saw the ticket until it stores `head` past it). The
/// ticket is atomic: the protocol's hand-over.
#[repr(C)]
pub(crate) struct Slot {
    #[cfg(not(loom))]
    body: core::cell::UnsafeCell<[u64; BODY_WORDS]>,
    #[cfg(loom)]
    body: loom::cell::UnsafeCell<[u64; BODY_WORDS]>,
    ticket: AtomicU64,
}

#[cfg(not(loom))]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<Slot>() == size_of::<pciem_event>());
    assert!(align_of::<Slot>() == align_of::<pciem_event>());
    assert!(offset_of!(Slot, ticket) == offset_of!(pciem_event, ticket));
};

/// The event as eight words; the last is its `ticket`.
#[inline(always)]
fn words_of(event: &pciem_event) -> [u64; BODY_WORDS + 1] {
    zerocopy::transmute!(*event)
}

impl Slot {
    /// An empty slot (loom builds the ring on the heap with this; the real
    /// ring is zeroed memory).
    #[cfg(all(loom, feature = "std"))]
    pub(crate) fn new() -> Self {
        Self {
            body: loom::cell::UnsafeCell::new([0; BODY_WORDS]),
            ticket: AtomicU64::new(0),
        }
    }

    /// The slot's ticket (acquire: pairs with the producer's release store
    /// in [`publish`](Slot::publish), so the body written before it is
    /// visible to a [`read`](Slot::read) after).
    #[inline(always)]
    pub(crate) fn ticket(&self) -> u64 {
        self.ticket.load(Ordering::Acquire)
    }

    /// Publishes the body written before with `ticket` (release).
    #[inline(always)]
    pub(crate) fn publish(&self, ticket: u64) {
        self.ticket.store(ticket, Ordering::Release);
    }

    /// Copies the event out of the slot, with `ticket` (the value the caller
    /// loaded to claim it) as its ticket.
    ///
    /// # Safety
    /// The caller owns the slot for reading: no write to its body by this
    /// process may run concurrently (the protocol's acquire load of the
    /// ticket made the producer's write visible and the slot is not handed
    /// back yet).
    #[inline(always)]
    pub(crate) unsafe fn read(&self, ticket: u64) -> pciem_event {
        let mut words = [0u64; BODY_WORDS + 1];
        #[cfg(not(loom))]
        {
            let body = self.body.get().cast::<u64>();
            for (i, word) in words.iter_mut().take(BODY_WORDS).enumerate() {
                // SAFETY: `i < BODY_WORDS`, so the pointer stays inside the
                // live, aligned body array; the caller guarantees no
                // concurrent write from this process. A write from another
                // address space (a buggy or hostile producer) can at worst
                // tear the copy: the access is volatile so the compiler reads
                // each word exactly once and never assumes it stays put, and
                // every bit pattern is a valid `pciem_event`.
                *word = unsafe { core::ptr::read_volatile(body.add(i)) };
            }
        }
        #[cfg(loom)]
        self.body.with(|p| {
            // SAFETY: as above; loom additionally checks the caller's claim
            // that no write races with this read.
            words[..BODY_WORDS].copy_from_slice(unsafe { &*p });
        });
        words[BODY_WORDS] = ticket;
        zerocopy::transmute!(words)
    }

    /// Copies all of `event` but its ticket into the slot's body; nothing is
    /// published until [`publish`](Slot::publish).
    ///
    /// # Safety
    /// The caller owns the slot for writing: no read or write of its body by
    /// this process may run concurrently (the protocol's acquire load of
    /// `head` showed the consumer is done with it, and its ticket still
    /// belongs to the previous lap).
    #[inline(always)]
    pub(crate) unsafe fn write(&self, event: &pciem_event) {
        let words = words_of(event);
        #[cfg(not(loom))]
        {
            let body = self.body.get().cast::<u64>();
            for (i, word) in words.iter().take(BODY_WORDS).enumerate() {
                // SAFETY: `i < BODY_WORDS`, inside the live, aligned body;
                // the caller guarantees exclusive access within this
                // process. Volatile because another address space may look
                // at the page: the compiler must perform the stores as
                // written.
                unsafe { core::ptr::write_volatile(body.add(i), *word) };
            }
        }
        #[cfg(loom)]
        self.body.with_mut(|p| {
            // SAFETY: as above; loom additionally checks the caller's claim
            // of exclusive access.
            unsafe { (*p).copy_from_slice(&words[..BODY_WORDS]) };
        });
    }
}
