//! pyxdf 1.17.5's post-processing of a loaded recording, ported function by function:
//! truncation of the corrupted last clock offset (pylsl#67), clock synchronisation with clock reset
//! detection and a robust (Huber, ADMM) fit per clock segment, and jitter removal (a least-squares
//! line per segment between breaks) with the effective sampling rate.
//!
//! Each function works on plain slices of one stream's data so it can be checked against pyxdf's
//! own functions; the reader calls them in pyxdf's order. Arithmetic follows numpy's order of
//! operations; sums and least squares are computed in closed form with care (see
//! [`robust_fit`] and [`jitter_removal`]), which agrees with numpy to rounding.
//!
//! ```
//! use heloflow::xdf::sync::{clock_sync, ClockSyncOptions};
//!
//! // Timestamps 1..5 and 17..21 with a clock reset between offsets 6 and 17 (pyxdf's own test).
//! let mut stamps = vec![1.0, 2.0, 3.0, 4.0, 5.0, 17.0, 18.0, 19.0, 20.0, 21.0];
//! let segments = clock_sync(
//!     &mut stamps,
//!     &[1.0, 6.0, 17.0, 22.0],
//!     &[-1.0, -1.0, -12.0, -12.0],
//!     &ClockSyncOptions::default(),
//! );
//! assert_eq!(segments, vec![(0, 4), (5, 9)]);
//! assert!((stamps[5] - 5.0).abs() < 1e-9);
//! ```

/// Median as numpy computes it: NaN when any value is NaN or there are none; the mean of the two
/// middle values for an even count.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() || values.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    }
}

/// numpy's `maximum(0, x)`: NaN stays NaN.
fn clamp_at_zero(x: f64) -> f64 {
    if x.is_nan() || x > 0.0 {
        x
    } else {
        0.0
    }
}

/// pyxdf `_detect_corrupted_clock_offset`: whether the last clock offset is anomalous (its
/// interval more than 10 times the median interval, or its value more than 10 robust z-scores
/// from the median). Needs at least 3 offsets.
pub fn last_clock_offset_is_corrupted(times: &[f64], values: &[f64]) -> bool {
    let (time_thresh, value_thresh) = (10.0, 10.0);
    let n = times.len().min(values.len());
    if n < 3 {
        return false;
    }
    let intervals: Vec<f64> = times[..n].windows(2).map(|w| w[1] - w[0]).collect();
    let median_interval = median(&intervals[..intervals.len() - 1]);
    let last_interval = intervals[intervals.len() - 1].abs();
    let time_ratio = if median_interval > 0.0 {
        last_interval / median_interval
    } else if last_interval > 0.0 {
        f64::INFINITY
    } else {
        1.0
    };
    let head = &values[..n - 1];
    let median_value = median(head);
    let deviations: Vec<f64> = head.iter().map(|v| (v - median_value).abs()).collect();
    let mad = median(&deviations);
    let value_zscore = if mad > f64::EPSILON {
        (values[n - 1] - median_value).abs() / (1.4826 * mad)
    } else {
        0.0
    };
    time_ratio > time_thresh || value_zscore > value_thresh
}

/// pyxdf `_truncate_corrupted_offsets` for one stream: when the stream holds more samples than
/// its footer's `sample_count` AND its last clock offset is corrupted (the pylsl#67 bug), the
/// number of samples to keep (the last clock offset is to be dropped too); otherwise `None`.
pub fn corrupted_offset_truncation(
    sample_count: usize,
    footer_sample_count: Option<u64>,
    clock_times: &[f64],
    clock_values: &[f64],
) -> Option<usize> {
    let footer_count = footer_sample_count?;
    if sample_count as u64 <= footer_count {
        return None;
    }
    if clock_times.len() >= 3 && last_clock_offset_is_corrupted(clock_times, clock_values) {
        Some(footer_count as usize)
    } else {
        None
    }
}

/// pyxdf `_segment_clock_diff`: which differences lie more than `thresh_stds` MAD-standardised
/// deviations AND more than `thresh_secs` seconds from their median.
fn segment_clock_diff(diff: &[f64], thresh_stds: f64, thresh_secs: f64) -> Vec<bool> {
    let center = median(diff);
    let shifted: Vec<f64> = diff.iter().map(|d| d - center).collect();
    let absolute: Vec<f64> = shifted.iter().map(|d| d.abs()).collect();
    let mad = median(&absolute) + f64::EPSILON;
    shifted
        .iter()
        .zip(&absolute)
        .map(|(s, a)| (s / mad).abs() > thresh_stds && *a > thresh_secs)
        .collect()
}

