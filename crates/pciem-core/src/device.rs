//! The device-model API.
//!
//! A device model implements [`Device`]: it says what configuration space it
//! presents and which registers it wants to hear about, and reacts to the
//! host's writes, configuration changes and resets. A backend implements
//! [`Host`]: BAR memory, interrupts and DMA. A model written against these
//! two traits runs unchanged on the mock backend (tests, fuzzing, benches)
//! and on the real `/dev/pciem`.
//!
//! # Example
//!
//! A device with one register that, when the driver writes it, stores the
//! value doubled in the next register and raises vector 0:
//!
//! ```
//! use pciem_core::{ConfigBuilder, ConfigSpace, BuildError, Device, Host, HostError, Irq,
//!                  MmioWrite, Watch};
//! use pciem_core::config::{Bar, MsiCap};
//!
//! struct Doubler;
//!
//! impl Device for Doubler {
//!     type Error = HostError;
//!     fn config_space(&self) -> Result<ConfigSpace, BuildError> {
//!         ConfigBuilder::new(0x1234, 0x0001)
//!             .class(0xff, 0x00, 0x00)
//!             .bar(0, Bar::memory32(4096))
//!             .msi(MsiCap::new(1))
//!             .build()
//!     }
//!
//!     fn watches(&self) -> &[Watch] {
//!         &[Watch { bar: 0, offset: 0x0, width: 4 }]
//!     }
//!
//!     fn mmio_write(&mut self, host: &dyn Host, w: MmioWrite) -> Result<(), HostError> {
//!         if w.bar == 0 && w.offset == 0x0 {
//!             host.write_u32(0, 0x4, (w.value as u32).wrapping_mul(2))?;
//!             host.raise_irq(Irq::Msi { vector: 0 })?;
//!         }
//!         Ok(())
//!     }
//! }
//! ```

use pciem_abi::{
    pciem_aer_inject, pciem_event, pciem_irq_inject, PCIEM_AER_CORRECTABLE, PCIEM_AER_FATAL,
    PCIEM_AER_NONFATAL, PCIEM_ATOMIC_CAS, PCIEM_ATOMIC_FETCH_ADD, PCIEM_ATOMIC_FETCH_AND,
    PCIEM_ATOMIC_FETCH_OR, PCIEM_ATOMIC_FETCH_SUB, PCIEM_ATOMIC_FETCH_XOR, PCIEM_ATOMIC_SWAP,
    PCIEM_ERROR_INJECTED_TIMEOUT, PCIEM_ERROR_READ_TIMEOUT, PCIEM_ERROR_UNDECODABLE,
    PCIEM_EVENT_CONFIG_WRITE, PCIEM_EVENT_ERROR, PCIEM_EVENT_FLAG_POSTED, PCIEM_EVENT_MMIO_READ,
    PCIEM_EVENT_MMIO_WRITE, PCIEM_EVENT_RESET, PCIEM_IRQ_AUTO, PCIEM_IRQ_FLAG_ASSERT,
    PCIEM_IRQ_FLAG_DEASSERT, PCIEM_IRQ_INTX, PCIEM_IRQ_MSI, PCIEM_IRQ_MSIX, PCIEM_RESET_D3HOT_D0,
    PCIEM_RESET_FLR, PCIEM_RESET_REINSERT,
};

use core::time::Duration;

use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::access::AccessMap;
pub use crate::config::root_port::Severity;
use crate::config::{BuildError, ConfigSpace};
use crate::prp::{self, Prp, PrpError};

