//! The ring's synchronisation primitives, swapped for loom's under
//! `cfg(loom)`.
//!
//! Everything the protocol does to shared memory goes through this module:
//! the index and overflow atomics, and [`Slot`] reads and writes. In a normal
//! build they are the real thing over memory that may be shared with another
//! process or the kernel; under `--cfg loom` they are loom's model-checked
//! equivalents, so the protocol code in `producer.rs` and `consumer.rs` that
//! loom explores is exactly the code that ships.

use pciem_abi::pciem_event;

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64};

pub(crate) use core::sync::atomic::Ordering;

/// One event slot.
///
/// Not `Sync` by itself: whoever reads or writes it must hold the right to
/// (the producer owns `events[tail]` until it publishes `tail`, the consumer
/// owns `events[head]` until it publishes `head`).
#[repr(transparent)]
pub(crate) struct Slot {
    #[cfg(not(loom))]
    cell: core::cell::UnsafeCell<pciem_event>,
    #[cfg(loom)]
    cell: loom::cell::UnsafeCell<pciem_event>,
}

impl Slot {
    /// An empty slot (loom builds the ring on the heap with this; the real
    /// ring is zeroed memory).
    #[cfg(all(loom, feature = "std"))]
    pub(crate) fn new() -> Self {
        Self {
            cell: loom::cell::UnsafeCell::new(pciem_event::default()),
        }
    }

    /// Copies the event out of the slot.
    ///
    /// # Safety
    /// The caller owns the slot for reading: no write to it by this process
    /// may run concurrently (the protocol's acquire load of `tail` made the
    /// producer's write visible and the slot is not handed back yet).
    #[inline(always)]
    pub(crate) unsafe fn read(&self) -> pciem_event {
        #[cfg(not(loom))]
        {
            // SAFETY: the pointer comes from a live `UnsafeCell` and is
            // aligned; the caller guarantees no concurrent write from this
            // process. A write from another address space (a buggy or hostile
            // producer) can at worst tear the copy: the access is volatile so
            // the compiler reads the slot exactly once and never assumes its
            // contents stay put, and every bit pattern is a valid
            // `pciem_event`.
            unsafe { core::ptr::read_volatile(self.cell.get()) }
        }
        #[cfg(loom)]
        {
            // SAFETY: as above; loom additionally checks the caller's claim
            // that no write races with this read.
            self.cell.with(|p| unsafe { p.read() })
        }
    }

    /// Copies `event` into the slot.
    ///
    /// # Safety
    /// The caller owns the slot for writing: no read or write of it by this
    /// process may run concurrently (the protocol's acquire load of `head`
    /// showed the consumer is done with it and `tail` is not published yet).
    #[inline(always)]
    pub(crate) unsafe fn write(&self, event: &pciem_event) {
        #[cfg(not(loom))]
        {
            // SAFETY: the pointer comes from a live `UnsafeCell` and is
            // aligned; the caller guarantees exclusive access within this
            // process. Volatile because another address space may look at
            // the page: the compiler must perform the store as written.
            unsafe { core::ptr::write_volatile(self.cell.get(), *event) }
        }
        #[cfg(loom)]
        {
            // SAFETY: as above; loom additionally checks the caller's claim
            // of exclusive access.
            self.cell.with_mut(|p| unsafe { p.write(*event) })
        }
    }
}
