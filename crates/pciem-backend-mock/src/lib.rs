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
//! **Tracing**: [`Harness::set_trace`] records every driver access
//! (configuration and BAR reads and writes with their width and value,
//! interrupts taken) and every device action (DMA with address and length,
//! interrupts raised, timers) in order, as typed [`TraceRecord`]s to
//! assert on or print; off by default. See [`trace`].
//!
//! **Multi-function devices**: [`MultiHarness`] plugs in up to eight
//! functions, each a model of its own, and a test addresses each
//! function's driver side with [`MultiHarness::function`] (see
//! [`functions`]).
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
//!     type Error = HostError;
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
//!
//! **Threaded mode**: the model runs on its own thread, woken by the ring
//! as in a device process; the driver side blocks only where a driver
//! would (a read the model answers, a wait for an interrupt):
//!
//! ```
//! # use pciem_backend_mock::Harness;
//! # use pciem_core::config::{Bar, MsiCap};
//! # use pciem_core::{BuildError, ConfigBuilder, ConfigSpace, Device, Host, HostError, Irq,
//! #                  MmioWrite, Watch};
//! # use std::time::Duration;
//! /// Raises MSI vector 0 for every write to 0x0.
//! struct Doorbell;
//! impl Device for Doorbell {
//!     type Error = HostError;
//!     fn config_space(&self) -> Result<ConfigSpace, BuildError> {
//!         ConfigBuilder::new(0x1234, 0x2).bar(0, Bar::memory32(4096)).msi(MsiCap::new(1)).build()
//!     }
//!     fn watches(&self) -> &[Watch] {
//!         &[Watch { bar: 0, offset: 0, width: 4 }]
//!     }
//!     fn mmio_write(&mut self, host: &dyn Host, _: MmioWrite) -> Result<(), HostError> {
//!         host.raise_irq(Irq::Msi { vector: 0 })
//!     }
//! }
//!
//! let mut h = Harness::threaded(Doorbell).unwrap();
//! h.enable_msi(0xfee0_0000, 0x20).unwrap();
//! for _ in 0..3 {
//!     h.write32(0, 0x0, 1).unwrap();
//!     h.wait_irq(Duration::from_secs(5)).unwrap();
//! }
//! // Stops the thread and hands the model back.
//! let _model: Doorbell = h.into_device().unwrap();
//! ```
//!
//! **MSI-X**: `enable_msix` programs and unmasks the table entries as a
//! driver's `pci_alloc_irq_vectors` would; a masked entry is held in the
//! PBA and delivered when unmasked:
//!
//! ```
//! # use pciem_backend_mock::{Harness, IrqKind};
//! # use pciem_core::config::{Bar, MsixCap};
//! # use pciem_core::{BuildError, ConfigBuilder, ConfigSpace, Device, Host, HostError, Irq,
//! #                  MmioWrite, Watch};
//! # use std::time::Duration;
//! /// A write of N to 0x0 raises MSI-X entry N.
//! struct Vectors;
//! impl Device for Vectors {
//!     type Error = HostError;
//!     fn config_space(&self) -> Result<ConfigSpace, BuildError> {
//!         ConfigBuilder::new(0x1234, 0x3)
//!             .bar(0, Bar::memory64(16384))
//!             .msix(MsixCap { table_size: 4, table_bar: 0, table_offset: 0x2000,
//!                             pba_bar: 0, pba_offset: 0x3000 })
//!             .build()
//!     }
//!     fn watches(&self) -> &[Watch] {
//!         &[Watch { bar: 0, offset: 0, width: 4 }]
//!     }
//!     fn mmio_write(&mut self, host: &dyn Host, w: MmioWrite) -> Result<(), HostError> {
//!         host.raise_irq(Irq::MsiX { entry: w.value as u32 })
//!     }
//! }
//!
//! let mut h = Harness::new(Vectors).unwrap();
//! assert_eq!(h.enable_msix(4).unwrap(), 4);
//! h.write32(0, 0x2000 + 2 * 16 + 12, 1).unwrap(); // mask entry 2
//! h.write32(0, 0x0, 2).unwrap();
//! h.step().unwrap();
//! assert!(h.poll_irq().is_none(), "held while masked");
//! h.write32(0, 0x2000 + 2 * 16 + 12, 0).unwrap(); // unmask: delivered now
//! let irq = h.wait_irq(Duration::ZERO).unwrap();
//! assert_eq!((irq.kind, irq.vector, irq.data), (IrqKind::MsiX, 2, 2));
//! ```
//!
//! **Function Level Reset**: the driver sets Initiate FLR in the PCIe
//! Device Control register; the host resets the configuration space (BAR
//! addresses kept) and the model gets `Device::reset(ResetKind::Flr)`:
//!
//! ```
//! # use pciem_backend_mock::Harness;
//! # use pciem_core::config::{regs, Bar, PcieCap};
//! # use pciem_core::{BuildError, ConfigBuilder, ConfigSpace, Device, Host, HostError,
//! #                  MmioWrite, ResetKind, Watch};
//! struct Resettable {
//!     resets: u32,
//! }
//! impl Device for Resettable {
//!     type Error = HostError;
//!     fn config_space(&self) -> Result<ConfigSpace, BuildError> {
//!         ConfigBuilder::new(0x1234, 0x4)
//!             .bar(0, Bar::memory32(4096))
//!             .pcie(PcieCap::endpoint(3, 4)) // FLR capable
//!             .build()
//!     }
//!     fn watches(&self) -> &[Watch] {
//!         &[]
//!     }
//!     fn mmio_write(&mut self, _: &dyn Host, _: MmioWrite) -> Result<(), HostError> {
//!         Ok(())
//!     }
//!     fn reset(&mut self, _: &dyn Host, kind: ResetKind) -> Result<(), HostError> {
//!         assert_eq!(kind, ResetKind::Flr);
//!         self.resets += 1;
//!         Ok(())
//!     }
//! }
//!
//! let mut h = Harness::new(Resettable { resets: 0 }).unwrap();
//! h.enable_bus_master().unwrap();
//! let pcie = h.host().lock_config(|c| c.find_capability(regs::CAP_ID_PCIE)).unwrap();
//! let devctl = h.config_read(pcie + regs::PCIE_DEVCTL, 2).unwrap();
//! let flr = u32::from(regs::PCIE_DEVCTL_FLR);
//! h.config_write(pcie + regs::PCIE_DEVCTL, 2, devctl | flr).unwrap();
//! h.step().unwrap();
//! assert_eq!(h.device().unwrap().resets, 1);
//! // The command register is back to its reset value: bus mastering off.
//! let master = u32::from(regs::COMMAND_MASTER);
//! assert_eq!(h.config_read(regs::COMMAND, 2).unwrap() & master, 0);
//! ```

mod dma;
mod doorbell;
mod error;
mod faults;
pub mod functions;
mod harness;
mod host;
mod irq;
pub mod trace;

pub use doorbell::Doorbell;
pub use error::MockError;
pub use functions::{FunctionBox, FunctionModel, FunctionModels, MultiHarness};
pub use harness::{DeviceWait, Harness};
pub use host::MockHost;
pub use irq::{IrqKind, IrqRecord};
pub use trace::{Side, TraceRecord};
