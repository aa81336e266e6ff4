//! The configuration-space builder.

use heapless::Vec;
use pciem_abi::{
    pciem_bar_config, pciem_cap_aer_userspace, pciem_cap_config, pciem_cap_dsn_userspace,
    pciem_cap_msi_userspace, pciem_cap_msix_userspace, pciem_cap_pasid_userspace,
    pciem_cap_pcie_userspace, pciem_cap_pm_userspace, pciem_cap_vendor_userspace,
    pciem_cap_vsec_userspace, pciem_config_space, PCIEM_BAR_FLAGS_MASK, PCIEM_BAR_MEM_PREFETCH,
    PCIEM_BAR_MEM_TYPE_64, PCIEM_BAR_SPACE_IO, PCIEM_CAP_AER, PCIEM_CAP_DSN, PCIEM_CAP_MSI,
    PCIEM_CAP_MSIX, PCIEM_CAP_PASID, PCIEM_CAP_PCIE, PCIEM_CAP_PM, PCIEM_CAP_VENDOR,
    PCIEM_CAP_VSEC,
};
use zerocopy::FromBytes;

use super::caps::{Image, VendorCap, VsecCap};
use super::regs::*;
use super::{
    AerCap, Bar, BuildError, CapSpace, Capability, ConfigSpace, MsiCap, MsixCap, PasidCap, PcieCap,
    PmCap,
};
use crate::access::{AccessMap, BarMode, TrapPolicy, TrapRange};

/// Most capabilities (standard and extended together) one device may have.
pub const MAX_CAPABILITIES: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Placed {
    offset: Option<u16>,
    cap: Capability,
}

/// Describes a type-0 configuration space and lays it out.
///
/// Chained methods record the first error and [`ConfigBuilder::build`]
/// returns it; the `add_*`/`try_*` methods return errors at once (the
/// kernel's incremental ioctl path uses those). Nothing here panics on any
/// input.
///
/// ```
/// use pciem_core::config::{Bar, ConfigBuilder, MsiCap, PcieCap};
/// let cfg = ConfigBuilder::new(0x1234, 0x0001)
///     .class(0x05, 0x80, 0x00)
///     .bar(0, Bar::memory64(1 << 20).prefetchable())
///     .msi(MsiCap::new(4).maskable(true))
///     .pcie(PcieCap::endpoint(3, 4))
///     .build()
///     .unwrap();
/// assert_eq!(cfg.read(0x00, 4).unwrap(), 0x0001_1234);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigBuilder {
    vendor: u16,
    device: u16,
    subsys_vendor: u16,
    subsys_device: u16,
    revision: u8,
    class: [u8; 3],
    pin: u8,
    bars: [Option<Bar>; 6],
    caps: Vec<Placed, MAX_CAPABILITIES>,
    access: AccessMap,
    error: Option<BuildError>,
}

impl ConfigBuilder {
    /// A device with these IDs (subsystem IDs default to the same), class
    /// 0xFF0000 (unassigned), no BARs, no capabilities, no interrupt pin.
    pub const fn new(vendor: u16, device: u16) -> Self {
        ConfigBuilder {
            vendor,
            device,
            subsys_vendor: vendor,
            subsys_device: device,
            revision: 0,
            class: [0x00, 0x00, 0xFF],
            pin: 0,
            bars: [None; 6],
            caps: Vec::new(),
            access: AccessMap::new(),
            error: None,
        }
    }

    fn record(mut self, r: Result<(), BuildError>) -> Self {
        if let (Err(e), None) = (r, self.error) {
            self.error = Some(e);
        }
        self
    }

    /// Subsystem vendor and device IDs.
    pub const fn subsystem(mut self, vendor: u16, device: u16) -> Self {
        self.subsys_vendor = vendor;
        self.subsys_device = device;
        self
    }

    /// Revision ID.
    pub const fn revision(mut self, revision: u8) -> Self {
        self.revision = revision;
        self
    }

    /// Class code: base class, subclass, programming interface.
    pub const fn class(mut self, base: u8, sub: u8, prog_if: u8) -> Self {
        self.class = [prog_if, sub, base];
        self
    }

    /// Interrupt pin: 0 none, 1..=4 INTA..INTD.
    pub fn interrupt_pin(mut self, pin: u8) -> Self {
        if pin > 4 {
            return self.record(Err(BuildError::BadField(c"interrupt pin must be 0..=4")));
        }
        self.pin = pin;
        self
    }

