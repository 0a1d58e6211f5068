//! Interpolation and spectral estimation for HRV: SciPy's quadratic interpolating spline and
//! Welch's averaged periodogram, as NeuroKit2's `hrv_frequency` uses them.

use crate::dsp::cpu::avx2_fma;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// Hann windows, FFT plans, real-FFT twiddles and buffers reused by [`welch`] on this thread (HRV
/// windows repeat a few sizes).
struct WelchPlans {
    planner: FftPlanner<f64>,
    windows: HashMap<usize, Arc<[f64]>>,
    ffts: HashMap<usize, Arc<dyn Fft<f64>>>,
    twiddles: HashMap<usize, Arc<[Complex<f64>]>>,
    buffer: Vec<Complex<f64>>,
    scratch: Vec<Complex<f64>>,
}

impl WelchPlans {
    /// The reused transform buffer, sized to `len` points, and the scratch space `fft` needs.
    fn buffers(
        &mut self,
        len: usize,
        fft: &dyn Fft<f64>,
    ) -> (&mut Vec<Complex<f64>>, &mut Vec<Complex<f64>>) {
        self.buffer.resize(len, Complex::new(0.0, 0.0));
        self.scratch
            .resize(fft.get_inplace_scratch_len(), Complex::new(0.0, 0.0));
        (&mut self.buffer, &mut self.scratch)
    }

    /// The periodic Hann window of `nperseg` samples.
    fn window(&mut self, nperseg: usize) -> Arc<[f64]> {
        let window = self.windows.entry(nperseg).or_insert_with(|| {
            (0..nperseg)
                .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / nperseg as f64).cos())
                .collect()
        });
        Arc::clone(window)
    }

    /// The forward complex FFT of `len` points.
    fn fft(&mut self, len: usize) -> Arc<dyn Fft<f64>> {
        let planner = &mut self.planner;
        Arc::clone(
            self.ffts
                .entry(len)
                .or_insert_with(|| planner.plan_fft_forward(len)),
        )
    }

    /// `exp(-2 pi i k / nfft)` for `k` in `0..=nfft / 4`: the twiddles that split a half-length
    /// complex FFT into the real FFT of `nfft` points (the other half follow by symmetry).
    fn twiddles(&mut self, nfft: usize) -> Arc<[Complex<f64>]> {
        let twiddles = self.twiddles.entry(nfft).or_insert_with(|| {
            (0..=nfft / 4)
                .map(|k| {
                    let (sin, cos) =
                        (-2.0 * std::f64::consts::PI * k as f64 / nfft as f64).sin_cos();
                    Complex::new(cos, sin)
                })
                .collect()
        });
        Arc::clone(twiddles)
    }
}

thread_local! {
    static WELCH_PLANS: RefCell<WelchPlans> = RefCell::new(WelchPlans {
        planner: FftPlanner::new(),
        windows: HashMap::new(),
        ffts: HashMap::new(),
        twiddles: HashMap::new(),
        buffer: Vec::new(),
        scratch: Vec::new(),
    });
}

/// Quadratic spline through `(x, y)` evaluated at `x_new`, as
/// `scipy.interpolate.interp1d(x, y, kind="quadratic", bounds_error=False, fill_value=(y[0], y[-1]))`.
///
/// Knots follow `make_interp_spline(k=2)`: triple end knots and the midpoints between samples
/// (first and last omitted). Fewer than three points fall back to linear interpolation.
pub fn quadratic_interpolate(x: &[f64], y: &[f64], x_new: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(x_new.len());
    interpolate_at(x, y, x_new.len(), |i| x_new[i], &mut out);
    out
}

/// [`quadratic_interpolate`] at the grid `start + i * step` for `i < count`, written into `out`
/// (cleared first): HRV resamples on such a grid, and this spares building it and reallocating.
pub fn quadratic_interpolate_grid(
    x: &[f64],
    y: &[f64],
    start: f64,
    step: f64,
    count: usize,
    out: &mut Vec<f64>,
) {
    // `i as i64 as f64` is `i as f64` (indices of `out` fit in `i64`) in one instruction.
    interpolate_at(x, y, count, |i| start + i as i64 as f64 * step, out);
}

/// Knots, banded collocation system and per-span polynomials reused by the spline on this thread.
#[derive(Default)]
struct SplineScratch {
    knots: Vec<f64>,
    band: Vec<f64>,
    coefficients: Vec<f64>,
    spans: Vec<[f64; 4]>,
}

thread_local! {
    static SPLINE_SCRATCH: RefCell<SplineScratch> = RefCell::new(SplineScratch::default());
}

