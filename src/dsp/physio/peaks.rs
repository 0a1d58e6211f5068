//! Peak finding as `scipy.signal.find_peaks` / `peak_prominences`, and the threshold-crossing
//! beat detector shared by NeuroKit2's ECG (`neurokit`) and PPG (`elgendi`) methods.

/// Indices of local maxima, as `scipy.signal.find_peaks(x)` without conditions.
///
/// A flat top counts once, at its middle sample (rounded down), as scipy does.
pub fn local_maxima(x: &[f64]) -> Vec<usize> {
    let mut peaks = Vec::new();
    let n = x.len();
    if n < 3 {
        return peaks;
    }
    let mut i = 1;
    let last = n - 1;
    while i < last {
        if x[i - 1] < x[i] {
            let mut ahead = i + 1;
            while ahead < last && x[ahead] == x[i] {
                ahead += 1;
            }
            if x[ahead] < x[i] {
                peaks.push((i + ahead - 1) / 2);
                i = ahead;
            }
        }
        i += 1;
    }
    peaks
}

/// Prominence of each peak, as `scipy.signal.peak_prominences(x, peaks)` (no window limit).
pub fn prominences(x: &[f64], peaks: &[usize]) -> Vec<f64> {
    peaks.iter().map(|&peak| prominence(x, peak)).collect()
}

/// The local maximum of `x` with the largest prominence (the first of equals), as
/// [`local_maxima`] then [`prominences`] then their arg-max, without the two lists.
pub fn most_prominent(x: &[f64]) -> Option<usize> {
    let n = x.len();
    let mut best: Option<(usize, f64)> = None;
    let mut i = 1;
    while i + 1 < n {
        if x[i - 1] < x[i] {
            let mut ahead = i + 1;
            while ahead + 1 < n && x[ahead] == x[i] {
                ahead += 1;
            }
            if x[ahead] < x[i] {
                let peak = (i + ahead - 1) / 2;
                let prominence = prominence(x, peak);
                if best.is_none_or(|(_, b)| prominence > b) {
                    best = Some((peak, prominence));
                }
                i = ahead;
            }
        }
        i += 1;
    }
    best.map(|(peak, _)| peak)
}

/// Prominence of the peak at `peak`, as `scipy.signal.peak_prominences` (no window limit).
fn prominence(x: &[f64], peak: usize) -> f64 {
    let top = x[peak];
    let left_min = x[..=peak]
        .iter()
        .rev()
        .take_while(|&&v| v <= top)
        .fold(top, |m, &v| m.min(v));
    let right_min = x[peak..]
        .iter()
        .take_while(|&&v| v <= top)
        .fold(top, |m, &v| m.min(v));
    top - left_min.max(right_min)
}

/// Parameters of the threshold-crossing beat detector (all lengths in samples).
pub struct WaveDetector {
    /// Waves shorter than this are ignored.
    pub min_len: f64,
    /// A peak closer than this to the previous one is dropped.
    pub min_delay: usize,
}

impl WaveDetector {
    /// Finds one peak per wave where `feature > threshold`: the most prominent local maximum of
    /// `signal` inside the wave, kept when it is more than `min_delay` after the previous peak.
    ///
    /// This is the common core of NeuroKit2's `_ecg_findpeaks_neurokit` and `_ppg_findpeaks_elgendi`.
    pub fn detect(&self, signal: &[f64], feature: &[f64], threshold: &[f64]) -> Vec<usize> {
        let (begins, ends) = wave_edges(feature, threshold);
        self.detect_in_waves(signal, &begins, &ends)
    }

    /// [`WaveDetector::detect`] on waves already found by [`wave_edges`] (callers that need the
    /// edges themselves find them once).
    pub fn detect_in_waves(&self, signal: &[f64], begins: &[usize], ends: &[usize]) -> Vec<usize> {
        let mut peaks: Vec<usize> = Vec::new();
        let mut previous = 0usize;
        for (&begin, &end) in begins.iter().zip(ends) {
            if ((end - begin) as f64) < self.min_len {
                continue;
            }
            if let Some(top) = most_prominent(&signal[begin..end]) {
                let peak = begin + top;
                if peak as isize - previous as isize > self.min_delay as isize {
                    peaks.push(peak);
                    previous = peak;
                }
            }
        }
        peaks
    }
}

