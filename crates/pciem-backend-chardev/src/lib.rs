//! Run PCIem device models on the real `/dev/pciem`.
//!
//! A model written against pciem-core's [`Device`](pciem_core::Device)
//! trait runs unchanged here and on the mock backend. [`run`] brings the
//! device up (configuration image, BAR modes and trap ranges, watched
//! registers, `REGISTER`, BAR mappings, the read-response page when a BAR
//! is trapped), calls the model's `start`, sends `START` when a BAR is
//! trapped, then feeds it the kernel's events — answering model-answered
//! reads as they are popped — until a stop is requested; dropping
//! everything on the way out closes the files, and the kernel hot-removes
//! the device.
//!
//! ```no_run
//! use pciem_backend_chardev::{run, RunOptions, StopSignal};
//! # use pciem_core::{BuildError, ConfigBuilder, ConfigSpace, Device, Host, HostError,
//! #                  MmioWrite, Watch};
//! # use pciem_core::config::Bar;
//! # struct Model;
//! # impl Device for Model {
//! #     type Error = HostError;
//! #     fn config_space(&self) -> Result<ConfigSpace, BuildError> {
//! #         ConfigBuilder::new(0x1234, 1).bar(0, Bar::memory32(4096)).build()
//! #     }
//! #     fn watches(&self) -> &[Watch] { &[] }
//! #     fn mmio_write(&mut self, _: &dyn Host, _: MmioWrite) -> Result<(), HostError> { Ok(()) }
//! # }
//! let stop = StopSignal::new()?;
//! stop.on_signals(&[libc::SIGINT, libc::SIGTERM])?;
//! let report = run(&mut Model, RunOptions::default(), &stop)?;
//! println!("{} events, {} lost", report.events, report.lost);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Modules, one job each:
//! - [`ioctl`]: typed, safe wrappers of the ioctls (numbers from
//!   `pciem_abi`).
//! - [`mapping`]: RAII shared mappings; [`bar`]: BAR memory with volatile,
//!   naturally aligned copies; [`ring`]: the event ring over pciem-core's
//!   consumer, with lost-event accounting; [`responses`]: the read-response
//!   page where model-answered reads of trapped BARs are answered.
//! - [`event_loop`]: the wait on the ring's eventfd and a stop channel,
//!   io-uring with a poll(2) fallback.
//! - [`host`]: [`ChardevHost`], the [`Host`](pciem_core::Host) impl of a
//!   device or of one function of a multi-function device, and irqfds.
//! - [`session`]: bringing the device up and running it; [`functions`]: the
//!   same for a multi-function device, one model per function; both run
//!   one event loop (the private `run_loop` module); [`error`]: errors
//!   that name the step, the errno and the usual fix.

pub mod bar;
mod describe;
pub mod error;
pub mod event_loop;
pub mod functions;
pub mod host;
pub mod ioctl;
pub mod mapping;
pub mod responses;
pub mod ring;
mod run_loop;
pub mod session;
#[cfg(test)]
mod test_models;
mod timers;

pub use error::ChardevError;
pub use event_loop::{LoopKind, StopHandle, StopSignal, WaitMode};
pub use functions::{run_functions, FunctionHost, FunctionRunReport, FunctionSession};
pub use host::{ChardevHost, FunctionIrqFd, IrqFd};
pub use session::{run, RunOptions, RunReport, Session, DEFAULT_PATH};
