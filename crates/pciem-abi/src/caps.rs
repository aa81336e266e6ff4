//! Capabilities added with `PCIEM_IOCTL_ADD_CAPABILITY`.
//!
//! The argument is a [`pciem_cap_config`] whose `cap_data` holds one of the
//! `pciem_cap_*_userspace` payloads below, selected by `cap_type`.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::PCIEM_CAP_DATA_MAX;

/// MSI capability; payload [`pciem_cap_msi_userspace`].
pub const PCIEM_CAP_MSI: u32 = 1;
/// MSI-X capability; payload [`pciem_cap_msix_userspace`].
pub const PCIEM_CAP_MSIX: u32 = 2;
/// Power Management capability; payload [`pciem_cap_pm_userspace`].
pub const PCIEM_CAP_PM: u32 = 3;
/// PCI Express capability; payload [`pciem_cap_pcie_userspace`].
pub const PCIEM_CAP_PCIE: u32 = 4;
/// Vendor-specific capability; payload [`pciem_cap_vendor_userspace`].
pub const PCIEM_CAP_VENDOR: u32 = 5;
/// PASID extended capability; payload [`pciem_cap_pasid_userspace`].
pub const PCIEM_CAP_PASID: u32 = 6;
/// Device Serial Number extended capability; payload
/// [`pciem_cap_dsn_userspace`].
pub const PCIEM_CAP_DSN: u32 = 7;
/// Vendor-specific extended capability; payload
/// [`pciem_cap_vsec_userspace`].
pub const PCIEM_CAP_VSEC: u32 = 8;
/// Advanced Error Reporting extended capability; payload
/// [`pciem_cap_aer_userspace`].
pub const PCIEM_CAP_AER: u32 = 9;

/// Argument of `PCIEM_IOCTL_ADD_CAPABILITY`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct pciem_cap_config {
    /// One of `PCIEM_CAP_*`.
    pub cap_type: u32,
    /// Bytes of `cap_data` in use: the size of the payload struct.
    pub cap_size: u32,
    /// Offset in configuration space, or 0 to place the capability after the
    /// previous one (standard capabilities from 0x40, extended from 0x100).
    pub offset: u32,
    /// Must be zero.
    pub reserved: u32,
    /// The payload, one of the `pciem_cap_*_userspace` structs.
    pub cap_data: [u8; PCIEM_CAP_DATA_MAX],
}

impl Default for pciem_cap_config {
    fn default() -> Self {
        Self {
            cap_type: 0,
            cap_size: 0,
            offset: 0,
            reserved: 0,
            cap_data: [0; PCIEM_CAP_DATA_MAX],
        }
    }
}

/// MSI payload.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_cap_msi_userspace {
    /// log2 of the number of vectors, 0..=5 (1..=32 vectors).
    pub num_vectors_log2: u8,
    /// Non-zero: 64-bit message address.
    pub has_64bit: u8,
    /// Non-zero: per-vector mask and pending bits.
    pub has_masking: u8,
    /// Must be zero.
    pub reserved: u8,
}

/// MSI-X payload. The table and PBA live in BAR memory.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_cap_msix_userspace {
    /// Number of table entries, 1..=2048.
    pub table_size: u16,
    /// BAR holding the vector table.
    pub table_bar: u8,
    /// BAR holding the pending-bit array.
    pub pba_bar: u8,
    /// Offset of the table in its BAR (8-byte aligned).
    pub table_offset: u32,
    /// Offset of the PBA in its BAR (8-byte aligned).
    pub pba_offset: u32,
}

/// Power Management payload.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_cap_pm_userspace {
    /// Non-zero: D3hot to D0 does not reset the function (PMCSR bit 3).
    /// When zero, that transition is reported as a reset.
    pub no_soft_reset: u8,
    /// PME support bits (PMC bits 15:11 >> 11): D0, D1, D2, D3hot, D3cold.
    pub pme_support: u8,
    /// Non-zero: D1 supported.
    pub d1_support: u8,
    /// Non-zero: D2 supported.
    pub d2_support: u8,
}

