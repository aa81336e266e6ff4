//! An event ring on the heap, for the mock backend, tests and benchmarks.

use core::ptr::NonNull;
use std::sync::Arc;

use pciem_abi::{pciem_event, PCIEM_RING_SIZE};

use super::consumer::Consumer;
use super::producer::{Producer, RingFull};
use super::shared::{RingMem, SharedRing};

/// Alignment of a heap ring: two 64-byte lines, so `head`, `tail` and the
/// slots each start on their own adjacent-line-prefetch pair.
pub const HEAP_RING_ALIGN: usize = 128;

/// Ring memory owned by this process: a zeroed, 128-byte aligned
/// allocation with [`pciem_shared_ring`](pciem_abi::pciem_shared_ring)'s
/// layout (for the default `N`). Shared by the halves of a
/// [`channel`] through an `Arc`.
pub struct HeapRing<const N: usize = PCIEM_RING_SIZE> {
    mem: NonNull<RingMem<N>>,
}

// SAFETY: `HeapRing` only owns the allocation; all access to its contents
// goes through `SharedRing` views under the ring protocol (atomics for the
// shared words, slot ownership for the events), which works from any thread.
unsafe impl<const N: usize> Send for HeapRing<N> {}
// SAFETY: `&HeapRing` offers only the pointer and atomic reads, see `Send`.
unsafe impl<const N: usize> Sync for HeapRing<N> {}

impl<const N: usize> HeapRing<N> {
    #[cfg(not(loom))]
    fn layout() -> std::alloc::Layout {
        match std::alloc::Layout::from_size_align(
            core::mem::size_of::<RingMem<N>>(),
            HEAP_RING_ALIGN.max(core::mem::align_of::<RingMem<N>>()),
        ) {
            Ok(layout) => layout,
            // Unreachable for the ring sizes `mask::<N>()` admits (a few MiB
            // at most per event slot count), but report rather than assume.
            Err(_) => panic!("event ring of {N} slots is too large to allocate"),
        }
    }

    /// A fresh, empty ring.
    pub fn new() -> Self {
        #[cfg(not(loom))]
        {
            let layout = Self::layout();
            // SAFETY: the layout has non-zero size (the header alone is 256
            // bytes).
            let raw = unsafe { std::alloc::alloc_zeroed(layout) };
            let Some(mem) = NonNull::new(raw.cast::<RingMem<N>>()) else {
                std::alloc::handle_alloc_error(layout)
            };
            // All-zero bytes are a valid `RingMem`: zero atomics, zero
            // padding, zeroed `pciem_event`s, i.e. an empty ring.
            Self { mem }
        }
        #[cfg(loom)]
        {
            let boxed = std::boxed::Box::new(RingMem::<N>::new());
            Self {
                mem: NonNull::from(std::boxed::Box::leak(boxed)),
            }
        }
    }

    /// A view of this ring.
    ///
    /// # Safety
    /// The view must not outlive `self`, and the single-producer /
    /// single-consumer rule of [`SharedRing::from_raw`] holds for it.
    pub(crate) unsafe fn view(&self) -> SharedRing<N> {
        // SAFETY: the memory is valid and aligned while `self` lives; the
        // rest is the caller's promise.
        unsafe { SharedRing::from_mem(self.mem) }
    }

    /// Events the producer has dropped so far.
    pub fn overflow(&self) -> u64 {
        // SAFETY: a view used only for an atomic load, dropped before `self`.
        unsafe { self.view() }.overflow()
    }
}

impl HeapRing<PCIEM_RING_SIZE> {
    /// The ring memory, laid out as `pciem_shared_ring`, for code that works
    /// on raw ring pointers (benchmarks of the kernel-style producer path,
    /// the mock backend's "mapped" ring). Valid while this `HeapRing` lives;
    /// whoever uses it must keep to the ring protocol and to the
    /// single-producer/single-consumer rule (see [`SharedRing::from_raw`]).
    #[cfg(not(loom))]
    pub fn as_ptr(&self) -> *mut pciem_abi::pciem_shared_ring {
        self.mem.as_ptr().cast()
    }
}

