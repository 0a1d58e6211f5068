//! PPG cleaning and beat (systolic peak) detection, as NeuroKit2's default `ppg_clean` /
//! `ppg_peaks` (method `elgendi`).

use super::peaks::WaveDetector;
use super::smooth::boxcar;
use crate::dsp::filter::{butter, sosfiltfilt, BandType, FilterError};

/// Cleans one PPG segment: 0.5-8 Hz Butterworth bandpass (order 2, zero phase), as `nk.ppg_clean`.
pub fn ppg_clean(x: &[f64], fs: f64) -> Result<Vec<f64>, FilterError> {
    let sos = butter(2, &[0.5, 8.0], BandType::Bandpass, fs)?;
    sosfiltfilt(&sos, x)
}

/// Systolic peak indices of a cleaned PPG segment, as `nk.ppg_peaks(clean, fs)` (Elgendi 2013).
///
/// Waves are where the 0.111 s moving average of the squared positive signal exceeds its 0.667 s
/// average plus 2% of the mean square; each wave of at least 0.111 s gives its most prominent
/// maximum, at least 0.3 s after the previous peak.
pub fn ppg_peaks(clean: &[f64], fs: f64) -> Vec<usize> {
    if clean.len() < 3 {
        return Vec::new();
    }
    let squared: Vec<f64> = clean.iter().map(|v| v.max(0.0).powi(2)).collect();
    let peak_size = ((0.111 * fs).round_ties_even() as usize).clamp(1, clean.len());
    let beat_size = ((0.667 * fs).round_ties_even() as usize).clamp(1, clean.len());
    let ma_peak = boxcar(&squared, peak_size);
    let offset = 0.02 * squared.iter().sum::<f64>() / squared.len() as f64;
    let threshold: Vec<f64> = boxcar(&squared, beat_size)
        .iter()
        .map(|v| v + offset)
        .collect();
    WaveDetector {
        min_len: (0.111 * fs).round_ties_even(),
        min_delay: (0.3 * fs).round_ties_even() as usize,
    }
    .detect(clean, &ma_peak, &threshold)
}
