//! The configuration space image and the semantics of host accesses.

use pciem_abi::{pciem_config_image, BarFlags, PCIEM_CONFIG_SPACE_SIZE};

use super::regs::*;
use super::{AccessError, BuildError, WriteEffects};

/// A configuration space with its write and write-1-to-clear masks.
///
/// `#[repr(transparent)]` over [`pciem_config_image`], so the kernel can
/// hand a pointer to its own (heap-allocated) image to
/// [`ConfigSpace::from_image_mut`] at no cost.
#[repr(transparent)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigSpace {
    image: pciem_config_image,
}

/// A BAR as the configuration space describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BarInfo {
    /// Slot.
    pub index: u8,
    /// Size in bytes.
    pub size: u64,
    /// Type bits.
    pub flags: BarFlags,
    /// Address currently programmed (type bits stripped).
    pub address: u64,
}

impl BarInfo {
    /// Decodes a 64-bit address.
    pub fn is_64bit(&self) -> bool {
        self.flags.contains(BarFlags::MEM_TYPE_64)
    }
}

/// MSI capability state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiState {
    /// Capability offset.
    pub offset: u16,
    /// MSI Enable.
    pub enabled: bool,
    /// Vectors the function supports.
    pub vectors_capable: u32,
    /// Vectors the driver enabled (never more than capable).
    pub vectors_enabled: u32,
    /// 64-bit address capable.
    pub is_64bit: bool,
    /// Per-vector masking capable.
    pub per_vector_mask: bool,
    /// Message address.
    pub address: u64,
    /// Message data (vector `n` sends `data | n` in its low bits).
    pub data: u16,
    /// Mask bits (0 without per-vector masking).
    pub mask: u32,
    /// Pending bits (0 without per-vector masking).
    pub pending: u32,
}

impl MsiState {
    /// Whether `vector` is masked.
    pub fn is_masked(&self, vector: u32) -> bool {
        vector < 32 && self.mask & (1 << vector) != 0
    }
}

/// MSI-X capability state (the table itself lives in BAR memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsixState {
    /// Capability offset.
    pub offset: u16,
    /// MSI-X Enable.
    pub enabled: bool,
    /// Function Mask.
    pub function_mask: bool,
    /// Table entries.
    pub table_size: u32,
    /// BAR of the table.
    pub table_bar: u8,
    /// Offset of the table in its BAR.
    pub table_offset: u32,
    /// BAR of the PBA.
    pub pba_bar: u8,
    /// Offset of the PBA in its BAR.
    pub pba_offset: u32,
}

/// Iterator over a capability chain that stops on anything malformed
/// (out-of-range or misaligned pointers, or more links than the space can
/// hold, which is how a cycle shows).
#[derive(Clone, Debug)]
pub struct CapabilityIter<'a> {
    space: &'a ConfigSpace,
    next: u16,
    extended: bool,
    budget: usize,
}

impl Iterator for CapabilityIter<'_> {
    /// `(capability ID, offset)`.
    type Item = (u16, u16);

    fn next(&mut self) -> Option<(u16, u16)> {
        let (start, end) = if self.extended {
            (EXT_CAP_START, EXT_CAP_END)
        } else {
            (STD_CAP_START, STD_CAP_END)
        };
        let off = self.next;
        if self.budget == 0 || off < start || off > end - 4 || !off.is_multiple_of(4) {
            return None;
        }
        self.budget -= 1;
        if self.extended {
            let hdr = self.space.raw32(off)?;
            if hdr == 0 || hdr == u32::MAX {
                return None;
            }
            // Bits 31:20, a 12-bit field: the cast keeps all of it.
            self.next = (hdr >> 20) as u16 & 0xFFC;
            Some((hdr as u16, off))
        } else {
            let id = self.space.raw8(off)?;
            self.next = u16::from(self.space.raw8(off + 1)?) & 0xFC;
            Some((id.into(), off))
        }
    }
}

impl ConfigSpace {
    /// An all-zero space (no device).
    pub fn zeroed() -> Self {
        ConfigSpace {
            image: pciem_config_image::default(),
        }
    }

    /// Wrap an image.
    pub fn from_image(image: pciem_config_image) -> Self {
        ConfigSpace { image }
    }

    /// View an image as a configuration space.
    pub fn from_image_ref(image: &pciem_config_image) -> &Self {
        // SAFETY: ConfigSpace is #[repr(transparent)] over
        // pciem_config_image, so the pointer cast preserves layout,
        // alignment and validity; the lifetime is carried over.
        unsafe { &*(image as *const pciem_config_image as *const ConfigSpace) }
    }