/// PCI Express device/port type: endpoint.
pub const PCIEM_PCIE_TYPE_ENDPOINT: u8 = 0x0;
/// PCI Express device/port type: legacy endpoint.
pub const PCIEM_PCIE_TYPE_LEGACY_ENDPOINT: u8 = 0x1;
/// PCI Express device/port type: root-complex integrated endpoint.
pub const PCIEM_PCIE_TYPE_RC_ENDPOINT: u8 = 0x9;

/// PCI Express payload.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_cap_pcie_userspace {
    /// One of `PCIEM_PCIE_TYPE_*`.
    pub device_type: u8,
    /// Maximum link speed: 1 = 2.5 GT/s, 2 = 5, 3 = 8, 4 = 16, 5 = 32,
    /// 6 = 64 GT/s.
    pub max_link_speed: u8,
    /// Maximum link width in lanes: 1, 2, 4, 8, 12, 16 or 32.
    pub max_link_width: u8,
    /// Non-zero: the function supports Function Level Reset.
    pub flr: u8,
    /// Max payload size supported, encoded 0..=5 (128..=4096 bytes).
    pub max_payload: u8,
    /// Must be zero.
    pub reserved: [u8; 3],
}

/// Most bytes a vendor-specific capability may carry after its 3-byte
/// header.
pub const PCIEM_VENDOR_DATA_MAX: usize = 56;

/// Vendor-specific capability payload.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct pciem_cap_vendor_userspace {
    /// Bytes of `data` in use, 0..=[`PCIEM_VENDOR_DATA_MAX`].
    pub data_len: u16,
    /// Must be zero.
    pub reserved: u16,
    /// Read-only contents following the capability header.
    pub data: [u8; PCIEM_VENDOR_DATA_MAX],
}

impl Default for pciem_cap_vendor_userspace {
    fn default() -> Self {
        Self {
            data_len: 0,
            reserved: 0,
            data: [0; PCIEM_VENDOR_DATA_MAX],
        }
    }
}

/// PASID payload.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_cap_pasid_userspace {
    /// Max PASID width, 1..=20 bits.
    pub max_pasid_width: u8,
    /// Non-zero: execute permission supported.
    pub exec: u8,
    /// Non-zero: privileged mode supported.
    pub privileged: u8,
    /// Must be zero.
    pub reserved: u8,
}

/// Device Serial Number payload.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_cap_dsn_userspace {
    /// The 64-bit serial number.
    pub serial: u64,
}

/// Most bytes a vendor-specific extended capability may carry after its
/// 8-byte header (extended capability header + VSEC header).
pub const PCIEM_VSEC_DATA_MAX: usize = 52;

/// Vendor-specific extended capability payload.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct pciem_cap_vsec_userspace {
    /// VSEC ID.
    pub vsec_id: u16,
    /// VSEC revision, 0..=15.
    pub vsec_rev: u8,
    /// Must be zero.
    pub reserved: u8,
    /// Bytes of `data` in use, 0..=[`PCIEM_VSEC_DATA_MAX`].
    pub data_len: u16,
    /// Must be zero.
    pub reserved2: u16,
    /// Read-only contents following the VSEC header.
    pub data: [u8; PCIEM_VSEC_DATA_MAX],
}

impl Default for pciem_cap_vsec_userspace {
    fn default() -> Self {
        Self {
            vsec_id: 0,
            vsec_rev: 0,
            reserved: 0,
            data_len: 0,
            reserved2: 0,
            data: [0; PCIEM_VSEC_DATA_MAX],
        }
    }
}

/// Advanced Error Reporting payload: the initial values of the writable
/// mask and severity registers.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct pciem_cap_aer_userspace {
    /// Uncorrectable Error Mask.
    pub uncor_mask: u32,
    /// Uncorrectable Error Severity.
    pub uncor_severity: u32,
    /// Correctable Error Mask.
    pub cor_mask: u32,
    /// Must be zero.
    pub reserved: u32,
}