impl<const N: usize> Default for HeapRing<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Drop for HeapRing<N> {
    fn drop(&mut self) {
        #[cfg(not(loom))]
        // SAFETY: allocated in `new` with this very layout, and `&mut self`
        // means no view is left (views are only handed out with a borrow of,
        // or an `Arc` to, this ring).
        unsafe {
            std::alloc::dealloc(self.mem.as_ptr().cast(), Self::layout())
        };
        #[cfg(loom)]
        // SAFETY: leaked from a `Box` in `new`; no view is left (see above).
        drop(unsafe { std::boxed::Box::from_raw(self.mem.as_ptr()) });
    }
}

impl<const N: usize> core::fmt::Debug for HeapRing<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HeapRing")
            .field("mem", &self.mem)
            .field("slots", &N)
            .finish()
    }
}

/// The producer half of a [`channel`]: a [`Producer`] bound to its ring.
#[derive(Debug)]
pub struct HeapProducer<const N: usize = PCIEM_RING_SIZE> {
    // Declared before `ring` so the view is gone before the memory could be.
    view: SharedRing<N>,
    state: Producer,
    ring: Arc<HeapRing<N>>,
}

impl<const N: usize> HeapProducer<N> {
    /// See [`Producer::push`]: publishes `event` or, if the ring is full,
    /// counts it as overflow.
    #[inline]
    pub fn push(&mut self, event: &pciem_event) -> Result<u64, RingFull> {
        self.state.push(&self.view, event)
    }

    /// See [`Producer::try_push`]: publishes `event` if there is room,
    /// otherwise changes nothing.
    #[inline]
    pub fn try_push(&mut self, event: &pciem_event) -> Option<u64> {
        self.state.try_push(&self.view, event)
    }

    /// See [`Producer::try_push_batch`].
    pub fn try_push_batch(&mut self, events: &[pciem_event]) -> usize {
        self.state.try_push_batch(&self.view, events)
    }

    /// See [`SharedRing::consumer_needs_signal`].
    pub fn consumer_needs_signal(&self) -> bool {
        self.view.consumer_needs_signal()
    }

    /// The producer's state (next sequence number, overflow count).
    pub fn state(&self) -> &Producer {
        &self.state
    }

    /// The ring memory, shared with the consumer half.
    pub fn ring(&self) -> &Arc<HeapRing<N>> {
        &self.ring
    }
}

/// The consumer half of a [`channel`]: a [`Consumer`] that keeps its ring
/// alive.
#[derive(Debug)]
pub struct HeapConsumer<const N: usize = PCIEM_RING_SIZE> {
    // Declared before `ring` so the view is gone before the memory could be.
    consumer: Consumer<N>,
    ring: Arc<HeapRing<N>>,
}

impl<const N: usize> HeapConsumer<N> {
    /// The ring memory, shared with the producer half.
    pub fn ring(&self) -> &Arc<HeapRing<N>> {
        &self.ring
    }
}

impl<const N: usize> core::ops::Deref for HeapConsumer<N> {
    type Target = Consumer<N>;

    fn deref(&self) -> &Consumer<N> {
        &self.consumer
    }
}

impl<const N: usize> core::ops::DerefMut for HeapConsumer<N> {
    fn deref_mut(&mut self) -> &mut Consumer<N> {
        &mut self.consumer
    }
}

/// A new heap ring of [`PCIEM_RING_SIZE`] slots, split into its producer
/// and consumer halves (both `Send`; move one to another thread).
pub fn channel() -> (HeapProducer, HeapConsumer) {
    channel_sized::<PCIEM_RING_SIZE>()
}

/// Like [`channel`] with `N` slots (a power of two, at least 2); used by
/// loom models and tests that need a ring that fills quickly.
pub fn channel_sized<const N: usize>() -> (HeapProducer<N>, HeapConsumer<N>) {
    let ring = Arc::new(HeapRing::<N>::new());
    // SAFETY: each view is stored next to an `Arc` of the ring, which keeps
    // the memory alive for as long as the view (fields drop in order, view
    // first); exactly one view serves the producer and one the consumer.
    let (producer_view, consumer_view) = unsafe { (ring.view(), ring.view()) };
    (
        HeapProducer {
            view: producer_view,
            state: Producer::new(),
            ring: Arc::clone(&ring),
        },
        HeapConsumer {
            consumer: Consumer::new(consumer_view),
            ring,
        },
    )
}