/// pyxdf `_find_segment_indices`: inclusive `(start, end)` index ranges between breaks, where
/// `breaks[i]` marks a break between values `i` and `i + 1`.
pub fn segment_indices(breaks: &[bool]) -> Vec<(usize, usize)> {
    let mut segments = Vec::new();
    let mut start = 0;
    for (i, is_break) in breaks.iter().enumerate() {
        if *is_break {
            segments.push((start, i));
            start = i + 1;
        }
    }
    segments.push((start, breaks.len()));
    segments
}

/// Thresholds of clock reset detection and the robust fit (pyxdf's load_xdf defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClockSyncOptions {
    /// Whether to look for clock resets at all.
    pub handle_clock_resets: bool,
    /// A reset's clock offset interval lies at least this many MAD-standardised deviations off.
    pub reset_threshold_stds: f64,
    /// ... and at least this many seconds off.
    pub reset_threshold_seconds: f64,
    /// A reset's offset value difference lies at least this many MAD-standardised deviations off.
    pub reset_threshold_offset_stds: f64,
    /// ... and at least this many seconds off.
    pub reset_threshold_offset_seconds: f64,
    /// Offsets further than this (seconds) from the fit count as outliers (Huber threshold).
    pub winsor_threshold: f64,
}

impl Default for ClockSyncOptions {
    fn default() -> Self {
        ClockSyncOptions {
            handle_clock_resets: true,
            reset_threshold_stds: 5.0,
            reset_threshold_seconds: 5.0,
            reset_threshold_offset_stds: 10.0,
            reset_threshold_offset_seconds: 1.0,
            winsor_threshold: 0.0001,
        }
    }
}

/// pyxdf `_detect_clock_resets`: inclusive index ranges of clock offsets between resets. A reset
/// is a decreasing collection time, or a time interval AND a value difference that are both
/// outliers by the thresholds. Needs at least 2 offsets (fewer give one range).
pub fn detect_clock_resets(
    times: &[f64],
    values: &[f64],
    options: &ClockSyncOptions,
) -> Vec<(usize, usize)> {
    let n = times.len().min(values.len());
    if n <= 1 {
        return vec![(0, n.saturating_sub(1))];
    }
    let time_diff: Vec<f64> = times[..n].windows(2).map(|w| w[1] - w[0]).collect();
    let value_diff: Vec<f64> = values[..n].windows(2).map(|w| w[1] - w[0]).collect();
    let time_glitch = segment_clock_diff(
        &time_diff,
        options.reset_threshold_stds,
        options.reset_threshold_seconds,
    );
    let value_glitch = segment_clock_diff(
        &value_diff,
        options.reset_threshold_offset_stds,
        options.reset_threshold_offset_seconds,
    );
    let resets: Vec<bool> = (0..n - 1)
        .map(|i| time_diff[i] < 0.0 || (time_glitch[i] && value_glitch[i]))
        .collect();
    segment_indices(&resets)
}

/// `A.T @ v` for the design `A = [1, a]` (n x 2, C order), in the order numpy's BLAS
/// (OpenBLAS `dgemv_n`, two rows) sums it: pairs of products added to two running sums, four
/// columns per step, then the rest one by one. Checked bit for bit against numpy.
fn design_transpose_times(a: &[f64], v: &[f64]) -> [f64; 2] {
    let n = a.len().min(v.len());
    let (mut t0, mut t1) = (0.0, 0.0);
    let mut i = 0;
    while i + 4 <= n {
        t0 += v[i] + v[i + 1];
        t1 += a[i] * v[i] + a[i + 1] * v[i + 1];
        t0 += v[i + 2] + v[i + 3];
        t1 += a[i + 2] * v[i + 2] + a[i + 3] * v[i + 3];
        i += 4;
    }
    while i < n {
        t0 += v[i];
        t1 += a[i] * v[i];
        i += 1;
    }
    [t0, t1]
}

/// `numpy.linalg.solve` for a 2x2 system as LAPACK's `dgesv` computes it (OpenBLAS `getf2` and
/// `getrs`): LU with partial pivoting, the multiplier from the pivot's reciprocal, then forward
/// and back substitution. `None` where numpy raises LinAlgError (a zero pivot).
fn solve_2x2(m: [[f64; 2]; 2], b: [f64; 2]) -> Option<[f64; 2]> {
    let [[mut m00, mut m01], [mut m10, mut m11]] = m;
    let [mut b0, mut b1] = b;
    if m10.abs() > m00.abs() {
        std::mem::swap(&mut m00, &mut m10);
        std::mem::swap(&mut m01, &mut m11);
        std::mem::swap(&mut b0, &mut b1);
    }
    if m00 == 0.0 {
        return None;
    }
    let multiplier = m10 * (1.0 / m00);
    let u11 = m11 + -(multiplier * m01);
    if u11 == 0.0 {
        return None;
    }
    b1 += -b0 * multiplier;
    let x1 = b1 / u11;
    b0 += -x1 * m01;
    Some([b0 / m00, x1])
}

