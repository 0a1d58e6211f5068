//! Electrodermal activity: cleaning, tonic/phasic decomposition and skin conductance responses
//! (SCRs), as NeuroKit2's default `eda_clean`, `eda_phasic` (`highpass`) and `eda_peaks` (`neurokit`).

use super::peaks::{local_maxima, prominences};
use crate::dsp::filter::{butter, sosfiltfilt, BandType, FilterError};

/// Cut-off between tonic and phasic components, Hz.
const PHASIC_CUTOFF_HZ: f64 = 0.05;

/// Cleans one EDA segment: 3 Hz Butterworth lowpass (order 4, zero phase); signals sampled at
/// 6 Hz or less are returned unchanged, as `nk.eda_clean(x, fs)`.
pub fn eda_clean(x: &[f64], fs: f64) -> Result<Vec<f64>, FilterError> {
    if fs <= 6.0 {
        return Ok(x.to_vec());
    }
    sosfiltfilt(&butter(4, &[3.0], BandType::Lowpass, fs)?, x)
}

/// Tonic and phasic components `(tonic, phasic)`: 0.05 Hz Butterworth lowpass and highpass (order 2,
/// zero phase) of the cleaned signal, as `nk.eda_phasic(clean, fs)` (method `highpass`).
pub fn eda_phasic(clean: &[f64], fs: f64) -> Result<(Vec<f64>, Vec<f64>), FilterError> {
    let tonic = sosfiltfilt(
        &butter(2, &[PHASIC_CUTOFF_HZ], BandType::Lowpass, fs)?,
        clean,
    )?;
    let phasic = sosfiltfilt(
        &butter(2, &[PHASIC_CUTOFF_HZ], BandType::Highpass, fs)?,
        clean,
    )?;
    Ok((tonic, phasic))
}

/// One skin conductance response.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scr {
    /// Sample index of the peak.
    pub peak: usize,
    /// Sample index of the onset (the last trough before the peak), if any.
    pub onset: Option<usize>,
    /// Peak minus onset value of the phasic component (NaN without onset).
    pub amplitude: f64,
    /// Peak minus onset time, seconds (NaN without onset).
    pub rise_time: f64,
}

/// SCRs of a phasic component, as `nk.eda_peaks(phasic, fs)` (method `neurokit`, `amplitude_min`
/// 0.1): local maxima whose prominence is at least 10% of the largest prominence.
pub fn scr_peaks(phasic: &[f64], fs: f64) -> Vec<Scr> {
    let maxima = local_maxima(phasic);
    let proms = prominences(phasic, &maxima);
    let largest = proms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let negated: Vec<f64> = phasic.iter().map(|v| -v).collect();
    let troughs = local_maxima(&negated);
    maxima
        .iter()
        .zip(&proms)
        .filter(|(_, p)| **p / largest >= 0.1)
        .map(|(&peak, _)| {
            let before = troughs.partition_point(|&t| t < peak);
            let onset = before.checked_sub(1).map(|i| troughs[i]);
            let (amplitude, rise_time) = match onset {
                Some(o) => (phasic[peak] - phasic[o], (peak - o) as f64 / fs),
                None => (f64::NAN, f64::NAN),
            };
            Scr {
                peak,
                onset,
                amplitude,
                rise_time,
            }
        })
        .collect()
}