    /// Set the identity from the `PCIEM_IOCTL_SET_CONFIG` argument.
    pub fn identity(&mut self, id: &pciem_config_space) -> Result<&mut Self, BuildError> {
        if id.header_type & 0x7F != 0 {
            return Err(BuildError::HeaderType(id.header_type));
        }
        if id.reserved != 0 {
            return Err(BuildError::Reserved);
        }
        if id.interrupt_pin > 4 {
            return Err(BuildError::BadField(c"interrupt pin must be 0..=4"));
        }
        self.vendor = id.vendor_id;
        self.device = id.device_id;
        self.subsys_vendor = id.subsys_vendor_id;
        self.subsys_device = id.subsys_device_id;
        self.revision = id.revision;
        self.class = id.class_code;
        self.pin = id.interrupt_pin;
        Ok(self)
    }

    /// Declare BAR `index`.
    pub fn bar(mut self, index: u8, bar: Bar) -> Self {
        let r = self.add_bar(index, bar).map(|_| ());
        self.record(r)
    }

    /// Declare BAR `index`, failing at once.
    pub fn add_bar(&mut self, index: u8, bar: Bar) -> Result<&mut Self, BuildError> {
        if index > 5 {
            return Err(BuildError::BarIndex(index as u32));
        }
        bar.check(index)?;
        if self.slot_used(index) || (bar.is_64bit && self.slot_used(index + 1)) {
            return Err(BuildError::BarClash(index));
        }
        if let Some(slot) = self.bars.get_mut(index as usize) {
            *slot = Some(bar);
        }
        Ok(self)
    }

    /// Declare a BAR from the `PCIEM_IOCTL_ADD_BAR` argument.
    pub fn add_bar_abi(&mut self, cfg: &pciem_bar_config) -> Result<&mut Self, BuildError> {
        if cfg.bar_index > 5 {
            return Err(BuildError::BarIndex(cfg.bar_index));
        }
        let index = cfg.bar_index as u8;
        if cfg.flags & !PCIEM_BAR_FLAGS_MASK != 0 || cfg.flags & 0x2 != 0 {
            return Err(BuildError::BarFlags(index));
        }
        if cfg.flags & PCIEM_BAR_SPACE_IO != 0 {
            return Err(BuildError::IoBar(index));
        }
        let bar = Bar {
            size: cfg.size,
            is_64bit: cfg.flags & PCIEM_BAR_MEM_TYPE_64 != 0,
            prefetchable: cfg.flags & PCIEM_BAR_MEM_PREFETCH != 0,
        };
        self.add_bar(index, bar)
    }

    /// Whether slot `index` is taken by a BAR or a 64-bit BAR's upper half.
    fn slot_used(&self, index: u8) -> bool {
        let i = index as usize;
        let direct = matches!(self.bars.get(i), Some(Some(_)));
        let upper = i > 0 && matches!(self.bars.get(i - 1), Some(Some(b)) if b.is_64bit);
        direct || upper
    }

    /// The BAR declared at `index`.
    pub fn bar_at(&self, index: u8) -> Option<Bar> {
        self.bars.get(index as usize).copied().flatten()
    }

    /// Add a capability, placed after the previous one of its space.
    pub fn capability(mut self, cap: Capability) -> Self {
        let r = self.add_capability(None, cap).map(|_| ());
        self.record(r)
    }

    /// Add a capability at an explicit offset.
    pub fn capability_at(mut self, offset: u16, cap: Capability) -> Self {
        let r = self.add_capability(Some(offset), cap).map(|_| ());
        self.record(r)
    }

    /// Add a capability, failing at once (`offset` `None` = auto-place).
    pub fn add_capability(
        &mut self,
        offset: Option<u16>,
        cap: Capability,
    ) -> Result<&mut Self, BuildError> {
        cap.check()?;
        if !cap.repeatable()
            && self
                .caps
                .iter()
                .any(|p| core::mem::discriminant(&p.cap) == core::mem::discriminant(&cap))
        {
            return Err(BuildError::DuplicateCapability(cap.name()));
        }
        self.caps
            .push(Placed { offset, cap })
            .map_err(|_| BuildError::TooManyCapabilities(MAX_CAPABILITIES))?;
        Ok(self)
    }

