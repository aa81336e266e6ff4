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
//! The device stays removed until it is brought back with
//! `PCIEM_IOCTL_REINSERT` ([`pciem_reinsert`], ABI 7) or its files are
//! closed. Reinsertion puts the configuration space back to its power-on
//! state (as registered: the BARs hold the addresses the module assigned),
//! zeroes the BAR memory, brings the link up, tells the model with a
//! `PCIEM_EVENT_RESET` of `PCIEM_RESET_REINSERT`, and adds the device again:
//! below a root port the slot reports presence and link up and interrupts
//! pciehp, which adds it as it adds a card plugged in; without a port the
//! module rescans the slot under the PCI rescan lock. Either way the driver
//! probes it as new hardware.
//!
//! `PCIEM_IOCTL_SET_FAULT` ([`pciem_fault_rule`], ABI 7) arms one rule of
//! the device's fault plan (at most [`PCIEM_MAX_FAULT_RULES`]) or clears
//! them all: [`PCIEM_FAULT_READ_TIMEOUT`] makes the driver's loads from a
//! range of a trapped BAR complete as completion timeouts (all-ones,
//! without reaching the model, which gets a `PCIEM_EVENT_ERROR` of kind
//! `PCIEM_ERROR_INJECTED_TIMEOUT`); [`PCIEM_FAULT_DMA_POISON`] makes the
//! model's DMA reads that touch a range of bus addresses fail with `EIO`
//! (a poisoned completion), nothing copied. A rule with a `count` disarms
//! itself after that many hits.
//!
//! `PCIEM_IOCTL_SET_ROOT_PORT` ([`pciem_root_port`]), before REGISTER, puts
//! a virtual PCIe root port above the device: the device's root bus holds
//! the port (00:00.0, a type-1 function with a hot-plug slot and one MSI
//! vector) and the device sits on bus 1 below it, so Linux's own port
//! services (portdrv, pciehp) bind to the port. A surprise removal then
//! clears the slot's presence and link-active bits, sets their change bits
//! and raises the port's interrupt: pciehp removes the device (falling back
//! to the module's own removal when pciehp has not enabled the interrupt).
//! All of the device's BARs then come from the BAR pool (the port forwards
//! one 32-bit memory window), so `phys_region=` is needed even for trapped
//! BARs.

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

/// `pciem_root_port.flags`: the port has a hot-plug slot (required).
pub const PCIEM_ROOT_PORT_HOTPLUG: u32 = 0x1;
/// `pciem_root_port.flags`: the port has an AER capability with the Root
/// Port registers, so that `PCIEM_IOCTL_INJECT_AER` reaches Linux's AER
/// core.
pub const PCIEM_ROOT_PORT_AER: u32 = 0x2;

/// `pciem_aer_inject.severity`: a correctable error (ERR_COR): the AER
/// core logs it and calls the driver's `cor_error_detected`.
pub const PCIEM_AER_CORRECTABLE: u32 = 0;
/// `pciem_aer_inject.severity`: an uncorrectable non-fatal error
/// (ERR_NONFATAL): `error_detected(normal)`, `mmio_enabled`, `resume`.
pub const PCIEM_AER_NONFATAL: u32 = 1;
/// `pciem_aer_inject.severity`: an uncorrectable fatal error (ERR_FATAL):
/// `error_detected(frozen)`, a secondary bus reset of the port (the model
/// gets a `PCIEM_EVENT_RESET` with `PCIEM_RESET_BUS`), `slot_reset`,
/// `resume`.
pub const PCIEM_AER_FATAL: u32 = 2;

