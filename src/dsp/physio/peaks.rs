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
    let mut begins = Vec::new();
    let mut ends = Vec::new();
    let mut above = feature.iter().zip(threshold).map(|(f, t)| f > t);
    let Some(mut was_above) = above.next() else {
        return (Vec::new(), Vec::new());
    };
    for (i, is_above) in above.enumerate() {
        if !was_above && is_above {
            begins.push(i);
        }
        if was_above && !is_above {
            ends.push(i);
        }
        was_above = is_above;
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