    /// Add a capability from the `PCIEM_IOCTL_ADD_CAPABILITY` argument.
    pub fn add_capability_abi(&mut self, cfg: &pciem_cap_config) -> Result<&mut Self, BuildError> {
        if cfg.reserved != 0 {
            return Err(BuildError::Reserved);
        }
        let data = cfg
            .cap_data
            .get(..cfg.cap_size as usize)
            .ok_or(BuildError::CapSize {
                cap_type: cfg.cap_type,
                size: cfg.cap_size,
            })?;
        let size_err = BuildError::CapSize {
            cap_type: cfg.cap_type,
            size: cfg.cap_size,
        };
        let cap = match cfg.cap_type {
            PCIEM_CAP_MSI => {
                let p = pciem_cap_msi_userspace::read_from_bytes(data).map_err(|_| size_err)?;
                if p.reserved != 0 {
                    return Err(BuildError::Reserved);
                }
                if p.num_vectors_log2 > 5 {
                    return Err(BuildError::MsiVectorsLog2(p.num_vectors_log2));
                }
                Capability::Msi(MsiCap {
                    vectors: 1 << p.num_vectors_log2,
                    addr64: p.has_64bit != 0,
                    maskable: p.has_masking != 0,
                })
            }
            PCIEM_CAP_MSIX => {
                let p = pciem_cap_msix_userspace::read_from_bytes(data).map_err(|_| size_err)?;
                Capability::MsiX(MsixCap {
                    table_size: p.table_size as u32,
                    table_bar: p.table_bar,
                    table_offset: p.table_offset,
                    pba_bar: p.pba_bar,
                    pba_offset: p.pba_offset,
                })
            }
            PCIEM_CAP_PM => {
                let p = pciem_cap_pm_userspace::read_from_bytes(data).map_err(|_| size_err)?;
                Capability::Pm(PmCap {
                    no_soft_reset: p.no_soft_reset != 0,
                    pme_support: p.pme_support,
                    d1: p.d1_support != 0,
                    d2: p.d2_support != 0,
                })
            }
            PCIEM_CAP_PCIE => {
                let p = pciem_cap_pcie_userspace::read_from_bytes(data).map_err(|_| size_err)?;
                if p.reserved != [0; 3] {
                    return Err(BuildError::Reserved);
                }
                Capability::Pcie(PcieCap {
                    device_type: p.device_type,
                    max_link_speed: p.max_link_speed,
                    max_link_width: p.max_link_width,
                    flr: p.flr != 0,
                    max_payload: p.max_payload,
                })
            }
            PCIEM_CAP_VENDOR => {
                let p = pciem_cap_vendor_userspace::read_from_bytes(data).map_err(|_| size_err)?;
                if p.reserved != 0 {
                    return Err(BuildError::Reserved);
                }
                let len = p.data_len as usize;
                let bytes = p
                    .data
                    .get(..len)
                    .ok_or(BuildError::VendorDataTooLong(len))?;
                Capability::Vendor(VendorCap::new(bytes)?)
            }
            PCIEM_CAP_PASID => {
                let p = pciem_cap_pasid_userspace::read_from_bytes(data).map_err(|_| size_err)?;
                if p.reserved != 0 {
                    return Err(BuildError::Reserved);
                }
                Capability::Pasid(PasidCap {
                    max_width: p.max_pasid_width,
                    exec: p.exec != 0,
                    privileged: p.privileged != 0,
                })
            }
            PCIEM_CAP_DSN => {
                let p = pciem_cap_dsn_userspace::read_from_bytes(data).map_err(|_| size_err)?;
                Capability::Dsn(p.serial)
            }
            PCIEM_CAP_VSEC => {
                let p = pciem_cap_vsec_userspace::read_from_bytes(data).map_err(|_| size_err)?;
                if p.reserved != 0 || p.reserved2 != 0 {
                    return Err(BuildError::Reserved);
                }
                let len = p.data_len as usize;
                let bytes = p
                    .data
                    .get(..len)
                    .ok_or(BuildError::VendorDataTooLong(len))?;
                Capability::Vsec(VsecCap::new(p.vsec_id, p.vsec_rev, bytes)?)
            }
            PCIEM_CAP_AER => {
                let p = pciem_cap_aer_userspace::read_from_bytes(data).map_err(|_| size_err)?;
                if p.reserved != 0 {
                    return Err(BuildError::Reserved);
                }
                Capability::Aer(AerCap {
                    uncor_mask: p.uncor_mask,
                    uncor_severity: p.uncor_severity,
                    cor_mask: p.cor_mask,
                })
            }
            other => return Err(BuildError::UnknownCapType(other)),
        };
        let offset = match u16::try_from(cfg.offset) {
            Ok(0) => None,
            Ok(o) if o < EXT_CAP_END => Some(o),
            Ok(o) => return Err(BuildError::Misplaced(o)),
            Err(_) => return Err(BuildError::Misplaced(u16::MAX)),
        };
        self.add_capability(offset, cap)
    }

