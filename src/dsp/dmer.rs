//! The DMER dataset's feature definitions (the HeLo model's inputs), as plain functions over one window.
//!
//! They follow the dataset's published extraction code (github.com/ypthu/Multimodal-dataset-for-
//! mixed-emotion-recognition: `fea4eeg.py` for EEG, `perifeaext.py` for GSR and PPG), operation for
//! operation; `fixtures/features/dmer_reference.py` re-runs those definitions with numpy/scipy and
//! the tests compare against it. Where the published code is unusual it is followed, not fixed:
//! - EEG: the 1 s window is multiplied by a *symmetric* Hann window (`scipy.signal.hann(300)`), then
//!   `np.fft.fft(x, n=256)` **crops** it to its first 256 samples; band power is the mean of
//!   `|X[k]|^2` for `k` in `floor(lo/fs*256) ..= floor(hi/fs*256)` (both ends included);
//!   DE = `0.5 ln(power) + 0.5 ln(2 pi e / round(fs / 256))`.
//! - GSR/PPG spectrum statistics are taken on the complex FFT; the published code builds a complex
//!   feature row, and HeLo consumes it as real numbers, so the real part is kept: median, mean, min,
//!   max and range of `Re X[k]` (numpy orders complex numbers by real part first, so these equal the
//!   real parts of numpy's complex results) and `std` = `sqrt(mean |X[k] - mean X|^2)`.

use std::f64::consts::PI;
use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

/// The five EEG bands of DMER's `fea4eeg.py` (Hz): delta, theta, alpha, beta, gamma.
pub const EEG_BANDS: [(&str, f64, f64); 5] = [
    ("delta", 1.0, 4.0),
    ("theta", 4.0, 8.0),
    ("alpha", 8.0, 14.0),
    ("beta", 14.0, 31.0),
    ("gamma", 31.0, 49.0),
];

/// FFT length of DMER's EEG differential entropy (`stft_n = 256`).
pub const EEG_NFFT: usize = 256;

/// The seven statistics `statisfeatures` computes, in output order.
pub const STAT_NAMES: [&str; 7] = [
    "median", "mean", "std", "min", "max", "minratio", "maxratio",
];

/// The six spectrum statistics `freqfeatures` computes, in output order.
pub const SPECTRUM_NAMES: [&str; 6] = ["median", "mean", "std", "min", "max", "range"];

/// Median as `np.median`: the middle value, or the mean of the two middle values.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if !n.is_multiple_of(2) {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Population standard deviation (`np.std`, ddof = 0), two-pass like numpy.
fn std(values: &[f64]) -> f64 {
    let m = mean(values);
    (values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / values.len() as f64).sqrt()
}

