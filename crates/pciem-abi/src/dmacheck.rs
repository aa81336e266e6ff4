//! DMA checking: the module knows every DMA mapping the device's driver
//! makes (it gives each PCIem device its own DMA operations) and checks
//! every DMA the model performs against them, like an IOMMU would.
//!
//! The mode is chosen per device before REGISTER with
//! `PCIEM_IOCTL_SET_DMA_CHECK` ([`pciem_dma_check_mode`]), or left to the
//! module parameter `dma_check=` (default `enforce`):
//! - [`PCIEM_DMA_CHECK_OFF`]: the device uses the kernel's direct DMA
//!   mapping, nothing is recorded and nothing is checked;
//! - [`PCIEM_DMA_CHECK_REPORT`]: a violating access is reported and then
//!   carried out;
//! - [`PCIEM_DMA_CHECK_ENFORCE`]: a violating access is reported and fails
//!   with `EFAULT` before any byte moves.
//!
//! A report is a `PCIEM_EVENT_DMA_FAULT` event to the model (fields below),
//! a kernel-log line naming the driver's call site, and a counter in the
//! device's sysfs file `pciem_dma_check`.
//!
//! Peer-to-peer transfers are not checked (they reach BARs, which no DMA
//! mapping describes).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// DMA check mode: the module parameter `dma_check=` decides (what a
/// device gets without `PCIEM_IOCTL_SET_DMA_CHECK`).
pub const PCIEM_DMA_CHECK_DEFAULT: u32 = 0;
/// DMA check mode: no tracking, no checks.
pub const PCIEM_DMA_CHECK_OFF: u32 = 1;
/// DMA check mode: violations are reported, the access proceeds.
pub const PCIEM_DMA_CHECK_REPORT: u32 = 2;
/// DMA check mode: violations are reported and the access fails with
/// `EFAULT`; nothing moves.
pub const PCIEM_DMA_CHECK_ENFORCE: u32 = 3;

/// `PCIEM_EVENT_DMA_FAULT`: a DMA the model performed was outside what the
/// driver mapped. `offset` is the bus address of the first offending byte,
/// `size` the length of the access, `flags` the kind
/// (`PCIEM_DMA_FAULT_*`), `bar` the access (`PCIEM_DMA_ACCESS_*`), `data`
/// the detail of the kind (bytes outside the mapping for
/// [`PCIEM_DMA_FAULT_OUTSIDE`], nanoseconds since the unmap for
/// [`PCIEM_DMA_FAULT_AFTER_UNMAP`], zero otherwise) and `id` 1 when the
/// access was refused (enforce mode), 0 when it went ahead.
pub const PCIEM_EVENT_DMA_FAULT: u32 = 6;

/// Fault kind: no live mapping of this device covers the address, and
/// none was unmapped there recently.
pub const PCIEM_DMA_FAULT_UNMAPPED: u32 = 1;
/// Fault kind: the access runs past the start or end of a live mapping
/// (by the number of bytes in the event's `data`).
pub const PCIEM_DMA_FAULT_OUTSIDE: u32 = 2;
/// Fault kind: the address is mapped, but for the other direction (a
/// device write into a `DMA_TO_DEVICE` buffer, or a read of a
/// `DMA_FROM_DEVICE` one; an atomic needs `DMA_BIDIRECTIONAL`).
pub const PCIEM_DMA_FAULT_WRONG_DIRECTION: u32 = 3;
/// Fault kind: the address belonged to a mapping that the driver has
/// already unmapped (or freed).
pub const PCIEM_DMA_FAULT_AFTER_UNMAP: u32 = 4;

/// Argument of `PCIEM_IOCTL_SET_DMA_CHECK`: the device's DMA check mode,
/// before REGISTER.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_dma_check_mode {
    /// `PCIEM_DMA_CHECK_*`.
    pub mode: u32,
    /// Must be zero.
    pub reserved: u32,
}

/// Access of a DMA fault: the device read host memory.
pub const PCIEM_DMA_ACCESS_READ: u32 = 0;
/// Access of a DMA fault: the device wrote host memory.
pub const PCIEM_DMA_ACCESS_WRITE: u32 = 1;
/// Access of a DMA fault: an atomic (reads and writes host memory).
pub const PCIEM_DMA_ACCESS_ATOMIC: u32 = 2;

/// Direction of a mapping as the driver gave it (Linux's
/// `enum dma_data_direction`): device and CPU may both read and write.
pub const PCIEM_DMA_BIDIRECTIONAL: u32 = 0;
/// Direction of a mapping: the device only reads it (`DMA_TO_DEVICE`).
pub const PCIEM_DMA_TO_DEVICE: u32 = 1;
/// Direction of a mapping: the device only writes it (`DMA_FROM_DEVICE`).
pub const PCIEM_DMA_FROM_DEVICE: u32 = 2;
