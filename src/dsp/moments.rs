//! Count, mean, sum of squared deviations, minimum and maximum of a channel's finite values,
//! computed per block and merged exactly (Chan, Golub and LeVeque's pairwise update), so that
//! sliding windows summarise each block of samples once and stay as accurate as two passes over
//! the window (no running sums that drift, no `E[x^2] - E[x]^2` cancellation).
//!
//! ```
//! use heloflow::dsp::moments::Moments;
//! let values = [1.0, 2.0, f64::NAN, 4.0];
//! let whole = Moments::of_column(&values, 1, 0);
//! let merged = Moments::of_column(&values[..2], 1, 0).merge(Moments::of_column(&values[2..], 1, 0));
//! assert_eq!(whole.count(), 3.0);
//! assert!((merged.mean() - 7.0 / 3.0).abs() < 1e-15 && (merged.std() - whole.std()).abs() < 1e-15);
//! ```

/// Summary of the finite values of one channel over a stretch of samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Moments {
    count: f64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl Moments {
    /// The summary of no value.
    pub const EMPTY: Moments = Moments {
        count: 0.0,
        mean: 0.0,
        m2: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };

    /// Channel `channel` of the row-major `values` with `width` channels (two passes; non-finite
    /// values left out).
    pub fn of_column(values: &[f64], width: usize, channel: usize) -> Moments {
        let column = || {
            values
                .iter()
                .skip(channel)
                .step_by(width)
                .filter(|v| v.is_finite())
        };
        let (mut count, mut sum) = (0usize, 0.0);
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for &v in column() {
            count += 1;
            sum += v;
            min = min.min(v);
            max = max.max(v);
        }
        if count == 0 {
            return Moments::EMPTY;
        }
        let mean = sum / count as f64;
        let m2 = column().map(|v| (v - mean) * (v - mean)).sum();
        Moments {
            count: count as f64,
            mean,
            m2,
            min,
            max,
        }
    }

    /// The summary of both stretches together.
    pub fn merge(self, other: Moments) -> Moments {
        if other.count == 0.0 {
            return self;
        }
        if self.count == 0.0 {
            return other;
        }
        let count = self.count + other.count;
        let delta = other.mean - self.mean;
        Moments {
            count,
            mean: self.mean + delta * other.count / count,
            m2: self.m2 + other.m2 + delta * delta * self.count * other.count / count,
            min: self.min.min(other.min),
            max: self.max.max(other.max),
        }
    }

    /// Finite values summarised.
    pub fn count(&self) -> f64 {
        self.count
    }

    /// Their mean (NaN without values).
    pub fn mean(&self) -> f64 {
        if self.count > 0.0 {
            self.mean
        } else {
            f64::NAN
        }
    }

    /// Their population standard deviation, as `numpy.std` (ddof 0; NaN without values).
    pub fn std(&self) -> f64 {
        if self.count > 0.0 {
            (self.m2 / self.count).max(0.0).sqrt()
        } else {
            f64::NAN
        }
    }

    /// Their minimum (NaN without values).
    pub fn min(&self) -> f64 {
        if self.count > 0.0 {
            self.min
        } else {
            f64::NAN
        }
    }

    /// Their maximum (NaN without values).
    pub fn max(&self) -> f64 {
        if self.count > 0.0 {
            self.max
        } else {
            f64::NAN
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Merging blocks, split anywhere, gives the two-pass summary of the whole, also for
        /// values with a large offset (where `E[x^2] - E[x]^2` loses every digit).
        #[test]
        fn merged_blocks_equal_the_whole(
            values in prop::collection::vec(prop_oneof![9 => -1e3..1e3f64, 1 => Just(f64::NAN)], 1..300),
            offset in prop_oneof![Just(0.0), Just(1e9)],
            cuts in prop::collection::vec(0usize..300, 0..6),
        ) {
            let values: Vec<f64> = values.iter().map(|v| v + offset).collect();
            let whole = Moments::of_column(&values, 1, 0);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (values.len() + 1)).collect();
            cuts.push(0);
            cuts.push(values.len());
            cuts.sort_unstable();
            let merged = cuts
                .windows(2)
                .map(|w| Moments::of_column(&values[w[0]..w[1]], 1, 0))
                .fold(Moments::EMPTY, Moments::merge);
            prop_assert_eq!(merged.count(), whole.count());
            if whole.count() > 0.0 {
                let scale = whole.std().max(1e-300);
                prop_assert!((merged.mean() - whole.mean()).abs() <= 1e-12 * (offset + 1e3));
                prop_assert!((merged.std() - whole.std()).abs() <= 1e-9 * scale, "{} vs {}", merged.std(), whole.std());
                prop_assert_eq!(merged.min(), whole.min());
                prop_assert_eq!(merged.max(), whole.max());
            } else {
                prop_assert!(merged.mean().is_nan() && merged.std().is_nan());
            }
        }
    }

    #[test]
    fn std_matches_numpy_for_a_known_column() {
        // numpy.std([2, 4, 4, 4, 5, 5, 7, 9]) == 2.0 and numpy.mean(...) == 5.0.
        let values = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let m = Moments::of_column(&values, 1, 0);
        assert_eq!((m.mean(), m.std(), m.min(), m.max()), (5.0, 2.0, 2.0, 9.0));
    }
}
