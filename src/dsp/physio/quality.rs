//! Per-window signal quality: non-finite samples, flat lines and clipping, and gap filling so one
//! bad stretch never stops feature extraction.

/// Quality flags of one channel over one window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quality {
    /// Samples that are NaN or infinite.
    pub nonfinite: usize,
    /// Fraction of samples inside runs of identical values lasting at least the flat-line length.
    pub flat_fraction: f64,
    /// Fraction of samples inside runs (3 or more) pinned at the window's minimum or maximum.
    pub clipped_fraction: f64,
}

/// Consecutive equal samples that count as clipping when pinned at the window's extreme.
const CLIP_RUN: usize = 3;

/// Assesses `values` (one channel); runs of `flat_run` or more identical samples are a flat line.
pub fn assess(values: &[f64], flat_run: usize) -> Quality {
    let (mut nonfinite, mut low, mut high) = (0usize, f64::INFINITY, f64::NEG_INFINITY);
    for &v in values {
        if v.is_finite() {
            low = low.min(v);
            high = high.max(v);
        } else {
            nonfinite += 1;
        }
    }
    // Only runs of 2 or more equal samples count, so a run is examined when it ends (rarely).
    let (mut flat, mut clipped) = (0usize, 0usize);
    let mut run = 1;
    for i in 1..=values.len() {
        if i < values.len() && values[i] == values[i - 1] {
            run += 1;
            continue;
        }
        let value = values[i - 1];
        if run >= 2 && value.is_finite() {
            if run >= flat_run.max(2) {
                flat += run;
            }
            if run >= CLIP_RUN && low < high && (value == low || value == high) {
                clipped += run;
            }
        }
        run = 1;
    }
    let n = values.len().max(1) as f64;
    Quality {
        nonfinite,
        flat_fraction: flat as f64 / n,
        clipped_fraction: clipped as f64 / n,
    }
}

/// Replaces non-finite samples by linear interpolation between their finite neighbours (the
/// nearest finite value at the ends); `None` when no sample is finite.
pub fn fill_gaps(values: &[f64]) -> Option<Vec<f64>> {
    if values.iter().all(|v| v.is_finite()) {
        return (!values.is_empty()).then(|| values.to_vec());
    }
    let finite: Vec<usize> = (0..values.len())
        .filter(|&i| values[i].is_finite())
        .collect();
    let (&first, &last) = (finite.first()?, finite.last()?);
    let mut out = values.to_vec();
    out[..first].fill(values[first]);
    out[last + 1..].fill(values[last]);
    for pair in finite.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        for (i, slot) in out.iter_mut().enumerate().take(b).skip(a + 1) {
            let f = (i - a) as f64 / (b - a) as f64;
            *slot = values[a] + f * (values[b] - values[a]);
        }
    }
    Some(out)
}
