//! Device creation, BARs and the configuration header.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::PCIEM_CONFIG_SPACE_SIZE;

/// Argument of `PCIEM_IOCTL_CREATE_DEVICE`: starts describing a new device on
/// this open file.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_create_device {
    /// No flags are defined yet; must be zero.
    pub flags: u32,
    /// Must be zero.
    pub reserved: u32,
}

/// BAR is in I/O space (bit 0 of a BAR register). Not supported by PCIem:
/// only memory BARs can be backed by the physical pool.
pub const PCIEM_BAR_SPACE_IO: u32 = 0x1;
/// Memory BAR decoding a 32-bit address (bits 2:1 = 00).
pub const PCIEM_BAR_MEM_TYPE_32: u32 = 0x0;
/// Memory BAR decoding a 64-bit address (bits 2:1 = 10); it uses this slot and
/// the next one.
pub const PCIEM_BAR_MEM_TYPE_64: u32 = 0x4;
/// Memory BAR is prefetchable (bit 3).
pub const PCIEM_BAR_MEM_PREFETCH: u32 = 0x8;
/// The bits of [`pciem_bar_config::flags`] that carry meaning.
pub const PCIEM_BAR_FLAGS_MASK: u32 = 0xF;

bitflags::bitflags! {
    /// The low bits of a BAR register, as carried in
    /// [`pciem_bar_config::flags`]. Their values equal Linux's
    /// `PCI_BASE_ADDRESS_*` so C callers may use either.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct BarFlags: u32 {
        /// I/O space BAR (unsupported).
        const SPACE_IO = PCIEM_BAR_SPACE_IO;
        /// 64-bit memory BAR.
        const MEM_TYPE_64 = PCIEM_BAR_MEM_TYPE_64;
        /// Prefetchable memory BAR.
        const MEM_PREFETCH = PCIEM_BAR_MEM_PREFETCH;
    }
}

/// Argument of `PCIEM_IOCTL_ADD_BAR`: declares one memory BAR.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_bar_config {
    /// BAR slot, 0..=5. A 64-bit BAR also occupies `bar_index + 1`.
    pub bar_index: u32,
    /// `PCIEM_BAR_*` bits (equal to Linux's `PCI_BASE_ADDRESS_*`).
    pub flags: u32,
    /// Size in bytes: a power of two, at least 16 (4096 or more is
    /// recommended so the BAR can be mapped by pages).
    pub size: u64,
}

/// Argument of `PCIEM_IOCTL_SET_CONFIG`: the identity of the device.
///
/// `class_code` is in configuration-space order: `{prog_if, subclass,
/// base_class}` (offsets 0x09, 0x0A, 0x0B).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_config_space {
    /// Vendor ID (offset 0x00).
    pub vendor_id: u16,
    /// Device ID (offset 0x02).
    pub device_id: u16,
    /// Subsystem vendor ID (offset 0x2C).
    pub subsys_vendor_id: u16,
    /// Subsystem ID (offset 0x2E).
    pub subsys_device_id: u16,
    /// Revision ID (offset 0x08).
    pub revision: u8,
    /// Programming interface, subclass, base class (offsets 0x09..=0x0B).
    pub class_code: [u8; 3],
    /// Header type (offset 0x0E); only 0 (type-0, single function) is
    /// supported.
    pub header_type: u8,
    /// Interrupt pin (offset 0x3D): 0 none, 1..=4 INTA..INTD.
    pub interrupt_pin: u8,
    /// Must be zero.
    pub reserved: u16,
}

/// Argument of `PCIEM_IOCTL_SET_CONFIG_IMAGE`: a complete configuration
/// space with its access masks, as built by `pciem-core`.
///
/// For every byte, bits set in `wmask` are writable by the host, bits set in
/// `w1cmask` are write-1-to-clear; all other bits are read-only. BAR sizes are
/// implied by the BARs' write masks.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct pciem_config_image {
    /// The initial contents of configuration space.
    pub config: [u8; PCIEM_CONFIG_SPACE_SIZE],
    /// Per-bit writability.
    pub wmask: [u8; PCIEM_CONFIG_SPACE_SIZE],
    /// Per-bit write-1-to-clear.
    pub w1cmask: [u8; PCIEM_CONFIG_SPACE_SIZE],
}

impl Default for pciem_config_image {
    fn default() -> Self {
        Self {
            config: [0; PCIEM_CONFIG_SPACE_SIZE],
            wmask: [0; PCIEM_CONFIG_SPACE_SIZE],
            w1cmask: [0; PCIEM_CONFIG_SPACE_SIZE],
        }
    }
}

/// Argument of `PCIEM_IOCTL_GET_BAR_INFO`: `bar_index` in, the rest out.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_bar_info_query {
    /// BAR slot to query (in).
    pub bar_index: u32,
    /// `PCIEM_BAR_*` bits of the BAR (out).
    pub flags: u32,
    /// Size in bytes, 0 if the slot is unused (out).
    pub size: u64,
    /// Bus address the BAR is currently assigned (out).
    pub bus_addr: u64,
}
