//! Interrupt injection, by ioctl or by irqfd.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Deliver through whichever mechanism the driver enabled: MSI-X, else MSI,
/// else INTx (assert). This is what a zero-initialised argument means.
pub const PCIEM_IRQ_AUTO: u32 = 0;
/// MSI vector `vector`.
pub const PCIEM_IRQ_MSI: u32 = 1;
/// MSI-X table entry `vector`.
pub const PCIEM_IRQ_MSIX: u32 = 2;
/// Legacy INTx on the device's interrupt pin (level-triggered).
pub const PCIEM_IRQ_INTX: u32 = 3;

/// INTx: assert the line (the default for [`PCIEM_IRQ_INTX`]).
pub const PCIEM_IRQ_FLAG_ASSERT: u32 = 0x1;
/// INTx: deassert the line.
pub const PCIEM_IRQ_FLAG_DEASSERT: u32 = 0x2;

/// Argument of `PCIEM_IOCTL_INJECT_IRQ`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_irq_inject {
    /// MSI vector or MSI-X entry; 0 for INTx.
    pub vector: u32,
    /// One of `PCIEM_IRQ_AUTO`, `_MSI`, `_MSIX`, `_INTX`.
    pub kind: u32,
    /// `PCIEM_IRQ_FLAG_*` (INTx only).
    pub flags: u32,
    /// Must be zero.
    pub reserved: u32,
}

/// irqfd: INTx is asserted when the eventfd is signalled and stays asserted
/// until deasserted (level semantics).
pub const PCIEM_IRQFD_FLAG_LEVEL: u32 = 0x1;
/// irqfd: signalling this eventfd deasserts INTx.
pub const PCIEM_IRQFD_FLAG_DEASSERT: u32 = 0x2;
/// irqfd: detach the eventfd previously bound to `kind`/`vector` (for INTx,
/// together with `LEVEL` or `DEASSERT` to say which); `eventfd` is ignored.
pub const PCIEM_IRQFD_FLAG_REMOVE: u32 = 0x4;

/// Argument of `PCIEM_IOCTL_SET_IRQFD`: bind an eventfd to an interrupt, so
/// that signalling the eventfd (from any process or thread) raises it with no
/// ioctl. One eventfd per interrupt (`EBUSY` if already bound); an INTx
/// binding takes exactly one of `LEVEL` and `DEASSERT`. Closing the eventfd
/// ends its binding.
///
/// Errors: `EBADF` for an fd that is not open; `EINVAL` for an fd that is
/// not an eventfd, an unknown kind or bad flags; `EBUSY` when that
/// interrupt is already bound; `ENOENT` for REMOVE of an unbound
/// interrupt; `ENOSPC` past the module's limit of bindings; `ENODEV` once
/// the device is gone.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_irqfd_config {
    /// The eventfd.
    pub eventfd: i32,
    /// MSI vector or MSI-X entry; 0 for INTx.
    pub vector: u32,
    /// One of `PCIEM_IRQ_*` kinds.
    pub kind: u32,
    /// `PCIEM_IRQFD_FLAG_*`.
    pub flags: u32,
}
