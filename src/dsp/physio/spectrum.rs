//! Interpolation and spectral estimation for HRV: SciPy's quadratic interpolating spline and
//! Welch's averaged periodogram, as NeuroKit2's `hrv_frequency` uses them.

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// Hann windows and FFT plans reused by [`welch`] on this thread (HRV windows repeat a few sizes).
struct WelchPlans {
    planner: FftPlanner<f64>,
    windows: HashMap<usize, Arc<[f64]>>,
    ffts: HashMap<usize, Arc<dyn Fft<f64>>>,
}

impl WelchPlans {
    /// The periodic Hann window of `nperseg` samples and the forward FFT of `nfft` points.
    fn get(&mut self, nperseg: usize, nfft: usize) -> (Arc<[f64]>, Arc<dyn Fft<f64>>) {
        let window = self.windows.entry(nperseg).or_insert_with(|| {
            (0..nperseg)
                .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / nperseg as f64).cos())
                .collect()
        });
        let window = Arc::clone(window);
        let planner = &mut self.planner;
        let fft = self
            .ffts
            .entry(nfft)
            .or_insert_with(|| planner.plan_fft_forward(nfft));
        (window, Arc::clone(fft))
    }
}

thread_local! {
    static WELCH_PLANS: RefCell<WelchPlans> = RefCell::new(WelchPlans {
        planner: FftPlanner::new(),
        windows: HashMap::new(),
        ffts: HashMap::new(),
    });
}

/// Quadratic spline through `(x, y)` evaluated at `x_new`, as
/// `scipy.interpolate.interp1d(x, y, kind="quadratic", bounds_error=False, fill_value=(y[0], y[-1]))`.
///
/// Knots follow `make_interp_spline(k=2)`: triple end knots and the midpoints between samples
/// (first and last omitted). Fewer than three points fall back to linear interpolation.
pub fn quadratic_interpolate(x: &[f64], y: &[f64], x_new: &[f64]) -> Vec<f64> {
    let n = x.len();
    if n == 0 {
        return vec![f64::NAN; x_new.len()];
    }
    let clamp = |v: f64, value: f64| {
        if v < x[0] {
            Some(y[0])
        } else if v > x[n - 1] {
            Some(y[n - 1])
        } else {
            Some(value)
        }
    };
    if n < 3 {
        return x_new
            .iter()
            .map(|&v| {
                let value = if n == 1 || x[1] == x[0] {
                    y[0]
                } else {
                    y[0] + (y[1] - y[0]) * (v - x[0]) / (x[1] - x[0])
                };
                clamp(v, value).unwrap_or(f64::NAN)
            })
            .collect();
    }
    let mut knots = vec![x[0]; 3];
    knots.extend((1..n - 2).map(|i| (x[i] + x[i + 1]) / 2.0));
    knots.extend([x[n - 1]; 3]);
    let mut matrix = vec![0.0; n * n];
    for (row, &xi) in x.iter().enumerate() {
        let (span, basis) = basis_functions(&knots, n, xi);
        for (j, b) in basis.iter().enumerate() {
            matrix[row * n + span - 2 + j] = *b;
        }
    }
    let coefficients = solve(matrix, y.to_vec(), n);
    let mut below = 0;
    x_new
        .iter()
        .map(|&v| {
            below = knots_at_or_below(&knots[3..=n], v, below);
            let (span, basis) = basis_at(&knots, n, v, below);
            let value: f64 = (0..3).map(|j| basis[j] * coefficients[span - 2 + j]).sum();
            clamp(v, value).unwrap_or(f64::NAN)
        })
        .collect()
}

/// The knot span holding `v` and the three quadratic B-spline basis values there (Cox-de Boor).
fn basis_functions(knots: &[f64], n: usize, v: f64) -> (usize, [f64; 3]) {
    basis_at(knots, n, v, knots[3..=n].partition_point(|&k| k <= v))
}

/// How many of the sorted `knots` are `<= v`, searching forward from the previous answer `hint`
/// (grids are ascending, so this is usually a step or two); any `v` gives the exact count.
fn knots_at_or_below(knots: &[f64], v: f64, hint: usize) -> usize {
    if hint > knots.len() || (hint > 0 && (v.is_nan() || knots[hint - 1] > v)) {
        return knots.partition_point(|&k| k <= v);
    }
    let mut count = hint;
    while count < knots.len() && knots[count] <= v {
        count += 1;
    }
    count
}