/// Why a host operation failed. Every variant names what was asked, so a
/// model can report it without more context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The BAR slot is not implemented by the device.
    #[error("BAR {bar} does not exist")]
    NoSuchBar {
        /// The slot asked for.
        bar: u8,
    },
    /// An access runs past the end of a BAR.
    #[error("access of {len} bytes at offset {offset:#x} is outside BAR {bar} ({size} bytes)")]
    BarOutOfRange {
        /// The BAR slot.
        bar: u8,
        /// Offset of the access.
        offset: u64,
        /// Length of the access.
        len: u64,
        /// Size of the BAR.
        size: u64,
    },
    /// DMA to or from bus addresses the host has not mapped for the device.
    #[error("DMA of {len} bytes at bus address {addr:#x} touches unmapped memory")]
    Unmapped {
        /// Bus address of the access.
        addr: u64,
        /// Length of the access.
        len: u64,
    },
    /// A transfer longer than the backend allows in one operation.
    #[error("transfer of {len} bytes exceeds the limit of {max} bytes")]
    TooLong {
        /// Length asked for.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A zero-length transfer.
    #[error("zero-length transfer")]
    Empty,
    /// An address that must be aligned is not.
    #[error("address {addr:#x} is not {align}-byte aligned")]
    Misaligned {
        /// The address.
        addr: u64,
        /// Required alignment.
        align: u64,
    },
    /// An interrupt vector the device does not have (or the driver did not
    /// enable).
    #[error("interrupt vector {vector} is out of range (device has {available})")]
    NoSuchVector {
        /// Vector asked for.
        vector: u32,
        /// Vectors available.
        available: u32,
    },
    /// The interrupt kind is not enabled by the driver (e.g. MSI asked while
    /// the driver uses INTx), or the device has no interrupt of that kind.
    #[error("{kind} interrupts are not enabled by the driver")]
    IrqNotEnabled {
        /// "MSI", "MSI-X", "INTx" or "any".
        kind: &'static str,
    },
    /// A peer-to-peer transfer outside the permitted regions.
    #[error("peer-to-peer access of {len} bytes at {addr:#x} is outside the permitted regions")]
    P2pDenied {
        /// Target address.
        addr: u64,
        /// Length.
        len: u64,
    },
    /// A PRP list was malformed.
    #[error("PRP list: {0}")]
    Prp(#[from] PrpError),
    /// The backend does not offer this operation.
    #[error("operation not supported by this backend: {0}")]
    Unsupported(&'static str),
    /// The host side is gone (the device was removed or the harness
    /// dropped).
    #[error("the host is gone")]
    Disconnected,
    /// DMA, an atomic or a peer-to-peer transfer while the driver has not
    /// enabled bus mastering (Command register bit 2), which the kernel
    /// refuses with `EPERM`.
    #[error("bus mastering is disabled: the driver has not set Bus Master Enable")]
    BusMasterDisabled,
    /// The host's DMA check refused the access: the driver has not mapped
    /// that memory for it, or not in that direction (enforce mode; see
    /// [`crate::dmacheck`]). Nothing moved.
    #[error("DMA of {len} bytes at {addr:#x} refused: outside the driver's DMA mappings ({})", fault_name(*kind))]
    DmaRefused {
        /// Bus address of the access.
        addr: u64,
        /// Length of the access.
        len: u64,
        /// The kind of violation, when the backend knows it (the kernel
        /// module says it in a `DMA_FAULT` event instead).
        kind: Option<crate::dmacheck::FaultKind>,
    },
    /// [`Host::reinsert`] of a device that is not surprise-removed, or
    /// whose removal is still under way.
    #[error("the device is not removed (or its removal has not finished)")]
    NotRemoved,
    /// The host refused a fault rule ([`Host::set_fault`]).
    #[error("fault rule refused: {0}")]
    Fault(crate::faultplan::FaultError),
    /// A DMA read came back poisoned (a fault rule of the host's fault
    /// plan, [`crate::faultplan`]; the kernel's `EIO`): the data is not
    /// usable, as after a Poisoned TLP. Nothing was copied.
    #[error("DMA read at bus address {addr:#x} returned poisoned data")]
    Poisoned {
        /// Bus address of the access.
        addr: u64,
    },
    /// An AER error the device cannot report (see [`Host::inject_aer`]):
    /// it has no AER capability, or the status bits are not errors of the
    /// severity that its capability implements.
    #[error("AER injection: {0}")]
    Aer(#[from] crate::config::root_port::RecordError),
    /// An operating-system call failed.
    #[error("{op} failed with errno {errno}")]
    Os {
        /// What was being done.
        op: &'static str,
        /// The errno.
        errno: i32,
    },
}

/// The name of a DMA fault kind, for [`HostError::DmaRefused`].
const fn fault_name(kind: Option<crate::dmacheck::FaultKind>) -> &'static str {
    match kind {
        Some(k) => k.name(),
        None => "see the DMA_FAULT event",
    }
}

/// An interrupt the device raises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Irq {
    /// Vector `vector` of whatever the driver enabled: MSI-X, else MSI,
    /// else INTx (assert; `vector` must then be 0).
    Auto {
        /// Vector number.
        vector: u32,
    },
    /// MSI vector `vector` (held pending while masked).
    Msi {
        /// Vector number, below the number of vectors the driver enabled.
        vector: u32,
    },
    /// MSI-X table entry `entry` (held in the PBA while masked).
    MsiX {
        /// Table entry.
        entry: u32,
    },
    /// Assert the INTx line (level-triggered: stays asserted).
    IntxAssert,
    /// Deassert the INTx line.
    IntxDeassert,
}

impl Irq {
    /// The `PCIEM_IOCTL_INJECT_IRQ` argument for this interrupt.
    pub const fn to_abi(self) -> pciem_irq_inject {
        let (vector, kind, flags) = match self {
            Irq::Auto { vector } => (vector, PCIEM_IRQ_AUTO, 0),
            Irq::Msi { vector } => (vector, PCIEM_IRQ_MSI, 0),
            Irq::MsiX { entry } => (entry, PCIEM_IRQ_MSIX, 0),
            Irq::IntxAssert => (0, PCIEM_IRQ_INTX, PCIEM_IRQ_FLAG_ASSERT),
            Irq::IntxDeassert => (0, PCIEM_IRQ_INTX, PCIEM_IRQ_FLAG_DEASSERT),
        };
        pciem_irq_inject {
            vector,
            kind,
            flags,
            reserved: 0,
        }
    }
}

/// An error a device reports through AER ([`Host::inject_aer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AerError {
    /// Correctable, non-fatal or fatal.
    pub severity: Severity,
    /// The bits of the AER Correctable (for [`Severity::Correctable`]) or
    /// Uncorrectable Error Status register to set: one or more errors the
    /// capability implements for that severity.
    pub status: u32,
    /// The TLP header logged with an uncorrectable error (ignored for a
    /// correctable one).
    pub header_log: [u32; 4],
}

impl AerError {
    /// The `PCIEM_IOCTL_INJECT_AER` argument for this error.
    pub const fn to_abi(&self) -> pciem_aer_inject {
        pciem_aer_inject {
            severity: match self.severity {
                Severity::Correctable => PCIEM_AER_CORRECTABLE,
                Severity::NonFatal => PCIEM_AER_NONFATAL,
                Severity::Fatal => PCIEM_AER_FATAL,
            },
            status: self.status,
            header_log: self.header_log,
            flags: 0,
            reserved: 0,
        }
    }
}

/// An 8-byte atomic operation on host memory, as PCIe AtomicOps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AtomicOp {
    /// Add, wrapping.
    FetchAdd(u64),
    /// Subtract, wrapping.
    FetchSub(u64),
    /// Exchange.
    Swap(u64),
    /// Store `new` if the value equals `expected`.
    CompareAndSwap {
        /// Value compared against.
        expected: u64,
        /// Value stored on a match.
        new: u64,
    },
    /// Bitwise AND.
    FetchAnd(u64),
    /// Bitwise OR.
    FetchOr(u64),
    /// Bitwise XOR.
    FetchXor(u64),
}

impl AtomicOp {
    /// The value memory holds after the operation, given the value before.
    /// Backends run this inside their compare-exchange loop, so every backend
    /// computes the same thing.
    pub const fn apply(self, old: u64) -> u64 {
        match self {
            AtomicOp::FetchAdd(v) => old.wrapping_add(v),
            AtomicOp::FetchSub(v) => old.wrapping_sub(v),
            AtomicOp::Swap(v) => v,
            AtomicOp::CompareAndSwap { expected, new } => {
                if old == expected {
                    new
                } else {
                    old
                }
            }
            AtomicOp::FetchAnd(v) => old & v,
            AtomicOp::FetchOr(v) => old | v,
            AtomicOp::FetchXor(v) => old ^ v,
        }
    }

    /// `(op, operand, compare)` for `pciem_dma_atomic`.
    pub const fn to_abi(self) -> (u32, u64, u64) {
        match self {
            AtomicOp::FetchAdd(v) => (PCIEM_ATOMIC_FETCH_ADD, v, 0),
            AtomicOp::FetchSub(v) => (PCIEM_ATOMIC_FETCH_SUB, v, 0),
            AtomicOp::Swap(v) => (PCIEM_ATOMIC_SWAP, v, 0),
            AtomicOp::CompareAndSwap { expected, new } => (PCIEM_ATOMIC_CAS, new, expected),
            AtomicOp::FetchAnd(v) => (PCIEM_ATOMIC_FETCH_AND, v, 0),
            AtomicOp::FetchOr(v) => (PCIEM_ATOMIC_FETCH_OR, v, 0),
            AtomicOp::FetchXor(v) => (PCIEM_ATOMIC_FETCH_XOR, v, 0),
        }
    }

    /// The operation named by a `pciem_dma_atomic`, or `None` for an
    /// unknown `op`.
    pub const fn from_abi(op: u32, operand: u64, compare: u64) -> Option<Self> {
        Some(match op {
            PCIEM_ATOMIC_FETCH_ADD => AtomicOp::FetchAdd(operand),
            PCIEM_ATOMIC_FETCH_SUB => AtomicOp::FetchSub(operand),
            PCIEM_ATOMIC_SWAP => AtomicOp::Swap(operand),
            PCIEM_ATOMIC_CAS => AtomicOp::CompareAndSwap {
                expected: compare,
                new: operand,
            },
            PCIEM_ATOMIC_FETCH_AND => AtomicOp::FetchAnd(operand),
            PCIEM_ATOMIC_FETCH_OR => AtomicOp::FetchOr(operand),
            PCIEM_ATOMIC_FETCH_XOR => AtomicOp::FetchXor(operand),
            _ => return None,
        })
    }
}

