//! DMA, atomics, PRP-list DMA and peer-to-peer transfers issued by the device
//! process.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Argument of `PCIEM_IOCTL_DMA_READ` (host memory at `bus_addr` into the
/// user buffer) and `PCIEM_IOCTL_DMA_WRITE` (user buffer into host memory).
///
/// Errors (each with a reason in the kernel log): `EINVAL` for a zero or
/// over-limit length, a range that wraps around, or non-zero
/// `flags`/`reserved`; `ENXIO` for a bus address that does not reach RAM
/// (or is not mapped in the device's IOMMU domain, or, for DMA_WRITE, reaches
/// reserved memory); `EFAULT` for an inaccessible user buffer; `ENODEV`
/// before REGISTER; `EPERM` while the driver has not set Bus Master Enable;
/// `EINTR` when a fatal signal ends a long transfer.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_dma_op {
    /// Bus address (IOVA when the device sits behind an IOMMU).
    pub bus_addr: u64,
    /// Address of the user buffer.
    pub user_addr: u64,
    /// Bytes to transfer, 1..=`PCIEM_DMA_MAX_LEN`.
    pub length: u64,
    /// No flags are defined yet; must be zero.
    pub flags: u32,
    /// Must be zero.
    pub reserved: u32,
}

/// Atomic fetch-and-add; `result` is the old value.
pub const PCIEM_ATOMIC_FETCH_ADD: u32 = 1;
/// Atomic fetch-and-subtract.
pub const PCIEM_ATOMIC_FETCH_SUB: u32 = 2;
/// Atomic exchange.
pub const PCIEM_ATOMIC_SWAP: u32 = 3;
/// Atomic compare-and-swap: store `operand` if the value equals `compare`.
pub const PCIEM_ATOMIC_CAS: u32 = 4;
/// Atomic fetch-and-AND.
pub const PCIEM_ATOMIC_FETCH_AND: u32 = 5;
/// Atomic fetch-and-OR.
pub const PCIEM_ATOMIC_FETCH_OR: u32 = 6;
/// Atomic fetch-and-XOR.
pub const PCIEM_ATOMIC_FETCH_XOR: u32 = 7;

/// Argument of `PCIEM_IOCTL_DMA_ATOMIC`: one 8-byte atomic operation on an
/// 8-byte aligned bus address.
///
/// Errors: `EINVAL` for an address that is not 8-byte aligned, an unknown
/// `op` or non-zero `flags` (memory is not touched); otherwise as for
/// [`pciem_dma_op`].
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_dma_atomic {
    /// Bus address, 8-byte aligned.
    pub bus_addr: u64,
    /// Operand (the new value for SWAP and CAS).
    pub operand: u64,
    /// Expected value, CAS only.
    pub compare: u64,
    /// Out: the value before the operation.
    pub result: u64,
    /// One of `PCIEM_ATOMIC_*`.
    pub op: u32,
    /// Must be zero.
    pub flags: u32,
}

/// PRP DMA direction: device writes the user buffer into host memory.
/// Without it the device reads host memory into the user buffer.
pub const PCIEM_PRP_FLAG_WRITE: u32 = 0x1;

/// Most PRP list entries followed in one transfer (chained lists included).
pub const PCIEM_PRP_MAX_ENTRIES: u32 = 4096;

/// Argument of `PCIEM_IOCTL_DMA_INDIRECT`: NVMe-style scatter DMA described
/// by PRP1/PRP2, where PRP2 is either the second page or a pointer to a PRP
/// list whose last entry chains to the next list page.
///
/// Errors: `EINVAL` for misaligned entries, a bad length or page size, or
/// unknown flags; `ELOOP` for a list chain that loops; `E2BIG` for a chain
/// longer than any valid transfer needs; otherwise as for [`pciem_dma_op`].
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_dma_indirect {
    /// First data pointer (may have a page offset).
    pub prp1: u64,
    /// Second page, or PRP list pointer.
    pub prp2: u64,
    /// Address of the user buffer.
    pub user_addr: u64,
    /// Bytes to transfer, 1..=`PCIEM_DMA_MAX_LEN`.
    pub length: u64,
    /// Memory page size of the PRPs: a power of two from 4096; 0 means 4096.
    pub page_size: u32,
    /// `PCIEM_PRP_FLAG_*`.
    pub flags: u32,
}

/// Argument of `PCIEM_IOCTL_P2P_READ` / `PCIEM_IOCTL_P2P_WRITE`: a transfer
/// to or from a peer's BAR, allowed only inside the module's `p2p_regions`.
///
/// Errors: `EACCES` for a transfer not wholly inside one whitelisted region
/// (also when none is configured); `EINVAL` for a malformed request;
/// `EFAULT` for an inaccessible user buffer; `ENODEV` before REGISTER;
/// `EPERM` while bus mastering is disabled.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_p2p_op {
    /// Physical address in the peer's BAR.
    pub target_addr: u64,
    /// Address of the user buffer.
    pub user_addr: u64,
    /// Bytes to transfer, 1..=`PCIEM_DMA_MAX_LEN`.
    pub length: u64,
    /// No flags are defined yet; must be zero.
    pub flags: u32,
    /// Must be zero.
    pub reserved: u32,
}