/// pyxdf `_robust_fit` (rho 1, 1000 iterations) for the design `[1, x]`: the Huber-loss line
/// `y ~ c0 + c1 x` by ADMM, or `None` where numpy raises LinAlgError (the normal matrix is not
/// positive definite, e.g. all `x` equal).
///
/// Written out for two unknowns with numpy's operations, so the result equals numpy's to the bit
/// on the example files: `A.T @ y` in OpenBLAS's order ([`design_transpose_times`]), `A.T @ A`
/// as fused multiply-adds in sequence, LAPACK's Cholesky (`l21 = a21 * (1 / l11)`,
/// `l22 = sqrt(a22 - l21^2)`) and both triangular solves as `dgesv` ([`solve_2x2`]).
pub fn robust_fit(x: &[f64], y: &[f64]) -> Option<[f64; 2]> {
    const ITERATIONS: usize = 1000;
    const RHO: f64 = 1.0;
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &y[..n]);
    let offset = if x.iter().any(|v| v.is_nan()) {
        f64::NAN
    } else {
        x.iter().copied().fold(f64::INFINITY, f64::min)
    };
    let a: Vec<f64> = x.iter().map(|v| v - offset).collect();
    let aty = design_transpose_times(&a, y);
    let a11 = n as f64;
    let a21 = a.iter().fold(0.0, |s, v| s + v);
    let a22 = a.iter().fold(0.0, |s: f64, v| v.mul_add(*v, s));
    if a11 <= 0.0 {
        return None;
    }
    let l11 = a11.sqrt();
    let l21 = a21 * (1.0 / l11);
    let rest = a22 - l21 * l21;
    if rest <= 0.0 {
        return None;
    }
    let l22 = rest.sqrt();
    let lower = [[l11, 0.0], [l21, l22]];
    let upper = [[l11, l21], [0.0, l22]];
    let mut z = vec![0.0; n];
    let mut u = vec![0.0; n];
    let mut w = vec![0.0; n];
    let mut coef = [0.0; 2];
    for _ in 0..ITERATIONS {
        for i in 0..n {
            w[i] = z[i] - u[i];
        }
        let atw = design_transpose_times(&a, &w);
        let rhs = [aty[0] + atw[0], aty[1] + atw[1]];
        coef = solve_2x2(upper, solve_2x2(lower, rhs)?)?;
        let [c0, c1] = coef;
        for i in 0..n {
            let d = (c0 + a[i] * c1) - y[i] + u[i];
            let d_inv = if d != 0.0 { 1.0 / d } else { 0.0 };
            let shrink = clamp_at_zero(1.0 - (1.0 + 1.0 / RHO) * d_inv.abs());
            let zi = RHO / (1.0 + RHO) * d + 1.0 / (1.0 + RHO) * shrink * d;
            z[i] = zi;
            u[i] = d - zi;
        }
    }
    coef[0] -= coef[1] * offset;
    Some(coef)
}