/// The spline of [`quadratic_interpolate`] evaluated at `point(i)` for `i < count`, into `out`.
fn interpolate_at(
    x: &[f64],
    y: &[f64],
    count: usize,
    point: impl Fn(usize) -> f64,
    out: &mut Vec<f64>,
) {
    out.clear();
    let n = x.len();
    if n == 0 {
        out.resize(count, f64::NAN);
        return;
    }
    let (first, last) = (x[0], x[n - 1]);
    if n < 3 {
        out.extend((0..count).map(|i| {
            let v = point(i);
            if v < first {
                y[0]
            } else if v > last {
                y[n - 1]
            } else if n == 1 || x[1] == x[0] {
                y[0]
            } else {
                y[0] + (y[1] - y[0]) * (v - x[0]) / (x[1] - x[0])
            }
        }));
        return;
    }
    SPLINE_SCRATCH.with_borrow_mut(|scratch| {
        let SplineScratch {
            knots,
            band,
            coefficients,
            spans,
        } = scratch;
        knots.clear();
        knots.extend([x[0]; 3]);
        knots.extend((1..n - 2).map(|i| (x[i] + x[i + 1]) / 2.0));
        knots.extend([x[n - 1]; 3]);
        collocation_solve(knots, x, y, band, coefficients);
        span_polynomials(knots, coefficients, spans);
        let interior = &knots[3..=n];
        out.resize(count, 0.0);
        let mut below = 0;
        let mut i = 0;
        while i < out.len() {
            let v = point(i);
            if v < first || v > last {
                out[i] = if v < first { y[0] } else { y[n - 1] };
                i += 1;
                continue;
            }
            below = knots_at_or_below(interior, v, below);
            let [left, p0, p1, p2] = spans[below.min(n - 3)];
            // This point and those that follow in the same knot interval (all of them, on an
            // ascending grid) take the same polynomial without searching again.
            let lower = if below == 0 {
                first
            } else {
                interior[below - 1]
            };
            let upper = interior.get(below).copied().unwrap_or(f64::INFINITY);
            out[i] = p0 + (v - left) * (p1 + (v - left) * p2);
            i += 1;
            for slot in &mut out[i..] {
                let v = point(i);
                if !(lower <= v && v < upper && v <= last) {
                    break;
                }
                *slot = p0 + (v - left) * (p1 + (v - left) * p2);
                i += 1;
            }
        }
    });
}

/// Spline coefficients interpolating `y` at `x` on `knots`: the collocation system is banded
/// (three basis functions per row; sorted `x` gives one sub- and one superdiagonal), so it is solved
/// as a band, with the pivots and values of dense elimination.
fn collocation_solve(
    knots: &[f64],
    x: &[f64],
    y: &[f64],
    band: &mut Vec<f64>,
    coefficients: &mut Vec<f64>,
) {
    let n = x.len();
    let interior = &knots[3..=n];
    // Knot counts found forward from the previous sample's (sorted `x` moves a step at a time).
    let spans = || {
        let mut below = 0;
        x.iter().map(move |&xi| {
            below = knots_at_or_below(interior, xi, below);
            (below, (2 + below).min(n - 1))
        })
    };
    let (mut kl, mut ku) = (0, 0);
    for (row, (_, span)) in spans().enumerate() {
        kl = kl.max(row.saturating_sub(span - 2));
        ku = ku.max(span.saturating_sub(row));
    }
    coefficients.clear();
    coefficients.extend_from_slice(y);
    let width = 2 * kl + ku + 1;
    band.clear();
    band.resize(n * width, 0.0);
    for (row, (below, span)) in spans().enumerate() {
        let (_, basis) = basis_at(knots, n, x[row], below);
        let at = row * width + span - 2 + kl - row;
        band[at..at + 3].copy_from_slice(&basis);
    }
    solve_banded(band, coefficients, n, kl, ku);
}

/// Per knot span `s` (2..n): its left knot and the spline there as `p0 + p1 u + p2 u^2`,
/// `u = v - knots[s]` (de Boor's recurrence expanded once per span instead of per point).
fn span_polynomials(knots: &[f64], c: &[f64], spans: &mut Vec<[f64; 4]>) {
    let n = c.len();
    spans.clear();
    spans.extend((2..n).map(|s| {
        let t = |i: usize| knots[i];
        let h = t(s + 1) - t(s);
        let a1 = (c[s - 1] - c[s - 2]) / (t(s + 1) - t(s - 1));
        let a0 = c[s - 2] + (t(s) - t(s - 1)) * a1;
        let b1 = (c[s] - c[s - 1]) / (t(s + 2) - t(s));
        let b0 = c[s - 1];
        [t(s), a0, a1 + (b0 - a0) / h, (b1 - a1) / h]
    }));
}

/// The knot span holding `v` and the three quadratic B-spline basis values there (Cox-de Boor);
/// the tests' reference for the banded build and the per-span polynomials.
#[cfg(test)]
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

/// Solves the dense system `matrix * c = rhs` by Gaussian elimination with partial pivoting (the
/// reference that [`solve_banded`] reproduces).
#[cfg(test)]
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