/// What a backend offers a device model. Methods take `&self`: backends use
/// interior mutability, so a model may hold the host from several threads
/// where the backend is `Sync`.
pub trait Host {
    /// Read BAR memory (what the driver would read).
    fn bar_read(&self, bar: u8, offset: u64, buf: &mut [u8]) -> Result<(), HostError>;

    /// Write BAR memory (what the driver will read next). Does not produce
    /// events: only the driver's writes do.
    fn bar_write(&self, bar: u8, offset: u64, data: &[u8]) -> Result<(), HostError>;

    /// Raise an interrupt.
    fn raise_irq(&self, irq: Irq) -> Result<(), HostError>;

    /// Read host memory at a bus address (device-initiated DMA read).
    fn dma_read(&self, bus_addr: u64, buf: &mut [u8]) -> Result<(), HostError>;

    /// Write host memory at a bus address (device-initiated DMA write).
    fn dma_write(&self, bus_addr: u64, data: &[u8]) -> Result<(), HostError>;

    /// One 8-byte atomic on host memory at an 8-byte aligned bus address;
    /// returns the value before the operation.
    fn dma_atomic(&self, bus_addr: u64, op: AtomicOp) -> Result<u64, HostError>;

    /// Read from a peer device's memory (peer-to-peer), only where the host
    /// permits it.
    fn p2p_read(&self, addr: u64, buf: &mut [u8]) -> Result<(), HostError>;

    /// Write to a peer device's memory (peer-to-peer), only where the host
    /// permits it.
    fn p2p_write(&self, addr: u64, data: &[u8]) -> Result<(), HostError>;

    /// Scatter read described by PRP entries into `buf` (`buf.len()` is the
    /// transfer length). The default walks the PRP lists with
    /// [`prp::for_each_segment`] over [`Host::dma_read`]; a backend may do it
    /// in one step instead (the kernel does).
    fn dma_read_prp(&self, prp: Prp, buf: &mut [u8]) -> Result<(), HostError> {
        read_prp_via_dma(self, prp, buf)
    }

    /// Scatter write described by PRP entries from `data`.
    fn dma_write_prp(&self, prp: Prp, data: &[u8]) -> Result<(), HostError> {
        write_prp_via_dma(self, prp, data)
    }

    /// Take the device's link down at once, as a surprise hot-unplug (a
    /// card pulled out, a link that failed): from then on the driver reads
    /// all-ones from the device's configuration space and BARs and its
    /// writes go nowhere, the device can no longer interrupt or do DMA
    /// ([`HostError::Disconnected`]), and the host removes the device the
    /// way it removes vanished hardware (its driver's `remove()` runs
    /// against the dead device). Once per device: a second call is
    /// [`HostError::Disconnected`]. The default is
    /// [`HostError::Unsupported`].
    fn surprise_remove(&self) -> Result<(), HostError> {
        Err(HostError::Unsupported("surprise removal"))
    }

    /// Bring the device back after [`Host::surprise_remove`], as a card
    /// plugged in again: its configuration space returns to its power-on
    /// state, its BAR memory is zeroed, the link comes up, the model gets a
    /// reset ([`ResetKind::Reinserted`]) and the host adds the device again
    /// so that its driver probes it as new hardware; interrupts and DMA
    /// work again. [`HostError::NotRemoved`] if the device is not removed
    /// (or its removal has not finished). The default is
    /// [`HostError::Unsupported`].
    fn reinsert(&self) -> Result<(), HostError> {
        Err(HostError::Unsupported("reinsertion"))
    }

    /// Arm one rule of the host's fault plan ([`crate::faultplan`]): the
    /// driver's loads from a range of a trapped BAR time out (all-ones, the
    /// model gets a [`TrapError::InjectedTimeout`] instead of the read), or
    /// the model's own DMA reads of a range of bus addresses fail with
    /// [`HostError::Poisoned`]. A rule the host refuses is
    /// [`HostError::Fault`]. The default is [`HostError::Unsupported`].
    fn set_fault(&self, rule: crate::faultplan::FaultRule) -> Result<(), HostError> {
        let _ = rule;
        Err(HostError::Unsupported("fault injection"))
    }

    /// Disarm every rule of the host's fault plan. The default is
    /// [`HostError::Unsupported`].
    fn clear_faults(&self) -> Result<(), HostError> {
        Err(HostError::Unsupported("fault injection"))
    }

    /// Report an AER error, as a device does with an error message to its
    /// root port: `error.status` is recorded in the device's AER
    /// capability (status, First Error Pointer, Header Log) and in the
    /// PCI Express Device Status, and the error reaches whoever plays the
    /// root complex. On the chardev backend that is Linux's AER core
    /// through the virtual root port (which needs
    /// `RunOptions::root_port_aer`), so the bound driver's
    /// `err_handler` runs; on the mock the test, through
    /// `Harness::aer_reports`. The default is [`HostError::Unsupported`].
    fn inject_aer(&self, error: AerError) -> Result<(), HostError> {
        let _ = error;
        Err(HostError::Unsupported("AER injection"))
    }