/// pyxdf `_clock_sync` for one stream: maps `time_stamps` onto the recorder's clock with the
/// clock offsets (one robust fit per clock segment) and returns the inclusive sample ranges of
/// each clock segment. Streams without samples or offsets are left alone (no segments).
pub fn clock_sync(
    time_stamps: &mut [f64],
    clock_times: &[f64],
    clock_values: &[f64],
    options: &ClockSyncOptions,
) -> Vec<(usize, usize)> {
    let mut clock_segments = Vec::new();
    let n_offsets = clock_times.len().min(clock_values.len());
    if time_stamps.is_empty() || n_offsets == 0 {
        return clock_segments;
    }
    let (clock_times, clock_values) = (&clock_times[..n_offsets], &clock_values[..n_offsets]);
    let ranges = if options.handle_clock_resets && n_offsets > 1 {
        detect_clock_resets(clock_times, clock_values, options)
    } else {
        vec![(0, n_offsets - 1)]
    };
    let winsor = options.winsor_threshold;
    let coefs: Vec<[f64; 2]> = ranges
        .iter()
        .map(|&(start, end)| {
            if start != end {
                let x: Vec<f64> = clock_times[start..=end]
                    .iter()
                    .map(|t| t / winsor)
                    .collect();
                let y: Vec<f64> = clock_values[start..=end]
                    .iter()
                    .map(|v| v / winsor)
                    .collect();
                match robust_fit(&x, &y) {
                    Some([c0, c1]) => [c0 * winsor, c1],
                    None => [0.0, 0.0],
                }
            } else {
                [clock_values[start], 0.0]
            }
        })
        .collect();
    let apply = |stamps: &mut [f64], [c0, c1]: [f64; 2]| {
        for t in stamps {
            *t += c0 + c1 * *t;
        }
    };
    if ranges.len() == 1 {
        apply(time_stamps, coefs[0]);
        clock_segments.push((0, time_stamps.len() - 1));
        return clock_segments;
    }
    let mut ts_start = 0;
    for (coef, &(_, range_end)) in coefs.iter().zip(&ranges) {
        let stop = range_end + 1;
        let ts_stop = if stop < n_offsets {
            // Break at the first timestamp closer to the next clock segment's first offset than
            // to this segment's last one.
            let current_end = clock_times[range_end];
            let next_start = clock_times[stop];
            let first_closer_to_next = time_stamps[ts_start..]
                .iter()
                .position(|t| (t - current_end).abs() >= (t - next_start).abs() || t.is_nan());
            ts_start + first_closer_to_next.unwrap_or(time_stamps.len() - ts_start)
        } else {
            time_stamps.len()
        };
        if ts_start != ts_stop {
            clock_segments.push((ts_start, ts_stop - 1));
            apply(&mut time_stamps[ts_start..ts_stop], *coef);
            ts_start = ts_stop;
        }
    }
    clock_segments
}

/// Thresholds of break detection in jitter removal (pyxdf's load_xdf defaults: 1 s, 500 samples).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JitterOptions {
    /// A break is an interval longer than this many seconds...
    pub threshold_seconds: f64,
    /// ... and longer than this many nominal sample intervals.
    pub threshold_samples: f64,
}

impl Default for JitterOptions {
    fn default() -> Self {
        JitterOptions {
            threshold_seconds: 1.0,
            threshold_samples: 500.0,
        }
    }
}

/// What jitter removal found for a stream: its segments and effective sampling rate.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JitterResult {
    /// Inclusive sample index ranges between breaks.
    pub segments: Vec<(usize, usize)>,
    /// Measured sampling rate in Hz (0 where it cannot be computed, as in pyxdf).
    pub effective_srate: f64,
}

/// pyxdf `_detect_breaks`: intervals whose magnitude exceeds
/// `max(threshold_seconds, threshold_samples * interval)`.
pub fn detect_breaks(time_stamps: &[f64], interval: f64, options: &JitterOptions) -> Vec<bool> {
    let threshold = options
        .threshold_seconds
        .max(options.threshold_samples * interval);
    time_stamps
        .windows(2)
        .map(|w| (w[1] - w[0]).abs() > threshold)
        .collect()
}

