//! A virtual PCIe root port: the type-1 configuration space of the bridge a
//! device sits below, with the slot's hot-plug registers, emulated with the
//! same masks and semantics as a device's space (the model of Linux's
//! `drivers/pci/pci-bridge-emul.c`).
//!
//! The port is what Linux's own port services bind to (portdrv, then
//! pciehp): a PCI Express capability of type Root Port with Slot
//! Implemented; a slot that is hot-plug capable and surprise capable,
//! reports presence and has no command-completed interrupt (so pciehp
//! never waits for one), a link that reports Data Link Layer Link Active,
//! and one MSI vector for the port's interrupt. It forwards one bus
//! (`secondary`) and one 32-bit memory window; it has no I/O and no
//! prefetchable window (their registers read zero and ignore writes, which
//! is how Linux learns they are absent).
//!
//! [`set_presence`] is the device side of a surprise removal: presence and
//! link go away, the change bits are set, and the caller learns whether the
//! port's interrupt is due.

use super::regs::*;
use super::ConfigSpace;

/// Offset of the port's PCI Express capability.
pub const PORT_PCIE_CAP: u16 = 0x40;
/// Offset of the port's MSI capability.
pub const PORT_MSI_CAP: u16 = 0x80;

/// Slot Capabilities (PCI Express capability + 0x14).
pub const PCIE_SLTCAP: u16 = 0x14;
/// Slot Control (+ 0x18).
pub const PCIE_SLTCTL: u16 = 0x18;
/// Slot Status (+ 0x1A).
pub const PCIE_SLTSTA: u16 = 0x1A;
/// Root Control (+ 0x1C).
pub const PCIE_RTCTL: u16 = 0x1C;
/// Root Status (+ 0x20).
pub const PCIE_RTSTA: u16 = 0x20;

/// Slot Capabilities: Hot-Plug Surprise.
pub const SLTCAP_HPS: u32 = 1 << 5;
/// Slot Capabilities: Hot-Plug Capable.
pub const SLTCAP_HPC: u32 = 1 << 6;
/// Slot Capabilities: No Command Completed Support.
pub const SLTCAP_NCCS: u32 = 1 << 18;
/// Slot Control: Presence Detect Changed Enable.
pub const SLTCTL_PDCE: u16 = 1 << 3;
/// Slot Control: Hot-Plug Interrupt Enable.
pub const SLTCTL_HPIE: u16 = 1 << 5;
/// Slot Control: Data Link Layer State Changed Enable.
pub const SLTCTL_DLLSCE: u16 = 1 << 12;
/// Slot Status: Presence Detect Changed.
pub const SLTSTA_PDC: u16 = 1 << 3;
/// Slot Status: Presence Detect State.
pub const SLTSTA_PDS: u16 = 1 << 6;
/// Slot Status: Data Link Layer State Changed.
pub const SLTSTA_DLLSC: u16 = 1 << 8;
/// Link Capabilities: Data Link Layer Link Active Reporting Capable.
pub const LNKCAP_DLLLARC: u32 = 1 << 20;
/// Link Status: Data Link Layer Link Active.
pub const LNKSTA_DLLLA: u16 = 1 << 13;

/// The change bits of Slot Status (write 1 to clear): Attention Button
/// Pressed, Power Fault Detected, MRL Sensor Changed, Presence Detect
/// Changed, Command Completed, Data Link Layer State Changed.
const SLTSTA_W1C: u16 = 0x011F;
/// Slot Control bits software may write: every enable and control field.
const SLTCTL_WMASK: u16 = 0x1FFF;

/// What the port looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootPort {
    /// Vendor ID of the port.
    pub vendor_id: u16,
    /// Device ID of the port.
    pub device_id: u16,
    /// Physical Slot Number (13 bits; higher bits are dropped).
    pub slot: u16,
    /// The bus below the port (primary is 0, subordinate = secondary).
    pub secondary: u8,
    /// First byte of the memory window (1 MiB aligned).
    pub mem_base: u32,
    /// Last byte of the memory window (1 MiB granular: ends in 0xFFFFF).
    pub mem_limit: u32,
    /// An Advanced Error Reporting capability with the Root Port
    /// registers (Root Error Command, Status, Error Source), at
    /// [`PORT_AER_CAP`].
    pub aer: bool,
}

