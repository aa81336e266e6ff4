//! Collecting what the benchmarks measure, and the order statistics the
//! summary reports.
//!
//! Criterion drives the measurements (warm-up, sample count, its own
//! analysis); each `iter_custom` call also hands its raw figures to a
//! [`Recorder`], and the summary table is computed from those, not parsed
//! from criterion's text.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Raw figures per benchmark name: one `Vec` per `iter_custom` call (a
/// sample), holding either one per-operation mean or every operation's
/// own time, in nanoseconds.
#[derive(Debug, Default)]
pub struct Recorder {
    samples: Mutex<BTreeMap<String, Vec<Vec<f64>>>>,
}

impl Recorder {
    /// An empty recorder (usable in a `static`).
    pub const fn new() -> Self {
        Self {
            samples: Mutex::new(BTreeMap::new()),
        }
    }

    /// Add one sample's figures for `name`.
    pub fn record(&self, name: &str, values: Vec<f64>) {
        let mut map = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_owned()).or_default().push(values);
    }

    /// The figures of the last `samples` samples of `name` (criterion's
    /// measurement phase comes after its warm-up calls, so these are the
    /// measured ones), flattened and sorted.
    pub fn last_sorted(&self, name: &str, samples: usize) -> Vec<f64> {
        let map = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<f64> = map
            .get(name)
            .map(|all| {
                all.iter()
                    .skip(all.len().saturating_sub(samples))
                    .flatten()
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(f64::total_cmp);
        out
    }
}

/// The `p`-th percentile (`0.0..=100.0`) of sorted data, nearest rank;
/// `None` for no data.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// The median of sorted data (the 50th percentile).
pub fn median(sorted: &[f64]) -> Option<f64> {
    percentile(sorted, 50.0)
}

/// The mean, `None` for no data.
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[]), None);
        assert_eq!(mean(&[1.0, 2.0, 6.0]), Some(3.0));
    }

    #[test]
    fn recorder_keeps_only_the_last_samples() {
        let r = Recorder::new();
        r.record("x", vec![100.0]); // warm-up
        r.record("x", vec![3.0, 1.0]);
        r.record("x", vec![2.0]);
        assert_eq!(r.last_sorted("x", 2), vec![1.0, 2.0, 3.0]);
        assert_eq!(r.last_sorted("x", 10), vec![1.0, 2.0, 3.0, 100.0]);
        assert!(r.last_sorted("y", 2).is_empty());
    }
}