/// DMER's `statisfeatures`: median, mean, std, min, max and the fractions of samples equal to min and max.
pub fn statistics(values: &[f64], out: &mut Vec<f64>) {
    if values.is_empty() {
        out.extend([f64::NAN; 7]);
        return;
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let n = values.len() as f64;
    out.extend([
        median(values),
        mean(values),
        std(values),
        min,
        max,
        values.iter().filter(|&&v| v == min).count() as f64 / n,
        values.iter().filter(|&&v| v == max).count() as f64 / n,
    ]);
}

/// First difference (`np.diff`).
pub fn diff(values: &[f64]) -> Vec<f64> {
    values.windows(2).map(|w| w[1] - w[0]).collect()
}

/// Reusable FFT plans and buffers, so per-window features allocate nothing after warm-up.
pub struct Spectra {
    planner: FftPlanner<f64>,
    plans: Vec<(usize, Arc<dyn Fft<f64>>)>,
    buffer: Vec<Complex<f64>>,
}

impl Default for Spectra {
    fn default() -> Self {
        Self::new()
    }
}

impl Spectra {
    /// An empty plan cache.
    pub fn new() -> Self {
        Spectra {
            planner: FftPlanner::new(),
            plans: Vec::new(),
            buffer: Vec::new(),
        }
    }

    fn plan(&mut self, n: usize) -> Arc<dyn Fft<f64>> {
        if let Some((_, plan)) = self.plans.iter().find(|(len, _)| *len == n) {
            return plan.clone();
        }
        let plan = self.planner.plan_fft_forward(n);
        self.plans.push((n, plan.clone()));
        plan
    }

    /// `np.fft.fft(values, n)`: crops or zero-pads to `n` points; the result is left in the buffer.
    fn fft(&mut self, values: impl Iterator<Item = f64>, n: usize) -> &[Complex<f64>] {
        let plan = self.plan(n);
        self.buffer.clear();
        self.buffer
            .extend(values.take(n).map(|v| Complex::new(v, 0.0)));
        self.buffer.resize(n, Complex::new(0.0, 0.0));
        plan.process(&mut self.buffer);
        &self.buffer
    }

    /// DMER's `freqfeatures` on the FFT of `values` (real parts, see the module notes).
    pub fn spectrum_statistics(&mut self, values: &[f64], out: &mut Vec<f64>) {
        if values.is_empty() {
            out.extend([f64::NAN; 6]);
            return;
        }
        let n = values.len();
        let spectrum = self.fft(values.iter().copied(), n);
        let sum = spectrum.iter().fold(Complex::new(0.0, 0.0), |a, b| a + b);
        let centre = sum / n as f64;
        let spread = (spectrum
            .iter()
            .map(|x| (x - centre).norm_sqr())
            .sum::<f64>()
            / n as f64)
            .sqrt();
        let real: Vec<f64> = spectrum.iter().map(|x| x.re).collect();
        let min = real.iter().copied().fold(f64::INFINITY, f64::min);
        let max = real.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        out.extend([median(&real), centre.re, spread, min, max, max - min]);
    }

    /// Mean of `scipy.signal.welch(values, fs)` with its defaults (periodic Hann, `nperseg =
    /// min(256, len)`, half overlap, constant detrend, density scaling, one-sided, mean of segments).
    pub fn welch_mean(&mut self, values: &[f64], fs: f64) -> f64 {
        let len = values.len();
        if len == 0 {
            return f64::NAN;
        }
        let nperseg = len.min(256);
        let step = nperseg - nperseg / 2;
        let window: Vec<f64> = (0..nperseg)
            .map(|i| 0.5 - 0.5 * (2.0 * PI * i as f64 / nperseg as f64).cos())
            .collect();
        let scale = 1.0 / (fs * window.iter().map(|w| w * w).sum::<f64>());
        let bins = nperseg / 2 + 1;
        let mut psd = vec![0.0; bins];
        let segments = (len - nperseg) / step + 1;
        for segment in 0..segments {
            let part = &values[segment * step..segment * step + nperseg];
            let centre = mean(part);
            let spectrum = self.fft(
                part.iter().zip(&window).map(|(v, w)| (v - centre) * w),
                nperseg,
            );
            for (k, slot) in psd.iter_mut().enumerate() {
                *slot += spectrum[k].norm_sqr() * scale;
            }
        }
        let last_doubled = if nperseg.is_multiple_of(2) {
            bins - 1
        } else {
            bins
        };
        for (k, slot) in psd.iter_mut().enumerate() {
            *slot /= segments as f64;
            if k > 0 && k < last_doubled {
                *slot *= 2.0;
            }
        }
        mean(&psd)
    }

    /// DMER's EEG differential entropy of one channel's window in each of `bands`, appended to `out`.
    pub fn differential_entropy(
        &mut self,
        values: &[f64],
        fs: f64,
        nfft: usize,
        bands: &[(f64, f64)],
        out: &mut Vec<f64>,
    ) {
        let m = values.len();
        let denominator = (m.max(2) - 1) as f64;
        let hann = (0..m).map(|i| 0.5 - 0.5 * (2.0 * PI * i as f64 / denominator).cos());
        let tapered = values.iter().zip(hann).map(|(v, w)| v * w);
        let spectrum = self.fft(tapered, nfft);
        let half = nfft / 2;
        let offset = 0.5 * (2.0 * PI * std::f64::consts::E / (fs / nfft as f64).round()).ln();
        for &(low, high) in bands {
            let start = (low / fs * nfft as f64).floor() as usize;
            let end = ((high / fs * nfft as f64).floor() as usize).min(half - 1);
            if start > end {
                out.push(f64::NAN);
                continue;
            }
            let bins = &spectrum[start..=end];
            let power = bins.iter().map(|x| x.norm_sqr()).sum::<f64>() / bins.len() as f64;
            out.push(0.5 * power.ln() + offset);
        }
    }
}

/// DMER's GSR/PPG row for one window: statistics of the signal, its first and second differences,
/// then the spectrum statistics, then (when `welch_fs` is given) the mean Welch PSD.
pub fn peripheral_features(
    spectra: &mut Spectra,
    window: &[f64],
    welch_fs: Option<f64>,
    out: &mut Vec<f64>,
) {
    let first = diff(window);
    let second = diff(&first);
    statistics(window, out);
    statistics(&first, out);
    statistics(&second, out);
    spectra.spectrum_statistics(window, out);
    if let Some(fs) = welch_fs {
        out.push(spectra.welch_mean(window, fs));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_matches_numpy_for_odd_and_even_lengths() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn statistics_count_ties_at_the_extremes() {
        let mut out = Vec::new();
        statistics(&[1.0, 1.0, 2.0, 5.0], &mut out);
        let expected = [1.5, 2.25, 2.6875f64.sqrt(), 1.0, 5.0, 0.5, 0.25];
        assert!(
            out.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-15),
            "{out:?}"
        );
    }

    #[test]
    fn spectrum_mean_is_the_first_sample() {
        // sum_k X[k] = n x[0], so the mean of the spectrum is x[0].
        let mut spectra = Spectra::new();
        let mut out = Vec::new();
        spectra.spectrum_statistics(&[2.0, -1.0, 0.5, 4.0, 3.0], &mut out);
        assert!((out[1] - 2.0).abs() < 1e-12, "{out:?}");
    }
}
