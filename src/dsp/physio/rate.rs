//! Per-sample rates and amplitudes, as NeuroKit2's `*_process` functions report them.
//!
//! `ecg_process`, `ppg_process` and `rsp_process` give a rate at every sample:
//! `signal_rate(peaks, fs, desired_length=n)` takes the period before each peak (the first peak gets
//! the mean of the others), interpolates it over samples `0..n` with `signal_interpolate(...,
//! method="monotone_cubic")` (scipy's `PchipInterpolator`, held constant before the first and after
//! the last peak) and reports `60 / period`. `rsp_amplitude` interpolates the breath amplitudes the
//! same way. A window's value is the mean over its samples, as `signals["ECG_Rate"].mean()`.

/// Fewest peaks NeuroKit2's `signal_period` needs: with this many or fewer it returns NaN.
const MIN_PEAKS_FOR_RATE: usize = 4;

/// `y` (one value per strictly increasing sample index in `x`) interpolated at samples `0..n`, as
/// `nk.signal_interpolate(x, y, np.arange(n), method="monotone_cubic")`: scipy's PCHIP between
/// `x[0]` and the last `x`, the interpolant's values there held outside. Repeated indices are
/// merged into one point with their mean value, as NeuroKit2 does. Empty when `x` is empty.
pub fn interpolate_monotone_cubic(x: &[usize], y: &[f64], n: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    visit_intervals(x, y, n, |run| match run {
        Run::Held(value, count) => out.resize(out.len() + count, value),
        Run::Cubic(spline, k, range) => out.extend(range.map(|s| spline.eval(k, s as f64))),
    });
    out
}

/// The period (s) at each of samples `0..n`, as `nk.signal_period(peaks, fs, desired_length=n)`;
/// `None` with three peaks or fewer, where NeuroKit2 returns NaN.
pub fn signal_period(peaks: &[usize], fs: f64, n: usize) -> Option<Vec<f64>> {
    periods(peaks, fs).map(|period| interpolate_monotone_cubic(peaks, &period, n))
}

/// Mean of the per-sample rate (per minute) over samples `0..n`, as
/// `nk.signal_rate(peaks, fs, desired_length=n).mean()`: what `ecg_process` (`ECG_Rate`),
/// `ppg_process` (`PPG_Rate`) and `rsp_process` (`RSP_Rate`, from the troughs) give for a segment of
/// `n` samples. NaN with three peaks or fewer, as NeuroKit2.
pub fn mean_rate(peaks: &[usize], fs: f64, n: usize) -> f64 {
    match periods(peaks, fs) {
        Some(period) => mean_of_interpolated(peaks, &period, n, |p| 60.0 / p),
        None => f64::NAN,
    }
}

/// Mean over samples `0..n` of `values` (one per peak) interpolated as [`interpolate_monotone_cubic`]
/// (a single peak's value everywhere): `nk.rsp_amplitude(clean, peaks).mean()` for breath
/// amplitudes. NaN without peaks.
pub fn mean_interpolated(peaks: &[usize], values: &[f64], n: usize) -> f64 {
    mean_of_interpolated(peaks, values, n, |v| v)
}

/// The period before each peak (s), the first one the mean of the others, as NeuroKit2's
/// `signal_period` before interpolation; `None` with three peaks or fewer.
fn periods(peaks: &[usize], fs: f64) -> Option<Vec<f64>> {
    if peaks.len() < MIN_PEAKS_FOR_RATE {
        return None;
    }
    let mut period: Vec<f64> = std::iter::once(0.0)
        .chain(peaks.windows(2).map(|w| (w[1] as f64 - w[0] as f64) / fs))
        .collect();
    period[0] = period[1..].iter().sum::<f64>() / (period.len() - 1) as f64;
    Some(period)
}