/// Solves `band * c = rhs` in place (`rhs` becomes `c`) for a matrix with `kl` sub- and `ku`
/// superdiagonals, stored row by row from column `row - kl`, `2 kl + ku + 1` wide (room for the
/// fill of row swaps). Same pivots and arithmetic as dense Gaussian elimination with partial
/// pivoting, skipping only the zeros outside the band (so the same values, O(n) instead of O(n^3)).
fn solve_banded(band: &mut [f64], rhs: &mut [f64], n: usize, kl: usize, ku: usize) {
    let width = 2 * kl + ku + 1;
    let at = |row: usize, col: usize| row * width + col + kl - row;
    for col in 0..n {
        let last = (col + kl).min(n - 1);
        let reach = (col + kl + ku).min(n - 1);
        // As `Iterator::max_by`: the last of equal maxima.
        let mut pivot = col;
        let mut largest = band[at(col, col)].abs();
        for row in col + 1..=last {
            let value = band[at(row, col)].abs();
            if value.total_cmp(&largest).is_ge() {
                pivot = row;
                largest = value;
            }
        }
        if pivot != col {
            for k in col..=reach {
                band.swap(at(col, k), at(pivot, k));
            }
            rhs.swap(col, pivot);
        }
        let diag = band[at(col, col)];
        for row in col + 1..=last {
            let factor = band[at(row, col)] / diag;
            if factor != 0.0 {
                for k in col..=reach {
                    band[at(row, k)] -= factor * band[at(col, k)];
                }
                rhs[row] -= factor * rhs[col];
            }
        }
    }
    for row in (0..n).rev() {
        let reach = (row + kl + ku).min(n - 1);
        let tail: f64 = (row + 1..=reach).map(|k| band[at(row, k)] * rhs[k]).sum();
        rhs[row] = (rhs[row] - tail) / band[at(row, row)];
    }
}

/// One-sided power spectral density by Welch's method, as `scipy.signal.welch(x, fs, window="hann",
/// nperseg=nperseg, nfft=nfft, noverlap=nperseg // 2, detrend=False, scaling="density")`.
///
/// Returns `(frequencies, power)`; empty when `x` is shorter than one segment.
pub fn welch(x: &[f64], fs: f64, nperseg: usize, nfft: usize) -> (Vec<f64>, Vec<f64>) {
    let mut power = Vec::new();
    welch_power(x, fs, nperseg, nfft, &mut power);
    let frequencies = (0..power.len())
        .map(|k| k as f64 * frequency_spacing(fs, nfft))
        .collect();
    (frequencies, power)
}

/// Spacing of [`welch`]'s frequencies, as `numpy.fft.rfftfreq`: bin `k` is at `k * spacing`
/// (`1 / (nfft * (1 / fs))` rounds differently from `fs / nfft`).
pub fn frequency_spacing(fs: f64, nfft: usize) -> f64 {
    1.0 / (nfft as f64 * (1.0 / fs))
}

/// The power of [`welch`] alone, written into `power` (cleared first; left empty when `x` is
/// shorter than one segment), so that repeated calls reuse one buffer.
///
/// Even `nfft` (HRV's case) takes each segment's real FFT from one complex FFT of `nfft / 2`
/// points, about half the work of a full complex FFT.
pub fn welch_power(x: &[f64], fs: f64, nperseg: usize, nfft: usize, power: &mut Vec<f64>) {
    power.clear();
    if nperseg == 0 || x.len() < nperseg || nfft < nperseg {
        return;
    }
    WELCH_PLANS.with_borrow_mut(|plans| {
        if nfft.is_multiple_of(2) {
            welch_real(plans, x, fs, nperseg, nfft, power);
        } else {
            welch_complex(plans, x, fs, nperseg, nfft, power);
        }
    });
}

/// Segment start step and segment count of [`welch`] (`noverlap = nperseg / 2`).
fn segments(len: usize, nperseg: usize) -> (usize, usize) {
    let noverlap = nperseg / 2;
    let step = nperseg - noverlap;
    (step, (len - noverlap) / step)
}

/// Density scaling of one segment's `|X_k|^2` for the Hann `window`.
fn density_scale(fs: f64, window: &[f64]) -> f64 {
    1.0 / (fs * window.iter().map(|w| w * w).sum::<f64>())
}

/// [`welch_power`] through a complex FFT of `nfft` points per segment (any `nfft`).
fn welch_complex(
    plans: &mut WelchPlans,
    x: &[f64],
    fs: f64,
    nperseg: usize,
    nfft: usize,
    power: &mut Vec<f64>,
) {
    let (step, segments) = segments(x.len(), nperseg);
    let (window, fft) = (plans.window(nperseg), plans.fft(nfft));
    let scale = density_scale(fs, &window);
    let bins = nfft / 2 + 1;
    power.resize(bins, 0.0);
    let (buffer, scratch) = plans.buffers(nfft, fft.as_ref());
    for s in 0..segments {
        let segment = &x[s * step..s * step + nperseg];
        for (slot, (v, w)) in buffer.iter_mut().zip(segment.iter().zip(window.iter())) {
            *slot = Complex::new(v * w, 0.0);
        }
        buffer[nperseg..].fill(Complex::new(0.0, 0.0));
        fft.process_with_scratch(buffer, scratch);
        for (k, p) in power.iter_mut().enumerate() {
            let doubled = k != 0 && !(nfft.is_multiple_of(2) && k == nfft / 2);
            *p += buffer[k].norm_sqr() * scale * if doubled { 2.0 } else { 1.0 };
        }
    }
    power.iter_mut().for_each(|p| *p /= segments as f64);
}

