//! Errors of the benchmark tooling.

/// What can go wrong setting up or reporting a benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Fewer than two CPUs are available to this process.
    #[error("need two CPUs to pin the two threads on, have {0}")]
    NotEnoughCpus(usize),
    /// `sched_setaffinity` or `sched_getaffinity` failed.
    #[error("cannot pin to CPU {cpu}: {source}")]
    Affinity {
        /// CPU asked for.
        cpu: usize,
        /// The system call's error.
        source: std::io::Error,
    },
    /// An eventfd could not be created or used.
    #[error("eventfd: {0}")]
    Eventfd(std::io::Error),
    /// Writing results (table, CSV, PNG) failed.
    #[error("writing {path}: {source}")]
    Write {
        /// File.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Drawing or writing the plot failed.
    #[error("plot: {0}")]
    Plot(#[from] pciem_plot::PlotError),
    /// A measurement produced no samples.
    #[error("no samples recorded for {0}")]
    NoSamples(String),
}
