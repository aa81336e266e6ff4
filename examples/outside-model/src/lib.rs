//! A small DMA engine, written from the README and rustdoc as an outside
//! user would: the driver puts descriptors (`Desc`) in a ring in its
//! memory and writes the ring's bus address and the number of descriptors
//! to BAR0; the engine copies each descriptor's source to its
//! destination, writes a `Status` back into the descriptor slot's
//! status word, and coalesces its interrupt: one MSI-X message per batch,
//! raised `COALESCE` after the first completion (a timer), or at once
//! when the batch is `BATCH` long. A doorbell asking for more than
//! `MAX_DESCS` descriptors, or rung before the ring address was written,
//! runs nothing and fails the handler with the engine's own error
//! (`EngineError`), which the backend hands back to the test as it is.

use std::time::Duration;

use pciem_core::config::{Bar, MsixCap};
use pciem_core::{
    BuildError, ConfigBuilder, ConfigSpace, Device, Host, HostError, HostExt, Irq, MmioWrite, Watch,
};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// BAR0: bus address of the descriptor ring (64-bit).
pub const REG_RING: u64 = 0x00;
/// BAR0: writing N runs descriptors 0..N (the doorbell).
pub const REG_GO: u64 = 0x08;
/// BAR0: descriptors completed so far.
pub const REG_DONE: u64 = 0x10;
/// Interrupt coalescing delay.
pub const COALESCE: Duration = Duration::from_micros(500);
/// Completions that raise the interrupt at once.
pub const BATCH: u32 = 8;
/// The coalescing timer.
const TIMER: u32 = 1;
/// The most descriptors one doorbell may run.
pub const MAX_DESCS: u64 = 64;

/// Why the engine's handler failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// A host operation failed.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The doorbell asked for more descriptors than the engine runs at once.
    #[error("doorbell asked for {asked} descriptors, at most {max} run at once")]
    TooMany {
        /// The number written to the doorbell.
        asked: u64,
        /// [`MAX_DESCS`].
        max: u64,
    },
    /// The doorbell was rung before the ring's address was written.
    #[error("doorbell rung before the ring address was set")]
    NoRing,
}

/// One descriptor, as it lies in the driver's memory.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Desc {
    /// Bus address to copy from.
    pub src: u64,
    /// Bus address to copy to.
    pub dst: u64,
    /// Bytes.
    pub len: u32,
    /// Written by the engine: 1 done, 2 failed.
    pub status: u32,
}

/// The engine.
#[derive(Default)]
pub struct Engine {
    ring: u64,
    done: u64,
    pending_irq: u32,
    watches: Vec<Watch>,
}

impl Engine {
    /// A fresh engine.
    pub fn new() -> Self {
        let w = |offset| Watch {
            bar: 0,
            offset,
            width: 8,
        };
        Self {
            watches: vec![w(REG_RING), w(REG_GO)],
            ..Default::default()
        }
    }

    fn run(&mut self, host: &dyn Host, n: u64) -> Result<(), EngineError> {
        if n > MAX_DESCS {
            return Err(EngineError::TooMany {
                asked: n,
                max: MAX_DESCS,
            });
        }
        if self.ring == 0 && n != 0 {
            return Err(EngineError::NoRing);
        }
        for i in 0..n {
            let at = self.ring + i * size_of::<Desc>() as u64;
            let mut d: Desc = host.read_obj(at)?;
            let mut buf = vec![0u8; d.len as usize];
            let copied = host
                .dma_read(d.src, &mut buf)
                .and_then(|()| host.dma_write(d.dst, &buf));
            d.status = if copied.is_ok() { 1 } else { 2 };
            host.write_obj(at, &d)?;
            self.done += 1;
            host.write_u64(0, REG_DONE, self.done)?;
            self.complete(host)?;
        }
        Ok(())
    }

    fn complete(&mut self, host: &dyn Host) -> Result<(), HostError> {
        self.pending_irq += 1;
        if self.pending_irq >= BATCH {
            host.cancel_timer(TIMER)?;
            return self.fire(host);
        }
        if self.pending_irq == 1 {
            host.set_timer(TIMER, COALESCE)?;
        }
        Ok(())
    }

    fn fire(&mut self, host: &dyn Host) -> Result<(), HostError> {
        self.pending_irq = 0;
        host.raise_irq(Irq::MsiX { entry: 0 })
    }
}

impl Device for Engine {
    type Error = EngineError;
    fn config_space(&self) -> Result<ConfigSpace, BuildError> {
        ConfigBuilder::new(0x1f0c, 0x0dea)
            .bar(0, Bar::memory64(16384))
            .msix(MsixCap {
                table_size: 1,
                table_bar: 0,
                table_offset: 0x2000,
                pba_bar: 0,
                pba_offset: 0x3000,
            })
            .build()
    }

    fn watches(&self) -> &[Watch] {
        &self.watches
    }

    fn mmio_write(&mut self, host: &dyn Host, w: MmioWrite) -> Result<(), EngineError> {
        match w.offset {
            REG_RING => self.ring = w.value,
            REG_GO => self.run(host, w.value)?,
            _ => {}
        }
        Ok(())
    }

    fn timer(&mut self, host: &dyn Host, _id: u32) -> Result<(), EngineError> {
        Ok(self.fire(host)?)
    }
}
