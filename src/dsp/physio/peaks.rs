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
    peaks
        .iter()
        .map(|&peak| {
            let top = x[peak];
            let mut left_min = top;
            let mut i = peak as isize;
            while i >= 0 && x[i as usize] <= top {
                left_min = left_min.min(x[i as usize]);
                i -= 1;
            }
            let mut right_min = top;
            let mut j = peak;
            while j < x.len() && x[j] <= top {
                right_min = right_min.min(x[j]);
                j += 1;
            }
            top - left_min.max(right_min)
        })
        .collect()
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
            let data = &signal[begin..end];
            let maxima = local_maxima(data);
            let proms = prominences(data, &maxima);
            let best = proms.iter().enumerate().fold(
                None,
                |best: Option<(usize, f64)>, (k, &p)| match best {
                    Some((_, bp)) if bp >= p => best,
                    _ => Some((k, p)),
                },
            );
            if let Some((k, _)) = best {
                let peak = begin + maxima[k];
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
    const BITS: usize = 64;
    let n = feature.len().min(threshold.len());
    let mask_at = |start: usize| -> u64 {
        let end = (start + BITS).min(n);
        feature[start..end]
            .iter()
            .zip(&threshold[start..end])
            .enumerate()
            .fold(0u64, |mask, (k, (f, t))| {
                mask | (u64::from(*f > factor * *t) << k)
            })
    };
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
    fn wave_edges_match_the_sample_by_sample_definition_at_every_length() {
        for n in [0, 1, 2, 3, 63, 64, 65, 127, 128, 129, 200, 1000] {
            let feature: Vec<f64> = (0..n).map(|i| ((i * 7919) % 13) as f64).collect();
            let threshold = vec![4.0; n];
            for factor in [1.0, 1.5, 3.5] {
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
