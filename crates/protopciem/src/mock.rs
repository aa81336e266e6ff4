//! ProtoPCIem on the mock backend: the driver's view ([`DriverBus`]) of a
//! card plugged into `pciem-backend-mock`'s harness, as the demo and the
//! driver-style tests use it.

use std::time::Duration;

use pciem_backend_mock::{Harness, MockError};

use crate::config::Mode;
use crate::demo::{BusError, DriverBus};
use crate::device::{ProtoPciem, Stats};
use crate::regs::{FB_BAR, REG_BAR};

/// Address of the peer window open to P2P.
pub const P2P_BASE: u64 = 0x80_0000_0000;
/// Size of the peer window.
pub const P2P_SIZE: u64 = 64 * 1024;
/// MSI address the "driver" programs.
pub const MSI_ADDRESS: u64 = 0xfee0_0000;

fn bus_err(e: MockError) -> BusError {
    BusError(e.to_string())
}

/// A ProtoPCIem card on the mock host, probed the way the kernel driver
/// probes it (memory decoding, bus mastering, MSI enabled), with a peer
/// window for P2P.
pub struct MockBus {
    harness: Harness<ProtoPciem>,
}

impl MockBus {
    /// The device handles events on the caller's thread (deterministic),
    /// BAR0 in trap mode.
    pub fn stepping() -> Result<Self, BusError> {
        Self::stepping_with(Mode::default())
    }

    /// The device runs on its own thread, as in a device process, BAR0 in
    /// trap mode.
    pub fn threaded() -> Result<Self, BusError> {
        Self::threaded_with(Mode::default())
    }

    /// [`MockBus::stepping`] with BAR0 in `mode`.
    pub fn stepping_with(mode: Mode) -> Result<Self, BusError> {
        Self::probe(Harness::new(ProtoPciem::with_mode(mode)).map_err(bus_err)?)
    }

    /// [`MockBus::threaded`] with BAR0 in `mode`.
    pub fn threaded_with(mode: Mode) -> Result<Self, BusError> {
        Self::probe(Harness::threaded(ProtoPciem::with_mode(mode)).map_err(bus_err)?)
    }

    /// A card on a harness the caller made (a model built its own way),
    /// probed as [`MockBus::stepping`] probes it.
    pub fn from_harness(harness: Harness<ProtoPciem>) -> Result<Self, BusError> {
        Self::probe(harness)
    }

    fn probe(mut harness: Harness<ProtoPciem>) -> Result<Self, BusError> {
        harness.enable_msi(MSI_ADDRESS, 0).map_err(bus_err)?;
        harness.add_p2p_region(P2P_BASE, P2P_SIZE as usize);
        Ok(MockBus { harness })
    }

    /// The harness, for what the driver view does not cover.
    pub fn harness(&mut self) -> &mut Harness<ProtoPciem> {
        &mut self.harness
    }

    /// The device's counters (stepping mode; `None` while it runs on its
    /// own thread).
    pub fn stats(&self) -> Option<Stats> {
        self.harness.device().map(ProtoPciem::stats)
    }

    /// Stop the device (after it handled everything published) and return
    /// its counters.
    pub fn into_stats(self) -> Result<Stats, BusError> {
        Ok(self.harness.into_device().map_err(bus_err)?.stats())
    }
}

impl DriverBus for MockBus {
    fn write_reg(&mut self, offset: u64, value: u32) -> Result<(), BusError> {
        self.harness
            .write32(REG_BAR, offset, value)
            .map_err(bus_err)
    }

    fn read_reg(&mut self, offset: u64) -> Result<u32, BusError> {
        self.harness.read32(REG_BAR, offset).map_err(bus_err)
    }

    fn read_fb(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BusError> {
        self.harness.bar_read(FB_BAR, offset, buf).map_err(bus_err)
    }

    fn alloc_dma(&mut self, len: usize) -> Result<u64, BusError> {
        self.harness.dma_alloc(len).map_err(bus_err)
    }

    fn write_dma(&mut self, addr: u64, data: &[u8]) -> Result<(), BusError> {
        self.harness.dma_write(addr, data).map_err(bus_err)
    }

    fn read_dma(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), BusError> {
        self.harness.dma_read(addr, buf).map_err(bus_err)
    }

    fn wait_irq(&mut self, timeout: Duration) -> Result<bool, BusError> {
        match self.harness.wait_irq(timeout) {
            Ok(_) => Ok(true),
            Err(MockError::Timeout) => Ok(false),
            Err(e) => Err(bus_err(e)),
        }
    }

    fn p2p_region(&mut self) -> Option<(u64, u64)> {
        Some((P2P_BASE, P2P_SIZE))
    }
}