    /// View an image as a mutable configuration space.
    pub fn from_image_mut(image: &mut pciem_config_image) -> &mut Self {
        // SAFETY: as in `from_image_ref`; the exclusive borrow is carried
        // over, so no aliasing is introduced.
        unsafe { &mut *(image as *mut pciem_config_image as *mut ConfigSpace) }
    }

    /// The image with its masks.
    pub fn image(&self) -> &pciem_config_image {
        &self.image
    }

    /// Unwrap the image.
    pub fn into_image(self) -> pciem_config_image {
        self.image
    }

    pub(crate) fn image_mut_internal(&mut self) -> &mut pciem_config_image {
        &mut self.image
    }

    pub(crate) fn clear(&mut self) {
        self.image.config.fill(0);
        self.image.wmask.fill(0);
        self.image.w1cmask.fill(0);
    }

    pub(crate) fn raw8(&self, off: u16) -> Option<u8> {
        self.image.config.get(usize::from(off)).copied()
    }

    pub(crate) fn raw16(&self, off: u16) -> Option<u16> {
        let off = usize::from(off);
        let b = self.image.config.get(off..off + 2)?;
        Some(u16::from_le_bytes([*b.first()?, *b.get(1)?]))
    }

    pub(crate) fn raw32(&self, off: u16) -> Option<u32> {
        let off = usize::from(off);
        let b = self.image.config.get(off..off + 4)?;
        Some(u32::from_le_bytes([
            *b.first()?,
            *b.get(1)?,
            *b.get(2)?,
            *b.get(3)?,
        ]))
    }

    fn wmask32(&self, off: u16) -> Option<u32> {
        let off = usize::from(off);
        let b = self.image.wmask.get(off..off + 4)?;
        Some(u32::from_le_bytes([
            *b.first()?,
            *b.get(1)?,
            *b.get(2)?,
            *b.get(3)?,
        ]))
    }

    fn range(offset: u16, width: u8) -> Result<(usize, usize), AccessError> {
        if !matches!(width, 1 | 2 | 4) {
            return Err(AccessError::BadWidth(width));
        }
        let start = usize::from(offset);
        let end = start + usize::from(width);
        if end > PCIEM_CONFIG_SPACE_SIZE {
            return Err(AccessError::OutOfRange { offset, width });
        }
        Ok((start, end))
    }