    /// MSI.
    pub fn msi(self, msi: MsiCap) -> Self {
        self.capability(Capability::Msi(msi))
    }

    /// MSI-X.
    pub fn msix(self, msix: MsixCap) -> Self {
        self.capability(Capability::MsiX(msix))
    }

    /// Power Management.
    pub fn pm(self, pm: PmCap) -> Self {
        self.capability(Capability::Pm(pm))
    }

    /// PCI Express.
    pub fn pcie(self, pcie: PcieCap) -> Self {
        self.capability(Capability::Pcie(pcie))
    }

    /// Vendor-specific capability with these read-only contents.
    pub fn vendor(self, data: &[u8]) -> Self {
        match VendorCap::new(data) {
            Ok(v) => self.capability(Capability::Vendor(v)),
            Err(e) => self.record(Err(e)),
        }
    }

    /// PASID.
    pub fn pasid(self, pasid: PasidCap) -> Self {
        self.capability(Capability::Pasid(pasid))
    }

    /// Device Serial Number.
    pub fn dsn(self, serial: u64) -> Self {
        self.capability(Capability::Dsn(serial))
    }

    /// Vendor-specific extended capability.
    pub fn vsec(self, id: u16, rev: u8, data: &[u8]) -> Self {
        match VsecCap::new(id, rev, data) {
            Ok(v) => self.capability(Capability::Vsec(v)),
            Err(e) => self.record(Err(e)),
        }
    }

    /// Advanced Error Reporting.
    pub fn aer(self, aer: AerCap) -> Self {
        self.capability(Capability::Aer(aer))
    }

    /// Put BAR `index` in trap mode: every driver access to it reaches the
    /// model (see [`crate::access`]). Ranges inside it get policies with
    /// [`ConfigBuilder::trap_range`]; the rest of the BAR is
    /// [`TrapPolicy::PLAIN`].
    pub fn trap_bar(mut self, index: u8) -> Self {
        let r = self.add_trap_bar(index).map(|_| ());
        self.record(r)
    }

    /// Put BAR `index` in trap mode, failing at once (only the slot number
    /// is checked here; the rest when the map is built).
    pub fn add_trap_bar(&mut self, index: u8) -> Result<&mut Self, BuildError> {
        self.access.set_mode(index, BarMode::Trap)?;
        Ok(self)
    }

    /// Serve `len` bytes at `offset` of the trapped BAR `bar` by `policy`.
    pub fn trap_range(mut self, bar: u8, offset: u64, len: u64, policy: TrapPolicy) -> Self {
        let r = self
            .add_trap_range(TrapRange {
                bar,
                offset,
                len,
                policy,
            })
            .map(|_| ());
        self.record(r)
    }

    /// Declare a trap range, failing at once on what can be checked without
    /// the BARs (slot, length, overlap, count); the rest is checked by
    /// [`ConfigBuilder::access_map`] and [`ConfigBuilder::build`].
    pub fn add_trap_range(&mut self, range: TrapRange) -> Result<&mut Self, BuildError> {
        self.access.add_range(range)?;
        Ok(self)
    }

    /// How long a model-answered read may take before it completes
    /// all-ones, in microseconds (default
    /// [`pciem_abi::PCIEM_READ_TIMEOUT_DEFAULT_US`]).
    pub fn read_timeout_us(mut self, us: u32) -> Self {
        let r = self.access.set_read_timeout_us(Some(us));
        self.record(r)
    }

