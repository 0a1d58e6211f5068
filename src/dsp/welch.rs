//! Welch band powers built from per-segment band sums, so that sliding windows which share
//! segments transform each segment once.
//!
//! `scipy.signal.welch(x, fs, window="hann", nperseg, noverlap, detrend, scaling="density")`
//! averages the one-sided density periodograms of the segments; a band's power is that average
//! summed over the bins with `low <= f < high`, times the bin width. Both steps are linear, so the
//! band power is also the average over segments of each segment's band sum, which is what
//! [`SegmentBands`] computes and what a window reuses for the segments it shares with the last.
//!
//! ```
//! use heloflow::dsp::welch::SegmentBands;
//! let fs = 100.0;
//! let mut bands = SegmentBands::new(fs, 100, &[(8.0, 13.0)], true);
//! let sine: Vec<f64> = (0..100).map(|i| (2.0 * std::f64::consts::PI * 10.0 * i as f64 / fs).sin()).collect();
//! let mut power = [0.0];
//! bands.segment(&sine, 1, 0, &mut power);
//! // A unit sine has power 1/2, all of it in the band (Hann leakage stays inside 8-13 Hz).
//! assert!((power[0] * bands.bin_width() - 0.5).abs() < 1e-12);
//! ```

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

/// Segment lengths a pipeline may ask for: two samples up to 2^24.
pub const NPERSEG_RANGE: std::ops::Range<i64> = 2..(1 << 24) + 1;

/// One bin that feeds a band: its index, its band, and the factor that turns `|X_k|^2` into
/// one-sided power spectral density.
#[derive(Clone, Copy, Debug)]
struct BandBin {
    bin: usize,
    band: usize,
    factor: f64,
}

/// The transform of one segment length: Hann window, density scale, FFT plan and the bins each
/// band sums.
pub struct SegmentBands {
    nperseg: usize,
    bin_width: f64,
    detrend: bool,
    window: Vec<f64>,
    bins: Vec<BandBin>,
    /// A complex FFT of `nperseg / 2` points for even lengths (the real FFT packed two samples
    /// per point), of `nperseg` points for odd ones.
    fft: Arc<dyn Fft<f64>>,
    /// `exp(-2 pi i k / nperseg)` for every bin a band reads (even lengths only).
    twiddles: Vec<Complex<f64>>,
    buffer: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
    bands: usize,
}

impl SegmentBands {
    /// Segments of `nperseg` samples at `fs` Hz summed into `bands` (`(low, high)` Hz, bins
    /// `low <= f < high`); `detrend` subtracts each segment's mean first (scipy's "constant").
    pub fn new(fs: f64, nperseg: usize, bands: &[(f64, f64)], detrend: bool) -> Self {
        let nperseg = nperseg.max(2);
        let window: Vec<f64> = (0..nperseg)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / nperseg as f64).cos())
            .collect();
        let scale = 1.0 / (fs * window.iter().map(|w| w * w).sum::<f64>());
        // As numpy.fft.rfftfreq: bin k lies at k / (n * (1 / fs)).
        let bin_width = 1.0 / (nperseg as f64 * (1.0 / fs));
        let even = nperseg.is_multiple_of(2);
        let last = nperseg / 2;
        let mut bins = Vec::new();
        for (band, &(low, high)) in bands.iter().enumerate() {
            for bin in 0..=last {
                let freq = bin as f64 * bin_width;
                if freq >= low && freq < high {
                    let one_sided = if bin == 0 || (even && bin == last) {
                        1.0
                    } else {
                        2.0
                    };
                    bins.push(BandBin {
                        bin,
                        band,
                        factor: one_sided * scale,
                    });
                }
            }
        }
        let points = if even { nperseg / 2 } else { nperseg };
        let fft = FftPlanner::new().plan_fft_forward(points);
        let twiddles = if even {
            bins.iter()
                .map(|b| {
                    let (sin, cos) =
                        (-2.0 * std::f64::consts::PI * b.bin as f64 / nperseg as f64).sin_cos();
                    Complex::new(cos, sin)
                })
                .collect()
        } else {
            Vec::new()
        };
        SegmentBands {
            nperseg,
            bin_width,
            detrend,
            window,
            bins,
            scratch: vec![Complex::new(0.0, 0.0); fft.get_inplace_scratch_len()],
            buffer: vec![Complex::new(0.0, 0.0); points],
            fft,
            twiddles,
            bands: bands.len(),
        }
    }

    /// Samples per segment.
    pub fn nperseg(&self) -> usize {
        self.nperseg
    }

    /// Distance between bins, Hz: a band's power is its sum of densities times this.
    pub fn bin_width(&self) -> f64 {
        self.bin_width
    }

    /// Writes into `out` (one value per band) the sum of the segment's power spectral density
    /// over each band's bins. The segment is channel `channel` of the first `nperseg` rows of the
    /// row-major `values` with `width` channels. A non-finite sample makes every sum NaN.
    pub fn segment(&mut self, values: &[f64], width: usize, channel: usize, out: &mut [f64]) {
        let n = self.nperseg;
        let sample = |i: usize| values[i * width + channel];
        out[..self.bands].fill(0.0);
        let mut sum = 0.0;
        for i in 0..n {
            sum += sample(i);
        }
        if !sum.is_finite() || (0..n).any(|i| !sample(i).is_finite()) {
            out[..self.bands].fill(f64::NAN);
            return;
        }
        let mean = if self.detrend { sum / n as f64 } else { 0.0 };
        let tapered = |i: usize| (sample(i) - mean) * self.window[i];
        if n.is_multiple_of(2) {
            for (m, slot) in self.buffer.iter_mut().enumerate() {
                *slot = Complex::new(tapered(2 * m), tapered(2 * m + 1));
            }
            self.fft
                .process_with_scratch(&mut self.buffer, &mut self.scratch);
            let half = n / 2;
            for (b, twiddle) in self.bins.iter().zip(&self.twiddles) {
                let z = self.buffer[b.bin % half];
                let mirror = self.buffer[(half - b.bin % half) % half].conj();
                let even = (z + mirror) * 0.5;
                let odd = (z - mirror) * Complex::new(0.0, -0.5);
                out[b.band] += (even + twiddle * odd).norm_sqr() * b.factor;
            }
        } else {
            for (i, slot) in self.buffer.iter_mut().enumerate() {
                *slot = Complex::new(tapered(i), 0.0);
            }
            self.fft
                .process_with_scratch(&mut self.buffer, &mut self.scratch);
            for b in &self.bins {
                out[b.band] += self.buffer[b.bin].norm_sqr() * b.factor;
            }
        }
    }
}

