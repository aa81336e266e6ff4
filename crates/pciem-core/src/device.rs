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
    pciem_event, pciem_irq_inject, PCIEM_ATOMIC_CAS, PCIEM_ATOMIC_FETCH_ADD,
    PCIEM_ATOMIC_FETCH_AND, PCIEM_ATOMIC_FETCH_OR, PCIEM_ATOMIC_FETCH_SUB, PCIEM_ATOMIC_FETCH_XOR,
    PCIEM_ATOMIC_SWAP, PCIEM_EVENT_CONFIG_WRITE, PCIEM_EVENT_MMIO_WRITE, PCIEM_EVENT_RESET,
    PCIEM_IRQ_AUTO, PCIEM_IRQ_FLAG_ASSERT, PCIEM_IRQ_FLAG_DEASSERT, PCIEM_IRQ_INTX, PCIEM_IRQ_MSI,
    PCIEM_IRQ_MSIX, PCIEM_RESET_D3HOT_D0, PCIEM_RESET_FLR,
};

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
    /// An operating-system call failed.
    #[error("{op} failed with errno {errno}")]
    Os {
        /// What was being done.
        op: &'static str,
        /// The errno.
        errno: i32,
    },
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
        let len = buf.len() as u64;
        prp::for_each_segment(
            prp,
            len,
            |addr, entries| self.dma_read(addr, entries),
            |pos, addr, seg| {
                // `for_each_segment` only yields segments inside `0..len`.
                let chunk = buf
                    .get_mut(pos as usize..(pos + seg) as usize)
                    .ok_or(HostError::TooLong { len, max: len })?;
                self.dma_read(addr, chunk)
            },
        )
    }

    /// Scatter write described by PRP entries from `data`.
    fn dma_write_prp(&self, prp: Prp, data: &[u8]) -> Result<(), HostError> {
        let len = data.len() as u64;
        prp::for_each_segment(
            prp,
            len,
            |addr, entries| self.dma_read(addr, entries),
            |pos, addr, seg| {
                let chunk = data
                    .get(pos as usize..(pos + seg) as usize)
                    .ok_or(HostError::TooLong { len, max: len })?;
                self.dma_write(addr, chunk)
            },
        )
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
}

/// A register whose writes by the driver the device wants as events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Watch {
    /// BAR slot.
    pub bar: u8,
    /// Offset in the BAR, aligned to `width`.
    pub offset: u32,
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
    /// Access width in bytes.
    pub size: u8,
    /// Value written (zero-extended).
    pub value: u64,
}

/// A host write to configuration space that changed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConfigWrite {
    /// Offset in configuration space.
    pub offset: u16,
    /// 1, 2 or 4.
    pub size: u8,
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
    /// A reset code this version does not know.
    Other(u64),
}

impl ResetKind {
    /// From the `data` of a `PCIEM_EVENT_RESET`.
    pub const fn from_raw(raw: u64) -> Self {
        match raw {
            PCIEM_RESET_FLR => ResetKind::Flr,
            PCIEM_RESET_D3HOT_D0 => ResetKind::D3HotToD0,
            other => ResetKind::Other(other),
        }
    }
}

/// A device model.
///
/// Backends call [`Device::start`] once the device is on the bus, then
/// [`Device::handle_event`] for each event in order. Handlers return the
/// first host error they met; the backend reports it and carries on, so a
/// model decides itself what a failed DMA means for the device (usually an
/// error bit in a status register).
pub trait Device {
    /// The configuration space the device presents.
    fn config_space(&self) -> Result<ConfigSpace, BuildError>;

    /// The registers whose driver writes become [`Device::mmio_write`] calls.
    fn watches(&self) -> &[Watch];

    /// Called once when the device is live, before any event: the place to
    /// put initial register values into BAR memory.
    fn start(&mut self, host: &dyn Host) -> Result<(), HostError> {
        let _ = host;
        Ok(())
    }

    /// The driver wrote a watched register.
    fn mmio_write(&mut self, host: &dyn Host, write: MmioWrite) -> Result<(), HostError>;

    /// The host changed configuration space.
    fn config_write(&mut self, host: &dyn Host, write: ConfigWrite) -> Result<(), HostError> {
        let _ = (host, write);
        Ok(())
    }

    /// The function was reset.
    fn reset(&mut self, host: &dyn Host, kind: ResetKind) -> Result<(), HostError> {
        let _ = (host, kind);
        Ok(())
    }

    /// Dispatch one ring event to the handlers above. Unknown event kinds
    /// are ignored (a newer kernel may send kinds this model predates).
    fn handle_event(&mut self, host: &dyn Host, event: &pciem_event) -> Result<(), HostError> {
        match event.r#type {
            PCIEM_EVENT_MMIO_WRITE => self.mmio_write(
                host,
                MmioWrite {
                    bar: event.bar as u8,
                    offset: event.offset,
                    size: event.size as u8,
                    value: event.data,
                },
            ),
            PCIEM_EVENT_CONFIG_WRITE => self.config_write(
                host,
                ConfigWrite {
                    offset: event.offset as u16,
                    size: event.size as u8,
                    value: event.data as u32,
                },
            ),
            PCIEM_EVENT_RESET => self.reset(host, ResetKind::from_raw(event.data)),
            _ => Ok(()),
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