/// Rising and falling edges of `feature > threshold`, paired as NeuroKit2 pairs them: falling edges
/// before the first rising edge are dropped and the lists are cut to the shorter length.
pub fn wave_edges(feature: &[f64], threshold: &[f64]) -> (Vec<usize>, Vec<usize>) {
    wave_edges_scaled(feature, threshold, 1.0)
}

/// [`wave_edges`] of `feature > factor * threshold`: edge `k` is a change between samples `k` and
/// `k + 1`, found 64 comparisons at a time as bit masks (edges are rare).
pub fn wave_edges_scaled(
    feature: &[f64],
    threshold: &[f64],
    factor: f64,
) -> (Vec<usize>, Vec<usize>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, the only feature `wave_edges_avx2` is compiled for.
        return unsafe { wave_edges_avx2(feature, threshold, factor) };
    }
    let n = feature.len().min(threshold.len());
    wave_edges_of_masks(n, |start| {
        let end = (start + 64).min(n);
        above_mask(&feature[start..end], &threshold[start..end], factor)
    })
}

/// [`wave_edges_scaled`] with AVX2 comparisons, chosen at run time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn wave_edges_avx2(feature: &[f64], threshold: &[f64], factor: f64) -> (Vec<usize>, Vec<usize>) {
    let n = feature.len().min(threshold.len());
    // The closure inherits this function's target features, so the AVX2 call inlines.
    wave_edges_of_masks(n, |start| {
        let end = (start + 64).min(n);
        x86::above_mask(&feature[start..end], &threshold[start..end], factor)
    })
}

/// [`wave_edges`] of a feature already compared with its threshold: bit `i % 64` of `bits[i / 64]`
/// set where sample `i` (of `n`) is above (as `smooth::sliding_means_exceeded` writes them).
pub fn wave_edges_of_bits(bits: &[u64], n: usize) -> (Vec<usize>, Vec<usize>) {
    assert!(bits.len() >= n.div_ceil(64), "a bit per sample");
    wave_edges_of_masks(n, |start| bits[start / 64])
}

/// Bit `k` set when `feature[k] > factor * threshold[k]` (at most 64 values of each).
fn above_mask(feature: &[f64], threshold: &[f64], factor: f64) -> u64 {
    feature
        .iter()
        .zip(threshold)
        .enumerate()
        .fold(0u64, |mask, (k, (f, t))| {
            mask | (u64::from(*f > factor * *t) << k)
        })
}

