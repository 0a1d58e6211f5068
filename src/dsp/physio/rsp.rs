//! Respiration: cleaning, breath peaks and troughs, rate and amplitude, as NeuroKit2's default
//! `rsp_clean` / `rsp_peaks` (method `khodadad2018`) and `rsp_process`'s `RSP_Rate` / `RSP_Amplitude`.

use super::rate;
use crate::dsp::filter::{butter, sosfiltfilt, BandType, FilterError};

/// Cleans one respiration segment: 0.05-3 Hz Butterworth bandpass (order 2, zero phase).
pub fn rsp_clean(x: &[f64], fs: f64) -> Result<Vec<f64>, FilterError> {
    sosfiltfilt(&butter(2, &[0.05, 3.0], BandType::Bandpass, fs)?, x)
}

/// Inhalation peaks and the troughs before them, `(peaks, troughs)`, as `nk.rsp_peaks(clean, fs)`:
/// extrema between zero crossings, minus those whose step to the next extremum is below 30% of the
/// median step, alternating trough/peak.
pub fn rsp_peaks(clean: &[f64]) -> (Vec<usize>, Vec<usize>) {
    let empty = (Vec::new(), Vec::new());
    let extrema = zero_crossing_extrema(clean);
    if extrema.len() < 2 {
        return empty;
    }
    let steps: Vec<f64> = extrema
        .windows(2)
        .map(|w| (clean[w[1]] - clean[w[0]]).abs())
        .collect();
    let median = median(&steps);
    let mut kept: Vec<usize> = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| **s > median * 0.3)
        .map(|(i, _)| extrema[i])
        .collect();
    let amplitudes: Vec<f64> = kept.iter().map(|&i| clean[i]).collect();
    let signs: Vec<f64> = amplitudes
        .windows(2)
        .map(|w| rate::sign(w[1] - w[0]))
        .collect();
    let remove: Vec<usize> = signs
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] + w[1] != 0.0)
        .map(|(i, _)| i + 1)
        .collect();
    let mut amplitudes = amplitudes;
    for &i in remove.iter().rev() {
        kept.remove(i);
        amplitudes.remove(i);
    }
    if kept.len() < 2 {
        return empty;
    }
    let n = amplitudes.len();
    let drop_last = amplitudes[n - 1] < amplitudes[n - 2];
    if amplitudes[0] > amplitudes[1] {
        kept.remove(0);
    }
    if drop_last {
        kept.pop();
    }
    let peaks = kept.iter().skip(1).step_by(2).copied().collect();
    let troughs = kept[..kept.len().saturating_sub(1)]
        .iter()
        .step_by(2)
        .copied()
        .collect();
    (peaks, troughs)
}

/// Breaths per minute, as `rsp_process`'s `RSP_Rate` averaged over the `n` samples of the segment:
/// the per-sample rate of the troughs, `nk.signal_rate(troughs, fs, desired_length=n).mean()`
/// (see [`rate::mean_rate`]); NaN with three troughs or fewer.
pub fn rsp_rate(troughs: &[usize], fs: f64, n: usize) -> f64 {
    rate::mean_rate(troughs, fs, n)
}

/// Each breath's amplitude: its peak minus the trough before it (`nk.rsp_amplitude` at the peaks).
pub fn breath_amplitudes(clean: &[f64], peaks: &[usize], troughs: &[usize]) -> Vec<f64> {
    peaks
        .iter()
        .zip(troughs)
        .map(|(&p, &t)| clean[p] - clean[t])
        .collect()
}

/// Mean breath amplitude, as `rsp_process`'s `RSP_Amplitude` averaged over the segment: the breath
/// amplitudes interpolated over every sample of `clean` (see [`rate::mean_interpolated`]); NaN
/// without breaths.
pub fn rsp_amplitude(clean: &[f64], peaks: &[usize], troughs: &[usize]) -> f64 {
    let amplitudes = breath_amplitudes(clean, peaks, troughs);
    rate::mean_interpolated(&peaks[..amplitudes.len()], &amplitudes, clean.len())
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The extremum between each pair of consecutive zero crossings (max after a rise, min after a fall).
fn zero_crossing_extrema(clean: &[f64]) -> Vec<usize> {
    let mut crossings: Vec<(usize, bool)> = Vec::new();
    for i in 0..clean.len().saturating_sub(1) {
        if clean[i] < 0.0 && clean[i + 1] > 0.0 {
            crossings.push((i, true));
        } else if clean[i] > 0.0 && clean[i + 1] < 0.0 {
            crossings.push((i, false));
        }
    }
    let first_rise = crossings.iter().find(|c| c.1).map(|c| c.0);
    let first_fall = crossings.iter().find(|c| !c.1).map(|c| c.0);
    let (Some(rise), Some(fall)) = (first_rise, first_fall) else {
        return Vec::new();
    };
    let starts_with_rise = rise < fall;
    crossings
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            let segment = &clean[w[0].0..w[1].0];
            let want_max = (i % 2 == 0) == starts_with_rise;
            let pick = segment.iter().enumerate().fold(0, |best, (k, v)| {
                let better = if want_max {
                    *v > segment[best]
                } else {
                    *v < segment[best]
                };
                if better {
                    k
                } else {
                    best
                }
            });
            w[0].0 + pick
        })
        .collect()
}