/// Argument of `PCIEM_IOCTL_INJECT_AER`: the device reports an error to its
/// root port (which needs [`PCIEM_ROOT_PORT_AER`]; the device needs an AER
/// capability). The device's AER status register of the severity gets
/// `status`, an uncorrectable error also its First Error Pointer and
/// `header_log`; the port records the message in Root Error Status and
/// Error Source and interrupts if the AER driver enabled that severity.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_aer_inject {
    /// `PCIEM_AER_*`.
    pub severity: u32,
    /// Bits of the Correctable or Uncorrectable Error Status register
    /// (at least one, only implemented ones).
    pub status: u32,
    /// The TLP header of an uncorrectable error (Header Log).
    pub header_log: [u32; 4],
    /// Must be zero.
    pub flags: u32,
    /// Must be zero.
    pub reserved: u32,
}

/// Argument of `PCIEM_IOCTL_SET_ROOT_PORT`, before REGISTER.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_root_port {
    /// `PCIEM_ROOT_PORT_*`; [`PCIEM_ROOT_PORT_HOTPLUG`] must be set.
    pub flags: u32,
    /// Must be zero.
    pub reserved: u32,
}

/// `pciem_fault_rule.kind`: clear every rule of the device (the other
/// fields must be zero).
pub const PCIEM_FAULT_CLEAR: u32 = 0;
/// `pciem_fault_rule.kind`: the driver's loads from BAR `bar` that touch
/// `[addr, addr + len)` (offsets in the BAR, which must be trapped)
/// complete as completion timeouts: all-ones, without reaching the model,
/// which is told by a `PCIEM_EVENT_ERROR` of kind
/// `PCIEM_ERROR_INJECTED_TIMEOUT`. Stores are not affected.
pub const PCIEM_FAULT_READ_TIMEOUT: u32 = 1;
/// `pciem_fault_rule.kind`: the model's DMA reads (`DMA_READ`, the read
/// side of `DMA_ATOMIC`, `DMA_INDIRECT` list pages and read segments) that
/// touch bus addresses `[addr, addr + len)` fail with `EIO` as a poisoned
/// completion; nothing is copied for the failing access. `bar` must be 0.
pub const PCIEM_FAULT_DMA_POISON: u32 = 2;
/// `pciem_fault_rule.flags` of a [`PCIEM_FAULT_DMA_POISON`] rule: each hit
/// is also reported through AER, as a device that received a Poisoned TLP
/// does: the device's Uncorrectable Error Status gets Poisoned TLP Received
/// (bit 12) with the read's header in the Header Log, and the root port
/// gets an ERR_NONFATAL message (as `PCIEM_IOCTL_INJECT_AER` would send),
/// so the AER core logs it and runs the driver's error handlers. Needs a
/// root port with AER (`EOPNOTSUPP` otherwise); not for READ_TIMEOUT rules.
pub const PCIEM_FAULT_FLAG_AER: u32 = 0x1;

/// How many rules a device (each function of it) can hold at once.
pub const PCIEM_MAX_FAULT_RULES: u32 = 8;

/// Argument of `PCIEM_IOCTL_SET_FAULT`: one rule of the device's fault
/// plan, or [`PCIEM_FAULT_CLEAR`]. Only after REGISTER; per function.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_fault_rule {
    /// `PCIEM_FAULT_*`.
    pub kind: u32,
    /// The BAR of a [`PCIEM_FAULT_READ_TIMEOUT`] rule; 0 otherwise.
    pub bar: u32,
    /// First byte of the range: a BAR offset or a bus address.
    pub addr: u64,
    /// Bytes in the range (at least 1; the range must not wrap).
    pub len: u64,
    /// Hits before the rule disarms itself; 0: until cleared.
    pub count: u32,
    /// [`PCIEM_FAULT_FLAG_AER`] or zero.
    pub flags: u32,
}

/// Argument of `PCIEM_IOCTL_REINSERT`: bring a surprise-removed device back.
/// Only after `SURPRISE_REMOVE` once its removal finished (`EBUSY` before,
/// `EALREADY` for a device that is not removed).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_reinsert {
    /// Must be zero (no flags are defined yet).
    pub flags: u32,
    /// Must be zero.
    pub reserved: u32,
}
