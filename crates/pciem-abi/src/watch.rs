//! Watched registers and the event notification descriptor.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Find the driver's mapping of the BAR automatically, by tracing the
/// ioremap family (recommended).
pub const PCIEM_WP_FLAG_BAR_KPROBES: u32 = 0x1;
/// Use the kernel virtual address in [`pciem_watchpoint_config::addr`].
pub const PCIEM_WP_FLAG_BAR_MANUAL: u32 = 0x2;
/// Remove the watchpoint on `bar_index`/`offset` instead of adding one.
pub const PCIEM_WP_FLAG_CLEAR: u32 = 0x4;

bitflags::bitflags! {
    /// [`pciem_watchpoint_config::flags`].
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct WatchFlags: u32 {
        /// See [`PCIEM_WP_FLAG_BAR_KPROBES`].
        const BAR_KPROBES = PCIEM_WP_FLAG_BAR_KPROBES;
        /// See [`PCIEM_WP_FLAG_BAR_MANUAL`].
        const BAR_MANUAL = PCIEM_WP_FLAG_BAR_MANUAL;
        /// See [`PCIEM_WP_FLAG_CLEAR`].
        const CLEAR = PCIEM_WP_FLAG_CLEAR;
    }
}

/// Argument of `PCIEM_IOCTL_SET_WATCHPOINT`: report driver writes to one
/// register of a BAR as `PCIEM_EVENT_MMIO_WRITE` events.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_watchpoint_config {
    /// BAR slot of the register.
    pub bar_index: u32,
    /// Offset of the register in the BAR, aligned to `width`.
    pub offset: u32,
    /// Width in bytes: 1, 2, 4 or 8.
    pub width: u32,
    /// `PCIEM_WP_FLAG_*`.
    pub flags: u32,
    /// Kernel virtual address of the register, only with
    /// [`PCIEM_WP_FLAG_BAR_MANUAL`]; otherwise zero.
    pub addr: u64,
}

/// Argument of `PCIEM_IOCTL_SET_EVENTFD`: an eventfd signalled whenever the
/// kernel publishes events into the shared ring.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_eventfd_config {
    /// The eventfd, or -1 to detach the current one.
    pub eventfd: i32,
    /// Must be zero.
    pub reserved: u32,
}
