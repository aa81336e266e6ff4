//! Collecting what the benchmarks measure, and the order statistics the
//! summary reports.
//!
//! Criterion drives the measurements (warm-up, sample count, its own
//! analysis); each `iter_custom` call also hands its raw figures to a
//! [`Recorder`], and the summary table is computed from those, not parsed
//! from criterion's text.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

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

impl Recorder {
    /// Every sample of `name`, in recording order.
    pub fn samples(&self, name: &str) -> Vec<Vec<f64>> {
        let map = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        map.get(name).cloned().unwrap_or_default()
    }
}

/// Runs `chunk(k)` (k operations, returning their total time) with
/// growing `k` until `budget` is spent; returns nanoseconds per operation.
pub fn ns_per_op(budget: Duration, mut chunk: impl FnMut(u64) -> Duration) -> f64 {
    let (mut ops, mut spent, mut k) = (0u64, Duration::ZERO, 16u64);
    while spent < budget {
        spent += chunk(k);
        ops += k;
        k = (k * 2).min(1 << 14);
    }
    spent.as_nanos() as f64 / ops.max(1) as f64
}

/// Runs `chunk(k)` (k operations, returning their total time) with a
/// fixed `k` until `budget` is spent; returns each chunk's nanoseconds per
/// operation, sorted. Chunks are short (tens of microseconds), so on a
/// loaded machine the ones that were preempted stand out as outliers
/// instead of inflating every figure: take the median.
pub fn chunked_ns_per_op(
    budget: Duration,
    k: u64,
    mut chunk: impl FnMut(u64) -> Duration,
) -> Vec<f64> {
    let k = k.max(1);
    let mut spent = Duration::ZERO;
    let mut out = Vec::new();
    while spent < budget {
        let d = chunk(k);
        spent += d;
        out.push(d.as_nanos() as f64 / k as f64);
    }
    out.sort_by(f64::total_cmp);
    out
}

/// Median over rounds of `value / floor`, pairing each round's sample of
/// a mechanism with the same round's sample of its floor (each sample
/// reduced to its median first). Pairing cancels most of the machine's
/// load drift, which hits both alike.
pub fn paired_ratio(values: &[Vec<f64>], floors: &[Vec<f64>]) -> Option<f64> {
    let med = |v: &Vec<f64>| {
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        median(&v)
    };
    let mut ratios: Vec<f64> = values
        .iter()
        .zip(floors)
        .filter_map(|(v, f)| Some(med(v)? / med(f)?))
        .collect();
    ratios.sort_by(f64::total_cmp);
    median(&ratios)
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
    fn ratios_pair_rounds() {
        let v = vec![vec![20.0], vec![40.0, 60.0, 50.0], vec![300.0]];
        let f = vec![vec![10.0], vec![25.0], vec![100.0]];
        // Per round 2.0, 2.0, 3.0: the median is 2.0.
        assert_eq!(paired_ratio(&v, &f), Some(2.0));
        assert_eq!(paired_ratio(&[], &[]), None);
    }

    #[test]
    fn ns_per_op_spends_the_budget() {
        let mut calls = 0;
        let per = ns_per_op(Duration::from_micros(50), |k| {
            calls += 1;
            Duration::from_nanos(10 * k)
        });
        assert_eq!(per, 10.0);
        assert!(calls >= 2);
    }

    #[test]
    fn chunks_are_reported_per_operation() {
        let mut n = 0u64;
        let v = chunked_ns_per_op(Duration::from_micros(10), 4, |k| {
            n += 1;
            Duration::from_nanos(if n == 2 { 4000 } else { 40 * k })
        });
        assert_eq!(v.first(), Some(&40.0));
        assert_eq!(v.last(), Some(&1000.0));
        assert_eq!(median(&v), Some(40.0));
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
