//! Register offsets, capability IDs and the access masks of every register
//! the builder lays out, in one place.
//!
//! The masks follow the PCI Local Bus 3.0 and PCI Express Base 4.0
//! specifications for a type-0 endpoint function: a bit is writable
//! (`wmask`) only if the specification makes it read-write for an endpoint
//! with the features the builder advertises; write-1-to-clear bits
//! (`w1cmask`) are the status bits the specification marks RW1C; every
//! other bit, reserved bits included, is read-only and reserved bits hold 0.
//!
//! Offsets and sizes in configuration space are `u16`, the type of the
//! offset [`ConfigSpace::read`](super::ConfigSpace::read) and
//! [`ConfigSpace::write`](super::ConfigSpace::write) take, so a constant
//! goes straight into an access.

/// Vendor ID.
pub const VENDOR_ID: u16 = 0x00;
/// Device ID.
pub const DEVICE_ID: u16 = 0x02;
/// Command register.
pub const COMMAND: u16 = 0x04;
/// Status register.
pub const STATUS: u16 = 0x06;
/// Revision ID.
pub const REVISION: u16 = 0x08;
/// Class code (prog-if at 0x09, subclass 0x0A, base class 0x0B).
pub const CLASS_PROG: u16 = 0x09;
/// Cache line size.
pub const CACHE_LINE_SIZE: u16 = 0x0C;
/// Header type.
pub const HEADER_TYPE: u16 = 0x0E;
/// First BAR.
pub const BAR0: u16 = 0x10;
/// Subsystem vendor ID.
pub const SUBSYS_VENDOR_ID: u16 = 0x2C;
/// Subsystem ID.
pub const SUBSYS_ID: u16 = 0x2E;
/// Capabilities pointer.
pub const CAP_PTR: u16 = 0x34;
/// Interrupt line.
pub const INTERRUPT_LINE: u16 = 0x3C;
/// Interrupt pin.
pub const INTERRUPT_PIN: u16 = 0x3D;

/// Command: I/O space, memory space, bus master, parity error response,
/// SERR# enable, interrupt disable.
pub const COMMAND_WMASK: u16 = 0x0547;
/// Command: memory space enable.
pub const COMMAND_MEMORY: u16 = 1 << 1;
/// Command: bus master enable.
pub const COMMAND_MASTER: u16 = 1 << 2;
/// Command: INTx emulation disable.
pub const COMMAND_INTX_DISABLE: u16 = 1 << 10;
/// Status: master data parity error, signalled/received target abort,
/// received master abort, signalled system error, detected parity error.
pub const STATUS_W1C: u16 = 0xF900;
/// Status: INTx pending (device-set, read-only to the host).
pub const STATUS_INTERRUPT: u16 = 1 << 3;
/// Status: capabilities list present.
pub const STATUS_CAP_LIST: u16 = 1 << 4;

/// Start of the standard capability area.
pub const STD_CAP_START: u16 = 0x40;
/// End (exclusive) of the standard capability area.
pub const STD_CAP_END: u16 = 0x100;
/// Start of extended configuration space.
pub const EXT_CAP_START: u16 = 0x100;
/// End (exclusive) of extended configuration space.
pub const EXT_CAP_END: u16 = 0x1000;

/// Capability ID: Power Management.
pub const CAP_ID_PM: u8 = 0x01;
/// Capability ID: MSI.
pub const CAP_ID_MSI: u8 = 0x05;
/// Capability ID: vendor-specific.
pub const CAP_ID_VENDOR: u8 = 0x09;
/// Capability ID: PCI Express.
pub const CAP_ID_PCIE: u8 = 0x10;
/// Capability ID: MSI-X.
pub const CAP_ID_MSIX: u8 = 0x11;
/// Extended capability ID: Advanced Error Reporting.
pub const EXT_CAP_ID_AER: u16 = 0x0001;
/// Extended capability ID: Device Serial Number.
pub const EXT_CAP_ID_DSN: u16 = 0x0003;
/// Extended capability ID: vendor-specific extended.
pub const EXT_CAP_ID_VSEC: u16 = 0x000B;
/// Extended capability ID: PASID.
pub const EXT_CAP_ID_PASID: u16 = 0x001B;