    /// Read a little-endian 32-bit register from BAR memory.
    fn read_u32(&self, bar: u8, offset: u64) -> Result<u32, HostError> {
        let mut b = [0u8; 4];
        self.bar_read(bar, offset, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Write a little-endian 32-bit register in BAR memory.
    fn write_u32(&self, bar: u8, offset: u64, value: u32) -> Result<(), HostError> {
        self.bar_write(bar, offset, &value.to_le_bytes())
    }

    /// Read a little-endian 64-bit register from BAR memory.
    fn read_u64(&self, bar: u8, offset: u64) -> Result<u64, HostError> {
        let mut b = [0u8; 8];
        self.bar_read(bar, offset, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Write a little-endian 64-bit register in BAR memory.
    fn write_u64(&self, bar: u8, offset: u64, value: u64) -> Result<(), HostError> {
        self.bar_write(bar, offset, &value.to_le_bytes())
    }

    /// Arm timer `id` (a number of the model's choosing): [`Device::timer`]
    /// is called with it once, `delay` from now, unless it is re-armed
    /// (the new delay replaces the old) or cancelled first. Real devices
    /// do work on timers: watchdogs, keep-alive, interrupt coalescing. The
    /// chardev backend uses a timerfd on its event loop; the mock backend
    /// a virtual clock that the test advances
    /// (`pciem_backend_mock::Harness::advance`). The default (a backend
    /// without timers) is [`HostError::Unsupported`].
    fn set_timer(&self, id: u32, delay: Duration) -> Result<(), HostError> {
        let _ = (id, delay);
        Err(HostError::Unsupported("timers"))
    }

    /// Disarm timer `id`; a timer that is not armed is no error.
    fn cancel_timer(&self, id: u32) -> Result<(), HostError> {
        let _ = id;
        Err(HostError::Unsupported("timers"))
    }
}

/// [`Host::dma_read_prp`]'s default: walk the PRP lists with
/// [`prp::for_each_segment`], reading list entries and each data segment
/// with [`Host::dma_read`]. For a backend that overrides the method and
/// still wants the walk (after checks of its own).
pub fn read_prp_via_dma<H: Host + ?Sized>(
    host: &H,
    prp: Prp,
    buf: &mut [u8],
) -> Result<(), HostError> {
    let len = buf.len() as u64;
    prp::for_each_segment(
        prp,
        len,
        |addr, entries| host.dma_read(addr, entries),
        |pos, addr, seg| {
            // `for_each_segment` only yields segments inside `0..len`.
            let chunk = buf
                .get_mut(pos as usize..(pos + seg) as usize)
                .ok_or(HostError::TooLong { len, max: len })?;
            host.dma_read(addr, chunk)
        },
    )
}

/// [`Host::dma_write_prp`]'s default: as [`read_prp_via_dma`], writing
/// each data segment with [`Host::dma_write`].
pub fn write_prp_via_dma<H: Host + ?Sized>(
    host: &H,
    prp: Prp,
    data: &[u8],
) -> Result<(), HostError> {
    let len = data.len() as u64;
    prp::for_each_segment(
        prp,
        len,
        |addr, entries| host.dma_read(addr, entries),
        |pos, addr, seg| {
            let chunk = data
                .get(pos as usize..(pos + seg) as usize)
                .ok_or(HostError::TooLong { len, max: len })?;
            host.dma_write(addr, chunk)
        },
    )
}

/// Typed DMA over any [`Host`] (also `&dyn Host`), as vm-memory offers:
/// read or write a plain-old-data structure (a zerocopy type: a command, a
/// descriptor, a completion entry) at a bus address, in the layout it has
/// in memory.
///
/// ```
/// use pciem_core::{Host, HostExt};
/// use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
///
/// #[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy)]
/// #[repr(C)]
/// struct Descriptor {
///     addr: u64,
///     len: u32,
///     flags: u32,
/// }
///
/// fn next(host: &dyn Host, ring: u64) -> Result<Descriptor, pciem_core::HostError> {
///     host.read_obj::<Descriptor>(ring)
/// }
/// ```
pub trait HostExt: Host {
    /// Read a `T` from host memory at `bus_addr` (one DMA read of
    /// `size_of::<T>()` bytes).
    fn read_obj<T: FromBytes + IntoBytes>(&self, bus_addr: u64) -> Result<T, HostError> {
        let mut v = T::new_zeroed();
        self.dma_read(bus_addr, v.as_mut_bytes())?;
        Ok(v)
    }

    /// Write `value` to host memory at `bus_addr` (one DMA write).
    fn write_obj<T: IntoBytes + Immutable>(
        &self,
        bus_addr: u64,
        value: &T,
    ) -> Result<(), HostError> {
        self.dma_write(bus_addr, value.as_bytes())
    }
}

impl<H: Host + ?Sized> HostExt for H {}

/// A register whose writes by the driver the device wants as events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Watch {
    /// BAR slot.
    pub bar: u8,
    /// Offset in the BAR, aligned to `width`. (The kernel's watch ABI
    /// carries 32 bits: the chardev backend refuses a watch above 4 GiB.)
    pub offset: u64,
    /// 1, 2, 4 or 8 bytes.
    pub width: u8,
}

/// A driver write to a watched register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MmioWrite {
    /// BAR slot.
    pub bar: u8,
    /// Offset in the BAR.
    pub offset: u64,
    /// Access width in bytes (1, 2, 4 or 8).
    pub width: u8,
    /// Value written (zero-extended).
    pub value: u64,
}

impl MmioWrite {
    /// The value register `reg_offset..reg_offset + reg_width` (at most 8
    /// bytes) holds after this write, given the value `current` it held
    /// (or holds: the bytes the write did not cover are taken from it), or
    /// `None` if the write does not touch the register.
    ///
    /// In watch mode a watched register's event already carries the whole
    /// register; in trap mode an event is the store itself, which may cover
    /// part of a register or several registers: this rebuilds the
    /// register's value either way.
    pub fn apply_to(&self, reg_offset: u64, reg_width: u8, current: u64) -> Option<u64> {
        let len = u64::from(self.width.min(8));
        let width = u64::from(reg_width.min(8));
        let end = self.offset.checked_add(len)?;
        let reg_end = reg_offset.checked_add(width)?;
        if !(self.offset < reg_end && reg_offset < end) {
            return None;
        }
        let mut reg = current.to_le_bytes();
        let written = self.value.to_le_bytes();
        for (i, b) in reg.iter_mut().enumerate().take(width as usize) {
            let at = reg_offset + i as u64;
            if at >= self.offset && at < end {
                if let Some(&w) = written.get((at - self.offset) as usize) {
                    *b = w;
                }
            }
        }
        let v = u64::from_le_bytes(reg);
        Some(if width >= 8 {
            v
        } else {
            v & ((1u64 << (width * 8)) - 1)
        })
    }
}

/// A driver load from a trapped BAR, in a range whose reads the model
/// answers ([`ReadPolicy::Model`](crate::ReadPolicy::Model)) or is told of
/// ([`ReadPolicy::Notify`](crate::ReadPolicy::Notify)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MmioRead {
    /// BAR slot.
    pub bar: u8,
    /// Offset in the BAR.
    pub offset: u64,
    /// Access width in bytes (1, 2, 4 or 8).
    pub width: u8,
}

impl MmioRead {
    /// All-ones in the access's width: what a read that fails or times out
    /// completes with (a PCIe completion timeout or master abort).
    pub const fn all_ones(&self) -> u64 {
        self.truncate(u64::MAX)
    }

    /// `value` cut to the access's width (widths above 8 keep all bits).
    pub const fn truncate(&self, value: u64) -> u64 {
        match self.width {
            0 => 0,
            1..=7 => value & ((1u64 << (self.width as u32 * 8)) - 1),
            _ => value,
        }
    }
}

/// The answer to a model-answered read: what a backend sends back to the
/// host (the read-response slot `id % PCIEM_READ_SLOTS`, or
/// `PCIEM_IOCTL_COMPLETE_READ`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReadAnswer {
    /// The read's id (the event's `id`).
    pub id: u64,
    /// The value, cut to the access's width.
    pub value: u64,
}

