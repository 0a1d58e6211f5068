//! A lock-free histogram of integer observations (nanoseconds, rows), for latencies and batch
//! sizes.
//!
//! The hot path is one atomic add per bucket, count and sum: no lock, no allocation. Buckets are
//! fixed when the histogram is made, so a scrape reads a consistent shape; the `+Inf` bucket is the
//! last slot, and the count is the sum of every slot, so buckets and count always agree.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of latency buckets, nanoseconds: 50 µs to 10 s, about three per decade.
pub const LATENCY_BOUNDS_NS: &[u64] = &[
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Upper bounds of batch-size buckets, rows: powers of two up to 16384 (more than the 10 000
/// subjects a run may have).
pub const BATCH_BOUNDS: &[u64] = &[
    1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384,
];

/// Counts of observations per bucket, with their sum.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    /// Observations per bucket (not cumulative); the last slot is above every bound.
    slots: Box<[AtomicU64]>,
    sum: AtomicU64,
    /// What one unit of an observation is in the exported unit (1e-9 for nanoseconds as seconds).
    scale: f64,
}

/// What a histogram held when it was read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// Upper bound of each bucket in the exported unit, and its own count (not cumulative); the
    /// last has the bound `f64::INFINITY`.
    pub buckets: Vec<(f64, u64)>,
    /// Sum of the observations, exported unit.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl Histogram {
    /// A histogram of durations, exported in seconds.
    pub fn latency() -> Self {
        Histogram::new(LATENCY_BOUNDS_NS, 1e-9)
    }

    /// A histogram of batch sizes, in rows.
    pub fn batch_sizes() -> Self {
        Histogram::new(BATCH_BOUNDS, 1.0)
    }

    /// A histogram with these upper bounds (ascending), and `scale` from one unit to the
    /// exported unit.
    pub fn new(bounds: &'static [u64], scale: f64) -> Self {
        Histogram {
            bounds,
            slots: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            scale,
        }
    }

    /// Records one observation of `value` units.
    pub fn observe(&self, value: u64) {
        let slot = self.bounds.partition_point(|&bound| bound < value);
        self.slots[slot].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Records one duration (a latency histogram's unit is the nanosecond).
    pub fn observe_duration(&self, elapsed: Duration) {
        self.observe(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Reads the histogram now.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let buckets: Vec<(f64, u64)> = self
            .slots
            .iter()
            .enumerate()
            .map(|(index, slot)| {
                let bound = self
                    .bounds
                    .get(index)
                    .map_or(f64::INFINITY, |&b| b as f64 * self.scale);
                (bound, slot.load(Ordering::Relaxed))
            })
            .collect();
        HistogramSnapshot {
            count: buckets.iter().map(|(_, n)| n).sum(),
            buckets,
            sum: self.sum.load(Ordering::Relaxed) as f64 * self.scale,
        }
    }
}

impl HistogramSnapshot {
    /// Mean observation, when there is one.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// The `q` quantile (0 to 1) estimated from the buckets, as Prometheus' `histogram_quantile`
    /// does (linear within a bucket, the last finite bound for the `+Inf` bucket).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let mut cumulative = Vec::with_capacity(self.buckets.len());
        let mut total = 0;
        for &(bound, count) in &self.buckets {
            total += count;
            cumulative.push((bound, total));
        }
        quantile_of_cumulative(&cumulative, q)
    }
}

/// The `q` quantile of a histogram given as cumulative buckets `(upper bound, count at or
/// below)` in ascending order, the last `+Inf`; `None` when it holds nothing.
pub fn quantile_of_cumulative(buckets: &[(f64, u64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total == 0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let rank = q * total as f64;
    let mut lower = (0.0, 0u64);
    for &(bound, count) in buckets {
        if count as f64 >= rank && count > lower.1 {
            if bound.is_infinite() {
                return Some(lower.0);
            }
            let within = (rank - lower.1 as f64) / (count - lower.1) as f64;
            return Some(lower.0 + (bound - lower.0) * within.clamp(0.0, 1.0));
        }
        lower = (if bound.is_finite() { bound } else { lower.0 }, count);
    }
    Some(lower.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket_and_count_agrees() {
        let h = Histogram::latency();
        h.observe_duration(Duration::from_micros(30));
        h.observe_duration(Duration::from_millis(3));
        h.observe_duration(Duration::from_millis(3));
        h.observe_duration(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.count, 4);
        assert_eq!(s.buckets.len(), LATENCY_BOUNDS_NS.len() + 1);
        assert_eq!(s.buckets[0], (50e-6, 1));
        assert_eq!(s.buckets[6], (5e-3, 2));
        assert_eq!(s.buckets.last().unwrap(), &(f64::INFINITY, 1));
        assert!((s.sum - (30e-6 + 6e-3 + 60.0)).abs() < 1e-9);
        // A value on a bound belongs to that bucket (`le`).
        let b = Histogram::batch_sizes();
        b.observe(4);
        assert_eq!(b.snapshot().buckets[2], (4.0, 1));
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let h = Histogram::batch_sizes();
        for rows in [1, 1, 3, 3] {
            h.observe(rows);
        }
        let s = h.snapshot();
        assert_eq!(s.mean(), Some(2.0));
        // Half the observations are at or below 1; the rest in (2, 4].
        assert_eq!(s.quantile(0.5), Some(1.0));
        assert_eq!(s.quantile(1.0), Some(4.0));
        assert_eq!(s.quantile(0.75), Some(3.0));
        assert_eq!(Histogram::latency().snapshot().quantile(0.5), None);
    }
}
