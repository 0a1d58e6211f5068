//! Smoothing and differencing helpers with NumPy/SciPy edge conventions.

/// Moving average of `size` samples, as `scipy.ndimage.uniform_filter1d(x, size, mode="nearest")`.
///
/// Output `i` averages `x[i - size/2 ..= i - size/2 + size - 1]`, edges repeating the end samples.
pub fn boxcar(x: &[f64], size: usize) -> Vec<f64> {
    let n = x.len();
    if n == 0 || size <= 1 {
        return x.to_vec();
    }
    // `padded[k]` is the clamped sample `k - size/2`, so the running sum indexes without bounds logic.
    let half = size / 2;
    let mut padded = Vec::with_capacity(n + size - 1);
    padded.extend(std::iter::repeat_n(x[0], half.min(n + size - 1)));
    padded.extend(x.iter().copied().take(n + size - 1 - padded.len()));
    padded.resize(n + size - 1, x[n - 1]);
    let mut out = Vec::with_capacity(n);
    let mut sum: f64 = padded[..size].iter().sum();
    out.push(sum / size as f64);
    out.extend(
        padded[size..]
            .iter()
            .zip(&padded[..n - 1])
            .map(|(entering, leaving)| {
                sum += entering - leaving;
                sum / size as f64
            }),
    );
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
    // Forward pass into `forward`, then the backward pass (over `forward` read from its end) back
    // into `ext`, each starting as if its first sample had always been there.
    let len = ext.len();
    let scale = taps as f64;
    let mut forward = Vec::with_capacity(len);
    let first = ext[0];
    let mut sum = first * scale;
    forward.extend(ext[..taps].iter().map(|v| {
        sum += v - first;
        sum / scale
    }));
    forward.extend(
        ext[taps..]
            .iter()
            .zip(&ext[..len - taps])
            .map(|(v, leaving)| {
                sum += v - leaving;
                sum / scale
            }),
    );
    let first = forward[len - 1];
    let mut sum = first * scale;
    for j in (0..len).rev() {
        let leaving = if j + taps < len {
            forward[j + taps]
        } else {
            first
        };
        sum += forward[j] - leaving;
        ext[j] = sum / scale;
    }
    ext.truncate(pad + n);
    ext.drain(..pad);
    ext
}