/// Something the driver did that the host could not carry out (a
/// `PCIEM_EVENT_ERROR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrapError {
    /// An instruction touching a trapped BAR could not be emulated; it
    /// completed as a master abort (loads all-ones, stores dropped).
    Undecodable {
        /// BAR slot.
        bar: u8,
        /// Offset the instruction touched.
        offset: u64,
        /// The instruction's first 16 bytes.
        bytes: [u8; 16],
        /// How many of them were readable.
        len: u8,
    },
    /// A model-answered read was not answered within the read timeout and
    /// completed all-ones.
    ReadTimeout {
        /// The read.
        read: MmioRead,
        /// Its id.
        id: u64,
    },
    /// A driver load was made to time out by a fault rule
    /// ([`Host::set_fault`]): it completed all-ones and was never
    /// offered to the model.
    InjectedTimeout {
        /// The load.
        read: MmioRead,
    },
    /// An error kind this version does not know.
    Other {
        /// The event's `flags` (the `PCIEM_ERROR_*` kind).
        kind: u32,
    },
}

impl TrapError {
    /// From a `PCIEM_EVENT_ERROR` event.
    pub fn from_event(event: &pciem_event) -> Self {
        match event.flags {
            PCIEM_ERROR_UNDECODABLE => {
                let mut bytes = [0u8; 16];
                let (lo, hi) = bytes.split_at_mut(8);
                lo.copy_from_slice(&event.data.to_le_bytes());
                hi.copy_from_slice(&event.id.to_le_bytes());
                TrapError::Undecodable {
                    bar: event.bar as u8,
                    offset: event.offset,
                    bytes,
                    len: if event.size > 16 {
                        16
                    } else {
                        event.size as u8
                    },
                }
            }
            PCIEM_ERROR_READ_TIMEOUT => TrapError::ReadTimeout {
                read: MmioRead::from_event(event),
                id: event.id,
            },
            PCIEM_ERROR_INJECTED_TIMEOUT => TrapError::InjectedTimeout {
                read: MmioRead::from_event(event),
            },
            kind => TrapError::Other { kind },
        }
    }

    /// The `PCIEM_EVENT_ERROR` event describing this error (what a host
    /// publishes; `seq`, `timestamp_ns` and `ticket` left zero).
    pub fn to_event(&self) -> pciem_event {
        let mut ev = pciem_event {
            r#type: PCIEM_EVENT_ERROR,
            ..Default::default()
        };
        match *self {
            TrapError::Undecodable {
                bar,
                offset,
                bytes,
                len,
            } => {
                let (lo, hi) = bytes.split_at(8);
                let word = |b: &[u8]| {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(b);
                    u64::from_le_bytes(w)
                };
                ev.flags = PCIEM_ERROR_UNDECODABLE;
                ev.bar = bar as u32;
                ev.offset = offset;
                ev.data = word(lo);
                ev.id = word(hi);
                ev.size = len as u32;
            }
            TrapError::ReadTimeout { read, id } => {
                ev.flags = PCIEM_ERROR_READ_TIMEOUT;
                ev.bar = read.bar as u32;
                ev.offset = read.offset;
                ev.size = read.width as u32;
                ev.id = id;
            }
            TrapError::InjectedTimeout { read } => {
                ev = pciem_event {
                    r#type: PCIEM_EVENT_ERROR,
                    flags: PCIEM_ERROR_INJECTED_TIMEOUT,
                    ..read.to_event(0)
                };
            }
            TrapError::Other { kind } => ev.flags = kind,
        }
        ev
    }
}

impl MmioRead {
    /// The read an `MMIO_READ` (or read-timeout `ERROR`) event names.
    pub const fn from_event(event: &pciem_event) -> Self {
        MmioRead {
            bar: event.bar as u8,
            offset: event.offset,
            width: width_of(event),
        }
    }

    /// The non-posted `MMIO_READ` event a host publishes for this read,
    /// waiting for the answer to `id`.
    pub const fn to_event(&self, id: u64) -> pciem_event {
        pciem_event {
            seq: 0,
            r#type: PCIEM_EVENT_MMIO_READ,
            bar: self.bar as u32,
            offset: self.offset,
            data: 0,
            size: self.width as u32,
            flags: 0,
            timestamp_ns: 0,
            id,
            ticket: 0,
        }
    }

    /// The posted `MMIO_READ` event a host publishes after serving this
    /// read with `value` from the backing.
    pub const fn to_notify_event(&self, value: u64) -> pciem_event {
        pciem_event {
            seq: 0,
            r#type: PCIEM_EVENT_MMIO_READ,
            bar: self.bar as u32,
            offset: self.offset,
            data: value,
            size: self.width as u32,
            flags: PCIEM_EVENT_FLAG_POSTED,
            timestamp_ns: 0,
            id: 0,
            ticket: 0,
        }
    }
}

impl MmioWrite {
    /// The store an `MMIO_WRITE` event names.
    pub const fn from_event(event: &pciem_event) -> Self {
        MmioWrite {
            bar: event.bar as u8,
            offset: event.offset,
            width: width_of(event),
            value: event.data,
        }
    }

    /// The `MMIO_WRITE` event a host publishes for this store (`seq`,
    /// `timestamp_ns` and `ticket` left zero).
    pub const fn to_event(&self) -> pciem_event {
        pciem_event {
            seq: 0,
            r#type: PCIEM_EVENT_MMIO_WRITE,
            bar: self.bar as u32,
            offset: self.offset,
            data: self.value,
            size: self.width as u32,
            flags: 0,
            timestamp_ns: 0,
            id: 0,
            ticket: 0,
        }
    }
}

impl ConfigWrite {
    /// The configuration write a `CONFIG_WRITE` event names (an offset
    /// past 16 bits saturates, and so is past the end of configuration
    /// space).
    pub const fn from_event(event: &pciem_event) -> Self {
        ConfigWrite {
            offset: if event.offset > u16::MAX as u64 {
                u16::MAX
            } else {
                event.offset as u16
            },
            width: width_of(event),
            value: event.data as u32,
        }
    }

    /// The `CONFIG_WRITE` event a host publishes for this write.
    pub const fn to_event(&self) -> pciem_event {
        pciem_event {
            seq: 0,
            r#type: PCIEM_EVENT_CONFIG_WRITE,
            bar: 0,
            offset: self.offset as u64,
            data: self.value as u64,
            size: self.width as u32,
            flags: 0,
            timestamp_ns: 0,
            id: 0,
            ticket: 0,
        }
    }
}

/// An event's access width (`size` in the ABI), saturated to `u8` so that
/// a nonsensical width stays nonsensical (and is refused as such) instead
/// of wrapping to a valid one.
const fn width_of(event: &pciem_event) -> u8 {
    if event.size > u8::MAX as u32 {
        u8::MAX
    } else {
        event.size as u8
    }
}