/// MSI control: enable (RW).
pub const MSI_CTRL_ENABLE: u16 = 1 << 0;
/// MSI control: multiple message enable, bits 6:4 (RW).
pub const MSI_CTRL_MME_MASK: u16 = 0x7 << 4;
/// MSI control: 64-bit address capable.
pub const MSI_CTRL_64BIT: u16 = 1 << 7;
/// MSI control: per-vector masking capable.
pub const MSI_CTRL_MASKABLE: u16 = 1 << 8;

/// MSI-X control: function mask (RW).
pub const MSIX_CTRL_MASKALL: u16 = 1 << 14;
/// MSI-X control: enable (RW).
pub const MSIX_CTRL_ENABLE: u16 = 1 << 15;

/// PM: offset of PMCSR in the capability.
pub const PM_PMCSR: u16 = 4;
/// PMCSR: power state, bits 1:0 (RW).
pub const PMCSR_STATE_MASK: u16 = 0x3;
/// PMCSR: No_Soft_Reset (RO).
pub const PMCSR_NO_SOFT_RESET: u16 = 1 << 3;
/// PMCSR: PME_En (RW).
pub const PMCSR_PME_EN: u16 = 1 << 8;
/// PMCSR: PME_Status (RW1C).
pub const PMCSR_PME_STATUS: u16 = 1 << 15;

/// PCIe: Device Capabilities offset in the capability.
pub const PCIE_DEVCAP: u16 = 0x04;
/// PCIe: Device Control offset.
pub const PCIE_DEVCTL: u16 = 0x08;
/// PCIe: Device Status offset.
pub const PCIE_DEVSTA: u16 = 0x0A;
/// PCIe: Link Capabilities offset.
pub const PCIE_LNKCAP: u16 = 0x0C;
/// PCIe: Link Control offset.
pub const PCIE_LNKCTL: u16 = 0x10;
/// PCIe: Link Status offset.
pub const PCIE_LNKSTA: u16 = 0x12;
/// PCIe: Device Control 2 offset.
pub const PCIE_DEVCTL2: u16 = 0x28;
/// PCIe: Link Capabilities 2 offset.
pub const PCIE_LNKCAP2: u16 = 0x2C;
/// PCIe: Link Control 2 offset.
pub const PCIE_LNKCTL2: u16 = 0x30;
/// Size of the PCIe capability (version 2, endpoint).
pub const PCIE_CAP_SIZE: u16 = 0x3C;
/// DevCap: Function Level Reset capable.
pub const PCIE_DEVCAP_FLR: u32 = 1 << 28;
/// DevCtl: error reporting enables, relaxed ordering, max payload, extended
/// tag, no snoop, max read request size.
pub const PCIE_DEVCTL_WMASK: u16 = 0x79FF;
/// DevCtl: Initiate Function Level Reset (write-only, reads 0).
pub const PCIE_DEVCTL_FLR: u16 = 1 << 15;
/// DevSta: correctable, non-fatal, fatal, unsupported request detected.
pub const PCIE_DEVSTA_W1C: u16 = 0x000F;
/// LnkCtl: ASPM control, read completion boundary, common clock, extended
/// synch.
pub const PCIE_LNKCTL_WMASK: u16 = 0x00CB;
/// DevCtl2: completion timeout value and disable.
pub const PCIE_DEVCTL2_WMASK: u16 = 0x001F;
/// LnkCtl2: target link speed.
pub const PCIE_LNKCTL2_WMASK: u16 = 0x000F;

/// AER: uncorrectable error bits an endpoint may implement (data link
/// protocol, surprise down, poisoned TLP, flow control, completion timeout,
/// completer abort, unexpected completion, receiver overflow, malformed TLP,
/// ECRC, unsupported request, ACS violation).
pub const AER_UNCOR_BITS: u32 = 0x003F_F030;
/// AER: correctable error bits (receiver error, bad TLP, bad DLLP,
/// REPLAY_NUM rollover, replay timer timeout, advisory non-fatal).
pub const AER_COR_BITS: u32 = 0x0000_31C1;
/// AER: default uncorrectable severity from the specification.
pub const AER_UNCOR_SEVERITY_DEFAULT: u32 = 0x0006_2030;
/// Size of the AER capability for an endpoint.
pub const AER_CAP_SIZE: u16 = 0x2C;
