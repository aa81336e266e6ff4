//! The project's tasks, as a library so that they can be tested.
//!
//! `cargo xtask <task>` (aliased in `.cargo/config.toml`) runs the binary in
//! `main.rs`, which dispatches to these modules.

pub mod benchvm;
pub mod ctest;
pub mod diff;
pub mod fuzz;
pub mod header;
pub mod kbuild;
pub mod kernelcheck;
pub mod publish;
pub mod run;
pub mod setup;
pub mod test;
pub mod vm;

use std::path::PathBuf;

/// The workspace root (the parent of this crate's directory).
pub fn root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}
