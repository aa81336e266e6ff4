//! An NVMe controller (a base-specification 1.4 subset) as a PCIem device
//! model: Linux's own `nvme` driver binds to it, formats and mounts its
//! namespace, while every register access, command and data transfer is
//! served by this Rust code.
//!
//! - [`controller`]: [`Nvme`], the [`Device`](pciem_core::Device): the
//!   configuration space (MSI-X with a vector per queue, MSI, INTx), BAR0
//!   in trap mode ([`regs`] has the layout), enable / reset / shutdown,
//!   doorbells and the queue engine.
//! - [`admin`] and [`io`]: the admin and NVM commands; [`status`]: the
//!   statuses they complete with; [`command`]: queue entries.
//! - [`identify`], [`logs`], [`features`], [`aer`]: the data structures
//!   and state behind Identify, Get Log Page, Get/Set Features and
//!   Asynchronous Event Requests.
//! - [`storage`]: where the namespace's blocks live (a sparse file, or
//!   memory).
//! - [`driver`]: a small NVMe host driver over the mock backend's
//!   harness, for tests, fuzzing and `pciem-nvme --backend mock`.
//!
//! See `docs/nvme.md` for what is modelled and what is not.

pub mod admin;
pub mod aer;
pub mod command;
pub mod config;
pub mod controller;
pub mod driver;
pub mod features;
pub mod fuzz;
pub mod identify;
pub(crate) mod interrupts;
pub mod io;
pub mod logs;
pub mod queue;
pub mod regs;
pub mod status;
pub mod storage;

pub use config::{ConfigError, LbaSize, NvmeConfig};
pub use controller::{DoorbellWrite, NewError, Nvme, NvmeError, Stats};
pub use interrupts::IrqMode;
pub use status::Status;
pub use storage::{FileStorage, MemStorage, Storage, StorageError};
