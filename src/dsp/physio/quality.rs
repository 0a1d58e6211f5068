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
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, the only feature `assess_avx2` is compiled for.
        return unsafe { assess_avx2(values, flat_run) };
    }
    assess_with::<Portable>(values, flat_run)
}

/// [`assess`] with AVX2 scans, chosen at run time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn assess_avx2(values: &[f64], flat_run: usize) -> Quality {
    assess_with::<avx2::Avx2>(values, flat_run)
}

/// The two scans over a window's samples, per instruction set.
trait Scan {
    /// Non-finite samples and the smallest and largest finite one (`(n, inf, -inf)` when none is
    /// finite).
    fn count_and_extremes(values: &[f64]) -> (usize, f64, f64);
    /// Bit `k` set when `values[k + 1] == values[k]` (at most 65 values).
    fn equal_neighbours(values: &[f64]) -> u64;
}

/// Scans in plain Rust, for any CPU.
struct Portable;

impl Scan for Portable {
    fn count_and_extremes(values: &[f64]) -> (usize, f64, f64) {
        count_and_extremes(values)
    }

    fn equal_neighbours(values: &[f64]) -> u64 {
        equal_neighbours(values)
    }
}

/// The body of [`assess`], inlined into each instruction-set variant.
#[inline(always)]
fn assess_with<S: Scan>(values: &[f64], flat_run: usize) -> Quality {
    let (nonfinite, low, high) = S::count_and_extremes(values);
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
        let equal = S::equal_neighbours(&values[base..=end]);
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

/// Non-finite samples and the smallest and largest finite one (`(n, inf, -inf)` when none is
/// finite). The common all-finite window takes an eight-lane min/max loop the compiler turns into
/// vector instructions.
fn count_and_extremes(values: &[f64]) -> (usize, f64, f64) {
    let nonfinite = values.iter().filter(|v| !v.is_finite()).count();
    if nonfinite > 0 {
        let (low, high) = values
            .iter()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        return (nonfinite, low, high);
    }
    const LANES: usize = 8;
    let mut low = [f64::INFINITY; LANES];
    let mut high = [f64::NEG_INFINITY; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for k in 0..LANES {
            low[k] = if chunk[k] < low[k] { chunk[k] } else { low[k] };
            high[k] = if chunk[k] > high[k] {
                chunk[k]
            } else {
                high[k]
            };
        }
    }
    let lanes = low.iter().zip(&high).map(|(l, h)| (*l, *h));
    let (low, high) = lanes
        .chain(chunks.remainder().iter().map(|v| (*v, *v)))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (l, h)| {
            (lo.min(l), hi.max(h))
        });
    (0, low, high)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The scans with AVX2 intrinsics: four-lane compares, min/max and bit masks.

    use super::Scan;
    use std::arch::x86_64::*;

    /// AVX2 scans; only reached through `assess_avx2`, after the CPU was checked.
    pub(super) struct Avx2;

    impl Scan for Avx2 {
        #[inline(always)]
        fn count_and_extremes(values: &[f64]) -> (usize, f64, f64) {
            // SAFETY: only called from `assess_avx2`, which runs on CPUs with AVX2.
            unsafe { count_and_extremes(values) }
        }

        #[inline(always)]
        fn equal_neighbours(values: &[f64]) -> u64 {
            // SAFETY: as above.
            unsafe { equal_neighbours(values) }
        }
    }

    /// Loads four values from `values[at..at + 4]` (checked by the slice index).
    #[target_feature(enable = "avx2")]
    fn load(values: &[f64], at: usize) -> __m256d {
        let four: &[f64; 4] = values[at..at + 4].try_into().expect("four values");
        // SAFETY: `four` is four readable f64; the load has no alignment requirement.
        unsafe { _mm256_loadu_pd(four.as_ptr()) }
    }

    #[target_feature(enable = "avx2")]
    fn count_and_extremes(values: &[f64]) -> (usize, f64, f64) {
        let infinity = _mm256_set1_pd(f64::INFINITY);
        let sign = _mm256_set1_pd(-0.0);
        let (mut low, mut high) = ([infinity; 2], [_mm256_set1_pd(f64::NEG_INFINITY); 2]);
        let mut nonfinite = 0usize;
        let whole = values.len() / 8 * 8;
        for at in (0..whole).step_by(8) {
            for half in 0..2 {
                let v = load(values, at + 4 * half);
                // |v| < inf is false for NaN and infinities.
                let finite = _mm256_cmp_pd::<_CMP_LT_OQ>(_mm256_andnot_pd(sign, v), infinity);
                let mask = _mm256_movemask_pd(finite);
                if mask != 0b1111 {
                    nonfinite += 4 - mask.count_ones() as usize;
                }
                let as_low = _mm256_blendv_pd(infinity, v, finite);
                let as_high = _mm256_blendv_pd(_mm256_set1_pd(f64::NEG_INFINITY), v, finite);
                low[half] = _mm256_min_pd(low[half], as_low);
                high[half] = _mm256_max_pd(high[half], as_high);
            }
        }
        let mut lanes = [[0.0; 4]; 4];
        for (out, v) in lanes.iter_mut().zip([low[0], low[1], high[0], high[1]]) {
            // SAFETY: `out` is four writable f64; the store has no alignment requirement.
            unsafe { _mm256_storeu_pd(out.as_mut_ptr(), v) };
        }
        let mut lo = lanes[0]
            .iter()
            .chain(&lanes[1])
            .fold(f64::INFINITY, |a, &b| a.min(b));
        let mut hi = lanes[2]
            .iter()
            .chain(&lanes[3])
            .fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        for &v in &values[whole..] {
            if v.is_finite() {
                lo = lo.min(v);
                hi = hi.max(v);
            } else {
                nonfinite += 1;
            }
        }
        (nonfinite, lo, hi)
    }

    #[target_feature(enable = "avx2")]
    fn equal_neighbours(values: &[f64]) -> u64 {
        let pairs = values.len() - 1;
        let whole = pairs / 4 * 4;
        let mut mask = 0u64;
        for at in (0..whole).step_by(4) {
            let equal = _mm256_cmp_pd::<_CMP_EQ_OQ>(load(values, at), load(values, at + 1));
            mask |= (_mm256_movemask_pd(equal) as u64) << at;
        }
        for k in whole..pairs {
            mask |= u64::from(values[k] == values[k + 1]) << k;
        }
        mask
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Signals with NaN, infinities, flat stretches, clipping and lengths around the vector widths.
    fn cases() -> Vec<Vec<f64>> {
        let mut cases = Vec::new();
        for n in [0, 1, 2, 3, 7, 8, 9, 63, 64, 65, 66, 130, 1001] {
            let base: Vec<f64> = (0..n).map(|i| ((i * 37) % 11) as f64 - 5.0).collect();
            let mut flat = base.clone();
            for v in flat.iter_mut().skip(n / 3).take(n / 4) {
                *v = 2.0;
            }
            let mut clipped = base.clone();
            for v in clipped.iter_mut().skip(n / 2).take(5) {
                *v = 5.0;
            }
            let mut bad = flat.clone();
            for (k, v) in bad.iter_mut().enumerate().filter(|(k, _)| k % 17 == 3) {
                *v = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY][k % 3];
            }
            cases.extend([base, flat, clipped, bad]);
        }
        cases.push(vec![f64::NAN; 12]);
        cases.push(vec![f64::INFINITY; 10]);
        cases
    }

    #[test]
    fn every_scan_gives_the_portable_result() {
        for values in cases() {
            for flat_run in [2, 3, 10] {
                let portable = assess_with::<Portable>(&values, flat_run);
                assert_eq!(assess(&values, flat_run), portable, "{values:?}");
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: AVX2 was detected just above.
                    let avx2 = unsafe { assess_avx2(&values, flat_run) };
                    assert_eq!(avx2, portable, "{values:?}");
                }
            }
        }
    }

    #[test]
    fn runs_are_counted_as_before() {
        // 4 equal samples at the minimum (a flat run of 4, clipped), then a run of 3 infinities.
        let values = [
            -1.0,
            -1.0,
            -1.0,
            -1.0,
            0.5,
            2.0,
            f64::INFINITY,
            f64::INFINITY,
            1.0,
            2.0,
        ];
        let q = assess(&values, 4);
        assert_eq!(q.nonfinite, 2);
        assert_eq!(q.flat_fraction, 0.4);
        assert_eq!(q.clipped_fraction, 0.4);
    }
}