/// Offset of the port's AER capability, when it has one.
pub const PORT_AER_CAP: u16 = 0x100;
/// AER: Uncorrectable Error Status (+ 0x04).
pub const AER_UNCOR_STATUS: u16 = 0x04;
/// AER: Correctable Error Status (+ 0x10).
pub const AER_COR_STATUS: u16 = 0x10;
/// AER: Capabilities and Control (+ 0x18; First Error Pointer in 4:0).
pub const AER_CAP_CTL: u16 = 0x18;
/// AER: the four Header Log words (+ 0x1C).
pub const AER_HEADER_LOG: u16 = 0x1C;
/// AER: Root Error Command (+ 0x2C).
pub const AER_ROOT_COMMAND: u16 = 0x2C;
/// AER: Root Error Status (+ 0x30).
pub const AER_ROOT_STATUS: u16 = 0x30;
/// AER: Error Source Identification (+ 0x34).
pub const AER_ERROR_SOURCE: u16 = 0x34;

/// Root Error Status: ERR_COR received.
pub const ROOT_ERR_COR: u32 = 1 << 0;
/// Root Error Status: multiple ERR_COR received.
pub const ROOT_MULTI_ERR_COR: u32 = 1 << 1;
/// Root Error Status: ERR_FATAL or ERR_NONFATAL received.
pub const ROOT_ERR_UNCOR: u32 = 1 << 2;
/// Root Error Status: multiple ERR_FATAL/NONFATAL received.
pub const ROOT_MULTI_ERR_UNCOR: u32 = 1 << 3;
/// Root Error Status: the first uncorrectable message was fatal.
pub const ROOT_FIRST_FATAL: u32 = 1 << 4;
/// Root Error Status: ERR_NONFATAL received.
pub const ROOT_NONFATAL_RCV: u32 = 1 << 5;
/// Root Error Status: ERR_FATAL received.
pub const ROOT_FATAL_RCV: u32 = 1 << 6;

/// The severity of an error a device reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Severity {
    /// Corrected by hardware: ERR_COR.
    Correctable,
    /// Uncorrectable, the link still works: ERR_NONFATAL.
    NonFatal,
    /// Uncorrectable, the link is suspect: ERR_FATAL.
    Fatal,
}

/// Why a device cannot record an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The device has no AER capability (Linux would not look).
    #[error("the device has no AER capability")]
    NoAer,
    /// Status bits that the severity's register does not implement, or
    /// none at all.
    #[error("status bits {0:#x} are not errors of that severity the AER capability implements")]
    BadStatus(u32),
}

struct Layout<'a>(&'a mut ConfigSpace);

impl Layout<'_> {
    /// `width` bytes at `off`: value, write mask, write-1-to-clear mask.
    fn set(&mut self, off: u16, width: u8, value: u32, wmask: u32, w1c: u32) {
        let img = self.0.image_mut_internal();
        for i in 0..width {
            let shift = 8 * u32::from(i);
            let at = usize::from(off) + usize::from(i);
            if let Some(c) = img.config.get_mut(at) {
                *c = (value >> shift) as u8;
            }
            if let Some(w) = img.wmask.get_mut(at) {
                *w = (wmask >> shift) as u8;
            }
            if let Some(x) = img.w1cmask.get_mut(at) {
                *x = (w1c >> shift) as u8;
            }
        }
    }
}

