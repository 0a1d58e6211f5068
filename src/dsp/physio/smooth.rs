//! Smoothing and differencing helpers with NumPy/SciPy edge conventions.

/// Moving average of `size` samples, as `scipy.ndimage.uniform_filter1d(x, size, mode="nearest")`.
///
/// Output `i` averages `x[i - size/2 ..= i - size/2 + size - 1]`, edges repeating the end samples.
pub fn boxcar(x: &[f64], size: usize) -> Vec<f64> {
    let n = x.len();
    if n == 0 || size <= 1 {
        return x.to_vec();
    }
    let half = (size / 2) as isize;
    let at = |i: isize| x[i.clamp(0, n as isize - 1) as usize];
    let mut out = Vec::with_capacity(n);
    let mut sum: f64 = (0..size as isize).map(|j| at(j - half)).sum();
    out.push(sum / size as f64);
    for i in 1..n as isize {
        sum += at(i - half + size as isize - 1) - at(i - 1 - half);
        out.push(sum / size as f64);
    }
    out
}

/// Discrete derivative as `numpy.gradient(x)`: central differences inside, one-sided at the ends.
pub fn gradient(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    if n < 2 {
        return vec![0.0; n];
    }
    let mut out = Vec::with_capacity(n);
    out.push(x[1] - x[0]);
    out.extend((1..n - 1).map(|i| (x[i + 1] - x[i - 1]) / 2.0));
    out.push(x[n - 1] - x[n - 2]);
    out
}

/// Zero-phase moving-average filter of `taps` samples, as `scipy.signal.filtfilt(ones(taps), [taps], x)`.
///
/// Uses scipy's defaults: odd extension by `3 * taps` samples and steady-state initial conditions
/// (the filter starts as if the first sample had always been there). Returns `x` unchanged when it
/// is not longer than the padding.
pub fn moving_average_filtfilt(x: &[f64], taps: usize) -> Vec<f64> {
    let n = x.len();
    let pad = 3 * taps;
    if taps <= 1 || n <= pad {
        return x.to_vec();
    }
    let mut ext = Vec::with_capacity(n + 2 * pad);
    ext.extend((1..=pad).rev().map(|i| 2.0 * x[0] - x[i]));
    ext.extend_from_slice(x);
    ext.extend((1..=pad).map(|i| 2.0 * x[n - 1] - x[n - 1 - i]));
    let run = |data: &[f64]| -> Vec<f64> {
        let first = data[0];
        let mut sum = first * taps as f64;
        let mut out = Vec::with_capacity(data.len());
        for i in 0..data.len() {
            let leaving = if i >= taps { data[i - taps] } else { first };
            sum += data[i] - leaving;
            out.push(sum / taps as f64);
        }
        out
    };
    let mut forward = run(&ext);
    forward.reverse();
    let mut backward = run(&forward);
    backward.reverse();
    backward[pad..pad + n].to_vec()
}
