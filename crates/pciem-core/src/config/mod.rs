//! Configuration space: the image with its masks, the builder that lays it
//! out, the host-access semantics, and state accessors.
//!
//! A [`ConfigSpace`] is a 4 KiB image plus a write mask and a
//! write-1-to-clear mask (the model of QEMU's `hw/pci` and Linux's
//! `pci-bridge-emul.c`). [`ConfigBuilder`] produces one from a description
//! (identity, BARs, capabilities) and rejects malformed descriptions with a
//! [`BuildError`]. Host reads and writes ([`ConfigSpace::read`],
//! [`ConfigSpace::write`]) obey the masks, so BAR sizing, W1C status bits
//! and read-only fields behave as on hardware, and a write reports what it
//! changed ([`WriteEffects`]). The masks of every register are documented in
//! [`regs`].
//!
//! Everything here except [`ConfigSpace::write_lspci_dump`] is linked into
//! the kernel module: no allocation, no floats, no formatting, no panicking
//! path on any input.

use core::ffi::CStr;

mod builder;
mod caps;
mod dump;
pub mod regs;
pub mod root_port;
mod space;
mod validate;

pub use builder::ConfigBuilder;
pub use caps::{
    AerCap, Bar, Capability, MsiCap, MsixCap, PasidCap, PcieCap, PmCap, VendorCap, VsecCap,
};
pub use space::{BarInfo, CapabilityIter, ConfigSpace, MsiState, MsixState};
pub use validate::validate_image;

/// Error of a host configuration access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// Width other than 1, 2 or 4.
    #[error("access width {0} is not 1, 2 or 4")]
    BadWidth(u8),
    /// Access past the end of configuration space.
    #[error("access of {width} bytes at {offset:#x} is past the end of configuration space")]
    OutOfRange {
        /// Offset of the access.
        offset: u16,
        /// Width of the access in bytes.
        width: u8,
    },
}

impl AccessError {
    /// A static, NUL-terminated description, for contexts without
    /// formatting (the kernel log).
    pub const fn reason(&self) -> &'static CStr {
        match self {
            AccessError::BadWidth(_) => c"config access width is not 1, 2 or 4",
            AccessError::OutOfRange { .. } => c"config access past the end of config space",
        }
    }
}

/// Which space a capability lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CapSpace {
    /// Offsets 0x40..0x100, linked from the capabilities pointer.
    Standard,
    /// Offsets 0x100..0x1000, linked from 0x100.
    Extended,
}