/// The port's configuration space, present and link up.
pub fn build(p: &RootPort) -> ConfigSpace {
    let mut space = ConfigSpace::zeroed();
    let mut l = Layout(&mut space);
    l.set(VENDOR_ID, 2, p.vendor_id.into(), 0, 0);
    l.set(DEVICE_ID, 2, p.device_id.into(), 0, 0);
    // I/O, Memory, Bus Master, Parity, SERR#, Interrupt Disable.
    l.set(COMMAND, 2, 0, COMMAND_WMASK.into(), 0);
    l.set(STATUS, 2, STATUS_CAP_LIST.into(), 0, STATUS_W1C.into());
    // Class 06 04 00: PCI-to-PCI bridge.
    l.set(REVISION, 4, 0x0604_0000, 0, 0);
    l.set(CACHE_LINE_SIZE, 1, 0, 0xFF, 0);
    l.set(HEADER_TYPE, 1, 0x01, 0, 0);
    // Primary, secondary, subordinate bus, secondary latency timer.
    let buses = u32::from(p.secondary) << 8 | u32::from(p.secondary) << 16;
    l.set(0x18, 4, buses, 0xFFFF_FFFF, 0);
    // I/O base above limit, read-only: a disabled window that stays so
    // (base = limit = 0 would be an enabled window 0-0xFFF).
    l.set(0x1C, 2, 0x00F0, 0, 0);
    // Secondary status: the error bits are write-1-to-clear.
    l.set(0x1E, 2, 0, 0, STATUS_W1C.into());
    // Memory base and limit: bits 31:20 of the window's ends.
    l.set(0x20, 2, (p.mem_base >> 16) & 0xFFF0, 0xFFF0, 0);
    l.set(0x22, 2, (p.mem_limit >> 16) & 0xFFF0, 0xFFF0, 0);
    // Prefetchable base above limit, read-only, 32-bit: disabled too.
    l.set(0x24, 4, 0x0000_FFF0, 0, 0);
    l.set(CAP_PTR, 1, PORT_PCIE_CAP.into(), 0, 0);
    l.set(INTERRUPT_LINE, 1, 0, 0xFF, 0);
    // Bridge control: Parity, SERR#, ISA, VGA, Master Abort Mode,
    // Secondary Bus Reset.
    l.set(0x3E, 2, 0, 0x006F, 0);

    let c = PORT_PCIE_CAP;
    // Capability version 2, Root Port, Slot Implemented, message number 0.
    l.set(
        c,
        4,
        u32::from(CAP_ID_PCIE) | u32::from(PORT_MSI_CAP) << 8 | 0x0142 << 16,
        0,
        0,
    );
    // Role-Based Error Reporting; 128-byte payloads.
    l.set(c + PCIE_DEVCAP, 4, 1 << 15, 0, 0);
    l.set(c + PCIE_DEVCTL, 2, 0x0010, 0x70FF, 0);
    l.set(c + PCIE_DEVSTA, 2, 0, 0, PCIE_DEVSTA_W1C.into());
    // 2.5 GT/s x1, link-active reporting, port number = slot.
    let port_number = u32::from(p.slot as u8) << 24;
    l.set(
        c + PCIE_LNKCAP,
        4,
        0x11 | LNKCAP_DLLLARC | port_number,
        0,
        0,
    );
    l.set(c + PCIE_LNKCTL, 2, 0, 0x0FFB, 0);
    l.set(c + PCIE_LNKSTA, 2, 0x0011 | u32::from(LNKSTA_DLLLA), 0, 0);
    let psn = u32::from(p.slot & 0x1FFF) << 19;
    l.set(
        c + PCIE_SLTCAP,
        4,
        SLTCAP_HPS | SLTCAP_HPC | SLTCAP_NCCS | psn,
        0,
        0,
    );
    l.set(c + PCIE_SLTCTL, 2, 0, SLTCTL_WMASK.into(), 0);
    l.set(c + PCIE_SLTSTA, 2, SLTSTA_PDS.into(), 0, SLTSTA_W1C.into());
    // System error on correctable/non-fatal/fatal, PME interrupt, CRS.
    l.set(c + PCIE_RTCTL, 2, 0, 0x001F, 0);
    // PME Status is write-1-to-clear.
    l.set(c + PCIE_RTSTA, 4, 0, 0, 1 << 16);
    l.set(c + PCIE_DEVCTL2, 2, 0, 0x043F, 0);
    // Supported link speeds: 2.5 GT/s.
    l.set(c + PCIE_LNKCAP2, 4, 0x2, 0, 0);
    l.set(c + PCIE_LNKCTL2, 2, 0x1, PCIE_LNKCTL2_WMASK.into(), 0);

    let m = PORT_MSI_CAP;
    // One vector, 64-bit address, no masking; enable and MME writable.
    l.set(
        m,
        4,
        u32::from(CAP_ID_MSI) | u32::from(MSI_CTRL_64BIT) << 16,
        u32::from(MSI_CTRL_ENABLE | MSI_CTRL_MME_MASK) << 16,
        0,
    );
    l.set(m + 4, 4, 0, 0xFFFF_FFFC, 0);
    l.set(m + 8, 4, 0, 0xFFFF_FFFF, 0);
    l.set(m + 12, 2, 0, 0xFFFF, 0);

    if p.aer {
        let a = PORT_AER_CAP;
        // AER, version 2, last extended capability.
        l.set(a, 4, u32::from(EXT_CAP_ID_AER) | 2 << 16, 0, 0);
        l.set(a + AER_UNCOR_STATUS, 4, 0, 0, AER_UNCOR_BITS);
        l.set(a + 0x08, 4, 0, AER_UNCOR_BITS, 0);
        l.set(a + 0x0C, 4, AER_UNCOR_SEVERITY_DEFAULT, AER_UNCOR_BITS, 0);
        l.set(a + AER_COR_STATUS, 4, 0, 0, AER_COR_BITS);
        l.set(a + 0x14, 4, 0x2000, AER_COR_BITS, 0);
        // Correctable, non-fatal, fatal reporting enables.
        l.set(a + AER_ROOT_COMMAND, 4, 0, 0x7, 0);
        // Message number 0 (bits 31:27) read-only; the rest W1C.
        l.set(a + AER_ROOT_STATUS, 4, 0, 0, 0x7F);
    }
    space
}

