//! An optional trace of every access: what the driver did to the device
//! and what the device did to the host, in the order it happened, as typed
//! records a test can assert on or print.
//!
//! Off by default (recording costs one atomic load per access then);
//! [`Harness::set_trace`] turns it on. The driver side records
//! configuration reads and writes, BAR reads and writes (register accesses
//! with their width and value, bulk copies with their bytes) and the
//! interrupts it takes ([`Harness::wait_irq`], [`Harness::poll_irq`],
//! [`Harness::take_irqs`]); the device side records its DMA (address,
//! length, and the error if the host refused it), atomics, peer-to-peer
//! transfers, the interrupts it raises, its timers (armed, cancelled,
//! fired), the errors it reports through AER and a surprise removal. A
//! record is taken when the access happens, under the host's state, so the
//! order is the order the host saw, also when the device runs on its own
//! thread.
//!
//! ```
//! use pciem_backend_mock::trace::TraceRecord;
//! use pciem_backend_mock::Harness;
//! use pciem_core::config::{Bar, MsiCap};
//! use pciem_core::{BuildError, ConfigBuilder, ConfigSpace, Device, Host, HostError, Irq,
//!                  MmioWrite, Watch};
//!
//! /// Reads 4 bytes at the bus address written to 0x0, raises vector 0.
//! struct Fetch;
//! impl Device for Fetch {
//!     type Error = HostError;
//!     fn config_space(&self) -> Result<ConfigSpace, BuildError> {
//!         ConfigBuilder::new(0x1234, 0x9).bar(0, Bar::memory32(4096)).msi(MsiCap::new(1)).build()
//!     }
//!     fn watches(&self) -> &[Watch] {
//!         &[Watch { bar: 0, offset: 0, width: 8 }]
//!     }
//!     fn mmio_write(&mut self, host: &dyn Host, w: MmioWrite) -> Result<(), HostError> {
//!         let mut b = [0u8; 4];
//!         host.dma_read(w.value, &mut b)?;
//!         host.raise_irq(Irq::Msi { vector: 0 })
//!     }
//! }
//!
//! let mut h = Harness::new(Fetch).unwrap();
//! h.enable_msi(0xfee0_0000, 0x20).unwrap();
//! let buf = h.dma_alloc(4).unwrap();
//! h.set_trace(true);
//! h.write64(0, 0x0, buf).unwrap();
//! let irq = h.wait_irq(std::time::Duration::ZERO).unwrap();
//! assert_eq!(
//!     h.take_trace(),
//!     [
//!         TraceRecord::MmioWrite { bar: 0, offset: 0x0, width: 8, value: buf },
//!         TraceRecord::DmaRead { addr: buf, len: 4, error: None },
//!         TraceRecord::IrqRaised { irq: Irq::Msi { vector: 0 }, error: None },
//!         TraceRecord::IrqReceived(irq),
//!     ]
//! );
//! // Or print it, one line per record:
//! h.read32(0, 0x0).unwrap();
//! for r in h.trace() {
//!     println!("{r}"); // driver  read   BAR0+0x0 (4 bytes) = 0x…
//! }
//! ```
//!
//! [`Harness::set_trace`]: crate::Harness::set_trace
//! [`Harness::wait_irq`]: crate::Harness::wait_irq
//! [`Harness::poll_irq`]: crate::Harness::poll_irq
//! [`Harness::take_irqs`]: crate::Harness::take_irqs

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use pciem_core::{AerError, AtomicOp, Device, HostError, Irq};

use crate::irq::IrqRecord;
use crate::Harness;

/// Who did what a [`TraceRecord`] records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The driver (the test, through [`Harness`]).
    Driver,
    /// The device model (through its [`pciem_core::Host`]).
    Device,
}