/// [`welch_power`] for even `nfft`: the windowed segment `v` (zero-padded to `nfft`) is packed as
/// `z[m] = v[2m] + i v[2m + 1]`, `Z = FFT_{nfft/2}(z)`, and then
/// `X[k] = (Z[k] + conj Z[-k]) / 2 - i exp(-2 pi i k / nfft) (Z[k] - conj Z[-k]) / 2`
/// (`X[0]` and `X[nfft / 2]` are `Re Z[0] +- Im Z[0]`).
fn welch_real(
    plans: &mut WelchPlans,
    x: &[f64],
    fs: f64,
    nperseg: usize,
    nfft: usize,
    power: &mut Vec<f64>,
) {
    let (step, segments) = segments(x.len(), nperseg);
    let half = nfft / 2;
    let (window, fft, twiddles) = (plans.window(nperseg), plans.fft(half), plans.twiddles(nfft));
    let scale = density_scale(fs, &window);
    power.resize(half + 1, 0.0);
    let (buffer, scratch) = plans.buffers(half, fft.as_ref());
    let pairs = nperseg / 2;
    for s in 0..segments {
        let segment = &x[s * step..s * step + nperseg];
        for (slot, (v, w)) in buffer
            .iter_mut()
            .zip(segment.chunks_exact(2).zip(window.chunks_exact(2)))
        {
            *slot = Complex::new(v[0] * w[0], v[1] * w[1]);
        }
        buffer[pairs..].fill(Complex::new(0.0, 0.0));
        if nperseg % 2 == 1 {
            buffer[pairs] = Complex::new(segment[nperseg - 1] * window[nperseg - 1], 0.0);
        }
        fft.process_with_scratch(buffer, scratch);
        let z0 = buffer[0];
        power[0] += (z0.re + z0.im) * (z0.re + z0.im) * scale;
        power[half] += (z0.re - z0.im) * (z0.re - z0.im) * scale;
        // Bins k and half - k share Z[k] and Z[half - k]; W[half - k] = -conj(W[k]).
        for k in 1..=half / 2 {
            let a = buffer[k];
            let b = buffer[half - k].conj();
            let even = (a + b) * 0.5;
            let rotated = twiddles[k] * ((a - b) * 0.5);
            let low = (even.re + rotated.im).powi(2) + (even.im - rotated.re).powi(2);
            power[k] += low * scale * 2.0;
            if half - k != k {
                let high = (even.re - rotated.im).powi(2) + (even.im + rotated.re).powi(2);
                power[half - k] += high * scale * 2.0;
            }
        }
    }
    power.iter_mut().for_each(|p| *p /= segments as f64);
}

/// Bins `0..bins` of [`welch_power`] alone (into `power`, cleared first), and the maximum of the
/// whole spectrum where Parseval's theorem shows that no other bin can exceed the largest of these.
///
/// HRV reads only the few dozen bins below 0.4 Hz and the maximum, and its FFT sizes have large
/// prime factors, so a direct DFT of each segment at those bins costs a fraction of the FFTs.
/// `None` (and `power` of no use) where the other bins could hold the maximum, or where the direct
/// form does not apply (odd `nfft`, `x` shorter than a segment, bins above `nfft / 16`: its rounding
/// grows with the frequency, to 2e-14 of the maximum there and 1e-13 towards `nfft / 4`, and the
/// FFTs cost less anyway): [`welch_power`] answers those.
pub fn welch_low_power(
    x: &[f64],
    fs: f64,
    nperseg: usize,
    nfft: usize,
    bins: usize,
    power: &mut Vec<f64>,
) -> Option<f64> {
    low_power(x, fs, nperseg, nfft, bins, power, avx2_fma())
}

/// [`welch_low_power`], with the AVX2 and FMA recurrence where `avx2` (the CPU must have both).
fn low_power(
    x: &[f64],
    fs: f64,
    nperseg: usize,
    nfft: usize,
    bins: usize,
    power: &mut Vec<f64>,
    avx2: bool,
) -> Option<f64> {
    power.clear();
    if nperseg == 0
        || x.len() < nperseg
        || nfft < nperseg
        || !nfft.is_multiple_of(2)
        || bins == 0
        || 16 * (bins - 1) > nfft
    {
        return None;
    }
    let window = WELCH_PLANS.with_borrow_mut(|plans| plans.window(nperseg));
    let scale = density_scale(fs, &window);
    let (step, segments) = segments(x.len(), nperseg);
    power.resize(bins, 0.0);
    for (pass, out) in power.chunks_mut(MAX_LANES).enumerate() {
        let pass = LowBins {
            x,
            window: &window,
            step,
            segments,
            first: pass * MAX_LANES,
            nfft,
            scale,
        };
        match out.len().div_ceil(4) {
            1 | 2 => pass.accumulate::<2>(out, avx2),
            3 | 4 => pass.accumulate::<4>(out, avx2),
            _ => pass.accumulate::<7>(out, avx2),
        }
    }
    power.iter_mut().for_each(|p| *p /= segments as f64);
    // Each segment's one-sided bins (weight 1 at 0 and nfft / 2, 2 elsewhere) cover the full circle
    // of `|X_k|^2` once, whose sum is `nfft * sum(xw^2)`: the bins not computed hold the total less
    // the computed ones, and none of them exceeds that.
    let energy: f64 = (0..segments)
        .map(|s| sum_squares(&x[s * step..s * step + nperseg], &window))
        .sum();
    let total = energy * scale * nfft as f64 / segments as f64;
    let computed: f64 = power.iter().sum();
    let max = power.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // The margin covers the rounding of both sums (about 1e-13 of the total) many times over.
    (total - computed + 1e-9 * total < max).then_some(max)
}

