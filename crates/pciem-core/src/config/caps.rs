//! What the builder can put in configuration space: BARs and capabilities,
//! and how each capability is laid out (contents and masks).

use pciem_abi::{pciem_config_image, PCIEM_VENDOR_DATA_MAX, PCIEM_VSEC_DATA_MAX};

use super::regs::*;
use super::{BuildError, CapSpace};

/// A memory BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Bar {
    /// Size in bytes (a power of two, at least 16).
    pub size: u64,
    /// Decodes a 64-bit address (takes two slots).
    pub is_64bit: bool,
    /// Prefetchable.
    pub prefetchable: bool,
}

impl Bar {
    /// A 32-bit memory BAR of `size` bytes (at most 2 GiB).
    pub const fn memory32(size: u64) -> Self {
        Bar {
            size,
            is_64bit: false,
            prefetchable: false,
        }
    }

    /// A 64-bit memory BAR of `size` bytes.
    pub const fn memory64(size: u64) -> Self {
        Bar {
            size,
            is_64bit: true,
            prefetchable: false,
        }
    }

    /// The same BAR, prefetchable.
    pub const fn prefetchable(self) -> Self {
        Bar {
            prefetchable: true,
            ..self
        }
    }

    /// The low bits of the BAR register (`PCIEM_BAR_*`).
    pub const fn flags(&self) -> u32 {
        (if self.is_64bit { 0x4 } else { 0 }) | (if self.prefetchable { 0x8 } else { 0 })
    }

    pub(crate) fn check(&self, index: u8) -> Result<(), BuildError> {
        let max = if self.is_64bit {
            1u64 << 63
        } else {
            1u64 << 31
        };
        if !self.size.is_power_of_two() || self.size < 16 || self.size > max {
            return Err(BuildError::BarSize {
                index,
                size: self.size,
            });
        }
        if self.is_64bit && index >= 5 {
            return Err(BuildError::Bar64AtLastSlot);
        }
        Ok(())
    }
}

/// MSI capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MsiCap {
    /// Vectors the function can use: a power of two in 1..=32.
    pub vectors: u32,
    /// 64-bit message address.
    pub addr64: bool,
    /// Per-vector mask and pending bits.
    pub maskable: bool,
}

impl MsiCap {
    /// `vectors` vectors, 64-bit address, no per-vector masking.
    pub const fn new(vectors: u32) -> Self {
        MsiCap {
            vectors,
            addr64: true,
            maskable: false,
        }
    }

    /// Choose 64-bit (true) or 32-bit message addresses.
    pub const fn addr64(self, addr64: bool) -> Self {
        MsiCap { addr64, ..self }
    }

    /// Choose per-vector masking.
    pub const fn maskable(self, maskable: bool) -> Self {
        MsiCap { maskable, ..self }
    }

    /// Offsets of (data, mask, pending) relative to the capability.
    pub(crate) const fn offsets(&self) -> (u16, u16, u16) {
        if self.addr64 {
            (12, 16, 20)
        } else {
            (8, 12, 16)
        }
    }
}

/// MSI-X capability; the table and PBA live in BAR memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MsixCap {
    /// Number of table entries, 1..=2048.
    pub table_size: u32,
    /// BAR of the table.
    pub table_bar: u8,
    /// Offset of the table in its BAR (8-byte aligned).
    pub table_offset: u32,
    /// BAR of the pending-bit array.
    pub pba_bar: u8,
    /// Offset of the PBA in its BAR (8-byte aligned).
    pub pba_offset: u32,
}

impl MsixCap {
    /// Bytes of the vector table.
    pub const fn table_bytes(&self) -> u64 {
        self.table_size as u64 * 16
    }

    /// Bytes of the pending-bit array.
    pub const fn pba_bytes(&self) -> u64 {
        (self.table_size as u64).div_ceil(64) * 8
    }
}

/// Power Management capability.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PmCap {
    /// D3hot to D0 keeps the function's state (no reset).
    pub no_soft_reset: bool,
    /// PME support bits: bit 0 D0, 1 D1, 2 D2, 3 D3hot, 4 D3cold.
    pub pme_support: u8,
    /// D1 supported.
    pub d1: bool,
    /// D2 supported.
    pub d2: bool,
}

