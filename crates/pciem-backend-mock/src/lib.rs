//! An in-process PCIem host and a driver-side harness.
//!
//! Device models run here exactly as they run on the real `/dev/pciem`, but
//! in one process, without root or a kernel: unit tests, fuzzing and
//! benchmarks of device models use it. The host keeps the kernel module's
//! semantics: configuration cycles go through pciem-core's masks, BARs are
//! plain memory, driver writes to watched registers become events in the
//! same pciem-core ring the kernel fills, BARs the model traps are served
//! by the policies of its trap ranges (stores delivered and maybe stored,
//! loads from BAR memory, reported, or answered by the model within the
//! read timeout; see [`Harness`]), DMA reaches only buffers the driver
//! allocated in a simulated bus-address space and only while the driver
//! has set Bus Master Enable, and interrupts obey the MSI mask bits, the
//! MSI-X table and the INTx disable bit.
//!
//! **Linux only**: the device thread sleeps on an `eventfd(2)`, the same
//! wake-up the real module uses, which other systems do not offer. Like
//! pciem-core, it needs a target with 64-bit atomics.
//!
//! A test reads like a driver:
//!
//! ```
//! use pciem_backend_mock::Harness;
//! use pciem_core::config::{Bar, MsiCap};
//! use pciem_core::{BuildError, ConfigBuilder, ConfigSpace, Device, Host, HostError, Irq,
//!                  MmioWrite, Watch};
//! use std::time::Duration;
//!
//! /// Copies 16 bytes from the DMA address written to register 0x0 into
//! /// BAR memory at 0x100, then raises MSI vector 0.
//! struct Fetcher;
//! impl Device for Fetcher {
//!     fn config_space(&self) -> Result<ConfigSpace, BuildError> {
//!         ConfigBuilder::new(0x1234, 0x1).bar(0, Bar::memory32(4096)).msi(MsiCap::new(1)).build()
//!     }
//!     fn watches(&self) -> &[Watch] {
//!         &[Watch { bar: 0, offset: 0, width: 8 }]
//!     }
//!     fn mmio_write(&mut self, host: &dyn Host, w: MmioWrite) -> Result<(), HostError> {
//!         let mut buf = [0u8; 16];
//!         host.dma_read(w.value, &mut buf)?;
//!         host.bar_write(0, 0x100, &buf)?;
//!         host.raise_irq(Irq::Msi { vector: 0 })
//!     }
//! }
//!
//! let mut h = Harness::new(Fetcher).unwrap();
//! h.enable_msi(0xfee0_0000, 0x40).unwrap();
//! let buf = h.dma_alloc(16).unwrap();
//! h.dma_write(buf, b"hello, device!!!").unwrap();
//! h.mmio_write(0, 0x0, 8, buf).unwrap();
//! let irq = h.wait_irq(Duration::from_secs(1)).unwrap();
//! assert_eq!(irq.data, 0x40);
//! let mut out = [0u8; 16];
//! h.bar_read(0, 0x100, &mut out).unwrap();
//! assert_eq!(&out, b"hello, device!!!");
//! ```

mod dma;
mod doorbell;
mod error;
mod harness;
mod host;
mod irq;

pub use doorbell::Doorbell;
pub use error::MockError;
pub use harness::{DeviceWait, Harness};
pub use host::MockHost;
pub use irq::{IrqKind, IrqRecord};