/// The least-squares line `t ~ m0 + m1 * i` through `(i, stamps[i - start])` for
/// `i in start..start + stamps.len()`, as `numpy.linalg.lstsq` solves it. Computed on values
/// shifted by the first sample and index (exact for timestamps within a factor of two of each
/// other) with centred sums, so the coefficients are accurate to rounding.
fn fit_line(start: usize, stamps: &[f64]) -> (f64, f64) {
    let n = stamps.len() as f64;
    let reference = stamps[0];
    let mean_index = (n - 1.0) / 2.0;
    let shifted: Vec<f64> = stamps.iter().map(|t| t - reference).collect();
    let mean_shifted = shifted.iter().sum::<f64>() / n;
    let mut sxy = 0.0;
    let mut sxx = 0.0;
    for (k, y) in shifted.iter().enumerate() {
        let dx = k as f64 - mean_index;
        sxy += dx * (y - mean_shifted);
        sxx += dx * dx;
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let intercept_shifted = mean_shifted - slope * mean_index;
    (reference + intercept_shifted - slope * start as f64, slope)
}

/// pyxdf `_jitter_removal` for one stream: replaces the timestamps of each segment between breaks
/// by their least-squares line on the sample index and computes the effective sampling rate.
/// Irregular streams (`nominal_srate == 0`) get one segment and rate 0; streams that can drop
/// samples keep their timestamps, with rate `(n - 1) / duration`.
pub fn jitter_removal(
    time_stamps: &mut [f64],
    nominal_srate: f64,
    can_drop_samples: bool,
    options: &JitterOptions,
) -> JitterResult {
    let n = time_stamps.len();
    let mut result = JitterResult::default();
    if n == 0 {
        return result;
    }
    if nominal_srate == 0.0 {
        result.segments.push((0, n - 1));
        return result;
    }
    if can_drop_samples {
        result.segments.push((0, n - 1));
        if n > 1 {
            let duration = time_stamps[n - 1] - time_stamps[0];
            if duration > 0.0 {
                result.effective_srate = (n - 1) as f64 / duration;
            }
        }
        return result;
    }
    let interval = if nominal_srate > 0.0 {
        1.0 / nominal_srate
    } else {
        0.0
    };
    let breaks = detect_breaks(time_stamps, interval, options);
    result.segments = segment_indices(&breaks);
    for &(start, stop) in &result.segments {
        let (m0, m1) = fit_line(start, &time_stamps[start..=stop]);
        for (i, t) in (start..=stop).zip(&mut time_stamps[start..=stop]) {
            *t = m0 + m1 * i as f64;
        }
    }
    let mut extra_samples = 0usize;
    let mut durations = 0.0;
    let mut any_longer_than_one = false;
    for &(start, stop) in &result.segments {
        let count = stop + 1 - start;
        any_longer_than_one |= count > 1;
        extra_samples += count - 1;
        durations += time_stamps[stop] - time_stamps[start];
    }
    if any_longer_than_one {
        result.effective_srate = extra_samples as f64 / durations;
    }
    result
}

/// The effective rate and the single segment pyxdf reports when jitter removal is off:
/// `(n - 1) / (last - first)` for regular streams with two or more samples.
pub fn without_jitter_removal(time_stamps: &[f64], nominal_srate: f64) -> JitterResult {
    let n = time_stamps.len();
    let mut result = JitterResult::default();
    if nominal_srate != 0.0 && n > 1 {
        let duration = time_stamps[n - 1] - time_stamps[0];
        result.effective_srate = (n - 1) as f64 / duration;
    }
    if n > 0 {
        result.segments.push((0, n - 1));
    }
    result
}

#[cfg(test)]
mod tests {
    //! Cases from pyxdf's own tests (test/test_*.py of pyxdf 1.17.5), with their expected values.

    use super::*;

    fn assert_close(actual: &[f64], expected: &[f64], tolerance: f64) {
        assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
        for (a, e) in actual.iter().zip(expected) {
            assert!((a - e).abs() <= tolerance, "{actual:?} vs {expected:?}");
        }
    }

    fn range(start: i64, end: i64, step: i64) -> Vec<f64> {
        (start..end)
            .step_by(step as usize)
            .map(|v| v as f64)
            .collect()
    }

    fn resets(
        times: &[f64],
        values: &[f64],
        stds: f64,
        secs: f64,
        value_stds: f64,
        value_secs: f64,
    ) -> Vec<(usize, usize)> {
        detect_clock_resets(
            times,
            values,
            &ClockSyncOptions {
                reset_threshold_stds: stds,
                reset_threshold_seconds: secs,
                reset_threshold_offset_stds: value_stds,
                reset_threshold_offset_seconds: value_secs,
                ..ClockSyncOptions::default()
            },
        )
    }

    #[test]
    fn segment_indices_like_pyxdf() {
        // test_segment_indices.py
        assert_eq!(segment_indices(&[]), vec![(0, 0)]);
        assert_eq!(segment_indices(&[false; 4]), vec![(0, 4)]);
        assert_eq!(
            segment_indices(&[false, true, false, false]),
            vec![(0, 1), (2, 4)]
        );
        assert_eq!(
            segment_indices(&[true, false, false, true]),
            vec![(0, 0), (1, 3), (4, 4)]
        );
    }

    #[test]
    fn medians_follow_numpy() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[1.0, f64::NAN]).is_nan());
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn clock_offsets_without_resets_give_one_range() {
        // test_detect_clock_resets.py::test_clock_no_resets
        for n in 2..10 {
            let times = range(0, n * 5, 5);
            let values = vec![0.0; n as usize];
            assert_eq!(
                resets(&times, &values, 5.0, 5.0, 10.0, 1.0),
                vec![(0, n as usize - 1)]
            );
        }
    }

    #[test]
    fn clock_jumps_forward_need_both_thresholds() {
        // test_detect_clock_resets.py::test_clock_jumps_forward
        let mut times = range(0, 25, 5);
        let mut values = vec![0.0; 5];
        times[0] = -6.0;
        values[0] = 6.0;
        for (stds, secs, value_stds, value_secs, expected) in [
            (5.0, 5.0, 10.0, 5.0, vec![(0, 0), (1, 4)]),
            (2.71e16, 5.0, 10.0, 5.0, vec![(0, 4)]),
            (5.0, 6.0, 10.0, 5.0, vec![(0, 4)]),
            (5.0, 5.0, 2.71e16, 5.0, vec![(0, 4)]),
            (5.0, 5.0, 10.0, 6.0, vec![(0, 4)]),
        ] {
            assert_eq!(
                resets(&times, &values, stds, secs, value_stds, value_secs),
                expected,
                "{stds} {secs} {value_stds} {value_secs}"
            );
        }
    }

    #[test]
    fn clock_jumps_backward_are_always_resets() {
        // test_detect_clock_resets.py::test_clock_jumps_backward
        let mut times = range(0, 25, 5);
        let mut values = vec![0.0; 5];
        times[0] = 6.0;
        values[0] = -6.0;
        let inf = f64::INFINITY;
        assert_eq!(
            resets(&times, &values, inf, inf, inf, inf),
            vec![(0, 0), (1, 4)]
        );
    }

    #[test]
    fn sync_without_resets_adds_the_offset() {
        // test_clock_sync.py::test_sync_no_resets and _bounds
        for handle_clock_resets in [true, false] {
            for n_offsets in 2..5i64 {
                for clock_value in [-10.0, -5.0, 0.0, 5.0, 10.0] {
                    let duration = (n_offsets - 1) * 5;
                    let original = range(0, duration, 1);
                    let mut stamps = original.clone();
                    let times = range(0, duration + 1, 5);
                    let values = vec![clock_value; times.len()];
                    let options = ClockSyncOptions {
                        handle_clock_resets,
                        ..ClockSyncOptions::default()
                    };
                    let segments = clock_sync(&mut stamps, &times, &values, &options);
                    let expected: Vec<f64> = original.iter().map(|t| t + clock_value).collect();
                    assert_close(&stamps, &expected, 1e-14);
                    assert_eq!(segments, vec![(0, original.len() - 1)]);

                    let original = range(-5, n_offsets * 5, 1);
                    let mut stamps = original.clone();
                    let times = range(0, n_offsets * 5, 5);
                    let values = vec![clock_value; times.len()];
                    clock_sync(&mut stamps, &times, &values, &options);
                    let expected: Vec<f64> = original.iter().map(|t| t + clock_value).collect();
                    assert_close(&stamps, &expected, 1e-14);
                }
            }
        }
    }

    #[test]
    fn empty_streams_and_missing_offsets_are_left_alone() {
        // test_clock_sync.py::test_sync_empty_stream / test_sync_empty_offsets
        let mut empty: Vec<f64> = Vec::new();
        let options = ClockSyncOptions::default();
        assert!(clock_sync(&mut empty, &[0.0, 5.0], &[0.0, 0.0], &options).is_empty());
        let mut stamps = vec![0.0, 1.0, 2.0];
        assert!(clock_sync(&mut stamps, &[], &[], &options).is_empty());
        assert_eq!(stamps, vec![0.0, 1.0, 2.0]);
    }

    #[test]
    fn unusable_clock_segments_are_kept_or_skipped() {
        // test_clock_sync.py::test_clock_sync_error_keep_segment / _skip_segment
        let options = ClockSyncOptions {
            reset_threshold_stds: 0.0,
            reset_threshold_seconds: 4.0,
            reset_threshold_offset_stds: 0.0,
            reset_threshold_offset_seconds: 9.0,
            ..ClockSyncOptions::default()
        };
        let times = [0.0, 0.0, 10.0, 15.0];
        let values = [0.0, 0.0, 10.0, 10.0];
        let mut stamps = range(0, 10, 1);
        let segments = clock_sync(&mut stamps, &times, &values, &options);
        assert_close(
            &stamps,
            &[0.0, 1.0, 2.0, 3.0, 4.0, 15.0, 16.0, 17.0, 18.0, 19.0],
            1e-7,
        );
        assert_eq!(segments, vec![(0, 4), (5, 9)]);

        let mut stamps = range(5, 15, 1);
        let segments = clock_sync(&mut stamps, &times, &values, &options);
        assert_close(&stamps, &range(15, 25, 1), 1e-7);
        assert_eq!(segments, vec![(0, 9)]);
    }

    #[test]
    fn clock_resets_split_the_timestamps() {
        // test_clock_sync.py: forward and backward jumps, breaks at and between resets
        type Case = (Vec<f64>, [f64; 4], [f64; 4], Vec<f64>, Vec<(usize, usize)>);
        let cases: [Case; 4] = [
            (
                vec![1.0, 2.0, 3.0, 4.0, 5.0, 17.0, 18.0, 19.0, 20.0, 21.0],
                [1.0, 6.0, 17.0, 22.0],
                [-1.0, -1.0, -12.0, -12.0],
                range(0, 10, 1),
                vec![(0, 4), (5, 9)],
            ),
            (
                range(4, 20, 1),
                [1.0, 6.0, 17.0, 22.0],
                [-1.0, -1.0, -3.0, -3.0],
                [range(3, 11, 1), range(9, 17, 1)].concat(),
                vec![(0, 7), (8, 15)],
            ),
            (
                vec![17.0, 18.0, 19.0, 20.0, 21.0, 1.0, 2.0, 3.0, 4.0, 5.0],
                [17.0, 22.0, 1.0, 6.0],
                [-12.0, -12.0, 9.0, 9.0],
                range(5, 15, 1),
                vec![(0, 4), (5, 9)],
            ),
            (
                [range(17, 25, 1), range(1, 9, 1)].concat(),
                [17.0, 22.0, 1.0, 6.0],
                [-12.0, -12.0, 9.0, 9.0],
                [range(5, 13, 1), range(10, 18, 1)].concat(),
                vec![(0, 7), (8, 15)],
            ),
        ];
        for (mut stamps, times, values, expected, expected_segments) in cases {
            let segments = clock_sync(&mut stamps, &times, &values, &ClockSyncOptions::default());
            assert_close(&stamps, &expected, 1e-13);
            assert_eq!(segments, expected_segments);
        }
    }

    #[test]
    fn clock_jumps_at_every_rate_map_each_range_to_zero() {
        // test_clock_sync.py::test_sync_clock_jumps_{forward,backward,forward_backward}_tdiffs
        // (ranges, whether the test lowers reset_threshold_seconds to clock_tdiff - 1)
        let ranges: [(&[(i64, i64)], bool); 9] = [
            (&[(0, 1), (3, 4)], true),
            (&[(0, 3), (5, 8)], true),
            (&[(0, 4), (6, 10), (12, 16)], true),
            (&[(3, 4), (0, 1)], false),
            (&[(5, 8), (0, 3)], false),
            (&[(12, 16), (6, 10), (0, 4)], false),
            (&[(3, 4), (0, 1), (3, 4)], true),
            (&[(5, 8), (0, 3), (5, 8)], true),
            (&[(12, 16), (6, 10), (0, 4), (6, 10), (12, 16)], true),
        ];
        for (clock_offsets, lower_threshold) in ranges {
            for tdiff in [1.0, 1.0 / 10.0, 1.0 / 100.0] {
                for clock_tdiff in [5i64, 10] {
                    let mut times = Vec::new();
                    let mut values = Vec::new();
                    let mut stamps = Vec::new();
                    let mut expected = Vec::new();
                    let mut expected_segments = Vec::new();
                    for &(start, end) in clock_offsets {
                        let (t0, t1) = (start * clock_tdiff, (end + 1) * clock_tdiff);
                        for t in (t0..t1).step_by(clock_tdiff as usize) {
                            times.push(t as f64);
                            values.push(-t0 as f64);
                        }
                        // numpy.arange(t0, t1, tdiff): ceil((t1 - t0) / tdiff) values t0 + i * tdiff
                        let count = ((t1 - t0) as f64 / tdiff).ceil() as usize;
                        let first = stamps.len();
                        stamps.extend((0..count).map(|i| t0 as f64 + i as f64 * tdiff));
                        expected.extend((0..count).map(|i| i as f64 * tdiff));
                        expected_segments.push((first, stamps.len() - 1));
                    }
                    let mut options = ClockSyncOptions::default();
                    if lower_threshold {
                        options.reset_threshold_seconds = (clock_tdiff - 1) as f64;
                    }
                    let segments = clock_sync(&mut stamps, &times, &values, &options);
                    assert_close(&stamps, &expected, 1e-13);
                    assert_eq!(segments, expected_segments, "{clock_offsets:?} {tdiff}");
                }
            }
        }
    }

    #[test]
    fn jitter_removal_keeps_regular_stamps_and_their_rate() {
        // test_jitter_removal.py::test_jitter_removal
        let options = JitterOptions {
            threshold_seconds: 1.0,
            threshold_samples: 1.0,
        };
        for (start, end) in [(1, 11), (-10, 0), (-10, 11)] {
            let original = range(start, end, 1);
            let mut stamps = original.clone();
            let result = jitter_removal(&mut stamps, 1.0, false, &options);
            assert_eq!(result.segments, vec![(0, original.len() - 1)]);
            assert_close(&stamps, &original, 1e-14);
            assert!((result.effective_srate - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn jitter_removal_splits_at_breaks() {
        // test_jitter_removal.py::test_jitter_removal_two_segments(_non_monotonic)
        let options = JitterOptions {
            threshold_seconds: 1.0,
            threshold_samples: 1.0,
        };
        for (segments, starts) in [
            (vec![(0, 9), (10, 19)], [0, 11]),
            (vec![(0, 9), (10, 19)], [-10, 1]),
            (vec![(0, 19), (20, 39)], [-10, 11]),
            (vec![(0, 9), (10, 19)], [11, 0]),
            (vec![(0, 9), (10, 19)], [1, -10]),
            (vec![(0, 19), (20, 39)], [11, -10]),
        ] {
            let original: Vec<f64> = segments
                .iter()
                .zip(starts)
                .flat_map(|(&(a, b), s)| range(s, s + (b - a) as i64 + 1, 1))
                .collect();
            let mut stamps = original.clone();
            let result = jitter_removal(&mut stamps, 1.0, false, &options);
            assert_eq!(result.segments, segments);
            assert_close(&stamps, &original, 1e-13);
            assert!((result.effective_srate - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn streams_that_drop_samples_keep_their_timing() {
        // test_jitter_removal.py::test_jitter_removal_can_drop_samples_preserves_timing
        let srate = 90.0;
        let original: Vec<f64> = (0..1800)
            .filter(|i| i % 5 != 0)
            .map(|i| i as f64 * (1.0 / srate))
            .collect();
        let mut stamps = original.clone();
        let result = jitter_removal(&mut stamps, srate, true, &JitterOptions::default());
        assert_eq!(result.segments, vec![(0, original.len() - 1)]);
        assert_eq!(stamps, original);
        assert!(result.effective_srate < srate);
    }

    #[test]
    fn irregular_streams_get_one_segment_and_no_rate() {
        let mut stamps = vec![1.0, 5.0, 5.5];
        let result = jitter_removal(&mut stamps, 0.0, false, &JitterOptions::default());
        assert_eq!(result.segments, vec![(0, 2)]);
        assert_eq!(result.effective_srate, 0.0);
        assert_eq!(stamps, vec![1.0, 5.0, 5.5]);
        let result = without_jitter_removal(&stamps, 0.0);
        assert_eq!(
            (result.segments, result.effective_srate),
            (vec![(0, 2)], 0.0)
        );
        let result = without_jitter_removal(&[1.0, 2.0, 3.0], 10.0);
        assert_eq!(result.effective_srate, 1.0);
    }

    #[test]
    fn corrupted_last_offsets_are_truncated_only_with_extra_samples() {
        // test_truncate_corrupted_offsets.py: 20 offsets of -1 ms every 5 s, then a garbage one
        let mut times: Vec<f64> = (0..20).map(|i| i as f64 * 5.0).collect();
        let mut values = vec![-0.001; 20];
        let normal_values: Vec<f64> = (0..20).map(|i| 1e-6 * ((i % 3) as f64 - 1.0)).collect();
        assert_eq!(
            corrupted_offset_truncation(100, Some(100), &times, &normal_values),
            None
        );
        assert_eq!(
            corrupted_offset_truncation(101, Some(100), &times, &normal_values),
            None
        );
        times.push(times[19] + 800000.0);
        values.push(-750000.0);
        assert!(last_clock_offset_is_corrupted(&times, &values));
        assert_eq!(
            corrupted_offset_truncation(100, Some(100), &times, &values),
            None
        );
        assert_eq!(
            corrupted_offset_truncation(101, Some(100), &times, &values),
            Some(100)
        );
        assert_eq!(
            corrupted_offset_truncation(101, None, &times, &values),
            None
        );

        // After truncation, clock sync adds the normal offset.
        let mut stamps: Vec<f64> = (0..100).map(|i| i as f64 * (101.0 / 100.0)).collect();
        let expected: Vec<f64> = stamps.iter().map(|t| t - 0.001).collect();
        clock_sync(
            &mut stamps,
            &times[..20],
            &values[..20],
            &ClockSyncOptions::default(),
        );
        assert_close(&stamps, &expected, 1e-6);
    }

    #[test]
    fn robust_fit_fails_where_numpy_raises() {
        assert_eq!(robust_fit(&[3.0, 3.0], &[1.0, 2.0]), None);
        assert_eq!(robust_fit(&[], &[]), None);
        assert_eq!(solve_2x2([[0.0, 1.0], [0.0, 2.0]], [1.0, 1.0]), None);
        // Row exchange when the lower entry is the larger pivot.
        assert_eq!(
            solve_2x2([[1.0, 0.0], [4.0, 2.0]], [1.0, 6.0]),
            Some([1.0, 1.0])
        );
    }
}