    /// Host read of 1, 2 or 4 bytes (little-endian) at any offset.
    pub fn read(&self, offset: u16, width: u8) -> Result<u32, AccessError> {
        let (start, end) = Self::range(offset, width)?;
        let mut v = 0u32;
        for (i, b) in self
            .image
            .config
            .get(start..end)
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            v |= (*b as u32) << (8 * i);
        }
        Ok(v)
    }

    /// Host write of 1, 2 or 4 bytes (little-endian) at any offset: bits in
    /// the write mask take the new value, bits in the W1C mask clear where 1
    /// is written, all others keep their value. Returns what changed.
    pub fn write(
        &mut self,
        offset: u16,
        width: u8,
        value: u32,
    ) -> Result<WriteEffects, AccessError> {
        let (start, end) = Self::range(offset, width)?;
        let bytes = value.to_le_bytes();
        let mut before = [0u8; 4];
        let pm = self.find_capability(CAP_ID_PM);
        let pm_old = pm.and_then(|o| self.raw16(o + PM_PMCSR));

        for (i, off) in (start..end).enumerate() {
            let (Some(old), Some(&w), Some(&c), Some(&b)) = (
                self.image.config.get(off).copied(),
                self.image.wmask.get(off),
                self.image.w1cmask.get(off),
                bytes.get(i),
            ) else {
                continue;
            };
            if let Some(slot) = before.get_mut(i) {
                *slot = old;
            }
            let new = ((old & !w) | (b & w)) & !(b & c);
            if let Some(dst) = self.image.config.get_mut(off) {
                *dst = new;
            }
        }

        let mut fx = WriteEffects::empty();
        if let (Some(pm), Some(old)) = (pm, pm_old) {
            fx |= self.fix_power_state(pm, old);
        }
        if let Some(pcie) = self.find_capability(CAP_ID_PCIE) {
            let flr_byte = usize::from(pcie + PCIE_DEVCTL + 1);
            let flr_capable = self.raw32(pcie + PCIE_DEVCAP).unwrap_or(0) & PCIE_DEVCAP_FLR != 0;
            let written = flr_byte.checked_sub(start).and_then(|i| {
                if flr_byte < end {
                    bytes.get(i)
                } else {
                    None
                }
            });
            if flr_capable && written.is_some_and(|b| b & 0x80 != 0) {
                fx |= WriteEffects::FLR;
            }
        }

        let changed = (start..end)
            .enumerate()
            .any(|(i, off)| before.get(i).copied() != self.image.config.get(off).copied());
        if !changed {
            return Ok(fx);
        }
        fx |= WriteEffects::CHANGED;
        let overlaps = |at: u16, len: u16| {
            let at = usize::from(at);
            start < at + usize::from(len) && at < end
        };
        if overlaps(COMMAND, 2) {
            fx |= WriteEffects::COMMAND;
        }
        if overlaps(BAR0, 24) {
            fx |= WriteEffects::BAR;
        }
        if let Some(msi) = self.find_capability(CAP_ID_MSI) {
            if overlaps(msi, 24) {
                fx |= WriteEffects::MSI;
            }
        }
        if let Some(msix) = self.find_capability(CAP_ID_MSIX) {
            if overlaps(msix + 2, 2) {
                fx |= WriteEffects::MSIX;
            }
        }
        Ok(fx)
    }

    /// After a write that may have touched PMCSR: a write selecting an
    /// unsupported state (D1/D2 not advertised) is ignored as the PM
    /// specification requires; report state changes and the reset that
    /// D3hot to D0 implies without No_Soft_Reset.
    fn fix_power_state(&mut self, pm: u16, old: u16) -> WriteEffects {
        let pmc = self.raw16(pm + 2).unwrap_or(0);
        let Some(now) = self.raw16(pm + PM_PMCSR) else {
            return WriteEffects::empty();
        };
        let state = now & PMCSR_STATE_MASK;
        let supported = match state {
            1 => pmc & (1 << 9) != 0,
            2 => pmc & (1 << 10) != 0,
            _ => true,
        };
        let now = if supported {
            now
        } else {
            let restored = (now & !PMCSR_STATE_MASK) | (old & PMCSR_STATE_MASK);
            if let Some(b) = self.image.config.get_mut(usize::from(pm + PM_PMCSR)) {
                *b = restored as u8;
            }
            restored
        };
        let (from, to) = (old & PMCSR_STATE_MASK, now & PMCSR_STATE_MASK);
        let mut fx = WriteEffects::empty();
        if from != to {
            fx |= WriteEffects::PM_STATE;
            if from == 3 && to == 0 && now & PMCSR_NO_SOFT_RESET == 0 {
                fx |= WriteEffects::D3HOT_TO_D0_RESET;
            }
        }
        fx
    }

    /// Device-side write of 1, 2 or 4 bytes that ignores the masks (for
    /// device-owned bits such as status or pending bits).
    pub fn device_write(&mut self, offset: u16, width: u8, value: u32) -> Result<(), AccessError> {
        let (start, end) = Self::range(offset, width)?;
        let bytes = value.to_le_bytes();
        if let Some(dst) = self.image.config.get_mut(start..end) {
            for (d, s) in dst.iter_mut().zip(bytes.iter()) {
                *d = *s;
            }
        }
        Ok(())
    }

    /// Vendor ID.
    pub fn vendor_id(&self) -> u16 {
        self.raw16(VENDOR_ID).unwrap_or(0)
    }

    /// Device ID.
    pub fn device_id(&self) -> u16 {
        self.raw16(DEVICE_ID).unwrap_or(0)
    }

    /// Command register.
    pub fn command(&self) -> u16 {
        self.raw16(COMMAND).unwrap_or(0)
    }

    /// Interrupt pin (0 none, 1..=4 INTA..INTD).
    pub fn interrupt_pin(&self) -> u8 {
        self.raw8(INTERRUPT_PIN).unwrap_or(0)
    }

    /// Set or clear the status register's Interrupt Status bit (the device
    /// asserting INTx).
    pub fn set_intx_status(&mut self, asserted: bool) {
        let status = self.raw16(STATUS).unwrap_or(0);
        let new = if asserted {
            status | STATUS_INTERRUPT
        } else {
            status & !STATUS_INTERRUPT
        };
        let _ = self.device_write(STATUS, 2, new.into());
    }

    /// BAR `index` as the image describes it; `None` for an unused slot, an
    /// I/O BAR, or the upper half of a 64-bit BAR.
    pub fn bar(&self, index: u8) -> Option<BarInfo> {
        if index > 5 {
            return None;
        }
        // Walk the slots from 0: a 64-bit BAR's type bits (read-only) say
        // that the next slot is its upper half, whatever that holds.
        let mut i = 0u8;
        while i < index {
            let lo = self.raw32(BAR0 + 4 * u16::from(i))?;
            i += if lo & 0x7 == 0x4 { 2 } else { 1 };
        }
        if i != index {
            return None;
        }
        let off = BAR0 + 4 * u16::from(i);
        let lo = self.raw32(off)?;
        if lo & 0x1 != 0 {
            return None;
        }
        let flags = BarFlags::from_bits_truncate(lo & 0xF);
        let is64 = flags.contains(BarFlags::MEM_TYPE_64) && index < 5;
        let (mask, address) = if is64 {
            let hi_mask = self.wmask32(off + 4)? as u64;
            let hi = self.raw32(off + 4)? as u64;
            let m = hi_mask << 32 | (self.wmask32(off)? & !0xF) as u64;
            (m, hi << 32 | (lo & !0xF) as u64)
        } else {
            ((self.wmask32(off)? & !0xF) as u64, (lo & !0xF) as u64)
        };
        if mask == 0 {
            return None;
        }
        Some(BarInfo {
            index,
            size: mask & mask.wrapping_neg(),
            flags,
            address,
        })
    }

    /// Every implemented BAR.
    pub fn bars(&self) -> impl Iterator<Item = BarInfo> + '_ {
        (0..6).filter_map(|i| self.bar(i))
    }

    /// Device-side: program BAR `index` with `addr` (masks bypassed). The
    /// address must be aligned to the BAR's size and fit its type.
    pub fn set_bar_address(&mut self, index: u8, addr: u64) -> Result<(), BuildError> {
        let bar = self
            .bar(index)
            .ok_or(BuildError::BadImage(c"no such BAR"))?;
        if addr & (bar.size - 1) != 0 {
            return Err(BuildError::BadField(c"BAR address not aligned to its size"));
        }
        if !bar.is_64bit() && addr > u32::MAX as u64 {
            return Err(BuildError::BadField(
                c"address above 4 GiB for a 32-bit BAR",
            ));
        }
        let off = BAR0 + 4 * u16::from(index);
        let lo = (addr as u32 & !0xF) | bar.flags.bits();
        self.device_write(off, 4, lo)
            .map_err(|_| BuildError::BadImage(c"BAR offset"))?;
        if bar.is_64bit() {
            self.device_write(off + 4, 4, (addr >> 32) as u32)
                .map_err(|_| BuildError::BadImage(c"BAR offset"))?;
        }
        Ok(())
    }

    /// The standard capability chain: `(ID, offset)` pairs.
    pub fn capabilities(&self) -> CapabilityIter<'_> {
        let has_list = self.raw16(STATUS).unwrap_or(0) & STATUS_CAP_LIST != 0;
        CapabilityIter {
            space: self,
            next: if has_list {
                u16::from(self.raw8(CAP_PTR).unwrap_or(0)) & 0xFC
            } else {
                0
            },
            extended: false,
            budget: usize::from(STD_CAP_END - STD_CAP_START) / 4,
        }
    }

    /// The extended capability chain from 0x100: `(ID, offset)` pairs.
    pub fn ext_capabilities(&self) -> CapabilityIter<'_> {
        CapabilityIter {
            space: self,
            next: EXT_CAP_START,
            extended: true,
            budget: usize::from(EXT_CAP_END - EXT_CAP_START) / 4,
        }
    }

    /// Offset of the first standard capability with this ID.
    pub fn find_capability(&self, id: u8) -> Option<u16> {
        self.capabilities()
            .find(|&(i, _)| i == id as u16)
            .map(|(_, o)| o)
    }

    /// Offset of the first extended capability with this ID.
    pub fn find_ext_capability(&self, id: u16) -> Option<u16> {
        self.ext_capabilities()
            .find(|&(i, _)| i == id)
            .map(|(_, o)| o)
    }

    /// MSI state, if the function has MSI.
    pub fn msi(&self) -> Option<MsiState> {
        let o = self.find_capability(CAP_ID_MSI)?;
        let ctrl = self.raw16(o + 2)?;
        let is_64bit = ctrl & MSI_CTRL_64BIT != 0;
        let per_vector_mask = ctrl & MSI_CTRL_MASKABLE != 0;
        let capable = 1u32 << ((ctrl >> 1) & 0x7).min(5);
        let enabled_log2 = ((ctrl >> 4) & 0x7).min(5);
        let (data_off, mask_off, pend_off) = if is_64bit { (12, 16, 20) } else { (8, 12, 16) };
        let lo = self.raw32(o + 4)? as u64;
        let hi = if is_64bit {
            self.raw32(o + 8)? as u64
        } else {
            0
        };
        Some(MsiState {
            offset: o,
            enabled: ctrl & MSI_CTRL_ENABLE != 0,
            vectors_capable: capable,
            vectors_enabled: (1u32 << enabled_log2).min(capable),
            is_64bit,
            per_vector_mask,
            address: hi << 32 | lo,
            data: self.raw16(o + data_off)?,
            mask: if per_vector_mask {
                self.raw32(o + mask_off)?
            } else {
                0
            },
            pending: if per_vector_mask {
                self.raw32(o + pend_off)?
            } else {
                0
            },
        })
    }

    /// Function reset (FLR, or D3hot to D0 without No_Soft_Reset): the
    /// configuration registers go back to `initial` (the image the device
    /// was registered with), except the six BAR registers, which keep what
    /// the host programmed: Linux restores a reset function's BARs from its
    /// saved state and expects them where they were. Interrupt state in
    /// configuration space (MSI enable, masks, Pending bits) is reset with
    /// the rest; the masks never change and are left as they are.
    pub fn reset_keeping_bars(&mut self, initial: &ConfigSpace) {
        let bars = usize::from(BAR0)..usize::from(BAR0) + 24;
        let mut kept = [0u8; 24];
        kept.copy_from_slice(&self.image.config[bars.clone()]);
        self.image.config = initial.image.config;
        self.image.config[bars].copy_from_slice(&kept);
    }

    /// Device-side, when the device raises MSI `vector`: if the driver has
    /// masked it (per-vector masking), set its Pending bit and return
    /// `true`: the message is held, to go out when [`Self::msi_take_unmasked`]
    /// finds it unmasked. `false` if it is not masked (deliver it now).
    pub fn msi_hold_if_masked(&mut self, vector: u32) -> bool {
        match self.msi() {
            Some(msi) if msi.is_masked(vector) => self.set_msi_pending(vector, true),
            _ => false,
        }
    }

    /// Device-side, after the driver wrote MSI control or mask bits: the
    /// vectors (a bit each) that are pending but no longer masked, among
    /// those enabled, with their Pending bits cleared: they are due now.
    /// 0 while MSI is disabled.
    pub fn msi_take_unmasked(&mut self) -> u32 {
        let Some(msi) = self.msi().filter(|m| m.enabled && m.per_vector_mask) else {
            return 0;
        };
        let enabled = match msi.vectors_enabled {
            32.. => u32::MAX,
            n => (1u32 << n) - 1,
        };
        let due = msi.pending & !msi.mask & enabled;
        for v in 0..32 {
            if due & (1 << v) != 0 {
                self.set_msi_pending(v, false);
            }
        }
        due
    }

    /// Device-side: set or clear the MSI Pending bit of `vector`. Returns
    /// `false` when the function has no per-vector masking or no such
    /// vector.
    pub fn set_msi_pending(&mut self, vector: u32, pending: bool) -> bool {
        let Some(msi) = self.msi() else { return false };
        if !msi.per_vector_mask || vector >= msi.vectors_capable {
            return false;
        }
        let off = msi.offset + if msi.is_64bit { 20 } else { 16 };
        let bits = if pending {
            msi.pending | 1 << vector
        } else {
            msi.pending & !(1 << vector)
        };
        self.device_write(off, 4, bits).is_ok()
    }

    /// MSI-X state, if the function has MSI-X.
    pub fn msix(&self) -> Option<MsixState> {
        let o = self.find_capability(CAP_ID_MSIX)?;
        let ctrl = self.raw16(o + 2)?;
        let table = self.raw32(o + 4)?;
        let pba = self.raw32(o + 8)?;
        Some(MsixState {
            offset: o,
            enabled: ctrl & MSIX_CTRL_ENABLE != 0,
            function_mask: ctrl & MSIX_CTRL_MASKALL != 0,
            table_size: (ctrl & 0x7FF) as u32 + 1,
            table_bar: (table & 0x7) as u8,
            table_offset: table & !0x7,
            pba_bar: (pba & 0x7) as u8,
            pba_offset: pba & !0x7,
        })
    }

    /// Current PM power state (0 = D0 ... 3 = D3hot), if the function has
    /// the PM capability.
    pub fn power_state(&self) -> Option<u8> {
        let o = self.find_capability(CAP_ID_PM)?;
        Some((self.raw16(o + PM_PMCSR)? & PMCSR_STATE_MASK) as u8)
    }
}