/// Device side of an error a device below the port reported: the Root
/// Error Status and Error Source of the port record the message from
/// requester `source` (bus << 8 | devfn) as the specification has a root
/// port do (a second message of a kind only sets the Multiple bit).
/// Returns whether the port's interrupt is due: Root Error Command enables
/// reporting of that severity. False on a space without the port's AER.
pub fn report_error(space: &mut ConfigSpace, severity: Severity, source: u16) -> bool {
    let a = PORT_AER_CAP;
    if space.find_ext_capability(EXT_CAP_ID_AER) != Some(a) {
        return false;
    }
    let (Some(mut st), Some(mut src), Some(cmd)) = (
        space.raw32(a + AER_ROOT_STATUS),
        space.raw32(a + AER_ERROR_SOURCE),
        space.raw32(a + AER_ROOT_COMMAND),
    ) else {
        return false;
    };
    let enable = match severity {
        Severity::Correctable => {
            if st & ROOT_ERR_COR != 0 {
                st |= ROOT_MULTI_ERR_COR;
            } else {
                st |= ROOT_ERR_COR;
                src = (src & 0xFFFF_0000) | u32::from(source);
            }
            1
        }
        Severity::NonFatal | Severity::Fatal => {
            if st & ROOT_ERR_UNCOR != 0 {
                st |= ROOT_MULTI_ERR_UNCOR;
            } else {
                st |= ROOT_ERR_UNCOR;
                src = (src & 0xFFFF) | u32::from(source) << 16;
                if severity == Severity::Fatal {
                    st |= ROOT_FIRST_FATAL;
                }
            }
            if severity == Severity::Fatal {
                st |= ROOT_FATAL_RCV;
                4
            } else {
                st |= ROOT_NONFATAL_RCV;
                2
            }
        }
    };
    let _ = space.device_write(a + AER_ROOT_STATUS, 4, st);
    let _ = space.device_write(a + AER_ERROR_SOURCE, 4, src);
    cmd & enable != 0
}

