//! RAII shared mappings of the control file (event ring) and the instance
//! file (BARs).

use std::num::NonZeroUsize;
use std::os::fd::AsFd;
use std::ptr::NonNull;

use nix::errno::Errno;
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

/// A `MAP_SHARED`, read-write mapping, unmapped on drop.
///
/// The memory is shared with the kernel and a driver, so this type hands
/// out only a raw pointer; its users access it with volatile or atomic
/// operations.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: NonZeroUsize,
}

// SAFETY: the mapping is plain shared memory owned by this value; every
// access through the pointer is volatile or atomic, so using it from another
// thread is no different from the kernel or a driver touching it.
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` only exposes the pointer and the length.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` at byte `offset` (a multiple of the page
    /// size).
    pub fn shared(fd: impl AsFd, offset: u64, len: usize) -> nix::Result<Self> {
        let len = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
        let offset = libc::off_t::try_from(offset).map_err(|_| Errno::EOVERFLOW)?;
        // SAFETY: a fresh mapping placed by the kernel (no address hint), so
        // no existing memory of this process is affected.
        let p = unsafe {
            mmap(
                None,
                len,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                fd,
                offset,
            )
        }?;
        Ok(Self { ptr: p.cast(), len })
    }

    /// First byte of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len.get()
    }

    /// Never true: a mapping has at least one byte (kept for clippy's
    /// `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the range mapped in `shared`; the pointer
        // is not used after this.
        let _ = unsafe { munmap(self.ptr.cast(), self.len.get()) };
    }
}

/// The system page size.
pub fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |p| p as u64)
}
