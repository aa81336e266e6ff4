//! The contract between the PCIem kernel module and the userspace process that
//! models a device.
//!
//! Everything the two sides must agree on byte for byte lives here: the ioctl
//! numbers and their argument structs, the event record, and the layout of the
//! shared event ring. The C header `kernel/include/uapi/pciem.h` is generated
//! from this crate (`cargo xtask gen-header`) and is never edited by hand.
//!
//! Names follow the C side (`pciem_bar_config`, `PCIEM_IOCTL_ADD_BAR`, ...) so
//! that the same identifier can be grepped for across C and Rust. Every struct
//! is `#[repr(C)]` with explicit padding (`reserved*` fields, which must be
//! zero), derives zerocopy's `FromBytes`/`IntoBytes`, and has its size and
//! field offsets pinned by compile-time assertions (see [`layout`]).
//!
//! The crate is `no_std` and allocation-free; it is compiled into the kernel
//! module as well as into userspace.
#![no_std]
#![allow(non_camel_case_types)]

pub mod caps;
pub mod config;
pub mod dma;
pub mod dmacheck;
pub mod event;
pub mod fault;
pub mod function;
pub mod ioctl;
pub mod irq;
pub mod layout;
pub mod trap;
pub mod watch;

pub use caps::*;
pub use config::*;
pub use dma::*;
pub use dmacheck::*;
pub use event::*;
pub use fault::*;
pub use function::*;
pub use ioctl::*;
pub use irq::*;
pub use trap::*;
pub use watch::*;

/// Version of this ABI. Bumped on any incompatible change; reported by
/// [`PCIEM_IOCTL_GET_VERSION`].
///
/// - 1: the first version.
/// - 2: ring slots carry a `ticket` (the last word of `pciem_event`, which
///   was `reserved`), and consumers poll the slot instead of `tail`.
/// - 3: trap mode ([`trap`]): `SET_BAR_MODE`, `ADD_TRAP_RANGE`,
///   `SET_READ_TIMEOUT`, `START`, `COMPLETE_READ`, the read-response page,
///   model-answered `MMIO_READ` events and `ERROR` events; the ring's
///   `consumer_state` (formerly the first word of `reserved0`).
/// - 4: DMA checking ([`dmacheck`]): `SET_DMA_CHECK` (a device that does
///   not call it gets the module's default, `enforce`),
///   `PCIEM_EVENT_DMA_FAULT` events, and `EFAULT` for a DMA outside the
///   driver's mappings.
/// - 5: surprise removal ([`fault`]): `SURPRISE_REMOVE`; config reads of a
///   removed device return all-ones; `SET_ROOT_PORT` (a virtual root port
///   with a hot-plug slot and optionally AER above the device, which then
///   sits on bus 1); `INJECT_AER`; `PCIEM_RESET_BUS` reset events.
/// - 6: multi-function devices ([`function`]): `SET_FUNCTION` selects the
///   function (0..7) that the following ioctls describe or act for; events
///   carry their function in `flags` ([`PCIEM_EVENT_FUNCTION_MASK`], 0 for
///   function 0); the instance file maps function `n`'s BARs at page
///   offset `n * PCIEM_MMAP_FUNCTION_STRIDE`. A single-function device sees
///   no difference from version 5.
/// - 7: fault plans ([`fault`]): `SET_FAULT` (completion timeouts of
///   chosen trapped reads, `PCIEM_ERROR_INJECTED_TIMEOUT` error events,
///   poisoned DMA reads failing with `EIO`); `REINSERT` brings a
///   surprise-removed device back (`PCIEM_RESET_REINSERT` reset events).
pub const PCIEM_ABI_VERSION: u32 = 7;

/// Size of a PCI Express configuration space in bytes.
pub const PCIEM_CONFIG_SPACE_SIZE: usize = 4096;

/// Size of the conventional (PCI-compatible) part of configuration space.
pub const PCIEM_CONFIG_LEGACY_SIZE: usize = 256;

/// Number of BAR slots of a type-0 header.
pub const PCIEM_MAX_BARS: u32 = 6;

/// Bytes of capability-specific payload carried by [`pciem_cap_config`].
pub const PCIEM_CAP_DATA_MAX: usize = 64;

/// Upper bound on the length of one DMA transfer (16 MiB). Longer transfers
/// are split by the caller; the kernel rejects them with `EINVAL`.
pub const PCIEM_DMA_MAX_LEN: u64 = 16 << 20;

/// Upper bound on the number of watched registers of one device (the x86
/// debug registers).
pub const PCIEM_MAX_WATCHPOINTS: u32 = 4;

/// Reported by [`PCIEM_IOCTL_GET_VERSION`].
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::KnownLayout,
    zerocopy::Immutable,
)]
pub struct pciem_version {
    /// [`PCIEM_ABI_VERSION`] of the kernel module.
    pub abi_version: u32,
    /// [`PCIEM_RING_SIZE`] of the kernel module.
    pub ring_size: u32,
    /// `sizeof(struct pciem_event)` of the kernel module.
    pub event_size: u32,
    /// Must be zero.
    pub reserved: u32,
}
