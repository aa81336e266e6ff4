//! Errors of the harness (driver-side misuse or a failing device).

use pciem_core::config::{AccessError, BuildError};
use pciem_core::HostError;

/// What went wrong on the driver side of the harness.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MockError {
    /// The device's configuration space could not be built.
    #[error("device configuration space: {0}")]
    Config(#[from] BuildError),
    /// A configuration access was malformed.
    #[error("config access: {0}")]
    Access(#[from] AccessError),
    /// A host operation (BAR, DMA, P2P) failed.
    #[error("{0}")]
    Host(#[from] HostError),
    /// MMIO access width other than 1, 2, 4 or 8.
    #[error("MMIO access width {0} is not 1, 2, 4 or 8")]
    BadWidth(u8),
    /// A watch the device asked for cannot be set.
    #[error("watch on BAR {bar} offset {offset:#x}: {reason}")]
    BadWatch {
        /// BAR slot.
        bar: u8,
        /// Offset in the BAR.
        offset: u64,
        /// Why.
        reason: &'static str,
    },
    /// No interrupt arrived in time.
    #[error("no interrupt within the timeout")]
    Timeout,
    /// `step` was called while the device runs on its own thread.
    #[error("the device runs on its own thread; step() is for stepping mode")]
    Threaded,
    /// The device's `start` failed: the model's error (its
    /// [`pciem_core::Device::Error`]) as its `Display` text, since this
    /// type is not generic over the model. Errors of the handlers after
    /// `start` keep their type (`Harness::device_errors`).
    #[error("device start failed: {0}")]
    Start(String),
    /// The eventfd that wakes the device thread could not be created.
    #[error("cannot create the device thread's eventfd: {0}")]
    Eventfd(std::io::ErrorKind),
    /// A multi-function device's functions break a rule the kernel
    /// enforces, or a function the device does not have was addressed
    /// ([`crate::functions::MultiHarness`]).
    #[error("functions: {0}")]
    Function(#[from] pciem_core::function::FunctionError),
    /// The device thread panicked.
    #[error("the device thread panicked")]
    DevicePanicked,
}