/// Device side of an error, in the reporting device's own space: its AER
/// status register of the severity gets `status`, an uncorrectable error
/// also its First Error Pointer (when no uncorrectable error is pending)
/// and `header` in the Header Log, and the PCI Express capability's Device
/// Status its detected bit.
pub fn record_error(
    space: &mut ConfigSpace,
    severity: Severity,
    status: u32,
    header: [u32; 4],
) -> Result<(), RecordError> {
    let a = space
        .find_ext_capability(EXT_CAP_ID_AER)
        .ok_or(RecordError::NoAer)?;
    let (reg, implemented, detected) = match severity {
        Severity::Correctable => (AER_COR_STATUS, AER_COR_BITS, 1u16 << 0),
        Severity::NonFatal => (AER_UNCOR_STATUS, AER_UNCOR_BITS, 1 << 1),
        Severity::Fatal => (AER_UNCOR_STATUS, AER_UNCOR_BITS, 1 << 2),
    };
    if status == 0 || status & !implemented != 0 {
        return Err(RecordError::BadStatus(status));
    }
    let old = space.raw32(a + reg).unwrap_or(0);
    if severity != Severity::Correctable {
        if old == 0 {
            let ctl = space.raw32(a + AER_CAP_CTL).unwrap_or(0);
            let _ = space.device_write(a + AER_CAP_CTL, 4, (ctl & !0x1F) | status.trailing_zeros());
        }
        for (i, w) in (0u16..).zip(header) {
            let _ = space.device_write(a + AER_HEADER_LOG + 4 * i, 4, w);
        }
    }
    let _ = space.device_write(a + reg, 4, old | status);
    if let Some(c) = space.find_capability(CAP_ID_PCIE) {
        let off = c + PCIE_DEVSTA;
        let v = space.raw16(off).unwrap_or(0);
        let _ = space.device_write(off, 2, u32::from(v | detected));
    }
    Ok(())
}