/// The body of the wave-edge finders: `mask_at(start)` gives the above-threshold bits of samples
/// `start..start + 64` (of `n`; none set past `n`), for `start` a multiple of 64.
#[inline(always)]
fn wave_edges_of_masks(n: usize, mask_at: impl Fn(usize) -> u64) -> (Vec<usize>, Vec<usize>) {
    const BITS: usize = 64;
    let mut begins = Vec::new();
    let mut ends = Vec::new();
    let chunks = n.div_ceil(BITS);
    let mut current = if n > 0 { mask_at(0) } else { 0 };
    for chunk in 0..chunks {
        let base = chunk * BITS;
        let last_chunk = chunk + 1 == chunks;
        let next = if last_chunk { 0 } else { mask_at(base + BITS) };
        let following = (current >> 1) | (next << (BITS - 1));
        let valid = (n - base).min(BITS);
        let mut positions = if valid == BITS {
            u64::MAX
        } else {
            (1u64 << valid) - 1
        };
        if last_chunk {
            // The last sample has no successor to change into.
            positions >>= 1;
        }
        let push_bits = |mut bits: u64, into: &mut Vec<usize>| {
            while bits != 0 {
                into.push(base + bits.trailing_zeros() as usize);
                bits &= bits - 1;
            }
        };
        push_bits(!current & following & positions, &mut begins);
        push_bits(current & !following & positions, &mut ends);
        current = next;
    }
    let Some(&first) = begins.first() else {
        return (Vec::new(), Vec::new());
    };
    ends.retain(|&e| e > first);
    let count = begins.len().min(ends.len());
    begins.truncate(count);
    ends.truncate(count);
    (begins, ends)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// [`super::above_mask`] four comparisons at a time (the same `>` of the same products).
    #[target_feature(enable = "avx2")]
    pub(super) fn above_mask(feature: &[f64], threshold: &[f64], factor: f64) -> u64 {
        let n = feature.len().min(threshold.len());
        let whole = n / 4 * 4;
        let factor4 = _mm256_set1_pd(factor);
        let mut mask = 0u64;
        for at in (0..whole).step_by(4) {
            let (f, t): (&[f64; 4], &[f64; 4]) = (
                feature[at..at + 4].try_into().expect("four values"),
                threshold[at..at + 4].try_into().expect("four values"),
            );
            // SAFETY: `f` and `t` are four readable f64 each; the loads need no alignment.
            let (f, t) = unsafe { (_mm256_loadu_pd(f.as_ptr()), _mm256_loadu_pd(t.as_ptr())) };
            let above = _mm256_cmp_pd::<_CMP_GT_OQ>(f, _mm256_mul_pd(factor4, t));
            mask |= (_mm256_movemask_pd(above) as u64) << at;
        }
        if whole < n {
            mask |= super::above_mask(&feature[whole..n], &threshold[whole..n], factor) << whole;
        }
        mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NeuroKit2's pairing written out sample by sample.
    fn naive_edges(feature: &[f64], threshold: &[f64], factor: f64) -> (Vec<usize>, Vec<usize>) {
        let above: Vec<bool> = feature
            .iter()
            .zip(threshold)
            .map(|(f, t)| *f > factor * *t)
            .collect();
        let begins: Vec<usize> = (0..above.len().saturating_sub(1))
            .filter(|&k| !above[k] && above[k + 1])
            .collect();
        let Some(&first) = begins.first() else {
            return (Vec::new(), Vec::new());
        };
        let ends: Vec<usize> = (0..above.len().saturating_sub(1))
            .filter(|&k| above[k] && !above[k + 1] && k > first)
            .collect();
        let count = begins.len().min(ends.len());
        (begins[..count].to_vec(), ends[..count].to_vec())
    }

    #[test]
    fn most_prominent_is_the_arg_max_of_the_prominence_list() {
        for n in [0, 1, 2, 3, 4, 10, 57, 300] {
            for seed in 0..20u64 {
                // Coarse values, so plateaus and equal prominences occur.
                let x: Vec<f64> = (0..n as u64)
                    .map(|i| ((i * 7919 + seed * 104729) % 11) as f64)
                    .collect();
                let maxima = local_maxima(&x);
                let proms = prominences(&x, &maxima);
                let mut want: Option<(usize, f64)> = None;
                for (&m, &p) in maxima.iter().zip(&proms) {
                    if want.is_none_or(|(_, b)| p > b) {
                        want = Some((m, p));
                    }
                }
                assert_eq!(
                    most_prominent(&x),
                    want.map(|(m, _)| m),
                    "n {n} seed {seed}"
                );
            }
        }
    }

    #[test]
    fn wave_edges_match_the_sample_by_sample_definition_at_every_length() {
        for n in [0, 1, 2, 3, 63, 64, 65, 127, 128, 129, 200, 1000] {
            let feature: Vec<f64> = (0..n).map(|i| ((i * 7919) % 13) as f64).collect();
            let threshold = vec![4.0; n];
            for factor in [1.0, 1.5, 3.5] {
                let portable = wave_edges_of_masks(n, |start| {
                    let end = (start + 64).min(n);
                    above_mask(&feature[start..end], &threshold[start..end], factor)
                });
                assert_eq!(portable, naive_edges(&feature, &threshold, factor));
                let bits: Vec<u64> = (0..n.div_ceil(64))
                    .map(|w| {
                        let end = (64 * w + 64).min(n);
                        above_mask(&feature[64 * w..end], &threshold[64 * w..end], factor)
                    })
                    .collect();
                assert_eq!(wave_edges_of_bits(&bits, n), portable);
                assert_eq!(
                    wave_edges_scaled(&feature, &threshold, factor),
                    naive_edges(&feature, &threshold, factor),
                    "n {n} factor {factor}"
                );
            }
        }
        // A wave still open at the end has no falling edge, so it is dropped.
        let f = [0.0, 5.0, 5.0, 0.0, 5.0, 5.0];
        assert_eq!(wave_edges(&f, &[1.0; 6]), (vec![0], vec![2]));
    }
}