/// PCI Express capability (version 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PcieCap {
    /// Device/port type: 0 endpoint, 1 legacy endpoint, 9 RC integrated
    /// endpoint.
    pub device_type: u8,
    /// Max link speed: 1 = 2.5 GT/s ... 6 = 64 GT/s.
    pub max_link_speed: u8,
    /// Max link width: 1, 2, 4, 8, 12, 16 or 32 lanes.
    pub max_link_width: u8,
    /// Function Level Reset capable.
    pub flr: bool,
    /// Max payload size supported, encoded 0..=5 (128..=4096 bytes).
    pub max_payload: u8,
}

impl PcieCap {
    /// An endpoint with the given link speed and width, FLR capable, 256-byte
    /// max payload.
    pub const fn endpoint(max_link_speed: u8, max_link_width: u8) -> Self {
        PcieCap {
            device_type: 0,
            max_link_speed,
            max_link_width,
            flr: true,
            max_payload: 1,
        }
    }

    fn check(&self) -> Result<(), BuildError> {
        if !matches!(self.device_type, 0 | 1 | 9) {
            return Err(BuildError::BadField(
                c"PCIe device type must be an endpoint (0, 1 or 9)",
            ));
        }
        if !(1..=6).contains(&self.max_link_speed) {
            return Err(BuildError::BadField(c"PCIe max link speed must be 1..=6"));
        }
        if !matches!(self.max_link_width, 1 | 2 | 4 | 8 | 12 | 16 | 32) {
            return Err(BuildError::BadField(
                c"PCIe link width must be 1, 2, 4, 8, 12, 16 or 32",
            ));
        }
        if self.max_payload > 5 {
            return Err(BuildError::BadField(
                c"PCIe max payload encoding must be 0..=5",
            ));
        }
        Ok(())
    }
}

/// Vendor-specific capability: read-only bytes after the 3-byte header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VendorCap {
    len: u8,
    data: [u8; PCIEM_VENDOR_DATA_MAX],
}

impl VendorCap {
    /// Up to [`PCIEM_VENDOR_DATA_MAX`] bytes of contents.
    pub fn new(data: &[u8]) -> Result<Self, BuildError> {
        let mut out = [0u8; PCIEM_VENDOR_DATA_MAX];
        out.get_mut(..data.len())
            .ok_or(BuildError::VendorDataTooLong(data.len()))?
            .copy_from_slice(data);
        Ok(VendorCap {
            len: data.len() as u8,
            data: out,
        })
    }

    /// The contents.
    pub fn data(&self) -> &[u8] {
        self.data.get(..self.len as usize).unwrap_or(&[])
    }
}

/// PASID extended capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PasidCap {
    /// Max PASID width, 1..=20.
    pub max_width: u8,
    /// Execute permission supported.
    pub exec: bool,
    /// Privileged mode supported.
    pub privileged: bool,
}

/// Vendor-specific extended capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VsecCap {
    /// VSEC ID.
    pub id: u16,
    /// VSEC revision, 0..=15.
    pub rev: u8,
    len: u8,
    data: [u8; PCIEM_VSEC_DATA_MAX],
}

impl VsecCap {
    /// A VSEC with up to [`PCIEM_VSEC_DATA_MAX`] bytes of contents.
    pub fn new(id: u16, rev: u8, data: &[u8]) -> Result<Self, BuildError> {
        if rev > 15 {
            return Err(BuildError::BadField(c"VSEC revision must be 0..=15"));
        }
        let mut out = [0u8; PCIEM_VSEC_DATA_MAX];
        out.get_mut(..data.len())
            .ok_or(BuildError::VendorDataTooLong(data.len()))?
            .copy_from_slice(data);
        Ok(VsecCap {
            id,
            rev,
            len: data.len() as u8,
            data: out,
        })
    }

    /// The contents.
    pub fn data(&self) -> &[u8] {
        self.data.get(..self.len as usize).unwrap_or(&[])
    }
}

