//! Measurement tooling shared by PCIem's benchmarks (`cargo bench -p
//! pciem-bench`): thread pinning, ping-pong drivers over any SPSC queue,
//! the bare cache-line and eventfd baselines, sample collection, the
//! summary table and the PNG plot.
//!
//! Every figure is measured next to a baseline in the same run and
//! reported as a ratio to it, because absolute numbers on a shared machine
//! move with the load; ratios move much less.

pub mod affinity;
pub mod error;
pub mod pingpong;
pub mod plot;
pub mod report;
pub mod ringv1;
pub mod stats;

pub use error::BenchError;
