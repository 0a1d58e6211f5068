//! Heart-rate variability from beat positions, as NeuroKit2's `hrv_time` and `hrv_frequency`
//! (defaults: 100 Hz quadratic interpolation of RR intervals, Welch PSD normalised to its maximum,
//! LF 0.04-0.15 Hz, HF 0.15-0.4 Hz).

use super::spectrum::{
    frequency_spacing, quadratic_interpolate_grid, welch_low_power, welch_power,
};
use std::cell::RefCell;

/// Time-domain HRV indices (milliseconds, percent).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HrvTime {
    /// Mean of the RR (NN) intervals, ms.
    pub mean_nn: f64,
    /// Sample standard deviation of the RR intervals (ddof = 1), ms.
    pub sdnn: f64,
    /// Root mean square of successive RR differences, ms.
    pub rmssd: f64,
    /// Percentage of successive differences above 50 ms (NeuroKit2 divides by their count + 1).
    pub pnn50: f64,
}

/// Frequency-domain HRV indices (power of the max-normalised PSD, as NeuroKit2 reports it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HrvFrequency {
    /// Low-frequency power, 0.04-0.15 Hz.
    pub lf: f64,
    /// High-frequency power, 0.15-0.4 Hz.
    pub hf: f64,
    /// LF / HF.
    pub lf_hf: f64,
}

/// RR intervals in milliseconds between consecutive beat indices sampled at `fs`.
pub fn rr_intervals(peaks: &[usize], fs: f64) -> Vec<f64> {
    peaks
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 / fs * 1000.0)
        .collect()
}