/// One access or action, in the order the host saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceRecord {
    /// The driver read configuration space.
    ConfigRead {
        /// Offset in configuration space.
        offset: u16,
        /// Width in bytes.
        width: u8,
        /// The value read.
        value: u32,
    },
    /// The driver wrote configuration space.
    ConfigWrite {
        /// Offset in configuration space.
        offset: u16,
        /// Width in bytes.
        width: u8,
        /// The value written.
        value: u32,
    },
    /// The driver read a register (1, 2, 4 or 8 bytes) of a BAR.
    MmioRead {
        /// BAR slot.
        bar: u8,
        /// Offset in the BAR.
        offset: u64,
        /// Width in bytes.
        width: u8,
        /// The value read.
        value: u64,
    },
    /// The driver wrote a register (1, 2, 4 or 8 bytes) of a BAR.
    MmioWrite {
        /// BAR slot.
        bar: u8,
        /// Offset in the BAR.
        offset: u64,
        /// Width in bytes.
        width: u8,
        /// The value written.
        value: u64,
    },
    /// The driver copied bytes out of a BAR (`memcpy_fromio`).
    BarRead {
        /// BAR slot.
        bar: u8,
        /// Offset in the BAR.
        offset: u64,
        /// The bytes read.
        data: Vec<u8>,
    },
    /// The driver copied bytes into a BAR (`memcpy_toio`).
    BarWrite {
        /// BAR slot.
        bar: u8,
        /// Offset in the BAR.
        offset: u64,
        /// The bytes written.
        data: Vec<u8>,
    },
    /// The driver took an interrupt.
    IrqReceived(IrqRecord),
    /// The device read host memory.
    DmaRead {
        /// Bus address.
        addr: u64,
        /// Length in bytes.
        len: usize,
        /// Why the host refused it, if it did.
        error: Option<HostError>,
    },
    /// The device wrote host memory.
    DmaWrite {
        /// Bus address.
        addr: u64,
        /// Length in bytes.
        len: usize,
        /// Why the host refused it, if it did.
        error: Option<HostError>,
    },
    /// The device did an atomic on host memory.
    DmaAtomic {
        /// Bus address.
        addr: u64,
        /// The operation.
        op: AtomicOp,
        /// Why the host refused it, if it did.
        error: Option<HostError>,
    },
    /// The device read a peer's memory.
    P2pRead {
        /// Peer address.
        addr: u64,
        /// Length in bytes.
        len: usize,
        /// Why the host refused it, if it did.
        error: Option<HostError>,
    },
    /// The device wrote a peer's memory.
    P2pWrite {
        /// Peer address.
        addr: u64,
        /// Length in bytes.
        len: usize,
        /// Why the host refused it, if it did.
        error: Option<HostError>,
    },
    /// The device raised an interrupt (delivered, or held while masked,
    /// unless `error` says it was refused).
    IrqRaised {
        /// The interrupt asked for.
        irq: Irq,
        /// Why the host refused it, if it did.
        error: Option<HostError>,
    },
    /// The device armed a timer.
    TimerSet {
        /// The timer's id.
        id: u32,
        /// Its delay.
        delay: Duration,
    },
    /// The device cancelled a timer.
    TimerCancelled {
        /// The timer's id.
        id: u32,
    },
    /// A timer fired (its handler runs next), at this time of the virtual
    /// clock.
    TimerFired {
        /// The timer's id.
        id: u32,
        /// The virtual clock ([`Harness::now`](crate::Harness::now)).
        at: Duration,
    },
    /// The device reported an error through AER.
    AerInjected {
        /// The error reported.
        aer: AerError,
        /// Why the host refused it, if it did.
        error: Option<HostError>,
    },
    /// The device took its link down (a surprise removal).
    SurpriseRemove,
}

impl TraceRecord {
    /// Who did it.
    pub fn side(&self) -> Side {
        match self {
            TraceRecord::ConfigRead { .. }
            | TraceRecord::ConfigWrite { .. }
            | TraceRecord::MmioRead { .. }
            | TraceRecord::MmioWrite { .. }
            | TraceRecord::BarRead { .. }
            | TraceRecord::BarWrite { .. }
            | TraceRecord::IrqReceived(_) => Side::Driver,
            _ => Side::Device,
        }
    }
}

/// ` (refused: …)` when a host error is there.
struct Refused<'a>(&'a Option<HostError>);

impl fmt::Display for Refused<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(e) => write!(f, " (refused: {e})"),
            None => Ok(()),
        }
    }
}

