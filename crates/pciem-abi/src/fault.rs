//! Fault injection: what happens to a device that real hardware can do to
//! a driver but that a healthy device never does.
//!
//! `PCIEM_IOCTL_SURPRISE_REMOVE` ([`pciem_surprise_remove`]) takes the
//! device's link down at once: from that moment every read of its
//! configuration space and of its trapped BARs returns all-ones and every
//! write to them is dropped, as on real hardware whose link went away (a
//! directly mapped BAR cannot drop stores: its memory is filled with
//! all-ones instead). The device process can no longer raise interrupts,
//! do DMA or peer-to-peer (`ENODEV`), and the driver's accesses produce no
//! more events. Then the module removes the device from the PCI bus the
//! way Linux's hot-plug code removes hardware that vanished (the device is
//! marked disconnected and `pci_stop_and_remove_bus_device()` runs under
//! the rescan lock): the bound driver's `remove()` runs against the dead
//! device, in a kernel worker, after the ioctl has returned.
//!
//! The device stays removed until its files are closed; bringing it back
//! is not part of this version of the ABI.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Argument of `PCIEM_IOCTL_SURPRISE_REMOVE`. Only after REGISTER; once
/// per device (`EALREADY` after).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_surprise_remove {
    /// Must be zero (no flags are defined yet).
    pub flags: u32,
    /// Must be zero.
    pub reserved: u32,
}