/// [`basis_functions`] with the count of interior knots `<= v` already known.
fn basis_at(knots: &[f64], n: usize, v: f64, below: usize) -> (usize, [f64; 3]) {
    let span = (2 + below).min(n - 1);
    let mut basis = [1.0, 0.0, 0.0];
    let mut left = [0.0; 3];
    let mut right = [0.0; 3];
    for j in 1..=2 {
        left[j] = v - knots[span + 1 - j];
        right[j] = knots[span + j] - v;
        let mut saved = 0.0;
        for r in 0..j {
            let temp = basis[r] / (right[r + 1] + left[j - r]);
            basis[r] = saved + right[r + 1] * temp;
            saved = left[j - r] * temp;
        }
        basis[j] = saved;
    }
    (span, basis)
}

/// Solves the dense system `matrix * c = rhs` by Gaussian elimination with partial pivoting.
fn solve(mut matrix: Vec<f64>, mut rhs: Vec<f64>, n: usize) -> Vec<f64> {
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&a, &b| {
                matrix[a * n + col]
                    .abs()
                    .total_cmp(&matrix[b * n + col].abs())
            })
            .unwrap_or(col);
        if pivot != col {
            for k in 0..n {
                matrix.swap(col * n + k, pivot * n + k);
            }
            rhs.swap(col, pivot);
        }
        let diag = matrix[col * n + col];
        for row in col + 1..n {
            let factor = matrix[row * n + col] / diag;
            if factor != 0.0 {
                for k in col..n {
                    matrix[row * n + k] -= factor * matrix[col * n + k];
                }
                rhs[row] -= factor * rhs[col];
            }
        }
    }
    let mut out = vec![0.0; n];
    for row in (0..n).rev() {
        let tail: f64 = (row + 1..n).map(|k| matrix[row * n + k] * out[k]).sum();
        out[row] = (rhs[row] - tail) / matrix[row * n + row];
    }
    out
}

/// One-sided power spectral density by Welch's method, as `scipy.signal.welch(x, fs, window="hann",
/// nperseg=nperseg, nfft=nfft, noverlap=nperseg // 2, detrend=False, scaling="density")`.
///
/// Returns `(frequencies, power)`; empty when `x` is shorter than one segment.
pub fn welch(x: &[f64], fs: f64, nperseg: usize, nfft: usize) -> (Vec<f64>, Vec<f64>) {
    if nperseg == 0 || x.len() < nperseg || nfft < nperseg {
        return (Vec::new(), Vec::new());
    }
    let noverlap = nperseg / 2;
    let step = nperseg - noverlap;
    let segments = (x.len() - noverlap) / step;
    let (window, fft) = WELCH_PLANS.with_borrow_mut(|plans| plans.get(nperseg, nfft));
    let scale = 1.0 / (fs * window.iter().map(|w| w * w).sum::<f64>());
    let bins = nfft / 2 + 1;
    let mut power = vec![0.0; bins];
    let mut buffer = vec![Complex::new(0.0, 0.0); nfft];
    let mut scratch = vec![Complex::new(0.0, 0.0); fft.get_inplace_scratch_len()];
    for s in 0..segments {
        let segment = &x[s * step..s * step + nperseg];
        for (slot, (v, w)) in buffer.iter_mut().zip(segment.iter().zip(window.iter())) {
            *slot = Complex::new(v * w, 0.0);
        }
        buffer[nperseg..].fill(Complex::new(0.0, 0.0));
        fft.process_with_scratch(&mut buffer, &mut scratch);
        for (k, p) in power.iter_mut().enumerate() {
            let doubled = k != 0 && !(nfft.is_multiple_of(2) && k == nfft / 2);
            *p += buffer[k].norm_sqr() * scale * if doubled { 2.0 } else { 1.0 };
        }
    }
    power.iter_mut().for_each(|p| *p /= segments as f64);
    // As numpy.fft.rfftfreq: k * (1 / (nfft * (1 / fs))), which rounds differently from k * fs / nfft.
    let spacing = 1.0 / (nfft as f64 * (1.0 / fs));
    let frequencies = (0..bins).map(|k| k as f64 * spacing).collect();
    (frequencies, power)
}

/// Trapezoidal integral of `power` over the frequencies in `[low, high)`, as `numpy.trapezoid`.
pub fn band_integral(frequencies: &[f64], power: &[f64], low: f64, high: f64) -> f64 {
    let points: Vec<(f64, f64)> = frequencies
        .iter()
        .zip(power)
        .filter(|(f, _)| **f >= low && **f < high)
        .map(|(f, p)| (*f, *p))
        .collect();
    points
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
        .sum()
}