/// Mean of `map` of the interpolated values over samples `0..n`, without storing them; NaN when
/// there is nothing to average. Within an interval, four running sums let the per-sample work
/// (the cubic and `map`, a division for rates) run in vector lanes.
fn mean_of_interpolated(x: &[usize], y: &[f64], n: usize, map: impl Fn(f64) -> f64) -> f64 {
    let (mut sum, mut samples) = (0.0, 0usize);
    visit_intervals(x, y, n, |run| match run {
        Run::Held(value, count) => {
            sum += map(value) * count as f64;
            samples += count;
        }
        Run::Cubic(spline, k, range) => {
            let mut lanes = [0.0; 4];
            let start = range.start;
            let len = range.len();
            let whole = len / 4 * 4;
            for base in (0..whole).step_by(4) {
                for (lane, acc) in lanes.iter_mut().enumerate() {
                    *acc += map(spline.eval(k, (start + base + lane) as f64));
                }
            }
            let tail: f64 = (start + whole..range.end)
                .map(|sample| map(spline.eval(k, sample as f64)))
                .sum();
            sum += (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + tail;
            samples += len;
        }
    });
    if samples == 0 {
        f64::NAN
    } else {
        sum / samples as f64
    }
}

/// A stretch of samples of the interpolant: one value held over `count` samples, or interval `k`
/// of the spline evaluated at each sample of a range.
enum Run<'a> {
    Held(f64, usize),
    Cubic(&'a Pchip, usize, std::ops::Range<usize>),
}

/// Calls `visit` for the stretches of samples `0..n` in order (see [`interpolate_monotone_cubic`]).
fn visit_intervals(x: &[usize], y: &[f64], n: usize, mut visit: impl FnMut(Run<'_>)) {
    let (x, y) = merge_duplicates(x, y);
    let Some((&first, &last)) = x.first().zip(x.last()) else {
        return;
    };
    if x.len() == 1 {
        visit(Run::Held(y[0], n));
        return;
    }
    let spline = Pchip::new(&x, &y);
    // Before the first point: the interpolant's value there, y[0] exactly.
    let before = first.min(n);
    if before > 0 {
        visit(Run::Held(spline.eval(0, first as f64), before));
    }
    for k in 0..x.len() - 1 {
        let range = x[k].min(n)..x[k + 1].min(n);
        if !range.is_empty() {
            visit(Run::Cubic(&spline, k, range));
        }
        if x[k + 1] >= n {
            return;
        }
    }
    if n > last {
        visit(Run::Held(spline.eval(x.len() - 2, last as f64), n - last));
    }
}

/// `x` without repeats, each repeated index with the mean of its values (NeuroKit2's
/// `_signal_interpolate_average_duplicates`).
fn merge_duplicates(x: &[usize], y: &[f64]) -> (Vec<usize>, Vec<f64>) {
    let mut xs: Vec<usize> = Vec::with_capacity(x.len());
    let mut ys: Vec<f64> = Vec::with_capacity(x.len());
    let mut i = 0;
    while i < x.len().min(y.len()) {
        let mut j = i + 1;
        while j < x.len().min(y.len()) && x[j] == x[i] {
            j += 1;
        }
        xs.push(x[i]);
        ys.push(y[i..j].iter().sum::<f64>() / (j - i) as f64);
        i = j;
    }
    (xs, ys)
}

/// A piecewise cubic Hermite interpolant with scipy's PCHIP slopes, in scipy's local power basis.
struct Pchip {
    x: Vec<f64>,
    /// Per interval: the coefficients of s^3, s^2, s, 1 with s = position - x[k].
    coefficients: Vec<[f64; 4]>,
}

impl Pchip {
    /// `x` strictly increasing with at least two points.
    fn new(x: &[usize], y: &[f64]) -> Self {
        let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let h: Vec<f64> = x.windows(2).map(|w| w[1] - w[0]).collect();
        let m: Vec<f64> = y
            .windows(2)
            .zip(&h)
            .map(|(w, h)| (w[1] - w[0]) / h)
            .collect();
        let slopes = pchip_slopes(&h, &m);
        let coefficients = (0..h.len())
            .map(|k| {
                let t = (slopes[k] + slopes[k + 1] - 2.0 * m[k]) / h[k];
                [t / h[k], (m[k] - slopes[k]) / h[k] - t, slopes[k], y[k]]
            })
            .collect();
        Pchip { x, coefficients }
    }

    /// The cubic of interval `k` at `position`, summed as scipy's `evaluate_poly1`.
    fn eval(&self, k: usize, position: f64) -> f64 {
        let s = position - self.x[k];
        let [c0, c1, c2, c3] = self.coefficients[k];
        let mut res = c3;
        let mut z = s;
        res += c2 * z;
        z *= s;
        res += c1 * z;
        z *= s;
        res + c0 * z
    }
}

/// The slope at each point, as scipy's `PchipInterpolator._find_derivatives`: zero at interior
/// points where the secants change sign or vanish, else their weighted harmonic mean; the
/// three-point end formula, limited to keep the interpolant monotone.
fn pchip_slopes(h: &[f64], m: &[f64]) -> Vec<f64> {
    let points = h.len() + 1;
    if points == 2 {
        return vec![m[0], m[0]];
    }
    let mut d = vec![0.0; points];
    for k in 1..points - 1 {
        let flat_or_turning = sign(m[k]) != sign(m[k - 1]) || m[k] == 0.0 || m[k - 1] == 0.0;
        if !flat_or_turning {
            let w1 = 2.0 * h[k] + h[k - 1];
            let w2 = h[k] + 2.0 * h[k - 1];
            let whmean = (w1 / m[k - 1] + w2 / m[k]) / (w1 + w2);
            d[k] = 1.0 / whmean;
        }
    }
    let last = h.len() - 1;
    d[0] = edge_slope(h[0], h[1], m[0], m[1]);
    d[points - 1] = edge_slope(h[last], h[last - 1], m[last], m[last - 1]);
    d
}

/// scipy's `PchipInterpolator._edge_case`.
fn edge_slope(h0: f64, h1: f64, m0: f64, m1: f64) -> f64 {
    let d = ((2.0 * h0 + h1) * m0 - h0 * m1) / (h0 + h1);
    if sign(d) != sign(m0) {
        0.0
    } else if sign(m0) != sign(m1) && d.abs() > 3.0 * m0.abs() {
        3.0 * m0
    } else {
        d
    }
}

/// numpy's `sign` for finite values: -1, 0 or 1.
pub(super) fn sign(v: f64) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}