/// Time-domain indices, as `nk.hrv_time(peaks, fs)`; NaN where too few beats.
pub fn hrv_time(peaks: &[usize], fs: f64) -> HrvTime {
    let rri = rr_intervals(peaks, fs);
    let n = rri.len() as f64;
    let mean_nn = if rri.is_empty() {
        f64::NAN
    } else {
        rri.iter().sum::<f64>() / n
    };
    let sdnn = if rri.len() < 2 {
        f64::NAN
    } else {
        (rri.iter().map(|r| (r - mean_nn).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    };
    let diffs: Vec<f64> = rri.windows(2).map(|w| w[1] - w[0]).collect();
    let rmssd = if diffs.is_empty() {
        f64::NAN
    } else {
        (diffs.iter().map(|d| d * d).sum::<f64>() / diffs.len() as f64).sqrt()
    };
    let nn50 = diffs.iter().filter(|d| d.abs() > 50.0).count() as f64;
    let pnn50 = if rri.is_empty() {
        f64::NAN
    } else {
        nn50 / (diffs.len() as f64 + 1.0) * 100.0
    };
    HrvTime {
        mean_nn,
        sdnn,
        rmssd,
        pnn50,
    }
}

/// Interpolation rate of the RR series, Hz (NeuroKit2's default).
const INTERPOLATION_HZ: f64 = 100.0;

/// LF band `[low, high)`, Hz.
const LF: (f64, f64) = (0.04, 0.15);
/// HF band `[low, high)`, Hz: its upper edge is the highest frequency the indices read.
const HF: (f64, f64) = (0.15, 0.4);

/// Buffers reused by [`hrv_frequency`] on this thread: beat times, resampled RR series, PSD.
#[derive(Default)]
struct FrequencyScratch {
    times: Vec<f64>,
    rri: Vec<f64>,
    series: Vec<f64>,
    power: Vec<f64>,
}

thread_local! {
    static FREQUENCY_SCRATCH: RefCell<FrequencyScratch> = RefCell::new(FrequencyScratch::default());
}

/// LF, HF and LF/HF, as `nk.hrv_frequency(peaks, fs)` with its defaults; NaN where too few beats.
pub fn hrv_frequency(peaks: &[usize], fs: f64) -> HrvFrequency {
    FREQUENCY_SCRATCH.with_borrow_mut(|scratch| frequency_indices(peaks, fs, scratch, false))
}

/// [`hrv_frequency`] computed both ways, from the bins below HF's upper edge where those suffice and
/// from the full spectrum, and whether the first took the short way (the tests compare them).
#[cfg(test)]
pub(super) fn hrv_frequency_both_ways(
    peaks: &[usize],
    fs: f64,
) -> (HrvFrequency, HrvFrequency, bool) {
    let mut scratch = FrequencyScratch::default();
    let full = frequency_indices(peaks, fs, &mut scratch, true);
    let full_bins = scratch.power.len();
    let short = frequency_indices(peaks, fs, &mut scratch, false);
    (short, full, scratch.power.len() < full_bins)
}

/// [`hrv_frequency`] with its buffers; `full_spectrum` skips the shortcut of computing only the bins
/// the bands read.
fn frequency_indices(
    peaks: &[usize],
    fs: f64,
    scratch: &mut FrequencyScratch,
    full_spectrum: bool,
) -> HrvFrequency {
    let nan = HrvFrequency {
        lf: f64::NAN,
        hf: f64::NAN,
        lf_hf: f64::NAN,
    };
    if peaks.len() < 4 {
        return nan;
    }
    let FrequencyScratch {
        times,
        rri,
        series,
        power,
    } = scratch;
    rri.clear();
    rri.extend(peaks.windows(2).map(|w| (w[1] - w[0]) as f64 / fs * 1000.0));
    times.clear();
    let mut elapsed = 0.0;
    times.extend(rri.iter().map(|r| {
        elapsed += r / 1000.0;
        elapsed
    }));
    let start = times[0];
    let step = 1.0 / INTERPOLATION_HZ;
    let stop = times[times.len() - 1] + step;
    let count = ((stop - start) / step).ceil().max(0.0) as usize;
    quadratic_interpolate_grid(times, rri, start, step, count, series);
    let n = series.len();
    let mean = series.iter().sum::<f64>() / n as f64;
    series.iter_mut().for_each(|v| *v -= mean);
    let half = n as f64 / 2.0;
    let min_frequency = (2.0 * INTERPOLATION_HZ) / half;
    let mut nperseg = ((2.0 / min_frequency) * INTERPOLATION_HZ) as usize;
    if nperseg as f64 > half {
        nperseg = half as usize;
    }
    let nfft = 2 * nperseg;
    let spacing = frequency_spacing(INTERPOLATION_HZ, nfft);
    // The bands read only the bins below HF's upper edge (none above 0.5 Hz, see below), a few
    // dozen of thousands: where those also bound the PSD's maximum, `power` holds just them (the
    // bands stop at its end), else the full spectrum.
    let bins = (0..=nfft / 2)
        .take_while(|&k| k as f64 * spacing < HF.1 && k as f64 * spacing <= 0.5)
        .count();
    let low_max = if full_spectrum {
        None
    } else {
        welch_low_power(series, INTERPOLATION_HZ, nperseg, nfft, bins, power)
    };
    let max = low_max.unwrap_or_else(|| {
        welch_power(series, INTERPOLATION_HZ, nperseg, nfft, power);
        power.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    });
    if power.is_empty() || max <= 0.0 || !max.is_finite() {
        return nan;
    }
    // NeuroKit2 keeps the bins in [min_frequency, 0.5] Hz of the max-normalised PSD and integrates
    // each band [low, high) of those: a run of consecutive bins.
    let band = |(low, high): (f64, f64)| {
        let bins = (0..power.len())
            .map(|k| (k as f64 * spacing, power[k] / max))
            .skip_while(|&(f, _)| f < min_frequency || f < low)
            .take_while(|&(f, _)| f <= 0.5 && f < high);
        let mut previous: Option<(f64, f64)> = None;
        let mut total = 0.0;
        for (f, p) in bins {
            if let Some((f0, p0)) = previous {
                total += (f - f0) * (p0 + p) / 2.0;
            }
            previous = Some((f, p));
        }
        if total == 0.0 {
            f64::NAN
        } else {
            total
        }
    };
    let lf = band(LF);
    let hf = band(HF);
    HrvFrequency {
        lf,
        hf,
        lf_hf: lf / hf,
    }
}