/// What [`Device::serve_event`] did with one event; `E` is the model's
/// [`Device::Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Served<E = HostError> {
    /// For a model-answered read: the answer the backend must send back
    /// (all-ones when [`Device::mmio_read`] failed). `None` for every other
    /// event.
    pub answer: Option<ReadAnswer>,
    /// What the handler returned: the first error it met.
    pub result: Result<(), E>,
}

/// A host write to configuration space that changed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConfigWrite {
    /// Offset in configuration space.
    pub offset: u16,
    /// Access width in bytes: 1, 2 or 4.
    pub width: u8,
    /// Value written.
    pub value: u32,
}

/// Why the function was reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResetKind {
    /// Function Level Reset.
    Flr,
    /// D3hot to D0 without No_Soft_Reset.
    D3HotToD0,
    /// The device came back after a surprise removal
    /// ([`Host::reinsert`]): power-on state, a new driver instance.
    Reinserted,
    /// A reset code this version does not know.
    Other(u64),
}

impl ResetKind {
    /// From the `data` of a `PCIEM_EVENT_RESET`.
    pub const fn from_raw(raw: u64) -> Self {
        match raw {
            PCIEM_RESET_FLR => ResetKind::Flr,
            PCIEM_RESET_D3HOT_D0 => ResetKind::D3HotToD0,
            PCIEM_RESET_REINSERT => ResetKind::Reinserted,
            other => ResetKind::Other(other),
        }
    }
}

/// A device model.
///
/// Backends call [`Device::start`] once the device is on the bus, then
/// [`Device::serve_event`] for each event in order (which answers
/// model-answered reads and hands everything else to
/// [`Device::handle_event`]). Handlers return the first error they met,
/// as the model's [`Device::Error`] (a host error or one of the model's
/// own); the backend keeps it, typed, and carries on, so a model decides
/// itself what a failed DMA means for the device (usually an error bit in
/// a status register).
///
/// # Watch mode and trap mode
///
/// By default every BAR is in watch mode: BAR memory is shared with the
/// driver and only the driver's writes to the registers of
/// [`Device::watches`] (at most four) become [`Device::mmio_write`] calls.
/// A model that returns a trapped BAR from [`Device::access_map`] hears of
/// every driver store to it ([`Device::mmio_write`]) and chooses, per
/// range, whether stores are also stored and whether loads are served from
/// BAR memory, reported ([`Device::mmio_read_notify`]) or answered by the
/// model ([`Device::mmio_read`]). See [`crate::access`].
pub trait Device {
    /// What the handlers return when they fail: [`HostError`] for a model
    /// whose only failures are the host's (`type Error = HostError;`), or
    /// the model's own error type, which wraps [`HostError`] (`From`, so
    /// `?` works on host calls) and adds the model's own cases. Backends
    /// keep it as it is: the mock's `Harness::device_errors` returns these
    /// values and the chardev backend's `RunReport::errors` holds them.
    /// `Send + 'static` so that backends can hand errors from the device's
    /// thread to the driver's (the mock's threaded mode) and box them.
    type Error: core::error::Error + From<HostError> + Send + 'static;

    /// The configuration space the device presents.
    fn config_space(&self) -> Result<ConfigSpace, BuildError>;

    /// The registers of watch-mode BARs whose driver writes become
    /// [`Device::mmio_write`] calls. Watches on a trapped BAR are ignored
    /// (every store to it is delivered anyway).
    fn watches(&self) -> &[Watch];

    /// Each BAR's mode and the trap ranges (see [`crate::access`]). The
    /// default is every BAR in watch mode. Models usually build it with
    /// the same [`ConfigBuilder`](crate::ConfigBuilder) as their
    /// configuration space ([`ConfigBuilder::access_map`](crate::ConfigBuilder::access_map));
    /// backends check it against [`Device::config_space`].
    fn access_map(&self) -> Result<AccessMap, BuildError> {
        Ok(AccessMap::new())
    }

    /// Called once when the device is live, before any event: the place to
    /// put initial register values into BAR memory.
    fn start(&mut self, host: &dyn Host) -> Result<(), Self::Error> {
        let _ = host;
        Ok(())
    }

    /// The driver wrote a watched register, or stored to a trapped BAR
    /// (then `value` is what the store wrote, whether or not it was stored
    /// into BAR memory).
    fn mmio_write(&mut self, host: &dyn Host, write: MmioWrite) -> Result<(), Self::Error>;

