//! The read-response page: where the device process answers the kernel's
//! model-answered reads (see [`pciem_abi::trap`]).
//!
//! The instance file maps it at page offset
//! [`PCIEM_MMAP_READ_RESPONSES_PGOFF`]. A read with id `id` waits on slot
//! `id % PCIEM_READ_SLOTS`; the answer is its `value` stored first, then its
//! `id` with release ordering, so the kernel, which loads `id` with acquire
//! ordering and takes `value` once it matches, never sees a stale value.

use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};

use pciem_abi::{
    pciem_read_response, pciem_read_responses, PCIEM_MMAP_READ_RESPONSES_PGOFF, PCIEM_READ_SLOTS,
};
use pciem_core::ReadAnswer;

use crate::mapping::{page_size, Mapping};

/// The mapped read-response page.
#[derive(Debug)]
pub struct ReadResponses {
    map: Mapping,
}

impl ReadResponses {
    /// Maps the page from the instance file.
    pub fn map(instance: impl AsFd) -> nix::Result<Self> {
        let offset = PCIEM_MMAP_READ_RESPONSES_PGOFF * page_size();
        Self::map_at(instance, offset)
    }

    /// Maps the page at byte `offset` of `fd` (tests use a memfd).
    pub fn map_at(fd: impl AsFd, offset: u64) -> nix::Result<Self> {
        let map = Mapping::shared(fd, offset, core::mem::size_of::<pciem_read_responses>())?;
        Ok(Self { map })
    }

    /// Writes the answer into its slot: `value`, then `id` (release).
    pub fn answer(&self, a: ReadAnswer) {
        let slot = (a.id % PCIEM_READ_SLOTS as u64) as usize;
        let base = self
            .map
            .as_ptr()
            .wrapping_add(slot * core::mem::size_of::<pciem_read_response>());
        let id = base.wrapping_add(core::mem::offset_of!(pciem_read_response, id));
        let value = base.wrapping_add(core::mem::offset_of!(pciem_read_response, value));
        // SAFETY: the mapping is one page holding `PCIEM_READ_SLOTS` slots
        // and `slot < PCIEM_READ_SLOTS`, so both words lie inside it; the
        // page is page aligned and the fields are 8-byte aligned u64s, so
        // they are valid `AtomicU64`s for as long as the mapping lives
        // (`self`). The kernel only reads these words while we write them,
        // through atomic (or READ_ONCE) loads.
        let (id, value) = unsafe {
            (
                AtomicU64::from_ptr(id.cast::<u64>()),
                AtomicU64::from_ptr(value.cast::<u64>()),
            )
        };
        value.store(a.value, Ordering::Relaxed);
        id.store(a.id, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::memfd::{memfd_create, MFdFlags};

    #[test]
    fn answers_land_in_their_slot() {
        let fd = memfd_create(c"responses", MFdFlags::empty()).unwrap();
        nix::unistd::ftruncate(&fd, 4096).unwrap();
        let page = ReadResponses::map_at(&fd, 0).unwrap();
        let kernel = Mapping::shared(&fd, 0, 4096).unwrap();
        page.answer(ReadAnswer { id: 3, value: 0xAB });
        page.answer(ReadAnswer {
            id: 64 + 5,
            value: 0xCD,
        });
        // SAFETY: the mapping is a live, page-aligned page of slots; read
        // once after the writes above, on this thread.
        let slots = unsafe { &*kernel.as_ptr().cast::<pciem_read_responses>() };
        assert_eq!((slots.slots[3].id, slots.slots[3].value), (3, 0xAB));
        assert_eq!((slots.slots[5].id, slots.slots[5].value), (69, 0xCD));
        assert_eq!(slots.slots[4], pciem_read_response::default());
    }
}