/// Device side of the slot: presence detect and link active follow
/// `present`; when they change, Presence Detect Changed and Data Link
/// Layer State Changed are set. Returns whether the port's hot-plug
/// interrupt is due: Hot-Plug Interrupt Enable is set and a change bit
/// that was clear was set with its enable bit on (an edge, as the
/// specification words it). Does nothing and returns false on a space
/// without the port's layout.
pub fn set_presence(space: &mut ConfigSpace, present: bool) -> bool {
    let c = PORT_PCIE_CAP;
    let (Some(sta), Some(ctl), Some(lnk)) = (
        space.raw16(c + PCIE_SLTSTA),
        space.raw16(c + PCIE_SLTCTL),
        space.raw16(c + PCIE_LNKSTA),
    ) else {
        return false;
    };
    if space.raw8(c) != Some(CAP_ID_PCIE) || (sta & SLTSTA_PDS != 0) == present {
        return false;
    }
    let mut new_sta = sta | SLTSTA_PDC | SLTSTA_DLLSC;
    let mut new_lnk = lnk;
    if present {
        new_sta |= SLTSTA_PDS;
        new_lnk |= LNKSTA_DLLLA;
    } else {
        new_sta &= !SLTSTA_PDS;
        new_lnk &= !LNKSTA_DLLLA;
    }
    let _ = space.device_write(c + PCIE_SLTSTA, 2, new_sta.into());
    let _ = space.device_write(c + PCIE_LNKSTA, 2, new_lnk.into());
    let raised = new_sta & !sta;
    ctl & SLTCTL_HPIE != 0
        && ((raised & SLTSTA_PDC != 0 && ctl & SLTCTL_PDCE != 0)
            || (raised & SLTSTA_DLLSC != 0 && ctl & SLTCTL_DLLSCE != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port() -> ConfigSpace {
        build(&RootPort {
            vendor_id: 0x1f0c,
            device_id: 0x7e00,
            slot: 5,
            secondary: 1,
            mem_base: 0x3f00_0000,
            mem_limit: 0x3f0f_ffff,
            aer: true,
        })
    }

    #[test]
    fn a_type1_root_port_with_a_hotplug_slot() {
        let s = port();
        assert_eq!(s.read(0, 4).unwrap(), 0x7e00_1f0c);
        assert_eq!(s.read(0x0A, 2).unwrap(), 0x0604);
        assert_eq!(s.read(0x0E, 1).unwrap(), 1);
        assert_eq!(s.read(0x18, 4).unwrap(), 0x0001_0100);
        assert_eq!(s.read(0x20, 4).unwrap(), 0x3f00_3f00);
        assert_eq!(s.find_capability(CAP_ID_PCIE), Some(0x40));
        assert_eq!(s.find_capability(CAP_ID_MSI), Some(0x80));
        let c = PORT_PCIE_CAP;
        assert_eq!((s.read(c + 2, 2).unwrap() >> 4) & 0xF, 4, "root port");
        let sltcap = s.read(c + 0x14, 4).unwrap();
        assert_eq!(sltcap & SLTCAP_HPC, SLTCAP_HPC);
        assert_eq!(sltcap >> 19, 5);
        assert_ne!(s.read(c + 0x1A, 2).unwrap() & u32::from(SLTSTA_PDS), 0);
        assert_ne!(s.read(c + 0x12, 2).unwrap() & u32::from(LNKSTA_DLLLA), 0);
    }

    #[test]
    fn io_and_prefetchable_windows_stay_disabled() {
        let mut s = port();
        // Linux probes the I/O and prefetchable windows like this.
        s.write(0x1C, 2, 0xE0F0).unwrap();
        s.write(0x24, 4, 0xFFF0_FFF0).unwrap();
        s.write(0x1C, 2, 0).unwrap();
        s.write(0x24, 4, 0).unwrap();
        // Base above limit: disabled.
        assert_eq!(s.read(0x1C, 2).unwrap(), 0x00F0);
        assert_eq!(s.read(0x24, 4).unwrap(), 0x0000_FFF0);
        s.write(0x20, 4, 0x3f10_3f00).unwrap();
        assert_eq!(s.read(0x20, 4).unwrap(), 0x3f10_3f00);
    }

    #[test]
    fn surprise_removal_raises_the_slot_interrupt_once_enabled() {
        let mut s = port();
        let c = PORT_PCIE_CAP;
        // No enables yet: the change is latched, no interrupt.
        assert!(!set_presence(&mut s, false));
        let sta = s.read(c + 0x1A, 2).unwrap() as u16;
        assert_eq!(
            sta & (SLTSTA_PDS | SLTSTA_PDC | SLTSTA_DLLSC),
            SLTSTA_PDC | SLTSTA_DLLSC
        );
        assert_eq!(s.read(c + 0x12, 2).unwrap() as u16 & LNKSTA_DLLLA, 0);
        // pciehp clears the change bits (W1C) and enables its interrupt.
        s.write(c + 0x1A, 2, u32::from(SLTSTA_PDC | SLTSTA_DLLSC))
            .unwrap();
        assert_eq!(s.read(c + 0x1A, 2).unwrap(), 0);
        s.write(
            c + 0x18,
            2,
            u32::from(SLTCTL_HPIE | SLTCTL_PDCE | SLTCTL_DLLSCE),
        )
        .unwrap();
        assert!(set_presence(&mut s, true));
        assert!(!set_presence(&mut s, true), "no change, no interrupt");
        // Change bits still set: no new edge.
        assert!(!set_presence(&mut s, false));
        s.write(c + 0x1A, 2, 0xFFFF).unwrap();
        assert!(set_presence(&mut s, true));
    }

    #[test]
    fn the_port_records_error_messages_as_a_root_port_does() {
        let mut s = port();
        let a = PORT_AER_CAP;
        assert_eq!(s.find_ext_capability(EXT_CAP_ID_AER), Some(a));
        // Reporting not enabled yet: latched, no interrupt.
        assert!(!report_error(&mut s, Severity::Correctable, 0x0100));
        assert_eq!(s.read(a + 0x30, 4).unwrap(), ROOT_ERR_COR);
        assert_eq!(s.read(a + 0x34, 4).unwrap(), 0x0100);
        s.write(a + 0x2C, 4, 7).unwrap();
        assert!(report_error(&mut s, Severity::Correctable, 0x0200));
        assert_eq!(
            s.read(a + 0x30, 4).unwrap(),
            ROOT_ERR_COR | ROOT_MULTI_ERR_COR
        );
        assert_eq!(
            s.read(a + 0x34, 4).unwrap(),
            0x0100,
            "the first source stays"
        );
        assert!(report_error(&mut s, Severity::Fatal, 0x0100));
        let st = s.read(a + 0x30, 4).unwrap();
        assert_eq!(
            st & 0x7C,
            ROOT_ERR_UNCOR | ROOT_FIRST_FATAL | ROOT_FATAL_RCV
        );
        assert_eq!(s.read(a + 0x34, 4).unwrap(), 0x0100_0100);
        // The AER core clears what it saw.
        s.write(a + 0x30, 4, st).unwrap();
        assert_eq!(s.read(a + 0x30, 4).unwrap(), 0);
        s.write(a + 0x2C, 4, 1).unwrap();
        assert!(!report_error(&mut s, Severity::NonFatal, 0x0100));
        assert_eq!(
            s.read(a + 0x30, 4).unwrap(),
            ROOT_ERR_UNCOR | ROOT_NONFATAL_RCV
        );
    }

    #[test]
    fn a_device_records_its_error_status_and_header() {
        use crate::config::{AerCap, Bar, ConfigBuilder, PcieCap};
        let mut d = ConfigBuilder::new(0x1f0c, 0x7e58)
            .bar(0, Bar::memory32(4096))
            .pcie(PcieCap::endpoint(1, 1))
            .aer(AerCap::default())
            .build()
            .unwrap();
        let a = d.find_ext_capability(EXT_CAP_ID_AER).unwrap();
        let pcie = d.find_capability(CAP_ID_PCIE).unwrap();
        record_error(&mut d, Severity::Correctable, 1, [0; 4]).unwrap();
        assert_eq!(d.read(a + 0x10, 4).unwrap(), 1);
        assert_eq!(d.read(pcie + 0x0A, 2).unwrap() & 7, 1);
        let hdr = [0x4000_0001, 0x0100_00ff, 0xfee0_0000, 0];
        record_error(&mut d, Severity::NonFatal, 1 << 14, hdr).unwrap();
        assert_eq!(d.read(a + 0x04, 4).unwrap(), 1 << 14);
        assert_eq!(d.read(a + 0x18, 4).unwrap() & 0x1F, 14);
        assert_eq!(d.read(a + 0x1C, 4).unwrap(), 0x4000_0001);
        assert_eq!(d.read(a + 0x24, 4).unwrap(), 0xfee0_0000);
        // W1C, as the AER core clears it.
        d.write(a + 0x04, 4, 1 << 14).unwrap();
        assert_eq!(d.read(a + 0x04, 4).unwrap(), 0);
        assert_eq!(
            record_error(&mut d, Severity::Fatal, 1 << 1, hdr),
            Err(RecordError::BadStatus(2))
        );
        assert_eq!(
            record_error(&mut d, Severity::Correctable, 0, hdr),
            Err(RecordError::BadStatus(0))
        );
        let mut bare = ConfigBuilder::new(0x1f0c, 0x7e58)
            .bar(0, Bar::memory32(4096))
            .build()
            .unwrap();
        assert_eq!(
            record_error(&mut bare, Severity::Fatal, 1 << 18, hdr),
            Err(RecordError::NoAer)
        );
    }

    #[test]
    fn not_a_port_is_left_alone() {
        let mut s = ConfigSpace::zeroed();
        assert!(!set_presence(&mut s, false));
        assert!(!report_error(&mut s, Severity::Fatal, 0x100));
        assert_eq!(s, ConfigSpace::zeroed());
    }
}
