//! [`SharedRing`]: a view of ring memory that the producer and consumer
//! operate on.

use core::ptr::{addr_of, NonNull};

#[cfg(not(loom))]
use pciem_abi::pciem_shared_ring;
use pciem_abi::PCIEM_RING_SIZE;

use super::sync::{AtomicU32, AtomicU64, Slot};

/// The shared ring as the protocol sees it: [`pciem_shared_ring`]'s layout
/// with the indices and counter as atomics and the slots as cells, generic
/// over the number of slots so that loom can check a tiny ring.
///
/// For `N == PCIEM_RING_SIZE` (outside loom) size and offsets equal
/// `pciem_shared_ring`'s; the assertions below pin that.
///
/// [`pciem_shared_ring`]: pciem_abi::pciem_shared_ring
#[repr(C)]
pub(crate) struct RingMem<const N: usize> {
    pub(crate) head: AtomicU32,
    pub(crate) consumer_state: AtomicU32,
    _reserved0: [u8; 120],
    pub(crate) tail: AtomicU32,
    _reserved1: u32,
    pub(crate) overflow: AtomicU64,
    _reserved2: [u8; 112],
    pub(crate) events: [Slot; N],
}

#[cfg(not(loom))]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    type Abi = pciem_shared_ring;
    type Mem = RingMem<PCIEM_RING_SIZE>;
    assert!(size_of::<Mem>() == size_of::<Abi>());
    assert!(align_of::<Mem>() <= align_of::<Abi>());
    assert!(offset_of!(Mem, head) == offset_of!(Abi, head));
    assert!(offset_of!(Mem, consumer_state) == offset_of!(Abi, consumer_state));
    assert!(offset_of!(Mem, tail) == offset_of!(Abi, tail));
    assert!(offset_of!(Mem, overflow) == offset_of!(Abi, overflow));
    assert!(offset_of!(Mem, events) == offset_of!(Abi, events));
    assert!(size_of::<Slot>() == size_of::<pciem_abi::pciem_event>());
};

#[cfg(all(loom, feature = "std"))]
impl<const N: usize> RingMem<N> {
    /// A fresh, empty ring (loom's atomics must be created inside a model).
    pub(crate) fn new() -> Self {
        Self {
            head: AtomicU32::new(0),
            consumer_state: AtomicU32::new(0),
            _reserved0: [0; 120],
            tail: AtomicU32::new(0),
            _reserved1: 0,
            overflow: AtomicU64::new(0),
            _reserved2: [0; 112],
            events: core::array::from_fn(|_| Slot::new()),
        }
    }
}

/// Index mask of a ring of `N` slots, with the compile-time check that `N`
/// is a power of two the `u32` indices can address.
#[inline(always)]
pub(crate) const fn mask<const N: usize>() -> u32 {
    const {
        assert!(N.is_power_of_two() && N >= 2 && N <= 1 << 31);
    }
    (N - 1) as u32
}

/// A view of one event ring in memory: the shared header (`head`, `tail`,
/// `overflow`) and the ticketed slots, over memory that may be shared with another
/// process or the kernel.
///
/// The view does no protocol work itself; a [`Producer`](super::Producer)
/// pushes through it and a [`Consumer`](super::Consumer) owns one. It is
/// `Send` but neither `Sync` nor `Clone`: within this process one view serves
/// one side, so safe code cannot make two threads write the same slot.
///
/// `N` is the number of slots; everything but loom's tiny models uses the
/// default, [`PCIEM_RING_SIZE`], the size of
/// [`pciem_shared_ring`](pciem_abi::pciem_shared_ring).
pub struct SharedRing<const N: usize = PCIEM_RING_SIZE> {
    mem: NonNull<RingMem<N>>,
}

// SAFETY: the view is a pointer to memory whose shared words are accessed
// only atomically and whose slots are accessed under the ring protocol; the
// `from_raw` contract makes the memory valid for as long as the view is used,
// from whichever thread. It is not `Sync`, so moving it is the only way to
// use it from another thread.
unsafe impl<const N: usize> Send for SharedRing<N> {}

