//! A minimal single-threaded host and driver view for the model's own unit
//! tests (the demo and the integration tests use `pciem-backend-mock`).
//!
//! BARs are plain memory, DMA memory is one growing region starting at
//! [`DMA_BASE`] (anything outside what was allocated is unmapped), one
//! peer window at [`P2P_BASE`] is open to peer-to-peer, and interrupts are
//! recorded. Driver writes to watched registers are handed to the device
//! at once, as a stepping harness would.

use std::cell::{Cell, RefCell};
use std::ops::Range;
use std::time::Duration;

use pciem_core::{AtomicOp, Device, Host, HostError, Irq, MmioWrite};

use crate::demo::{BusError, DriverBus};
use crate::device::{ProtoPciem, Stats, WATCHES};
use crate::regs::{FB_BAR, FB_BAR_SIZE, REG_BAR, REG_BAR_SIZE};

/// Bus address of the first DMA buffer.
pub const DMA_BASE: u64 = 0x1_0000_0000;
/// Address of the peer window open to P2P.
pub const P2P_BASE: u64 = 0x80_0000_0000;
/// Size of the peer window.
pub const P2P_SIZE: u64 = 64 * 1024;

fn window(base: u64, size: usize, addr: u64, len: usize) -> Option<Range<usize>> {
    let start = usize::try_from(addr.checked_sub(base)?).ok()?;
    let end = start.checked_add(len)?;
    (end <= size).then_some(start..end)
}

/// The host side: BAR memory, DMA memory, the peer window, interrupts.
#[derive(Debug)]
pub struct SimHost {
    bar0: RefCell<Vec<u8>>,
    bar2: RefCell<Vec<u8>>,
    dma: RefCell<Vec<u8>>,
    peer: RefCell<Vec<u8>>,
    bar2_written: Cell<u64>,
    irqs: RefCell<Vec<Irq>>,
}

impl Default for SimHost {
    fn default() -> Self {
        Self::new()
    }
}

impl SimHost {
    /// Empty BARs (BAR2 filled with 0xAA so a missing mirror write shows),
    /// no DMA memory.
    pub fn new() -> Self {
        Self {
            bar0: RefCell::new(vec![0; REG_BAR_SIZE as usize]),
            bar2: RefCell::new(vec![0xAA; FB_BAR_SIZE as usize]),
            dma: RefCell::new(Vec::new()),
            peer: RefCell::new(vec![0; P2P_SIZE as usize]),
            bar2_written: Cell::new(0),
            irqs: RefCell::new(Vec::new()),
        }
    }

    /// Map `len` more bytes of DMA memory; returns their bus address.
    pub fn alloc_dma(&self, len: usize) -> u64 {
        let mut dma = self.dma.borrow_mut();
        let addr = DMA_BASE + dma.len() as u64;
        // Page-align each buffer, as a DMA allocator would.
        let new_len = dma.len() + len.div_ceil(4096) * 4096;
        dma.resize(new_len, 0);
        addr
    }

    /// Bytes the device has written into BAR2 so far.
    pub fn bar2_written(&self) -> u64 {
        self.bar2_written.get()
    }

    /// A copy of BAR2 as the driver would read it.
    pub fn bar2(&self) -> Vec<u8> {
        self.bar2.borrow().clone()
    }

    /// Interrupts raised so far.
    pub fn irqs(&self) -> Vec<Irq> {
        self.irqs.borrow().clone()
    }

    fn bar(&self, bar: u8) -> Result<&RefCell<Vec<u8>>, HostError> {
        match bar {
            REG_BAR => Ok(&self.bar0),
            FB_BAR => Ok(&self.bar2),
            _ => Err(HostError::NoSuchBar { bar }),
        }
    }

    fn bar_range(&self, bar: u8, offset: u64, len: usize) -> Result<Range<usize>, HostError> {
        let size = self.bar(bar)?.borrow().len();
        window(0, size, offset, len).ok_or(HostError::BarOutOfRange {
            bar,
            offset,
            len: len as u64,
            size: size as u64,
        })
    }

    fn dma_range(&self, addr: u64, len: usize) -> Result<Range<usize>, HostError> {
        window(DMA_BASE, self.dma.borrow().len(), addr, len).ok_or(HostError::Unmapped {
            addr,
            len: len as u64,
        })
    }

    fn peer_range(&self, addr: u64, len: usize) -> Result<Range<usize>, HostError> {
        window(P2P_BASE, P2P_SIZE as usize, addr, len).ok_or(HostError::P2pDenied {
            addr,
            len: len as u64,
        })
    }
}

