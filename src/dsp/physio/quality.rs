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

/// The scan over a window's samples, per instruction set.
trait Scan {
    /// One pass over `values`: pushes to `masks` one bit mask per 64 neighbour pairs (bit `k` of
    /// mask `m` set when `values[64 m + k + 1] == values[64 m + k]`) and returns the count of
    /// non-finite samples and the smallest and largest finite one (`(n, inf, -inf)` when none is
    /// finite).
    fn scan(values: &[f64], masks: &mut Vec<u64>) -> (usize, f64, f64);
}

/// Scans in plain Rust, for any CPU.
struct Portable;

impl Scan for Portable {
    fn scan(values: &[f64], masks: &mut Vec<u64>) -> (usize, f64, f64) {
        let pairs = values.len().saturating_sub(1);
        masks.extend(
            (0..pairs)
                .step_by(64)
                .map(|base| equal_neighbours(&values[base..=(base + 64).min(pairs)])),
        );
        count_and_extremes(values)
    }
}

/// The body of [`assess`], inlined into each instruction-set variant.
#[inline(always)]
fn assess_with<S: Scan>(values: &[f64], flat_run: usize) -> Quality {
    let mut masks = Vec::with_capacity(values.len().div_ceil(64));
    let (nonfinite, low, high) = S::scan(values, &mut masks);
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
    for (base, &equal) in (0..pairs).step_by(64).zip(&masks) {
        let end = (base + 64).min(pairs);
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
    //! The scan with AVX2 intrinsics: four-lane compares, min/max and bit masks in one pass.

    use super::Scan;
    use std::arch::x86_64::*;

    /// AVX2 scan; only reached through `assess_avx2`, after the CPU was checked.
    pub(super) struct Avx2;

    impl Scan for Avx2 {
        #[inline(always)]
        fn scan(values: &[f64], masks: &mut Vec<u64>) -> (usize, f64, f64) {
            // SAFETY: only called from `assess_avx2`, which runs on CPUs with AVX2.
            unsafe { scan(values, masks) }
        }
    }

    /// Loads four values from `values[at..at + 4]` (checked by the slice index).
    #[target_feature(enable = "avx2")]
    fn load(values: &[f64], at: usize) -> __m256d {
        let four: &[f64; 4] = values[at..at + 4].try_into().expect("four values");
        // SAFETY: `four` is four readable f64; the load has no alignment requirement.
        unsafe { _mm256_loadu_pd(four.as_ptr()) }
    }

    /// Finite-value bounds and non-finite count kept one value at a time.
    struct Scalar {
        nonfinite: usize,
        low: f64,
        high: f64,
    }

    impl Scalar {
        #[inline(always)]
        fn add(&mut self, v: f64) {
            if v.is_finite() {
                self.low = self.low.min(v);
                self.high = self.high.max(v);
            } else {
                self.nonfinite += 1;
            }
        }
    }

    /// Every value is read once as the left value of its pair (the last one alone): quads of
    /// pairs in vectors, the rest of each 64-pair mask one at a time. The usual all-finite window
    /// takes a lighter pass; a window with a non-finite sample is scanned again with the checks.
    #[target_feature(enable = "avx2")]
    fn scan(values: &[f64], masks: &mut Vec<u64>) -> (usize, f64, f64) {
        if let Some(found) = scan_pass::<true>(values, masks) {
            return found;
        }
        masks.clear();
        scan_pass::<false>(values, masks).expect("the checked pass always answers")
    }

    /// One pass of [`scan`]. With `ASSUME_FINITE` it takes plain minima and maxima and only
    /// detects non-finite samples (`v - v` is NaN exactly for them), answering `None` if any.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn scan_pass<const ASSUME_FINITE: bool>(
        values: &[f64],
        masks: &mut Vec<u64>,
    ) -> Option<(usize, f64, f64)> {
        let infinity = _mm256_set1_pd(f64::INFINITY);
        let neg_infinity = _mm256_set1_pd(f64::NEG_INFINITY);
        let sign = _mm256_set1_pd(-0.0);
        let (mut low, mut high) = (infinity, neg_infinity);
        let mut check = _mm256_setzero_pd();
        let mut scalar = Scalar {
            nonfinite: 0,
            low: f64::INFINITY,
            high: f64::NEG_INFINITY,
        };
        let Some(&last) = values.last() else {
            return Some((0, f64::INFINITY, f64::NEG_INFINITY));
        };
        let pairs = values.len() - 1;
        for base in (0..pairs).step_by(64) {
            let end = (base + 64).min(pairs);
            let whole = base + (end - base) / 4 * 4;
            let mut mask = 0u64;
            for at in (base..whole).step_by(4) {
                let v = load(values, at);
                let equal = _mm256_cmp_pd::<_CMP_EQ_OQ>(v, load(values, at + 1));
                mask |= (_mm256_movemask_pd(equal) as u64) << (at - base);
                if ASSUME_FINITE {
                    check = _mm256_add_pd(check, _mm256_sub_pd(v, v));
                    low = _mm256_min_pd(low, v);
                    high = _mm256_max_pd(high, v);
                    continue;
                }
                // |v| < inf is false for NaN and infinities.
                let finite = _mm256_cmp_pd::<_CMP_LT_OQ>(_mm256_andnot_pd(sign, v), infinity);
                let finite_bits = _mm256_movemask_pd(finite);
                if finite_bits != 0b1111 {
                    scalar.nonfinite += 4 - finite_bits.count_ones() as usize;
                }
                low = _mm256_min_pd(low, _mm256_blendv_pd(infinity, v, finite));
                high = _mm256_max_pd(high, _mm256_blendv_pd(neg_infinity, v, finite));
            }
            for k in whole..end {
                mask |= u64::from(values[k] == values[k + 1]) << (k - base);
                scalar.add(values[k]);
            }
            masks.push(mask);
        }
        scalar.add(last);
        let mut lanes = [[0.0; 4]; 3];
        for (out, v) in lanes.iter_mut().zip([low, high, check]) {
            // SAFETY: `out` is four writable f64; the store has no alignment requirement.
            unsafe { _mm256_storeu_pd(out.as_mut_ptr(), v) };
        }
        if ASSUME_FINITE && (scalar.nonfinite > 0 || lanes[2].iter().any(|c| c.is_nan())) {
            return None;
        }
        let low = lanes[0].iter().fold(scalar.low, |a, &b| a.min(b));
        let high = lanes[1].iter().fold(scalar.high, |a, &b| a.max(b));
        Some((scalar.nonfinite, low, high))
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
