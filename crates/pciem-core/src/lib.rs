//! PCIem's shared logic, written once and used by userspace, the mock
//! backend and the kernel module alike.
//!
//! - [`config`]: a 4 KiB configuration space with a write mask and a
//!   write-1-to-clear mask, its builder (type-0 header, BARs, capabilities)
//!   and the read/write semantics a host sees.
//! - [`ring`]: the single-producer/single-consumer event ring over the
//!   shared [`pciem_abi::pciem_shared_ring`] layout.
//! - [`access`]: each BAR's watch or trap mode and the policies of trap
//!   ranges ([`AccessMap`], [`AccessMap::classify`]).
//! - [`device`]: the device-model API: the [`Device`] trait a model
//!   implements and the [`Host`] trait a backend offers it.
//! - [`dmacheck`]: the rules a DMA must follow against the driver's
//!   mappings, and the kinds of violation.
//! - [`function`]: the function sets of multi-function devices and the
//!   rules the kernel module enforces for them.
//! - [`prp`]: walking NVMe-style PRP lists into DMA segments.
//! - [`insn`]: decoding and emulating the x86-64 instructions drivers use
//!   on MMIO (trap mode).
//!
//! The crate is `no_std`. The parts the kernel links (config access,
//! capability layout, the ring producer, PRP walking, the MMIO instruction
//! emulator) use no allocation, no
//! floating point, no formatting and have no panicking path on any input.
//!
//! # Platform requirements
//!
//! The event ring's tickets and overflow counter are 64-bit atomics, so the
//! crate needs a target with `target_has_atomic = "64"` (every 64-bit
//! target and most 32-bit ones); on any other it stops with a
//! `compile_error!` saying so rather than with unresolved `AtomicU64`s.
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "std")]
extern crate std;

#[cfg(not(target_has_atomic = "64"))]
compile_error!(
    "pciem-core needs 64-bit atomics (target_has_atomic = \"64\"): the event ring's \
     tickets and overflow counter are AtomicU64, shared with the kernel module"
);

pub mod access;
pub mod config;
pub mod device;
pub mod dmacheck;
pub mod function;
pub mod insn;
pub mod interrupt;
pub mod prp;
pub mod ring;
pub mod transfer;
pub mod watch;

pub use access::{AccessMap, BarMode, ReadPolicy, TrapPolicy, TrapRange, WritePolicy};
pub use config::{BuildError, ConfigBuilder, ConfigSpace};
pub use device::{
    AerError, AtomicOp, ConfigWrite, Device, Host, HostError, HostExt, Irq, MmioRead, MmioWrite,
    ReadAnswer, ResetKind, Served, Severity, TrapError, Watch,
};
pub use pciem_abi as abi;
