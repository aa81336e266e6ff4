//! The simulated bus-address space: buffers the driver allocated, at bus
//! addresses that are not host pointers, separated by unmapped guard gaps
//! so that an access running off a buffer fails like an IOMMU fault.

use std::collections::BTreeMap;

use pciem_abi::PCIEM_DMA_MAX_LEN;
use pciem_core::HostError;

/// First bus address handed out (above 4 GiB, so 32-bit truncation bugs in
/// a model show up).
pub(crate) const DMA_BASE: u64 = 0x1_0000_0000;
/// Allocation granule and guard gap.
const PAGE: u64 = 4096;

#[derive(Debug, Default)]
pub(crate) struct DmaSpace {
    buffers: BTreeMap<u64, Vec<u8>>,
    next: u64,
}

/// Check a transfer's length against the kernel's limits.
pub(crate) fn check_len(len: usize) -> Result<(), HostError> {
    if len == 0 {
        return Err(HostError::Empty);
    }
    if len as u64 > PCIEM_DMA_MAX_LEN {
        return Err(HostError::TooLong {
            len: len as u64,
            max: PCIEM_DMA_MAX_LEN,
        });
    }
    Ok(())
}

impl DmaSpace {
    pub(crate) fn alloc(&mut self, len: usize) -> Result<u64, HostError> {
        check_len(len)?;
        let base = self.next.max(DMA_BASE);
        let pages = (len as u64).div_ceil(PAGE);
        self.next = base + (pages + 1) * PAGE;
        self.buffers.insert(base, vec![0; len]);
        Ok(base)
    }

    pub(crate) fn free(&mut self, addr: u64) -> bool {
        self.buffers.remove(&addr).is_some()
    }

    /// The bytes of `addr..addr + len`, which must lie inside one buffer.
    pub(crate) fn slice(&mut self, addr: u64, len: usize) -> Result<&mut [u8], HostError> {
        let unmapped = HostError::Unmapped {
            addr,
            len: len as u64,
        };
        let (&base, buf) = self
            .buffers
            .range_mut(..=addr)
            .next_back()
            .ok_or(unmapped)?;
        let start = (addr - base) as usize;
        buf.get_mut(start..start.checked_add(len).ok_or(unmapped)?)
            .ok_or(unmapped)
    }
}