/// One line: the side, what was done, where, and the value.
impl fmt::Display for TraceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = match self.side() {
            Side::Driver => "driver",
            Side::Device => "device",
        };
        write!(f, "{side:<7} ")?;
        match self {
            TraceRecord::ConfigRead {
                offset,
                width,
                value,
            } => write!(f, "cfg rd CFG+{offset:#x} ({width} bytes) = {value:#x}"),
            TraceRecord::ConfigWrite {
                offset,
                width,
                value,
            } => write!(f, "cfg wr CFG+{offset:#x} ({width} bytes) := {value:#x}"),
            TraceRecord::MmioRead {
                bar,
                offset,
                width,
                value,
            } => write!(
                f,
                "read   BAR{bar}+{offset:#x} ({width} bytes) = {value:#x}"
            ),
            TraceRecord::MmioWrite {
                bar,
                offset,
                width,
                value,
            } => write!(
                f,
                "write  BAR{bar}+{offset:#x} ({width} bytes) := {value:#x}"
            ),
            TraceRecord::BarRead { bar, offset, data } => {
                write!(f, "copy   BAR{bar}+{offset:#x} -> {} bytes", data.len())
            }
            TraceRecord::BarWrite { bar, offset, data } => {
                write!(f, "copy   {} bytes -> BAR{bar}+{offset:#x}", data.len())
            }
            TraceRecord::IrqReceived(r) => write!(
                f,
                "irq    {:?} vector {} (address {:#x}, data {:#x})",
                r.kind, r.vector, r.address, r.data
            ),
            TraceRecord::DmaRead { addr, len, error } => {
                write!(f, "dma rd {len} bytes at {addr:#x}{}", Refused(error))
            }
            TraceRecord::DmaWrite { addr, len, error } => {
                write!(f, "dma wr {len} bytes at {addr:#x}{}", Refused(error))
            }
            TraceRecord::DmaAtomic { addr, op, error } => {
                write!(f, "atomic {op:?} at {addr:#x}{}", Refused(error))
            }
            TraceRecord::P2pRead { addr, len, error } => {
                write!(f, "p2p rd {len} bytes at {addr:#x}{}", Refused(error))
            }
            TraceRecord::P2pWrite { addr, len, error } => {
                write!(f, "p2p wr {len} bytes at {addr:#x}{}", Refused(error))
            }
            TraceRecord::IrqRaised { irq, error } => {
                write!(f, "raise  {irq:?}{}", Refused(error))
            }
            TraceRecord::TimerSet { id, delay } => write!(f, "timer  {id} armed, {delay:?}"),
            TraceRecord::TimerCancelled { id } => write!(f, "timer  {id} cancelled"),
            TraceRecord::TimerFired { id, at } => write!(f, "timer  {id} fired at {at:?}"),
            TraceRecord::AerInjected { aer, error } => write!(
                f,
                "aer    {:?} status {:#x}{}",
                aer.severity,
                aer.status,
                Refused(error)
            ),
            TraceRecord::SurpriseRemove => write!(f, "surprise removal"),
        }
    }
}

/// Where the host keeps the trace: shared by the driver side and the
/// device side (whichever thread it runs on).
#[derive(Debug, Default)]
pub(crate) struct Tracer {
    on: AtomicBool,
    records: Mutex<Vec<TraceRecord>>,
}

impl Tracer {
    /// Records what `what` builds, if tracing is on (`what` is not called
    /// otherwise, so building a record costs nothing while off).
    pub(crate) fn record(&self, what: impl FnOnce() -> TraceRecord) {
        if self.on.load(Ordering::Relaxed) {
            let r = what();
            self.records
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(r);
        }
    }

    /// Records a host call's outcome, with its error if it failed.
    pub(crate) fn outcome<T>(
        &self,
        result: &Result<T, HostError>,
        what: impl FnOnce(Option<HostError>) -> TraceRecord,
    ) {
        self.record(|| what(result.as_ref().err().copied()));
    }

    /// Whether tracing is on.
    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    fn set(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Vec<TraceRecord> {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn take(&self) -> Vec<TraceRecord> {
        std::mem::take(&mut *self.records.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl<D: Device> Harness<D> {
    /// Turns the trace on or off (it starts off). Records already taken
    /// stay until [`Harness::take_trace`].
    pub fn set_trace(&mut self, on: bool) {
        self.settle();
        self.host().shared.trace.set(on);
    }

    /// Every record so far, in order (in stepping mode, after the device
    /// handled every pending event).
    pub fn trace(&mut self) -> Vec<TraceRecord> {
        self.settle();
        self.host().shared.trace.snapshot()
    }

    /// As [`Harness::trace`], emptying it.
    pub fn take_trace(&mut self) -> Vec<TraceRecord> {
        self.settle();
        self.host().shared.trace.take()
    }
}