/// Advanced Error Reporting extended capability: initial values of the
/// writable mask and severity registers (masked to the implemented bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AerCap {
    /// Uncorrectable Error Mask.
    pub uncor_mask: u32,
    /// Uncorrectable Error Severity.
    pub uncor_severity: u32,
    /// Correctable Error Mask.
    pub cor_mask: u32,
}

impl Default for AerCap {
    fn default() -> Self {
        AerCap {
            uncor_mask: 0,
            uncor_severity: AER_UNCOR_SEVERITY_DEFAULT,
            cor_mask: 0x2000,
        }
    }
}

/// One capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    /// MSI.
    Msi(MsiCap),
    /// MSI-X.
    MsiX(MsixCap),
    /// Power Management.
    Pm(PmCap),
    /// PCI Express.
    Pcie(PcieCap),
    /// Vendor-specific.
    Vendor(VendorCap),
    /// PASID (extended).
    Pasid(PasidCap),
    /// Device Serial Number (extended).
    Dsn(u64),
    /// Vendor-specific extended.
    Vsec(VsecCap),
    /// Advanced Error Reporting (extended).
    Aer(AerCap),
}

impl Capability {
    /// Human name.
    pub const fn name(&self) -> &'static str {
        match self {
            Capability::Msi(_) => "MSI",
            Capability::MsiX(_) => "MSI-X",
            Capability::Pm(_) => "PM",
            Capability::Pcie(_) => "PCI Express",
            Capability::Vendor(_) => "vendor-specific",
            Capability::Pasid(_) => "PASID",
            Capability::Dsn(_) => "DSN",
            Capability::Vsec(_) => "VSEC",
            Capability::Aer(_) => "AER",
        }
    }

    /// Standard or extended space.
    pub const fn space(&self) -> CapSpace {
        match self {
            Capability::Msi(_)
            | Capability::MsiX(_)
            | Capability::Pm(_)
            | Capability::Pcie(_)
            | Capability::Vendor(_) => CapSpace::Standard,
            _ => CapSpace::Extended,
        }
    }

    /// May appear more than once.
    pub const fn repeatable(&self) -> bool {
        matches!(self, Capability::Vendor(_) | Capability::Vsec(_))
    }

    /// Bytes the capability occupies (rounded up to a dword).
    pub fn size(&self) -> u16 {
        let raw = match self {
            Capability::Msi(m) => {
                let (data, mask, _) = m.offsets();
                if m.maskable {
                    mask + 8
                } else {
                    data + 2
                }
            }
            Capability::MsiX(_) => 12,
            Capability::Pm(_) => 8,
            Capability::Pcie(_) => PCIE_CAP_SIZE,
            Capability::Vendor(v) => 3 + u16::from(v.len),
            Capability::Pasid(_) => 8,
            Capability::Dsn(_) => 12,
            Capability::Vsec(v) => 8 + u16::from(v.len),
            Capability::Aer(_) => AER_CAP_SIZE,
        };
        raw.div_ceil(4) * 4
    }

    /// Checks that need nothing but the capability itself.
    pub(crate) fn check(&self) -> Result<(), BuildError> {
        match self {
            Capability::Msi(m) => {
                if !m.vectors.is_power_of_two() || m.vectors > 32 {
                    return Err(BuildError::MsiVectors(m.vectors));
                }
            }
            Capability::MsiX(m) => {
                if !(1..=2048).contains(&m.table_size) {
                    return Err(BuildError::MsixTableSize(m.table_size));
                }
                if m.table_offset % 8 != 0 || m.pba_offset % 8 != 0 {
                    return Err(BuildError::MsixMisaligned);
                }
                if m.table_bar > 5 || m.pba_bar > 5 {
                    return Err(BuildError::MsixBarMissing(m.table_bar.max(m.pba_bar)));
                }
            }
            Capability::Pm(p) => {
                if p.pme_support > 0x1F {
                    return Err(BuildError::BadField(c"PME support has 5 bits"));
                }
            }
            Capability::Pcie(p) => p.check()?,
            Capability::Pasid(p) => {
                if !(1..=20).contains(&p.max_width) {
                    return Err(BuildError::BadField(c"PASID width must be 1..=20"));
                }
            }
            Capability::Vendor(_)
            | Capability::Dsn(_)
            | Capability::Vsec(_)
            | Capability::Aer(_) => {}
        }
        Ok(())
    }

    /// Standard capability ID, or extended capability ID and version.
    fn header_id(&self) -> (u16, u8) {
        match self {
            Capability::Msi(_) => (CAP_ID_MSI as u16, 0),
            Capability::MsiX(_) => (CAP_ID_MSIX as u16, 0),
            Capability::Pm(_) => (CAP_ID_PM as u16, 0),
            Capability::Pcie(_) => (CAP_ID_PCIE as u16, 0),
            Capability::Vendor(_) => (CAP_ID_VENDOR as u16, 0),
            Capability::Pasid(_) => (EXT_CAP_ID_PASID, 1),
            Capability::Dsn(_) => (EXT_CAP_ID_DSN, 1),
            Capability::Vsec(_) => (EXT_CAP_ID_VSEC, 1),
            Capability::Aer(_) => (EXT_CAP_ID_AER, 2),
        }
    }

    /// Write the capability's header (with `next` as its next pointer),
    /// contents and masks at `off`. The caller has checked that
    /// `off..off + size()` lies inside the capability's space.
    pub(crate) fn lay_out(&self, img: &mut Image<'_>, off: u16, next: u16) {
        let (id, version) = self.header_id();
        match self.space() {
            CapSpace::Standard => {
                img.cfg8(off, id as u8);
                // A standard capability's offset is below 0x100: the cast
                // keeps all of it.
                img.cfg8(off + 1, next as u8);
            }
            CapSpace::Extended => {
                img.cfg32(
                    off,
                    id as u32 | (version as u32) << 16 | u32::from(next) << 20,
                );
            }
        }
        match self {
            Capability::Msi(m) => {
                let mmc = m.vectors.trailing_zeros() as u16;
                let ctrl = (mmc << 1)
                    | if m.addr64 { MSI_CTRL_64BIT } else { 0 }
                    | if m.maskable { MSI_CTRL_MASKABLE } else { 0 };
                img.cfg16(off + 2, ctrl);
                img.wm16(off + 2, MSI_CTRL_ENABLE | MSI_CTRL_MME_MASK);
                img.wm32(off + 4, 0xFFFF_FFFC);
                if m.addr64 {
                    img.wm32(off + 8, 0xFFFF_FFFF);
                }
                let (data, mask, _) = m.offsets();
                img.wm16(off + data, 0xFFFF);
                if m.maskable {
                    let bits = if m.vectors >= 32 {
                        u32::MAX
                    } else {
                        (1u32 << m.vectors) - 1
                    };
                    img.wm32(off + mask, bits);
                }
            }
            Capability::MsiX(m) => {
                img.cfg16(off + 2, (m.table_size - 1) as u16);
                img.wm16(off + 2, MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL);
                img.cfg32(off + 4, m.table_offset | m.table_bar as u32);
                img.cfg32(off + 8, m.pba_offset | m.pba_bar as u32);
            }
            Capability::Pm(p) => {
                let pmc = 0x3u16
                    | if p.d1 { 1 << 9 } else { 0 }
                    | if p.d2 { 1 << 10 } else { 0 }
                    | (p.pme_support as u16) << 11;
                img.cfg16(off + 2, pmc);
                let nsr = if p.no_soft_reset {
                    PMCSR_NO_SOFT_RESET
                } else {
                    0
                };
                img.cfg16(off + PM_PMCSR, nsr);
                let pme_en = if p.pme_support != 0 { PMCSR_PME_EN } else { 0 };
                img.wm16(off + PM_PMCSR, PMCSR_STATE_MASK | pme_en);
                if p.pme_support != 0 {
                    img.w1c16(off + PM_PMCSR, PMCSR_PME_STATUS);
                }
            }
            Capability::Pcie(p) => {
                img.cfg16(off + 2, 0x2 | (p.device_type as u16) << 4);
                let devcap =
                    p.max_payload as u32 | 1 << 15 | if p.flr { PCIE_DEVCAP_FLR } else { 0 };
                img.cfg32(off + PCIE_DEVCAP, devcap);
                // Max read request 512 bytes, relaxed ordering and no snoop
                // enabled: the reset values of the specification.
                img.cfg16(off + PCIE_DEVCTL, 0x2810);
                img.wm16(off + PCIE_DEVCTL, PCIE_DEVCTL_WMASK);
                img.w1c16(off + PCIE_DEVSTA, PCIE_DEVSTA_W1C);
                let lnkcap = p.max_link_speed as u32 | (p.max_link_width as u32) << 4;
                img.cfg32(off + PCIE_LNKCAP, lnkcap);
                img.wm16(off + PCIE_LNKCTL, PCIE_LNKCTL_WMASK);
                img.cfg16(
                    off + PCIE_LNKSTA,
                    p.max_link_speed as u16 | (p.max_link_width as u16) << 4,
                );
                img.wm16(off + PCIE_DEVCTL2, PCIE_DEVCTL2_WMASK);
                let speeds = ((1u32 << p.max_link_speed) - 1) << 1;
                img.cfg32(off + PCIE_LNKCAP2, speeds);
                img.cfg16(off + PCIE_LNKCTL2, p.max_link_speed as u16);
                img.wm16(off + PCIE_LNKCTL2, PCIE_LNKCTL2_WMASK);
            }
            Capability::Vendor(v) => {
                img.cfg8(off + 2, 3 + v.data().len() as u8);
                img.cfg_bytes(off + 3, v.data());
            }
            Capability::Pasid(p) => {
                let cap = if p.exec { 1 << 1 } else { 0 }
                    | if p.privileged { 1 << 2 } else { 0 }
                    | (p.max_width as u16) << 8;
                img.cfg16(off + 4, cap);
                let ctl =
                    1 | if p.exec { 1 << 1 } else { 0 } | if p.privileged { 1 << 2 } else { 0 };
                img.wm16(off + 6, ctl);
            }
            Capability::Dsn(serial) => {
                img.cfg32(off + 4, *serial as u32);
                img.cfg32(off + 8, (*serial >> 32) as u32);
            }
            Capability::Vsec(v) => {
                let len = 8 + v.data().len() as u32;
                img.cfg32(off + 4, v.id as u32 | (v.rev as u32) << 16 | len << 20);
                img.cfg_bytes(off + 8, v.data());
            }
            Capability::Aer(a) => {
                img.w1c32(off + 0x04, AER_UNCOR_BITS);
                img.cfg32(off + 0x08, a.uncor_mask & AER_UNCOR_BITS);
                img.wm32(off + 0x08, AER_UNCOR_BITS);
                img.cfg32(off + 0x0C, a.uncor_severity & AER_UNCOR_BITS);
                img.wm32(off + 0x0C, AER_UNCOR_BITS);
                img.w1c32(off + 0x10, AER_COR_BITS);
                img.cfg32(off + 0x14, a.cor_mask & AER_COR_BITS);
                img.wm32(off + 0x14, AER_COR_BITS);
            }
        }
    }
}

/// Checked little-endian stores into an image. Out-of-range stores are
/// dropped; the builder only issues stores it has bounds-checked, so none
/// is ever dropped in practice, and none can panic.
pub(crate) struct Image<'a>(pub(crate) &'a mut pciem_config_image);

macro_rules! store {
    ($name:ident, $field:ident, $ty:ty) => {
        pub(crate) fn $name(&mut self, off: u16, v: $ty) {
            let off = usize::from(off);
            let bytes = v.to_le_bytes();
            if let Some(dst) = self.0.$field.get_mut(off..off + bytes.len()) {
                dst.copy_from_slice(&bytes);
            }
        }
    };
}

impl Image<'_> {
    store!(cfg8, config, u8);
    store!(cfg16, config, u16);
    store!(cfg32, config, u32);
    store!(wm8, wmask, u8);
    store!(wm16, wmask, u16);
    store!(wm32, wmask, u32);
    store!(w1c16, w1cmask, u16);
    store!(w1c32, w1cmask, u32);

    pub(crate) fn cfg_bytes(&mut self, off: u16, data: &[u8]) {
        let off = usize::from(off);
        if let Some(dst) = self.0.config.get_mut(off..off + data.len()) {
            dst.copy_from_slice(data);
        }
    }
}
