//! PCIem's fuzz targets, as a library: each target in `fuzz_targets/` is
//! one call into a module here, so the same code also runs under
//! `cargo test` (the corpus seeds, the input format) on stable.
//!
//! - [`config`]: configuration-space builder input and host accesses.
//! - [`ring`]: produce/consume/overflow interleavings on the event ring.
//! - [`proto`]: command buffers and register writes to ProtoPCIem on the
//!   mock backend.
//! - [`mmio`]: the trap-mode MMIO instruction decoder and emulator against
//!   iced-x86.
//!
//! Every target panics, with a reason, on a broken invariant; libFuzzer
//! reports a panic as a crash and saves the input.

#![deny(missing_docs)]

pub mod config;
pub mod mmio;
pub mod proto;
pub mod ring;
pub mod wire;

/// Named corpus seeds of one target.
pub type Seeds = Vec<(&'static str, Vec<u8>)>;

/// The targets, each with its corpus seeds.
pub fn all_seeds() -> Vec<(&'static str, Seeds)> {
    vec![
        ("config_space", config::seeds()),
        ("ring", ring::seeds()),
        ("protopciem_cmdbuf", proto::seeds()),
        ("mmio_decode", mmio::seeds()),
    ]
}