    /// The access map declared so far, checked against the BARs: each
    /// trapped slot is a declared BAR, each range lies on a trapped BAR and
    /// inside it. Returns the first error of any chained call.
    pub fn access_map(&self) -> Result<AccessMap, BuildError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.access.check_with(|i| self.bar_at(i).map(|b| b.size))?;
        Ok(self.access.clone())
    }

    /// Lay the space out into a new [`ConfigSpace`].
    pub fn build(&self) -> Result<ConfigSpace, BuildError> {
        let mut out = ConfigSpace::zeroed();
        self.build_into(&mut out)?;
        Ok(out)
    }

    /// Lay the space out into `out`, overwriting it entirely (no large
    /// temporaries: safe on a kernel stack). On error `out` is left zeroed.
    pub fn build_into(&self, out: &mut ConfigSpace) -> Result<(), BuildError> {
        out.clear();
        if let Some(e) = self.error {
            return Err(e);
        }
        self.access.check_with(|i| self.bar_at(i).map(|b| b.size))?;
        self.check_msix_bars()?;
        let mut offsets = [0u16; MAX_CAPABILITIES];
        self.place(&mut offsets)?;

        let mut img = Image(out.image_mut_internal());
        img.cfg16(VENDOR_ID, self.vendor);
        img.cfg16(DEVICE_ID, self.device);
        img.wm16(COMMAND, COMMAND_WMASK);
        img.w1c16(STATUS, STATUS_W1C);
        img.cfg8(REVISION, self.revision);
        img.cfg_bytes(CLASS_PROG, &self.class);
        img.wm8(CACHE_LINE_SIZE, 0xFF);
        img.cfg16(SUBSYS_VENDOR_ID, self.subsys_vendor);
        img.cfg16(SUBSYS_ID, self.subsys_device);
        img.wm8(INTERRUPT_LINE, 0xFF);
        img.cfg8(INTERRUPT_PIN, self.pin);
        for (off, bar) in (BAR0..).step_by(4).zip(&self.bars) {
            let Some(bar) = bar else { continue };
            let addr_mask = !(bar.size - 1);
            img.cfg32(off, bar.flags());
            img.wm32(off, (addr_mask as u32) & !0xF);
            if bar.is_64bit {
                img.wm32(off + 4, (addr_mask >> 32) as u32);
            }
        }

        // Link each space's capabilities in offset order; the extended
        // chain must start at 0x100.
        for space in [CapSpace::Standard, CapSpace::Extended] {
            let mut order = [(0u16, 0usize); MAX_CAPABILITIES];
            let mut n = 0;
            for (i, p) in self.caps.iter().enumerate() {
                if p.cap.space() == space {
                    if let Some(slot) = order.get_mut(n) {
                        *slot = (offsets.get(i).copied().unwrap_or(0), i);
                        n += 1;
                    }
                }
            }
            let order = order.get_mut(..n).unwrap_or(&mut []);
            order.sort_unstable();
            for (k, &(off, i)) in order.iter().enumerate() {
                let next = order.get(k + 1).map_or(0, |&(o, _)| o);
                if let Some(p) = self.caps.get(i) {
                    p.cap.lay_out(&mut img, off, next);
                }
            }
            if let (CapSpace::Standard, Some(&(first, _))) = (space, order.first()) {
                // Below 0x100, as `place` checked: the cast keeps all of it.
                img.cfg8(CAP_PTR, first as u8);
                img.cfg16(STATUS, STATUS_CAP_LIST);
            }
        }
        Ok(())
    }

    fn check_msix_bars(&self) -> Result<(), BuildError> {
        for p in &self.caps {
            let Capability::MsiX(m) = p.cap else { continue };
            for (bar, offset, len) in [
                (m.table_bar, m.table_offset as u64, m.table_bytes()),
                (m.pba_bar, m.pba_offset as u64, m.pba_bytes()),
            ] {
                let b = self.bar_at(bar).ok_or(BuildError::MsixBarMissing(bar))?;
                if offset + len > b.size {
                    return Err(BuildError::MsixOutsideBar(bar));
                }
            }
        }
        Ok(())
    }

    /// Choose every capability's offset: explicit ones where asked, the
    /// others after the previous capability of the same space; reject
    /// overlaps and overflows.
    fn place(&self, offsets: &mut [u16; MAX_CAPABILITIES]) -> Result<(), BuildError> {
        let mut cursor = [STD_CAP_START, EXT_CAP_START];
        for (i, p) in self.caps.iter().enumerate() {
            let (si, start, end) = match p.cap.space() {
                CapSpace::Standard => (0, STD_CAP_START, STD_CAP_END),
                CapSpace::Extended => (1, EXT_CAP_START, EXT_CAP_END),
            };
            let size = p.cap.size();
            let off = match p.offset {
                Some(o) => {
                    if !o.is_multiple_of(4) || o < start || o >= end {
                        return Err(BuildError::Misplaced(o));
                    }
                    o
                }
                None => cursor.get(si).copied().unwrap_or(start),
            };
            if off + size > end {
                return Err(BuildError::Overflow(p.cap.space()));
            }
            for (j, q) in self.caps.iter().enumerate().take(i) {
                let other = offsets.get(j).copied().unwrap_or(0);
                if q.cap.space() == p.cap.space()
                    && off < other + q.cap.size()
                    && other < off + size
                {
                    return Err(BuildError::Overlap(off));
                }
            }
            if let Some(slot) = offsets.get_mut(i) {
                *slot = off;
            }
            if let Some(c) = cursor.get_mut(si) {
                *c = (*c).max(off + size);
            }
        }
        // Extended capabilities are found from 0x100, so one must be there.
        let ext = self
            .caps
            .iter()
            .zip(offsets.iter())
            .filter(|(p, _)| p.cap.space() == CapSpace::Extended);
        if let Some(lowest) = ext.map(|(_, &o)| o).min() {
            if lowest != EXT_CAP_START {
                return Err(BuildError::Misplaced(lowest));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{ReadPolicy, WritePolicy};

    fn base() -> ConfigBuilder {
        ConfigBuilder::new(0x1234, 1)
            .bar(0, Bar::memory64(4096))
            .bar(2, Bar::memory32(256))
    }

    #[test]
    fn trap_declarations_are_carried_and_checked() {
        let b = base()
            .trap_bar(0)
            .trap_range(0, 0x4, 4, TrapPolicy::MODEL)
            .trap_range(0, 0x8, 4, TrapPolicy::DOORBELL)
            .read_timeout_us(2000);
        let m = b.access_map().unwrap();
        assert!(m.is_trapped(0) && !m.is_trapped(2));
        assert_eq!(m.ranges().len(), 2);
        assert_eq!(m.read_timeout_us(), Some(2000));
        assert_eq!(
            m.classify(0, 0x4, 4),
            TrapPolicy::new(ReadPolicy::Model, WritePolicy::DeliverOnly)
        );
        assert!(b.build().is_ok());
        // Without trap declarations: all watch mode.
        assert!(!base().access_map().unwrap().any_trapped());
    }

    #[test]
    fn bad_trap_declarations_fail_build_and_access_map() {
        let cases = [
            (
                base().trap_range(2, 0, 4, TrapPolicy::MODEL),
                BuildError::TrapRangeNotTrapped(2),
            ),
            (base().trap_bar(1), BuildError::TrapBarMissing(1)),
            (base().trap_bar(4), BuildError::TrapBarMissing(4)),
            (
                base().trap_bar(2).trap_range(2, 0xFC, 8, TrapPolicy::MODEL),
                BuildError::TrapRangeOutsideBar {
                    bar: 2,
                    offset: 0xFC,
                    len: 8,
                },
            ),
            (
                base()
                    .trap_bar(0)
                    .trap_range(0, 0, 8, TrapPolicy::MODEL)
                    .trap_range(0, 4, 4, TrapPolicy::MODEL),
                BuildError::TrapRangeOverlap { bar: 0, offset: 4 },
            ),
            (base().trap_bar(7), BuildError::BarIndex(7)),
        ];
        for (b, want) in cases {
            assert_eq!(b.access_map(), Err(want));
            assert_eq!(b.build().err(), Some(want));
        }
        let mut b = base().trap_bar(0);
        for i in 0..32 {
            b = b.trap_range(0, i * 4, 4, TrapPolicy::MODEL);
        }
        assert_eq!(
            b.trap_range(0, 0x200, 4, TrapPolicy::MODEL).access_map(),
            Err(BuildError::TooManyTrapRanges(32))
        );
    }
}
