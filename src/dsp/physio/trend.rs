//! Linear trend of a slowly varying signal (skin temperature) by least squares.

/// Least-squares slope of `values` against `times_s` (value units per second), as the first
/// coefficient of `numpy.polyfit(times_s, values, 1)`; NaN with fewer than two distinct times.
pub fn slope(times_s: &[f64], values: &[f64]) -> f64 {
    let n = times_s.len().min(values.len());
    if n < 2 {
        return f64::NAN;
    }
    let mean_t = times_s[..n].iter().sum::<f64>() / n as f64;
    let mean_v = values[..n].iter().sum::<f64>() / n as f64;
    let (mut cov, mut var) = (0.0, 0.0);
    for (t, v) in times_s[..n].iter().zip(&values[..n]) {
        cov += (t - mean_t) * (v - mean_v);
        var += (t - mean_t) * (t - mean_t);
    }
    if var == 0.0 {
        f64::NAN
    } else {
        cov / var
    }
}