    /// The driver loads from a model-answered range of a trapped BAR and
    /// waits for the value (only the low `read.width` bytes count). Called
    /// after every earlier event was handled. Must answer quickly: past the
    /// read timeout the driver reads all-ones.
    ///
    /// The default answers what BAR memory holds (as if the range were
    /// [`ReadPolicy::Backing`](crate::ReadPolicy::Backing)). An error
    /// completes the read all-ones.
    fn mmio_read(&mut self, host: &dyn Host, read: MmioRead) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        let n = usize::from(read.width).min(8);
        let buf = b.get_mut(..n).unwrap_or(&mut []);
        host.bar_read(read.bar, read.offset, buf)?;
        Ok(u64::from_le_bytes(b))
    }

    /// The driver loaded `value` from a notify range of a trapped BAR
    /// (already served from BAR memory; nothing to answer). Default: no-op.
    fn mmio_read_notify(
        &mut self,
        host: &dyn Host,
        read: MmioRead,
        value: u64,
    ) -> Result<(), Self::Error> {
        let _ = (host, read, value);
        Ok(())
    }

    /// The host could not carry out something the driver did (an
    /// instruction it could not emulate, a read that timed out). Default:
    /// no-op.
    fn device_error(&mut self, host: &dyn Host, err: TrapError) -> Result<(), Self::Error> {
        let _ = (host, err);
        Ok(())
    }

    /// One of the device's DMAs was outside what the driver mapped (a
    /// `PCIEM_EVENT_DMA_FAULT`; see [`crate::dmacheck`]). A model may set
    /// an error status here, as a device behind an IOMMU would see its
    /// transaction fail. The default does nothing.
    fn dma_fault(
        &mut self,
        host: &dyn Host,
        report: crate::dmacheck::FaultReport,
    ) -> Result<(), Self::Error> {
        let _ = (host, report);
        Ok(())
    }

    /// Timer `id`, armed with [`Host::set_timer`], expired.
    fn timer(&mut self, host: &dyn Host, id: u32) -> Result<(), Self::Error> {
        let _ = (host, id);
        Ok(())
    }

    /// The host changed configuration space.
    fn config_write(&mut self, host: &dyn Host, write: ConfigWrite) -> Result<(), Self::Error> {
        let _ = (host, write);
        Ok(())
    }

    /// The function was reset.
    fn reset(&mut self, host: &dyn Host, kind: ResetKind) -> Result<(), Self::Error> {
        let _ = (host, kind);
        Ok(())
    }

    /// Dispatch one ring event to the handlers above. Unknown event kinds
    /// are ignored (a newer kernel may send kinds this model predates), and
    /// so are model-answered (non-posted) `MMIO_READ` events: those need an
    /// answer, which [`Device::serve_event`] produces.
    fn handle_event(&mut self, host: &dyn Host, event: &pciem_event) -> Result<(), Self::Error> {
        match event.r#type {
            PCIEM_EVENT_MMIO_READ if event.flags & PCIEM_EVENT_FLAG_POSTED != 0 => {
                self.mmio_read_notify(host, MmioRead::from_event(event), event.data)
            }
            PCIEM_EVENT_ERROR => self.device_error(host, TrapError::from_event(event)),
            PCIEM_EVENT_MMIO_WRITE => self.mmio_write(host, MmioWrite::from_event(event)),
            PCIEM_EVENT_CONFIG_WRITE => self.config_write(host, ConfigWrite::from_event(event)),
            PCIEM_EVENT_RESET => self.reset(host, ResetKind::from_raw(event.data)),
            pciem_abi::PCIEM_EVENT_DMA_FAULT => {
                match crate::dmacheck::FaultReport::from_event(event) {
                    Some(report) => self.dma_fault(host, report),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// What backends call for each event: a model-answered read (an
    /// `MMIO_READ` without [`PCIEM_EVENT_FLAG_POSTED`]) goes to
    /// [`Device::mmio_read`] and its answer is returned for the backend to
    /// send back (all-ones, with the error in `result`, when the model
    /// fails); every other event goes to [`Device::handle_event`].
    fn serve_event(&mut self, host: &dyn Host, event: &pciem_event) -> Served<Self::Error> {
        if event.r#type == PCIEM_EVENT_MMIO_READ && event.flags & PCIEM_EVENT_FLAG_POSTED == 0 {
            let read = MmioRead::from_event(event);
            let (value, result) = match self.mmio_read(host, read) {
                Ok(v) => (read.truncate(v), Ok(())),
                Err(e) => (read.all_ones(), Err(e)),
            };
            return Served {
                answer: Some(ReadAnswer {
                    id: event.id,
                    value,
                }),
                result,
            };
        }
        Served {
            answer: None,
            result: self.handle_event(host, event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_ops_round_trip_through_the_abi() {
        let ops = [
            AtomicOp::FetchAdd(3),
            AtomicOp::FetchSub(3),
            AtomicOp::Swap(9),
            AtomicOp::CompareAndSwap {
                expected: 1,
                new: 2,
            },
            AtomicOp::FetchAnd(0xf0),
            AtomicOp::FetchOr(0x0f),
            AtomicOp::FetchXor(0xff),
        ];
        for op in ops {
            let (raw, operand, compare) = op.to_abi();
            assert_eq!(AtomicOp::from_abi(raw, operand, compare), Some(op));
        }
        assert_eq!(AtomicOp::from_abi(0, 0, 0), None);
        assert_eq!(AtomicOp::from_abi(8, 0, 0), None);
    }

    #[test]
    fn atomic_ops_compute_the_new_value() {
        assert_eq!(AtomicOp::FetchAdd(1).apply(u64::MAX), 0);
        assert_eq!(AtomicOp::FetchSub(1).apply(0), u64::MAX);
        assert_eq!(AtomicOp::Swap(7).apply(1), 7);
        let cas = AtomicOp::CompareAndSwap {
            expected: 5,
            new: 6,
        };
        assert_eq!(cas.apply(5), 6);
        assert_eq!(cas.apply(4), 4);
        assert_eq!(AtomicOp::FetchAnd(0b1100).apply(0b1010), 0b1000);
        assert_eq!(AtomicOp::FetchOr(0b1100).apply(0b1010), 0b1110);
        assert_eq!(AtomicOp::FetchXor(0b1100).apply(0b1010), 0b0110);
    }

    /// A host with one 64-byte BAR 0 and nothing else.
    struct Bar0(core::cell::RefCell<[u8; 64]>);

    impl Host for Bar0 {
        fn bar_read(&self, bar: u8, offset: u64, buf: &mut [u8]) -> Result<(), HostError> {
            let m = self.0.borrow();
            let src = m
                .get(offset as usize..offset as usize + buf.len())
                .filter(|_| bar == 0)
                .ok_or(HostError::NoSuchBar { bar })?;
            buf.copy_from_slice(src);
            Ok(())
        }
        fn bar_write(&self, bar: u8, offset: u64, data: &[u8]) -> Result<(), HostError> {
            let mut m = self.0.borrow_mut();
            let dst = m
                .get_mut(offset as usize..offset as usize + data.len())
                .filter(|_| bar == 0)
                .ok_or(HostError::NoSuchBar { bar })?;
            dst.copy_from_slice(data);
            Ok(())
        }
        fn raise_irq(&self, _: Irq) -> Result<(), HostError> {
            Ok(())
        }
        fn dma_read(&self, _: u64, _: &mut [u8]) -> Result<(), HostError> {
            Err(HostError::BusMasterDisabled)
        }
        fn dma_write(&self, _: u64, _: &[u8]) -> Result<(), HostError> {
            Err(HostError::BusMasterDisabled)
        }
        fn dma_atomic(&self, _: u64, _: AtomicOp) -> Result<u64, HostError> {
            Err(HostError::BusMasterDisabled)
        }
        fn p2p_read(&self, _: u64, _: &mut [u8]) -> Result<(), HostError> {
            Err(HostError::BusMasterDisabled)
        }
        fn p2p_write(&self, _: u64, _: &[u8]) -> Result<(), HostError> {
            Err(HostError::BusMasterDisabled)
        }
    }

    /// Answers reads at 0x8 with a counter, fails reads at 0x10, keeps the
    /// default elsewhere; records notifications and errors.
    #[derive(Default)]
    struct Reads {
        next: u64,
        notified: Option<(MmioRead, u64)>,
        error: Option<TrapError>,
    }

    impl Device for Reads {
        type Error = HostError;
        fn config_space(&self) -> Result<ConfigSpace, BuildError> {
            crate::ConfigBuilder::new(1, 2).build()
        }
        fn watches(&self) -> &[Watch] {
            &[]
        }
        fn mmio_write(&mut self, _: &dyn Host, _: MmioWrite) -> Result<(), HostError> {
            Ok(())
        }
        fn mmio_read(&mut self, host: &dyn Host, read: MmioRead) -> Result<u64, HostError> {
            match read.offset {
                0x8 => {
                    self.next += 1;
                    Ok(0xAAAA_BBBB_0000_0000 | self.next)
                }
                0x10 => Err(HostError::Empty),
                _ => {
                    // The trait's default, reached through a second model.
                    struct Plain;
                    impl Device for Plain {
                        type Error = HostError;
                        fn config_space(&self) -> Result<ConfigSpace, BuildError> {
                            crate::ConfigBuilder::new(1, 2).build()
                        }
                        fn watches(&self) -> &[Watch] {
                            &[]
                        }
                        fn mmio_write(
                            &mut self,
                            _: &dyn Host,
                            _: MmioWrite,
                        ) -> Result<(), HostError> {
                            Ok(())
                        }
                    }
                    Plain.mmio_read(host, read)
                }
            }
        }
        fn mmio_read_notify(
            &mut self,
            _: &dyn Host,
            read: MmioRead,
            value: u64,
        ) -> Result<(), HostError> {
            self.notified = Some((read, value));
            Ok(())
        }
        fn device_error(&mut self, _: &dyn Host, err: TrapError) -> Result<(), HostError> {
            self.error = Some(err);
            Ok(())
        }
    }

    #[test]
    fn model_answered_reads_are_served_with_an_answer() {
        let host = Bar0(core::cell::RefCell::new([0; 64]));
        host.write_u32(0, 0x20, 0x1122_3344).unwrap();
        let mut dev = Reads::default();
        let read = |offset, width| MmioRead {
            bar: 0,
            offset,
            width,
        };
        let s = dev.serve_event(&host, &read(0x8, 4).to_event(77));
        assert_eq!(
            s,
            Served {
                answer: Some(ReadAnswer {
                    id: 77,
                    value: 0x0000_0001
                }),
                result: Ok(())
            }
        );
        let s = dev.serve_event(&host, &read(0x8, 8).to_event(78));
        assert_eq!(s.answer.unwrap().value, 0xAAAA_BBBB_0000_0002);
        // A failing model answers all-ones of the width, and says why.
        let s = dev.serve_event(&host, &read(0x10, 2).to_event(79));
        assert_eq!(
            s.answer,
            Some(ReadAnswer {
                id: 79,
                value: 0xFFFF
            })
        );
        assert_eq!(s.result, Err(HostError::Empty));
        // The default answers BAR memory.
        let s = dev.serve_event(&host, &read(0x20, 4).to_event(80));
        assert_eq!(s.answer.unwrap().value, 0x1122_3344);
        let s = dev.serve_event(&host, &read(0x21, 1).to_event(81));
        assert_eq!(s.answer.unwrap().value, 0x33);
        // handle_event alone never runs mmio_read for a non-posted read.
        dev.handle_event(&host, &read(0x8, 4).to_event(82)).unwrap();
        assert_eq!(dev.next, 2);
    }

    #[test]
    fn posted_reads_and_errors_reach_their_hooks() {
        let host = Bar0(core::cell::RefCell::new([0; 64]));
        let mut dev = Reads::default();
        let read = MmioRead {
            bar: 0,
            offset: 0xC,
            width: 4,
        };
        let s = dev.serve_event(&host, &read.to_notify_event(0x55));
        assert_eq!((s.answer, s.result), (None, Ok(())));
        assert_eq!(dev.notified, Some((read, 0x55)));
        let timeout = TrapError::ReadTimeout { read, id: 9 };
        dev.serve_event(&host, &timeout.to_event());
        assert_eq!(dev.error, Some(timeout));
        let undecodable = TrapError::Undecodable {
            bar: 0,
            offset: 0x4,
            bytes: *b"0123456789abcdef",
            len: 15,
        };
        dev.serve_event(&host, &undecodable.to_event());
        assert_eq!(dev.error, Some(undecodable));
        let other = TrapError::Other { kind: 99 };
        assert_eq!(TrapError::from_event(&other.to_event()), other);
        let injected = TrapError::InjectedTimeout { read };
        let ev = injected.to_event();
        assert_eq!((ev.r#type, ev.flags, ev.id), (PCIEM_EVENT_ERROR, 3, 0));
        dev.serve_event(&host, &ev);
        assert_eq!(dev.error, Some(injected));
    }

    #[test]
    fn writes_rebuild_the_registers_they_touch() {
        let w = |offset, width, value| MmioWrite {
            bar: 0,
            offset,
            width,
            value,
        };
        // The whole register.
        assert_eq!(w(8, 4, 0x1234).apply_to(8, 4, 0xFFFF_FFFF), Some(0x1234));
        // One byte of it.
        assert_eq!(w(9, 1, 0xAB).apply_to(8, 4, 0x1122_3344), Some(0x1122_AB44));
        // An 8-byte store over two registers.
        let wide = w(8, 8, 0x5555_6666_7777_8888);
        assert_eq!(wide.apply_to(8, 4, 0), Some(0x7777_8888));
        assert_eq!(wide.apply_to(12, 4, 0), Some(0x5555_6666));
        // Straddling the start of a register.
        assert_eq!(w(6, 4, 0xAABB_CCDD).apply_to(8, 4, 0), Some(0xAABB));
        // Not touching it.
        assert_eq!(w(4, 4, 1).apply_to(8, 4, 0), None);
        assert_eq!(w(12, 4, 1).apply_to(8, 4, 0), None);
        assert_eq!(w(u64::MAX, 8, 1).apply_to(8, 4, 0), None);
    }

    #[test]
    fn accesses_round_trip_through_events() {
        let w = MmioWrite {
            bar: 2,
            offset: 0x1_0000_0008,
            width: 8,
            value: 0x1122_3344_5566_7788,
        };
        assert_eq!(MmioWrite::from_event(&w.to_event()), w);
        let c = ConfigWrite {
            offset: 0xFFC,
            width: 4,
            value: 0xdead_beef,
        };
        assert_eq!(ConfigWrite::from_event(&c.to_event()), c);
        // A width or offset that does not fit saturates instead of
        // wrapping into a valid-looking one.
        let mut ev = w.to_event();
        ev.size = 0x104;
        assert_eq!(MmioWrite::from_event(&ev).width, u8::MAX);
        assert_eq!(MmioRead::from_event(&ev).width, u8::MAX);
        let mut ev = c.to_event();
        ev.offset = 0x1_0004;
        assert_eq!(ConfigWrite::from_event(&ev).offset, u16::MAX);
    }

    #[test]
    fn read_widths() {
        let r = |width| MmioRead {
            bar: 0,
            offset: 0,
            width,
        };
        assert_eq!(r(1).all_ones(), 0xFF);
        assert_eq!(r(2).all_ones(), 0xFFFF);
        assert_eq!(r(4).all_ones(), 0xFFFF_FFFF);
        assert_eq!(r(8).all_ones(), u64::MAX);
        assert_eq!(r(0).all_ones(), 0);
        assert_eq!(r(200).truncate(5), 5);
    }

    #[test]
    fn irq_abi_encoding() {
        let a = Irq::IntxDeassert.to_abi();
        assert_eq!((a.kind, a.flags), (PCIEM_IRQ_INTX, PCIEM_IRQ_FLAG_DEASSERT));
        let m = Irq::MsiX { entry: 5 }.to_abi();
        assert_eq!((m.vector, m.kind), (5, PCIEM_IRQ_MSIX));
        assert_eq!(
            Irq::Auto { vector: 0 }.to_abi(),
            pciem_irq_inject::default()
        );
    }
}
