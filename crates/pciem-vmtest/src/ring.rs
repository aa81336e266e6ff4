//! The consumer side of the event ring, minimal and self-contained so the
//! scenarios test the kernel against the ABI text, not against pciem-core.
//!
//! It follows the version-2 protocol (take slot `pos % N` when its ticket is
//! `pos + 1`) and checks the kernel's `tail` against the tickets as it goes:
//! a `tail` past a slot whose ticket is not out is a kernel bug, and panics
//! the scenario with a message saying so. (A `tail` one slot behind is
//! fine: the kernel stores it just after the ticket.)

use std::cell::Cell;
use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pciem_abi::{pciem_event, pciem_shared_ring, PCIEM_RING_SIZE};

/// A mapping of the shared ring of one `/dev/pciem` file.
#[derive(Debug)]
pub struct Ring {
    ring: NonNull<pciem_shared_ring>,
    len: usize,
    /// Events taken so far through this mapping (and by earlier consumers).
    pos: Cell<u64>,
}

impl Ring {
    pub(crate) fn map(fd: RawFd) -> io::Result<Self> {
        let len = core::mem::size_of::<pciem_shared_ring>();
        // SAFETY: a fresh shared mapping chosen by the kernel.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ring = NonNull::new(p.cast()).ok_or_else(|| io::Error::other("mmap gave NULL"))?;
        let this = Self {
            ring,
            len,
            pos: Cell::new(0),
        };
        // Resume after an earlier consumer: the slot before `head` carries
        // the ticket of the last event taken, which is the position itself.
        let head = this.head().load(Ordering::Relaxed) as usize % PCIEM_RING_SIZE;
        let last = this
            .ticket((head + PCIEM_RING_SIZE - 1) % PCIEM_RING_SIZE)
            .load(Ordering::Acquire);
        let resumed = last != 0 && last as usize % PCIEM_RING_SIZE == head;
        this.pos.set(if resumed { last } else { head as u64 });
        Ok(this)
    }

    fn head(&self) -> &AtomicU32 {
        // SAFETY: `head` is an aligned u32 inside the live mapping; the
        // kernel accesses it only atomically too.
        unsafe { AtomicU32::from_ptr(core::ptr::addr_of_mut!((*self.ring.as_ptr()).head)) }
    }

    fn tail(&self) -> &AtomicU32 {
        // SAFETY: as for `head`.
        unsafe { AtomicU32::from_ptr(core::ptr::addr_of_mut!((*self.ring.as_ptr()).tail)) }
    }

    fn ticket(&self, index: usize) -> &AtomicU64 {
        let index = index % PCIEM_RING_SIZE;
        // SAFETY: `index` is in bounds; the ticket is an aligned u64 inside
        // the live mapping, which the kernel stores atomically.
        unsafe {
            AtomicU64::from_ptr(core::ptr::addr_of_mut!(
                (*self.ring.as_ptr()).events[index].ticket
            ))
        }
    }

    /// The producer's overflow counter.
    pub fn overflow(&self) -> u64 {
        // SAFETY: `overflow` is an aligned u64 inside the live mapping.
        unsafe { AtomicU64::from_ptr(core::ptr::addr_of_mut!((*self.ring.as_ptr()).overflow)) }
            .load(Ordering::Acquire)
    }

    /// Takes the next event, if any.
    ///
    /// # Panics
    /// If the kernel's `tail` says the slot is published but its ticket is
    /// not out: the kernel broke the ring protocol.
    pub fn pop(&self) -> Option<pciem_event> {
        let pos = self.pos.get();
        let index = pos as usize % PCIEM_RING_SIZE;
        // `tail` first: the kernel stores it after the ticket (both
        // release, under its ring lock), so a `tail` past `index` means the
        // ticket load below must see the slot published. `tail` may lag
        // the tickets by one slot (we can take a slot between the kernel's
        // two stores), which reads as `index - 1`.
        let tail = self.tail().load(Ordering::Acquire) as usize % PCIEM_RING_SIZE;
        let ticket = self.ticket(index).load(Ordering::Acquire);
        if ticket != pos + 1 {
            let ahead = (tail + PCIEM_RING_SIZE - index) % PCIEM_RING_SIZE;
            assert!(
                ahead == 0 || ahead == PCIEM_RING_SIZE - 1,
                "ring protocol broken: tail {tail} is past slot {index}, whose ticket is \
                 {ticket}, not {}",
                pos + 1
            );
            return None;
        }
        // SAFETY: `index` is in bounds, and the slot was published by the
        // producer's release store of its ticket, which we acquired above.
        let ev =
            unsafe { core::ptr::addr_of!((*self.ring.as_ptr()).events[index]).read_volatile() };
        self.pos.set(pos + 1);
        self.head()
            .store(((index + 1) % PCIEM_RING_SIZE) as u32, Ordering::Release);
        Some(ev)
    }

    /// Pops events until `want` accepts one or `timeout` passes; returns
    /// the accepted event and every event seen.
    pub fn wait_for(
        &self,
        timeout: Duration,
        mut want: impl FnMut(&pciem_event) -> bool,
    ) -> (Option<pciem_event>, Vec<pciem_event>) {
        let start = Instant::now();
        let mut seen = Vec::new();
        while start.elapsed() < timeout {
            match self.pop() {
                Some(ev) => {
                    seen.push(ev);
                    if want(&ev) {
                        return (Some(ev), seen);
                    }
                }
                None => std::thread::sleep(Duration::from_millis(2)),
            }
        }
        (None, seen)
    }

    /// Discards every queued event.
    pub fn drain(&self) -> usize {
        let mut n = 0;
        while self.pop().is_some() {
            n += 1;
        }
        n
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`.
        unsafe { libc::munmap(self.ring.as_ptr().cast(), self.len) };
    }
}