/// Segment starts of a Welch estimate over `len` samples, as scipy's (no padding): every
/// `nperseg - noverlap` samples while a whole segment fits.
pub fn segment_starts(len: usize, nperseg: usize, noverlap: usize) -> impl Iterator<Item = usize> {
    let step = nperseg.saturating_sub(noverlap).max(1);
    let count = if len < nperseg {
        0
    } else {
        (len - nperseg) / step + 1
    };
    (0..count).map(move |s| s * step)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `scipy.signal.welch(x, fs=50, nperseg=n, noverlap=o, detrend=d)` summed over bands
    /// [1, 4), [4, 9.5) and [9.5, 25) times df, with `t = i / 50` and
    /// `x = sin(2 pi 3 t) + 0.5 cos(2 pi 7.3 t + 1) + 0.01 i + 2` for `i < 173`: scipy 1.17.1,
    /// printed with repr (`detrend=False` for the last row, "constant" for the others).
    const SCIPY: [(usize, usize, bool, [f64; 3]); 3] = [
        (
            64,
            32,
            true,
            [
                0.4999978504065025,
                0.12512686624399402,
                4.272378961561466e-06,
            ],
        ),
        (
            49,
            20,
            true,
            [
                0.4345425626397279,
                0.1937792898056556,
                5.515340341789953e-06,
            ],
        ),
        (
            50,
            0,
            false,
            [
                2.9935334203003867,
                0.20753138990286826,
                2.263841237735348e-05,
            ],
        ),
    ];

    fn signal() -> Vec<f64> {
        (0..173)
            .map(|i| {
                let t = i as f64 / 50.0;
                (2.0 * std::f64::consts::PI * 3.0 * t).sin()
                    + 0.5 * (2.0 * std::f64::consts::PI * 7.3 * t + 1.0).cos()
                    + 0.01 * i as f64
                    + 2.0
            })
            .collect()
    }

    #[test]
    fn band_sums_equal_scipy_welch_for_even_and_odd_segments() {
        let x = signal();
        let bands = [(1.0, 4.0), (4.0, 9.5), (9.5, 25.0)];
        for (nperseg, noverlap, detrend, expected) in SCIPY {
            let mut plan = SegmentBands::new(50.0, nperseg, &bands, detrend);
            let starts: Vec<usize> = segment_starts(x.len(), nperseg, noverlap).collect();
            let mut total = [0.0; 3];
            let mut one = [0.0; 3];
            for &start in &starts {
                plan.segment(&x[start..], 1, 0, &mut one);
                total.iter_mut().zip(one).for_each(|(t, o)| *t += o);
            }
            for (band, (t, e)) in total.iter().zip(expected).enumerate() {
                let got = t / starts.len() as f64 * plan.bin_width();
                assert!(
                    (got - e).abs() < 1e-12 * e.abs().max(1.0),
                    "nperseg {nperseg} band {band}: {got} vs scipy {e}"
                );
            }
        }
    }

    #[test]
    fn a_non_finite_sample_makes_the_segment_nan() {
        let mut x = signal();
        x[10] = f64::NAN;
        let mut plan = SegmentBands::new(50.0, 64, &[(1.0, 4.0)], true);
        let mut out = [0.0];
        plan.segment(&x, 1, 0, &mut out);
        assert!(out[0].is_nan());
        plan.segment(&x[11..], 1, 0, &mut out);
        assert!(out[0].is_finite());
    }

    #[test]
    fn segment_starts_follow_scipy() {
        assert_eq!(segment_starts(7000, 700, 350).count(), 19);
        assert_eq!(segment_starts(699, 700, 350).count(), 0);
        let starts: Vec<usize> = segment_starts(173, 49, 20).collect();
        assert_eq!(starts, vec![0, 29, 58, 87, 116]);
    }
}