/// Most bins one pass of [`welch_low_power`]'s recurrence carries: seven four-lane vectors of two
/// states each, which stay in AVX2's sixteen registers with the input (eight spill, and run at half
/// the speed; fewer take as long, as the recurrence's latency bounds it).
const MAX_LANES: usize = 28;

/// `sum((x * w)^2)` over a segment, in eight partial sums (one dependent chain would be
/// latency-bound).
fn sum_squares(segment: &[f64], window: &[f64]) -> f64 {
    let mut partial = [0.0; 8];
    let (x, w) = (segment.chunks_exact(8), window.chunks_exact(8));
    let tail: f64 = x
        .remainder()
        .iter()
        .zip(w.remainder())
        .map(|(v, w)| (v * w) * (v * w))
        .sum();
    for (x, w) in x.zip(w) {
        for ((p, v), w) in partial.iter_mut().zip(x).zip(w) {
            *p += (v * w) * (v * w);
        }
    }
    partial.iter().sum::<f64>() + tail
}

/// Per lane, the last states of Reinsch's recurrence over a segment: `d_{N-1}` and `s_{N-2}`.
type States<const V: usize> = ([[f64; 4]; V], [[f64; 4]; V]);

/// One pass of [`welch_low_power`]: bins `first..first + out.len()` over every segment.
///
/// Each bin runs Reinsch's form of Goertzel's recurrence on the windowed segment `xw`:
/// `d_n = d_{n-1} + xw_n + lambda s_{n-1}`, `s_n = s_{n-1} + d_n`, `lambda = -4 sin^2(theta / 2)`,
/// whose rounding grows like `N`, not like `N^2` as Goertzel's does near frequency 0; then, up to a
/// phase, `X = d_{N-1} - lambda / 2 s_{N-2} + i sin(theta) s_{N-2}`.
struct LowBins<'a> {
    x: &'a [f64],
    window: &'a [f64],
    step: usize,
    segments: usize,
    first: usize,
    nfft: usize,
    scale: f64,
}

impl LowBins<'_> {
    /// Adds each segment's scaled, one-sided `|X_k|^2` to `out` (at most `4 V` bins; lanes past
    /// `out` repeat bin 0 and are dropped); with AVX2 and FMA where `avx2`.
    fn accumulate<const V: usize>(&self, out: &mut [f64], avx2: bool) {
        let count = out.len();
        let bin = |j: usize| if j < count { self.first + j } else { 0 };
        let half_angle = |j: usize| std::f64::consts::PI * bin(j) as f64 / self.nfft as f64;
        let lambda: [[f64; 4]; V] = std::array::from_fn(|v| {
            std::array::from_fn(|i| -4.0 * half_angle(4 * v + i).sin().powi(2))
        });
        let sine: [f64; MAX_LANES] = std::array::from_fn(|j| (2.0 * half_angle(j)).sin());
        let nperseg = self.window.len();
        for s in 0..self.segments {
            let segment = &self.x[s * self.step..s * self.step + nperseg];
            let (d, sum) = recurrence::<V>(segment, self.window, &lambda, avx2);
            for (j, p) in out.iter_mut().enumerate() {
                let (v, i) = (j / 4, j % 4);
                let re = d[v][i] - 0.5 * lambda[v][i] * sum[v][i];
                let im = sine[j] * sum[v][i];
                let k = self.first + j;
                let doubled = k != 0 && k != self.nfft / 2;
                *p += (re * re + im * im) * self.scale * if doubled { 2.0 } else { 1.0 };
            }
        }
    }
}