impl SharedRing<PCIEM_RING_SIZE> {
    /// Views the ring at `ring`.
    ///
    /// The memory is typically the kernel's ring page mapped into this
    /// process, or a `HeapRing` (`std` feature). Its contents are not
    /// trusted: whatever the other side scribbles on the indices, this view
    /// never reads or writes outside the ring (indices are masked) and never
    /// panics; a misbehaving peer can only garble events.
    ///
    /// Not available under `cfg(loom)`, where ring memory must be loom's
    /// (use `channel_sized`).
    ///
    /// # Safety
    /// - `ring` is aligned for `pciem_shared_ring` (8 bytes; 128 or a page is
    ///   better, so that `head` and `tail` sit on their own cache lines) and
    ///   valid for reads and writes of `size_of::<pciem_shared_ring>()` bytes
    ///   for as long as the view, or a consumer built from it, is used.
    /// - Within this process, the memory is accessed only through
    ///   `SharedRing` views, and at any time at most one producer pushes
    ///   into it and at most one consumer pops from it. Another process or
    ///   the kernel may access it concurrently in any way.
    /// - The producer side starts at position 0 ([`Producer::new`]); the
    ///   memory was zeroed (every ticket 0, `head == tail == 0`) before the
    ///   first push.
    ///
    /// [`Producer::new`]: super::Producer::new
    #[cfg(not(loom))]
    #[inline]
    pub unsafe fn from_raw(ring: NonNull<pciem_shared_ring>) -> Self {
        // `RingMem<PCIEM_RING_SIZE>` has `pciem_shared_ring`'s layout (checked
        // at compile time above), so the cast describes the same bytes.
        Self { mem: ring.cast() }
    }
}

impl<const N: usize> SharedRing<N> {
    /// Number of events the ring holds at most (one slot stays empty to tell
    /// a full ring from an empty one).
    pub const CAPACITY: usize = N - 1;

    /// Views ring memory owned elsewhere in this crate (`HeapRing`).
    ///
    /// # Safety
    /// As for [`from_raw`](SharedRing::from_raw).
    #[cfg(feature = "std")]
    #[inline]
    pub(crate) unsafe fn from_mem(mem: NonNull<RingMem<N>>) -> Self {
        Self { mem }
    }

    /// The shared consumer index (untrusted by the producer).
    #[inline(always)]
    pub(crate) fn head(&self) -> &AtomicU32 {
        // SAFETY: `mem` is valid for the view's life (constructor contract);
        // the projection stays inside the allocation and an atomic may be
        // referenced while others access it atomically.
        unsafe { &*addr_of!((*self.mem.as_ptr()).head) }
    }

    /// The shared producer index (untrusted by the consumer; only
    /// `Consumer::len` reads it).
    #[inline(always)]
    pub(crate) fn tail(&self) -> &AtomicU32 {
        // SAFETY: as in `head`.
        unsafe { &*addr_of!((*self.mem.as_ptr()).tail) }
    }

    /// The consumer's `consumer_state` word.
    #[inline(always)]
    pub(crate) fn consumer_state(&self) -> &AtomicU32 {
        // SAFETY: as in `head`.
        unsafe { &*addr_of!((*self.mem.as_ptr()).consumer_state) }
    }

    /// The shared overflow counter.
    #[inline(always)]
    pub(crate) fn overflow_counter(&self) -> &AtomicU64 {
        // SAFETY: as in `head`.
        unsafe { &*addr_of!((*self.mem.as_ptr()).overflow) }
    }

    /// Slot `index & mask`: never out of bounds, whatever `index` is.
    #[inline(always)]
    pub(crate) fn slot(&self, index: u32) -> &Slot {
        let i = (index & mask::<N>()) as usize;
        // SAFETY: `i < N` after masking, so the pointer stays inside the
        // `events` array of the valid ring memory; `Slot` is a cell, so a
        // shared reference to it does not assert immutability.
        unsafe { &*addr_of!((*self.mem.as_ptr()).events).cast::<Slot>().add(i) }
    }

    /// Events lost to a full ring so far, as the producer last published it.
    #[inline]
    pub fn overflow(&self) -> u64 {
        self.overflow_counter().load(super::sync::Ordering::Acquire)
    }

    /// For the producer, after it published: whether the consumer needs
    /// the eventfd signalled. It does unless it said it is draining
    /// (`PCIEM_RING_CONSUMER_AWAKE`, see
    /// [`Consumer::set_awake`](super::Consumer::set_awake)). The full fence
    /// orders the publication before the load, pairing with the fence in
    /// [`Consumer::prepare_to_sleep`](super::Consumer::prepare_to_sleep):
    /// either the consumer's last look sees the event, or this sees it
    /// going to sleep.
    pub fn consumer_needs_signal(&self) -> bool {
        super::sync::fence(super::sync::Ordering::SeqCst);
        self.consumer_state().load(super::sync::Ordering::Relaxed)
            != pciem_abi::PCIEM_RING_CONSUMER_AWAKE
    }
}

impl<const N: usize> core::fmt::Debug for SharedRing<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SharedRing")
            .field("mem", &self.mem)
            .field("slots", &N)
            .finish()
    }
}
