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
    let nonfinite = values.iter().filter(|v| !v.is_finite()).count();
    let (low, high) = finite_extremes(values, nonfinite == 0);
    let (mut flat, mut clipped) = (0usize, 0usize);
    let mut count_run = |last: usize, run: usize| {
        let value = values[last];
        if value.is_finite() {
            if run >= flat_run.max(2) {
                flat += run;
            }
            if run >= CLIP_RUN && low < high && (value == low || value == high) {
                clipped += run;
            }
        }
    };
    // Equal neighbours, 64 comparisons per bit mask; a run of set bits is a run of equal samples.
    // `run` counts the equal samples ending at the current position (1 = no run open).
    let mut run = 1usize;
    let pairs = values.len().saturating_sub(1);
    for base in (0..pairs).step_by(64) {
        let end = (base + 64).min(pairs);
        let equal = equal_neighbours(&values[base..=end]);
        let mut position = 0;
        while position < end - base {
            let rest = equal >> position;
            if rest & 1 == 1 {
                let ones = rest.trailing_ones() as usize;
                run += ones;
                position += ones;
                continue;
            }
            if run > 1 {
                count_run(base + position, run);
                run = 1;
            }
            if rest == 0 {
                break;
            }
            position += rest.trailing_zeros() as usize;
        }
    }
    if run > 1 {
        count_run(values.len() - 1, run);
    }
    let n = values.len().max(1) as f64;
    Quality {
        nonfinite,
        flat_fraction: flat as f64 / n,
        clipped_fraction: clipped as f64 / n,
    }
}

/// Bit `k` set when `values[k + 1] == values[k]` (at most 65 values), four comparisons at a time.
fn equal_neighbours(values: &[f64]) -> u64 {
    let (left, right) = (&values[..values.len() - 1], &values[1..]);
    let mut mask = 0u64;
    let quads = left.chunks_exact(4).zip(right.chunks_exact(4));
    for (q, (a, b)) in quads.enumerate() {
        let bits = u64::from(a[0] == b[0])
            | u64::from(a[1] == b[1]) << 1
            | u64::from(a[2] == b[2]) << 2
            | u64::from(a[3] == b[3]) << 3;
        mask |= bits << (4 * q);
    }
    let done = left.len() / 4 * 4;
    for k in done..left.len() {
        mask |= u64::from(left[k] == right[k]) << k;
    }
    mask
}

/// Smallest and largest finite sample (`(inf, -inf)` when there is none); `all_finite` selects a
/// four-lane loop the compiler turns into vector min/max.
fn finite_extremes(values: &[f64], all_finite: bool) -> (f64, f64) {
    if !all_finite {
        return values
            .iter()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
    }
    let mut low = [f64::INFINITY; 4];
    let mut high = [f64::NEG_INFINITY; 4];
    let mut chunks = values.chunks_exact(4);
    for chunk in &mut chunks {
        for k in 0..4 {
            low[k] = if chunk[k] < low[k] { chunk[k] } else { low[k] };
            high[k] = if chunk[k] > high[k] {
                chunk[k]
            } else {
                high[k]
            };
        }
    }
    let lanes = low.iter().zip(&high).map(|(l, h)| (*l, *h));
    lanes
        .chain(chunks.remainder().iter().map(|v| (*v, *v)))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (l, h)| {
            (lo.min(l), hi.max(h))
        })
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