/// Reinsch's recurrence of [`LowBins`] over `segment * window` for `4 V` lanes; the AVX2 and FMA
/// kernel where `avx2`.
fn recurrence<const V: usize>(
    segment: &[f64],
    window: &[f64],
    lambda: &[[f64; 4]; V],
    avx2: bool,
) -> States<V> {
    #[cfg(target_arch = "x86_64")]
    if avx2 {
        // SAFETY: `avx2` is only set where the CPU has AVX2 and FMA (`avx2_fma`).
        return unsafe { avx2::recurrence(segment, window, lambda) };
    }
    let _ = avx2;
    let mut d = [[0.0; 4]; V];
    let mut s = [[0.0; 4]; V];
    let n = segment.len();
    let step = |xw: f64, d: &mut [[f64; 4]; V], s: &mut [[f64; 4]; V], last: bool| {
        for ((d, s), lambda) in d.iter_mut().zip(s.iter_mut()).zip(lambda) {
            for i in 0..4 {
                d[i] = lambda[i] * s[i] + (d[i] + xw);
                if !last {
                    s[i] += d[i];
                }
            }
        }
    };
    for (v, w) in segment[..n - 1].iter().zip(&window[..n - 1]) {
        step(v * w, &mut d, &mut s, false);
    }
    step(segment[n - 1] * window[n - 1], &mut d, &mut s, true);
    (d, s)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! Reinsch's recurrence with AVX2 and FMA intrinsics, four bins per vector.

    use super::States;
    use std::arch::x86_64::*;

    /// [`super::recurrence`] on a CPU with AVX2 and FMA: `d = fma(lambda, s, d + xw)`, `s += d`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn recurrence<const V: usize>(
        segment: &[f64],
        window: &[f64],
        lambda: &[[f64; 4]; V],
    ) -> States<V> {
        // SAFETY: each `lambda[v]` is four readable f64; the load has no alignment requirement.
        let lambda: [__m256d; V] =
            std::array::from_fn(|v| unsafe { _mm256_loadu_pd(lambda[v].as_ptr()) });
        let mut d = [_mm256_setzero_pd(); V];
        let mut s = [_mm256_setzero_pd(); V];
        let n = segment.len();
        for (x, w) in segment[..n - 1].iter().zip(&window[..n - 1]) {
            let xw = _mm256_set1_pd(x * w);
            for v in 0..V {
                d[v] = _mm256_fmadd_pd(lambda[v], s[v], _mm256_add_pd(d[v], xw));
                s[v] = _mm256_add_pd(s[v], d[v]);
            }
        }
        let xw = _mm256_set1_pd(segment[n - 1] * window[n - 1]);
        let mut states = ([[0.0; 4]; V], [[0.0; 4]; V]);
        for v in 0..V {
            let last = _mm256_fmadd_pd(lambda[v], s[v], _mm256_add_pd(d[v], xw));
            // SAFETY: each destination is four writable f64; the store has no alignment requirement.
            unsafe {
                _mm256_storeu_pd(states.0[v].as_mut_ptr(), last);
                _mm256_storeu_pd(states.1[v].as_mut_ptr(), s[v]);
            }
        }
        states
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Ascending sample times with irregular steps (some tiny, so that rows swap) and values.
    fn random_points(rng: &mut ChaCha8Rng, n: usize) -> (Vec<f64>, Vec<f64>) {
        let mut t = rng.random_range(-5.0..5.0);
        let x = (0..n)
            .map(|_| {
                t += if rng.random_bool(0.2) {
                    rng.random_range(0.001..0.05)
                } else {
                    rng.random_range(0.3..2.0)
                };
                t
            })
            .collect();
        let y = (0..n).map(|_| rng.random_range(-1000.0..1000.0)).collect();
        (x, y)
    }

    fn knots_of(x: &[f64]) -> Vec<f64> {
        let n = x.len();
        let mut knots = vec![x[0]; 3];
        knots.extend((1..n - 2).map(|i| (x[i] + x[i + 1]) / 2.0));
        knots.extend([x[n - 1]; 3]);
        knots
    }

    #[test]
    fn banded_solve_equals_dense_solve() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for n in [3, 4, 5, 8, 30, 70, 71, 150] {
            for _ in 0..20 {
                let (x, y) = random_points(&mut rng, n);
                let knots = knots_of(&x);
                let mut matrix = vec![0.0; n * n];
                for (row, &xi) in x.iter().enumerate() {
                    let (span, basis) = basis_functions(&knots, n, xi);
                    matrix[row * n + span - 2..=row * n + span].copy_from_slice(&basis);
                }
                let dense = solve(matrix, y.clone(), n);
                let (mut band, mut banded) = (Vec::new(), Vec::new());
                collocation_solve(&knots, &x, &y, &mut band, &mut banded);
                assert_eq!(banded, dense, "n = {n}");
            }
        }
    }

    #[test]
    fn banded_solve_pivots_as_dense_on_any_band() {
        // A random dense-ish system solved as a band as wide as the matrix, and a tridiagonal one
        // whose subdiagonal dominates (every column swaps rows).
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let n = 9;
        let matrix: Vec<f64> = (0..n * n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let rhs: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let (kl, ku) = (n - 1, n - 1);
        let width = 2 * kl + ku + 1;
        let mut band = vec![0.0; n * width];
        for row in 0..n {
            for col in 0..n {
                band[row * width + col + kl - row] = matrix[row * n + col];
            }
        }
        let mut banded = rhs.clone();
        solve_banded(&mut band, &mut banded, n, kl, ku);
        assert_eq!(banded, solve(matrix, rhs.clone(), n));

        let mut matrix = vec![0.0; n * n];
        for row in 0..n {
            matrix[row * n + row] = 0.1 + row as f64 * 0.01;
            if row > 0 {
                matrix[row * n + row - 1] = 2.0 + row as f64;
            }
            if row + 1 < n {
                matrix[row * n + row + 1] = -0.5;
            }
        }
        let width = 4;
        let mut band = vec![0.0; n * width];
        for row in 0..n {
            for col in row.saturating_sub(1)..=(row + 1).min(n - 1) {
                band[row * width + col + 1 - row] = matrix[row * n + col];
            }
        }
        let mut banded = rhs.clone();
        solve_banded(&mut band, &mut banded, n, 1, 1);
        assert_eq!(banded, solve(matrix, rhs, n));
    }

    #[test]
    fn span_polynomials_match_de_boor() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for n in [3, 4, 10, 70] {
            let (x, y) = random_points(&mut rng, n);
            let knots = knots_of(&x);
            let (mut band, mut c) = (Vec::new(), Vec::new());
            collocation_solve(&knots, &x, &y, &mut band, &mut c);
            let scale = c.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let mut points: Vec<f64> = (0..2000)
                .map(|_| rng.random_range(x[0]..=x[n - 1]))
                .chain(x.iter().copied())
                .collect();
            points.sort_by(f64::total_cmp);
            let ours = quadratic_interpolate(&x, &y, &points);
            for (&v, ours) in points.iter().zip(&ours) {
                let (span, basis) = basis_functions(&knots, n, v);
                let de_boor: f64 = (0..3).map(|j| basis[j] * c[span - 2 + j]).sum();
                assert!(
                    (ours - de_boor).abs() <= 1e-12 * scale,
                    "n = {n}, v = {v}: {ours} vs {de_boor}"
                );
            }
            // Interpolating: the spline passes through the samples.
            let at_samples = quadratic_interpolate(&x, &y, &x);
            for (a, b) in at_samples.iter().zip(&y) {
                assert!((a - b).abs() <= 1e-9 * scale, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn grid_interpolation_equals_interpolation_at_the_grid() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for n in [0, 1, 2, 3, 70] {
            let (x, y) = random_points(&mut rng, n.max(1));
            let (x, y) = (&x[..n], &y[..n]);
            let (start, step, count) = (x.first().copied().unwrap_or(0.0) - 0.5, 0.01, 9000);
            let grid: Vec<f64> = (0..count).map(|i| start + i as f64 * step).collect();
            let mut out = vec![1.0; 3];
            quadratic_interpolate_grid(x, y, start, step, count, &mut out);
            let want = quadratic_interpolate(x, y, &grid);
            assert_eq!(out.len(), want.len());
            for (a, b) in out.iter().zip(&want) {
                assert!(a.to_bits() == b.to_bits(), "{a} vs {b}");
            }
        }
    }

    /// `scipy.signal.welch` spelled out: direct DFT sums, no FFT.
    fn naive_welch(x: &[f64], fs: f64, nperseg: usize, nfft: usize) -> Vec<f64> {
        let window: Vec<f64> = (0..nperseg)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / nperseg as f64).cos())
            .collect();
        let scale = 1.0 / (fs * window.iter().map(|w| w * w).sum::<f64>());
        let (step, count) = segments(x.len(), nperseg);
        (0..=nfft / 2)
            .map(|k| {
                let total: f64 = (0..count)
                    .map(|s| {
                        let (mut re, mut im) = (0.0, 0.0);
                        for n in 0..nperseg {
                            let angle =
                                -2.0 * std::f64::consts::PI * ((k * n) % nfft) as f64 / nfft as f64;
                            re += x[s * step + n] * window[n] * angle.cos();
                            im += x[s * step + n] * window[n] * angle.sin();
                        }
                        re * re + im * im
                    })
                    .sum();
                let doubled = k != 0 && !(nfft.is_multiple_of(2) && k == nfft / 2);
                total * scale * if doubled { 2.0 } else { 1.0 } / count as f64
            })
            .collect()
    }

    fn assert_close_spectra(ours: &[f64], want: &[f64], tolerance: f64, what: &str) {
        assert_eq!(ours.len(), want.len(), "{what}");
        let peak = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (k, (a, b)) in ours.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() <= tolerance * peak,
                "{what}, bin {k}: {a} vs {b} (peak {peak})"
            );
        }
    }

    #[test]
    fn welch_matches_direct_dft_for_odd_and_even_sizes() {
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        for (len, nperseg, nfft) in [
            (2, 2, 2),
            (5, 2, 2),
            (5, 2, 3),
            (7, 3, 4),
            (9, 3, 6),
            (40, 16, 32),
            (40, 17, 34),
            (40, 17, 35),
            (100, 33, 66),
            (100, 33, 67),
            (120, 40, 80),
            (100, 41, 41),
            (100, 41, 42),
            (150, 50, 100),
            (150, 59, 118),
        ] {
            let x: Vec<f64> = (0..len).map(|_| rng.random_range(-10.0..10.0)).collect();
            let (frequencies, power) = welch(&x, 4.0, nperseg, nfft);
            let what = format!("len {len}, nperseg {nperseg}, nfft {nfft}");
            assert_close_spectra(&power, &naive_welch(&x, 4.0, nperseg, nfft), 1e-12, &what);
            for (k, f) in frequencies.iter().enumerate() {
                assert_eq!(*f, k as f64 * frequency_spacing(4.0, nfft));
            }
        }
        assert_eq!(welch(&[1.0, 2.0], 1.0, 3, 6), (Vec::new(), Vec::new()));
        assert_eq!(welch(&[1.0, 2.0], 1.0, 2, 1), (Vec::new(), Vec::new()));
    }

    #[test]
    fn real_fft_welch_equals_complex_fft_welch() {
        // HRV-like sizes (large prime factors), through the half-length real FFT and through a
        // full complex FFT per segment.
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        for nperseg in [2874usize, 2917, 2919, 1000, 1001, 64, 3, 2] {
            for len in [
                nperseg,
                2 * nperseg + 1,
                (3 * nperseg).saturating_sub(5).max(nperseg),
            ] {
                let x: Vec<f64> = (0..len)
                    .map(|i| (i as f64 * 0.003).sin() * 50.0 + rng.random_range(-1.0..1.0))
                    .collect();
                let nfft = 2 * nperseg;
                let (mut real, mut complex) = (Vec::new(), Vec::new());
                WELCH_PLANS.with_borrow_mut(|plans| {
                    welch_real(plans, &x, 100.0, nperseg, nfft, &mut real);
                    welch_complex(plans, &x, 100.0, nperseg, nfft, &mut complex);
                });
                let what = format!("len {len}, nperseg {nperseg}");
                assert_close_spectra(&real, &complex, 1e-13, &what);
            }
        }
    }

    /// Random values, and a smooth RR-like series (slow trend, 0.1 and 0.25 Hz waves at 100 Hz,
    /// a little noise).
    fn test_series(rng: &mut ChaCha8Rng, len: usize) -> [Vec<f64>; 2] {
        let random = (0..len).map(|_| rng.random_range(-10.0..10.0)).collect();
        let phase = rng.random_range(0.0..6.0);
        let smooth = (0..len)
            .map(|i| {
                let t = i as f64 / 100.0;
                let tau = 2.0 * std::f64::consts::PI;
                30.0 * (tau * 0.1 * t + phase).sin()
                    + 20.0 * (tau * 0.25 * t).sin()
                    + 8.0 * (0.02 * t).cos()
                    + rng.random_range(-0.5..0.5)
            })
            .collect();
        [random, smooth]
    }

    #[test]
    fn low_bins_equal_fft_welch() {
        let mut rng = ChaCha8Rng::seed_from_u64(19);
        let kernels = [false, avx2_fma()];
        for nperseg in [2874usize, 2917, 2919, 2950, 1001, 1000, 64, 3, 2] {
            let nfft = 2 * nperseg;
            for len in [nperseg, 2 * nperseg + 1, 3 * nperseg - 1] {
                for (kind, x) in test_series(&mut rng, len).iter().enumerate() {
                    let mut full = Vec::new();
                    welch_power(x, 100.0, nperseg, nfft, &mut full);
                    let peak = full.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let argmax = full.iter().position(|&p| p == peak).expect("a peak");
                    for bins in [1, 9, 24, 28, 29, 60, nfft / 16 + 1] {
                        if bins > nfft / 16 + 1 {
                            continue;
                        }
                        for avx2 in kernels {
                            let mut low = Vec::new();
                            let max = low_power(x, 100.0, nperseg, nfft, bins, &mut low, avx2);
                            let what = format!(
                                "nperseg {nperseg}, len {len}, series {kind}, bins {bins}, avx2 {avx2}"
                            );
                            assert_eq!(low.len(), bins, "{what}");
                            for (k, (a, b)) in low.iter().zip(&full).enumerate() {
                                let error = (a - b).abs() / peak;
                                assert!(error <= 1e-13, "{what}, bin {k}: {a} vs {b}");
                            }
                            if let Some(max) = max {
                                assert!(argmax < bins, "{what}: max at bin {argmax}");
                                assert!(
                                    (max - peak).abs() <= 1e-13 * peak,
                                    "{what}: {max} vs {peak}"
                                );
                            }
                            // Smooth series hold most of their power far below 0.4 Hz.
                            if kind == 1 && nperseg >= 1000 && bins >= 24 {
                                assert!(max.is_some(), "{what}: no max");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn low_bins_decline_what_they_cannot_answer() {
        let mut rng = ChaCha8Rng::seed_from_u64(23);
        let [random, _] = test_series(&mut rng, 3000);
        let mut power = vec![1.0];
        let mut low = |x: &[f64], nfft: usize, bins: usize| {
            welch_low_power(x, 100.0, 1000, nfft, bins, &mut power)
        };
        // Outside the direct form: odd nfft, no bins, bins above nfft / 16, a short series.
        assert_eq!(low(&random, 2001, 24), None);
        assert_eq!(low(&random, 2000, 0), None);
        assert_eq!(low(&random, 2000, 127), None);
        assert_eq!(low(&random[..999], 2000, 24), None);
        // White noise spreads its power over all bins: the first few cannot bound the rest.
        assert_eq!(low(&random, 2000, 24), None);
        assert_eq!(low(&[0.0; 3000], 2000, 24), None);
        let mut with_nan = random.clone();
        with_nan[1500] = f64::NAN;
        assert_eq!(low(&with_nan, 2000, 126), None);
        // A 0.5 Hz sine (bin 10) holds all its power in the first bins.
        let sine: Vec<f64> = (0..3000)
            .map(|i| (i as f64 * 0.005 * std::f64::consts::TAU).sin())
            .collect();
        assert!(low(&sine, 2000, 24).is_some());
    }
}