impl Host for SimHost {
    fn bar_read(&self, bar: u8, offset: u64, buf: &mut [u8]) -> Result<(), HostError> {
        let r = self.bar_range(bar, offset, buf.len())?;
        buf.copy_from_slice(&self.bar(bar)?.borrow()[r]);
        Ok(())
    }

    fn bar_write(&self, bar: u8, offset: u64, data: &[u8]) -> Result<(), HostError> {
        let r = self.bar_range(bar, offset, data.len())?;
        self.bar(bar)?.borrow_mut()[r].copy_from_slice(data);
        if bar == FB_BAR {
            self.bar2_written
                .set(self.bar2_written.get() + data.len() as u64);
        }
        Ok(())
    }

    fn raise_irq(&self, irq: Irq) -> Result<(), HostError> {
        match irq {
            Irq::Msi { vector: 0 } | Irq::Auto { vector: 0 } => {
                self.irqs.borrow_mut().push(irq);
                Ok(())
            }
            Irq::Msi { vector } | Irq::Auto { vector } => Err(HostError::NoSuchVector {
                vector,
                available: 1,
            }),
            _ => Err(HostError::IrqNotEnabled { kind: "MSI-X/INTx" }),
        }
    }

    fn dma_read(&self, addr: u64, buf: &mut [u8]) -> Result<(), HostError> {
        let r = self.dma_range(addr, buf.len())?;
        buf.copy_from_slice(&self.dma.borrow()[r]);
        Ok(())
    }

    fn dma_write(&self, addr: u64, data: &[u8]) -> Result<(), HostError> {
        let r = self.dma_range(addr, data.len())?;
        self.dma.borrow_mut()[r].copy_from_slice(data);
        Ok(())
    }

    fn dma_atomic(&self, _: u64, _: AtomicOp) -> Result<u64, HostError> {
        Err(HostError::Unsupported("DMA atomics in the sim host"))
    }

    fn p2p_read(&self, addr: u64, buf: &mut [u8]) -> Result<(), HostError> {
        let r = self.peer_range(addr, buf.len())?;
        buf.copy_from_slice(&self.peer.borrow()[r]);
        Ok(())
    }

    fn p2p_write(&self, addr: u64, data: &[u8]) -> Result<(), HostError> {
        let r = self.peer_range(addr, data.len())?;
        self.peer.borrow_mut()[r].copy_from_slice(data);
        Ok(())
    }
}

/// The sim host with a started device on it, seen from the driver's side.
#[derive(Debug)]
pub struct SimBus {
    /// The host.
    pub host: SimHost,
    /// The device.
    pub dev: ProtoPciem,
    irqs_seen: usize,
}

fn bus_err(e: HostError) -> BusError {
    BusError(e.to_string())
}

impl SimBus {
    /// A started device on a fresh host.
    pub fn new() -> Result<Self, BusError> {
        let host = SimHost::new();
        let mut dev = ProtoPciem::new();
        dev.start(&host).map_err(bus_err)?;
        Ok(Self {
            host,
            dev,
            irqs_seen: 0,
        })
    }

    /// The device's counters.
    pub fn stats(&self) -> Stats {
        self.dev.stats()
    }
}

impl DriverBus for SimBus {
    fn write_reg(&mut self, offset: u64, value: u32) -> Result<(), BusError> {
        self.host
            .write_u32(REG_BAR, offset, value)
            .map_err(bus_err)?;
        if WATCHES.iter().any(|w| u64::from(w.offset) == offset) {
            let w = MmioWrite {
                bar: REG_BAR,
                offset,
                size: 4,
                value: value.into(),
            };
            self.dev.mmio_write(&self.host, w).map_err(bus_err)?;
        }
        Ok(())
    }

    fn read_reg(&mut self, offset: u64) -> Result<u32, BusError> {
        self.host.read_u32(REG_BAR, offset).map_err(bus_err)
    }

    fn read_fb(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BusError> {
        self.host.bar_read(FB_BAR, offset, buf).map_err(bus_err)
    }

    fn alloc_dma(&mut self, len: usize) -> Result<u64, BusError> {
        Ok(self.host.alloc_dma(len))
    }

    fn write_dma(&mut self, addr: u64, data: &[u8]) -> Result<(), BusError> {
        self.host.dma_write(addr, data).map_err(bus_err)
    }

    fn read_dma(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), BusError> {
        self.host.dma_read(addr, buf).map_err(bus_err)
    }

    fn wait_irq(&mut self, _timeout: Duration) -> Result<bool, BusError> {
        // Stepping: the device has already run, so an interrupt that is not
        // recorded now never will be.
        if self.host.irqs.borrow().len() > self.irqs_seen {
            self.irqs_seen += 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn p2p_region(&mut self) -> Option<(u64, u64)> {
        Some((P2P_BASE, P2P_SIZE))
    }
}