/// Why a configuration space description or image was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// BAR slot above 5.
    #[error("BAR index {0} is out of range (0..=5)")]
    BarIndex(u32),
    /// BAR size not a power of two, below 16 bytes, or above what its type
    /// can decode.
    #[error(
        "BAR {index} size {size:#x} is not a power of two between 16 bytes and the type's limit"
    )]
    BarSize {
        /// Slot.
        index: u8,
        /// Size asked for.
        size: u64,
    },
    /// The slot is already used (directly or as a 64-bit BAR's upper half).
    #[error("BAR {0} clashes with a BAR already declared (64-bit BARs take two slots)")]
    BarClash(u8),
    /// A 64-bit BAR in slot 5 has no room for its upper half.
    #[error("a 64-bit BAR cannot start at slot 5")]
    Bar64AtLastSlot,
    /// I/O BARs cannot be backed by the physical pool.
    #[error("BAR {0}: I/O space BARs are not supported")]
    IoBar(u8),
    /// Unknown bits in a BAR's flags.
    #[error("BAR {0}: unknown flag bits")]
    BarFlags(u8),
    /// MSI vector count not a power of two in 1..=32.
    #[error("MSI vector count {0} is not a power of two in 1..=32")]
    MsiVectors(u32),
    /// An ABI MSI capability asks for 2^`n` vectors with `n` > 5 (the
    /// value given, `num_vectors_log2`; 2^`n` may not fit any integer).
    #[error("MSI capability asks for 2^{0} vectors; at most 2^5 = 32 are possible")]
    MsiVectorsLog2(u8),
    /// MSI-X table size outside 1..=2048.
    #[error("MSI-X table size {0} is outside 1..=2048")]
    MsixTableSize(u32),
    /// MSI-X table or PBA offset not 8-byte aligned.
    #[error("MSI-X table or PBA offset is not 8-byte aligned")]
    MsixMisaligned,
    /// MSI-X table or PBA names a BAR the device does not have.
    #[error("MSI-X table or PBA names BAR {0}, which is not declared")]
    MsixBarMissing(u8),
    /// MSI-X table or PBA does not fit in its BAR.
    #[error("MSI-X table or PBA runs past the end of BAR {0}")]
    MsixOutsideBar(u8),
    /// A capability that may appear once appears twice.
    #[error("capability {0} appears twice")]
    DuplicateCapability(&'static str),
    /// More capabilities than the builder holds.
    #[error("too many capabilities (at most {0})")]
    TooManyCapabilities(usize),
    /// A capability overlaps another or the header.
    #[error("capability at {0:#x} overlaps another capability or the header")]
    Overlap(u16),
    /// An explicit offset outside its space or not dword aligned.
    #[error("capability offset {0:#x} is not dword aligned inside its space")]
    Misplaced(u16),
    /// The capabilities do not fit in their space.
    #[error("capabilities overflow the {0:?} configuration space")]
    Overflow(CapSpace),
    /// `cap_type` is not a known `PCIEM_CAP_*`.
    #[error("unknown capability type {0}")]
    UnknownCapType(u32),
    /// `cap_size` does not match the payload of `cap_type`.
    #[error("capability payload size {size} is wrong for type {cap_type}")]
    CapSize {
        /// The type.
        cap_type: u32,
        /// The size given.
        size: u32,
    },
    /// A reserved field or flag is not zero.
    #[error("a reserved field is not zero")]
    Reserved,
    /// Vendor-specific data longer than the capability can hold.
    #[error("vendor-specific data of {0} bytes is too long")]
    VendorDataTooLong(usize),
    /// A field of a capability payload has a value the specification does
    /// not allow (link speed, width, payload size, PASID width, ...).
    #[error("capability field out of range: {}", .0.to_str().unwrap_or("?"))]
    BadField(&'static CStr),
    /// Only type-0 headers are supported.
    #[error("header type {0:#x} is not supported (type 0 only)")]
    HeaderType(u8),
    /// An image handed over whole is inconsistent.
    #[error("invalid configuration image: {}", .0.to_str().unwrap_or("?"))]
    BadImage(&'static CStr),
    /// Trap mode or a trap range on a BAR slot the device does not have (or
    /// the upper half of a 64-bit BAR).
    #[error("BAR {0} is not declared; it cannot be trapped or hold trap ranges")]
    TrapBarMissing(u8),
    /// A trap range on a BAR in watch mode.
    #[error("BAR {0} holds a trap range but is not in trap mode")]
    TrapRangeNotTrapped(u8),
    /// A trap range that does not lie inside its BAR.
    #[error("trap range of {len:#x} bytes at {offset:#x} lies outside BAR {bar}")]
    TrapRangeOutsideBar {
        /// BAR slot.
        bar: u8,
        /// First byte of the range.
        offset: u64,
        /// Length of the range.
        len: u64,
    },
    /// A trap range that overlaps another range of the same BAR.
    #[error("trap range at {offset:#x} of BAR {bar} overlaps another range")]
    TrapRangeOverlap {
        /// BAR slot.
        bar: u8,
        /// First byte of the refused range.
        offset: u64,
    },
    /// More trap ranges than the kernel accepts.
    #[error("too many trap ranges (at most {0})")]
    TooManyTrapRanges(u32),
    /// Unknown `PCIEM_TRAP_*` bits, or READ_MODEL together with READ_NOTIFY.
    #[error("trap flags {0:#x}: unknown bits, or READ_MODEL with READ_NOTIFY")]
    TrapFlags(u32),
}

impl BuildError {
    /// A static, NUL-terminated description, for contexts without
    /// formatting (the kernel log).
    pub const fn reason(&self) -> &'static CStr {
        match self {
            BuildError::BarIndex(_) => c"BAR index out of range (0..=5)",
            BuildError::BarSize { .. } => c"BAR size is not a power of two within the type's range",
            BuildError::BarClash(_) => c"BAR slot already used",
            BuildError::Bar64AtLastSlot => c"64-bit BAR cannot start at slot 5",
            BuildError::IoBar(_) => c"I/O BARs are not supported",
            BuildError::BarFlags(_) => c"unknown BAR flag bits",
            BuildError::MsiVectors(_) => c"MSI vector count is not a power of two in 1..=32",
            BuildError::MsiVectorsLog2(_) => c"MSI num_vectors_log2 above 5 (more than 32 vectors)",
            BuildError::MsixTableSize(_) => c"MSI-X table size outside 1..=2048",
            BuildError::MsixMisaligned => c"MSI-X table or PBA offset not 8-byte aligned",
            BuildError::MsixBarMissing(_) => c"MSI-X table or PBA BAR not declared",
            BuildError::MsixOutsideBar(_) => c"MSI-X table or PBA outside its BAR",
            BuildError::DuplicateCapability(_) => c"duplicate capability",
            BuildError::TooManyCapabilities(_) => c"too many capabilities",
            BuildError::Overlap(_) => c"capability overlaps another",
            BuildError::Misplaced(_) => c"capability offset misaligned or outside its space",
            BuildError::Overflow(CapSpace::Standard) => c"capabilities overflow the 256-byte space",
            BuildError::Overflow(CapSpace::Extended) => {
                c"capabilities overflow the 4096-byte space"
            }
            BuildError::UnknownCapType(_) => c"unknown capability type",
            BuildError::CapSize { .. } => c"capability payload size mismatch",
            BuildError::Reserved => c"reserved field not zero",
            BuildError::VendorDataTooLong(_) => c"vendor-specific data too long",
            BuildError::BadField(what) => what,
            BuildError::HeaderType(_) => c"only type-0 headers are supported",
            BuildError::BadImage(what) => what,
            BuildError::TrapBarMissing(_) => c"trapped BAR or trap range on an undeclared BAR",
            BuildError::TrapRangeNotTrapped(_) => c"trap range on a BAR not in trap mode",
            BuildError::TrapRangeOutsideBar { .. } => c"trap range outside its BAR",
            BuildError::TrapRangeOverlap { .. } => c"trap range overlaps another",
            BuildError::TooManyTrapRanges(_) => c"too many trap ranges",
            BuildError::TrapFlags(_) => c"unknown trap flags or READ_MODEL with READ_NOTIFY",
        }
    }
}

bitflags::bitflags! {
    /// What a host configuration write changed.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct WriteEffects: u32 {
        /// Some bit changed.
        const CHANGED = 1 << 0;
        /// The command register changed.
        const COMMAND = 1 << 1;
        /// A BAR changed.
        const BAR = 1 << 2;
        /// MSI control, address, data or mask changed.
        const MSI = 1 << 3;
        /// MSI-X control changed.
        const MSIX = 1 << 4;
        /// The PM power state changed.
        const PM_STATE = 1 << 5;
        /// Function Level Reset was requested.
        const FLR = 1 << 6;
        /// D3hot to D0 without No_Soft_Reset: the function resets.
        const D3HOT_TO_D0_RESET = 1 << 7;
    }
}
