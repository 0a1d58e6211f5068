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

/// Fraction of the amplitude an SCR must fall back by to recover (NeuroKit2's `recovery_percentage`).
const RECOVERY_FRACTION: f64 = 0.5;

/// One skin conductance response, with the features `nk.eda_peaks` reports for it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scr {
    /// Sample index of the peak.
    pub peak: usize,
    /// Sample index of the onset (the last trough before the peak), if any.
    pub onset: Option<usize>,
    /// Value of the phasic component at the peak (`SCR_Height`).
    pub height: f64,
    /// Peak minus onset value of the phasic component (`SCR_Amplitude`; NaN without onset).
    pub amplitude: f64,
    /// Peak minus onset time, seconds (`SCR_RiseTime`; NaN without onset).
    pub rise_time: f64,
    /// Sample index where the phasic component has fallen back by half the amplitude
    /// (`SCR_Recovery`), if it does before the next SCR's peak.
    pub recovery: Option<usize>,
    /// Recovery minus peak time, seconds (`SCR_RecoveryTime`; NaN without recovery).
    pub recovery_time: f64,
}

/// SCRs of a phasic component, as `nk.eda_peaks(phasic, fs)` (method `neurokit`, `amplitude_min`
/// 0.1): local maxima whose prominence is at least 10% of the largest prominence, with their
/// height, amplitude, rise time and half recovery time.
pub fn scr_peaks(phasic: &[f64], fs: f64) -> Vec<Scr> {
    let maxima = local_maxima(phasic);
    let proms = prominences(phasic, &maxima);
    let largest = proms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let negated: Vec<f64> = phasic.iter().map(|v| -v).collect();
    let troughs = local_maxima(&negated);
    let mut scrs: Vec<Scr> = maxima
        .iter()
        .zip(&proms)
        .filter(|(_, p)| **p / largest >= 0.1)
        .map(|(&peak, _)| {
            let before = troughs.partition_point(|&t| t < peak);
            let onset = before.checked_sub(1).map(|i| troughs[i]);
            let height = phasic[peak];
            let (amplitude, rise_time) = match onset {
                Some(o) => (height - phasic[o], (peak - o) as f64 / fs),
                None => (f64::NAN, f64::NAN),
            };
            Scr {
                peak,
                onset,
                height,
                amplitude,
                rise_time,
                recovery: None,
                recovery_time: f64::NAN,
            }
        })
        .collect();
    add_recoveries(&mut scrs, phasic, fs);
    scrs
}

/// Half recovery of each SCR with an onset, as NeuroKit2's `_eda_peaks_getfeatures`: in the phasic
/// component from the peak up to (not including) the segment's minimum before the next such SCR's
/// peak, the first sample with the largest value at or below onset + half the amplitude, provided a
/// lower value follows it there.
fn add_recoveries(scrs: &mut [Scr], phasic: &[f64], fs: f64) {
    let with_onset: Vec<usize> = (0..scrs.len())
        .filter(|&k| scrs[k].onset.is_some())
        .collect();
    for (i, &k) in with_onset.iter().enumerate() {
        let Scr {
            peak,
            onset: Some(onset),
            amplitude,
            ..
        } = scrs[k]
        else {
            continue;
        };
        let end = with_onset
            .get(i + 1)
            .map_or(phasic.len(), |&next| scrs[next].peak);
        let segment = &phasic[peak..end];
        // Up to the segment's first minimum, so the rise of the next SCR is never picked.
        let minimum = segment.iter().enumerate().fold(
            0,
            |best, (j, v)| {
                if *v < segment[best] {
                    j
                } else {
                    best
                }
            },
        );
        let segment = &segment[..minimum];
        let target = phasic[onset] + amplitude * RECOVERY_FRACTION;
        // The closest value at or below the target: the largest one, first where repeated.
        let closest = segment
            .iter()
            .enumerate()
            .filter(|(_, v)| **v <= target)
            .fold(None, |best: Option<(usize, f64)>, (j, &v)| match best {
                Some((_, b)) if (b - target).abs() <= (v - target).abs() => best,
                _ => Some((j, v)),
            });
        let lowest = segment.iter().copied().fold(f64::INFINITY, f64::min);
        if let Some((j, value)) = closest {
            if lowest < value {
                scrs[k].recovery = Some(peak + j);
                scrs[k].recovery_time = j as f64 / fs;
            }
        }
    }
}
