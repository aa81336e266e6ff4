//! The event ring mapped from the control file, consumed with pciem-core's
//! [`Consumer`], with lost events counted from sequence-number gaps.

use std::os::fd::AsFd;
use std::ptr::NonNull;

use pciem_abi::{pciem_event, pciem_shared_ring};
use pciem_core::ring::{Consumer, SharedRing};

use crate::mapping::Mapping;

/// The consumer side of one device's event ring.
#[derive(Debug)]
pub struct EventRing {
    // Declared before `_map` so it is dropped first: the consumer's view
    // points into the mapping.
    consumer: Consumer,
    _map: Mapping,
    next_seq: Option<u64>,
    lost: u64,
}

/// What one [`EventRing::pop_batch`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// Events copied out.
    pub events: usize,
    /// Events the producer dropped before these (sequence-number gaps).
    pub lost: u64,
}

impl EventRing {
    /// Maps the ring at offset 0 of `control` (a `/dev/pciem` file).
    pub fn map(control: impl AsFd) -> nix::Result<Self> {
        let map = Mapping::shared(control, 0, core::mem::size_of::<pciem_shared_ring>())?;
        // mmap never returns null; the check only avoids an unwrap.
        let ptr = NonNull::new(map.as_ptr().cast::<pciem_shared_ring>())
            .ok_or(nix::errno::Errno::EFAULT)?;
        // SAFETY: the mapping is page aligned, exactly one
        // `pciem_shared_ring` long and lives as long as `self` (the consumer
        // is dropped first); in this process only this consumer touches it,
        // the kernel is the one producer and started the ring empty.
        let view = unsafe { SharedRing::from_raw(ptr) };
        Ok(Self::from_parts(Consumer::new(view), map))
    }

    fn from_parts(consumer: Consumer, map: Mapping) -> Self {
        Self {
            consumer,
            _map: map,
            next_seq: None,
            lost: 0,
        }
    }

    /// Takes up to `out.len()` events in one batch and reports sequence gaps.
    pub fn pop_batch(&mut self, out: &mut [pciem_event]) -> Batch {
        let n = self.consumer.pop_batch(out);
        let mut lost = 0;
        for ev in &out[..n] {
            lost += gap(&mut self.next_seq, ev.seq);
        }
        self.lost += lost;
        Batch { events: n, lost }
    }

    /// Tells the kernel the loop is draining: no eventfd signal per event
    /// (see [`Consumer::set_awake`]).
    pub fn set_awake(&self) {
        self.consumer.set_awake();
    }

    /// Tells the kernel the loop is about to sleep and looks once more:
    /// `true` if the ring is empty (see [`Consumer::prepare_to_sleep`]).
    pub fn prepare_to_sleep(&self) -> bool {
        self.consumer.prepare_to_sleep()
    }

    /// Events lost so far, from sequence gaps seen by this consumer.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// The producer's overflow counter (events it could not publish).
    pub fn overflow(&self) -> u64 {
        self.consumer.overflow()
    }
}

/// Events skipped between the expected sequence number and `seq`; advances
/// the expectation. A sequence number going backwards (a scribbled ring)
/// counts no loss and resynchronises.
fn gap(next: &mut Option<u64>, seq: u64) -> u64 {
    let lost = match *next {
        Some(want) if seq > want => seq - want,
        _ => 0,
    };
    *next = Some(seq.wrapping_add(1));
    lost
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_count_lost_events() {
        let mut next = None;
        assert_eq!(gap(&mut next, 5), 0, "the first event sets the baseline");
        assert_eq!(gap(&mut next, 6), 0);
        assert_eq!(gap(&mut next, 10), 3);
        assert_eq!(gap(&mut next, 2), 0, "backwards resynchronises");
        assert_eq!(gap(&mut next, 3), 0);
    }

    /// A producer on a second mapping of the same file overflows the ring;
    /// the consumer reports exactly the events it never saw.
    #[test]
    fn overflow_is_reported_across_mappings() {
        use nix::sys::memfd::{memfd_create, MFdFlags};
        use pciem_core::ring::{Producer, RING_CAPACITY};

        let size = core::mem::size_of::<pciem_shared_ring>();
        let fd = memfd_create(c"ring", MFdFlags::empty()).unwrap();
        nix::unistd::ftruncate(&fd, size as i64).unwrap();
        let mut ring = EventRing::map(&fd).unwrap();
        let producer_map = Mapping::shared(&fd, 0, size).unwrap();
        // SAFETY: the mapping outlives the view; one producer, one consumer,
        // fresh (zeroed) memory.
        let view =
            unsafe { SharedRing::from_raw(NonNull::new(producer_map.as_ptr().cast()).unwrap()) };
        let mut producer = Producer::new();
        for _ in 0..RING_CAPACITY + 3 {
            let _ = producer.push(&view, &pciem_event::default());
        }
        assert_eq!(ring.overflow(), 3);
        let mut out = vec![pciem_event::default(); 100];
        let mut seen = 0;
        loop {
            let b = ring.pop_batch(&mut out);
            assert_eq!(b.lost, 0, "nothing is missing before the first loss");
            if b.events == 0 {
                break;
            }
            seen += b.events;
        }
        assert_eq!(seen, RING_CAPACITY);
        producer.push(&view, &pciem_event::default()).unwrap();
        let b = ring.pop_batch(&mut out);
        assert_eq!((b.events, b.lost), (1, 3));
        assert_eq!(ring.lost(), 3);
    }
}
