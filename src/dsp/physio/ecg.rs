//! ECG cleaning and R-peak detection, as NeuroKit2's default `ecg_clean` / `ecg_peaks` (`neurokit`).

use super::peaks::WaveDetector;
use super::smooth::{boxcar, gradient, moving_average_filtfilt};
use crate::dsp::filter::{butter, sosfiltfilt, BandType, FilterError};

/// Cleans one ECG segment: 0.5 Hz Butterworth highpass (order 5, zero phase) then the 50 Hz
/// powerline moving average (`fs / 50` taps, zero phase), as `nk.ecg_clean(x, fs)`.
pub fn ecg_clean(x: &[f64], fs: f64) -> Result<Vec<f64>, FilterError> {
    let sos = butter(5, &[0.5], BandType::Highpass, fs)?;
    let highpassed = sosfiltfilt(&sos, x)?;
    let taps = if fs >= 100.0 { (fs / 50.0) as usize } else { 2 };
    Ok(moving_average_filtfilt(&highpassed, taps))
}

/// R-peak sample indices of a cleaned ECG segment, as `nk.ecg_peaks(clean, fs)` (method `neurokit`).
///
/// QRS complexes are where the smoothed absolute gradient (0.1 s boxcar) exceeds 1.5 times its
/// 0.75 s average; each long-enough complex gives its most prominent maximum, at least 0.3 s apart.
pub fn ecg_peaks(clean: &[f64], fs: f64) -> Vec<usize> {
    if clean.len() < 3 {
        return Vec::new();
    }
    let absgrad: Vec<f64> = gradient(clean).into_iter().map(f64::abs).collect();
    let smooth_size = ((0.1 * fs).round_ties_even() as usize).clamp(1, clean.len());
    let avg_size = ((0.75 * fs).round_ties_even() as usize).clamp(1, clean.len());
    let smoothgrad = boxcar(&absgrad, smooth_size);
    let mut threshold = boxcar(&smoothgrad, avg_size);
    threshold.iter_mut().for_each(|v| *v *= 1.5);
    let (begins, ends) = super::peaks::wave_edges(&smoothgrad, &threshold);
    if begins.is_empty() {
        return Vec::new();
    }
    let mean_len = begins
        .iter()
        .zip(&ends)
        .map(|(b, e)| (e - b) as f64)
        .sum::<f64>()
        / begins.len() as f64;
    WaveDetector {
        min_len: mean_len * 0.4,
        min_delay: (0.3 * fs).round_ties_even() as usize,
    }
    .detect_in_waves(clean, &begins, &ends)
}
