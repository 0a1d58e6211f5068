//! Smoothing and differencing helpers with NumPy/SciPy edge conventions.
//!
//! The `_into` variants write into caller-owned buffers so per-window operators reuse their
//! allocations; the plain functions wrap them for one-off use.

/// Independent running sums kept in flight by [`sliding_means`] (one per part of the output), so
/// the additions do not wait on each other.
const LANES: usize = 4;

/// `out[i] = scale * (input[i] + ... + input[i + size - 1])` for every full window of `input`.
///
/// A running sum per quarter of the output, each started from a direct sum (which also bounds the
/// drift of the running sum), advanced in lockstep so four additions overlap.
pub fn sliding_means(input: &[f64], size: usize, scale: f64, out: &mut Vec<f64>) {
    if size == 0 || input.len() < size {
        out.clear();
        return;
    }
    let count = input.len() - size + 1;
    // Every element is overwritten: a reused buffer of the right length is not refilled.
    out.truncate(count);
    out.resize(count, 0.0);
    sliding_means_into(input, size, scale, out);
}

/// [`sliding_means`] into `out`, which must hold exactly `input.len() - size + 1` values.
pub fn sliding_means_into(input: &[f64], size: usize, scale: f64, out: &mut [f64]) {
    let count = out.len();
    assert!(
        size > 0 && input.len() + 1 == count + size,
        "sliding window lengths"
    );
    #[cfg(target_arch = "x86_64")]
    if count >= 4 * LANES * 4 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, the only feature `x86::sliding_means` is compiled for;
        // the lengths were checked above.
        unsafe { x86::sliding_means(input, size, scale, out) };
        return;
    }
    sliding_means_portable(input, size, scale, out);
}

/// [`sliding_means_into`] in plain Rust, for any CPU (lengths already checked).
fn sliding_means_portable(input: &[f64], size: usize, scale: f64, out: &mut [f64]) {
    let count = out.len();
    let part = count / LANES;
    let window_sum = |start: usize| input[start..start + size].iter().sum::<f64>();
    if part > 0 {
        // Lane `l` writes outputs `l * part ..` and reads `input[l * part .. l * part + part + size - 1]`.
        let (o0, rest) = out.split_at_mut(part);
        let (o1, rest) = rest.split_at_mut(part);
        let (o2, rest) = rest.split_at_mut(part);
        let outs: [&mut [f64]; LANES] = [o0, o1, o2, &mut rest[..part]];
        let ins: [&[f64]; LANES] =
            std::array::from_fn(|l| &input[l * part..l * part + part + size - 1]);
        let mut sums: [f64; LANES] = std::array::from_fn(|l| window_sum(l * part));
        for j in 0..part - 1 {
            for l in 0..LANES {
                outs[l][j] = sums[l] * scale;
                sums[l] += ins[l][j + size] - ins[l][j];
            }
        }
        for l in 0..LANES {
            outs[l][part - 1] = sums[l] * scale;
        }
    }
    running_sums_from(input, size, LANES * part, |i, sum| out[i] = sum * scale);
}

/// Hands `emit(i, sum)` the window sums `i` from `from` to the last one (`input.len() - size`),
/// as one running sum started from a direct sum: the few outputs the lanes leave over.
#[inline(always)]
fn running_sums_from(input: &[f64], size: usize, from: usize, mut emit: impl FnMut(usize, f64)) {
    let count = input.len() + 1 - size;
    if from < count {
        let mut sum = input[from..from + size].iter().sum::<f64>();
        emit(from, sum);
        for i in from + 1..count {
            sum += input[i + size - 1] - input[i - 1];
            emit(i, sum);
        }
    }
}

/// Bit `i % 64` of `bits[i / 64]` set where `feature[i] > factor * mean_i`, `mean_i` being
/// output `i` of [`sliding_means`] of `input` (`feature` holds one value per output): the
/// threshold crossings of a feature over its moving average, without storing the average.
pub fn sliding_means_exceeded(
    input: &[f64],
    size: usize,
    scale: f64,
    feature: &[f64],
    factor: f64,
    bits: &mut Vec<u64>,
) {
    bits.clear();
    if size == 0 || input.len() < size {
        return;
    }
    let count = input.len() - size + 1;
    assert_eq!(feature.len(), count, "one feature value per window");
    bits.resize(count.div_ceil(64), 0);
    #[cfg(target_arch = "x86_64")]
    if count >= 4 * LANES * 4 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, the only feature `x86::means_exceeded` is compiled for;
        // the lengths were checked above.
        unsafe { x86::means_exceeded(input, size, scale, feature, factor, bits) };
        return;
    }
    let mut means = vec![0.0; count];
    sliding_means_portable(input, size, scale, &mut means);
    for (i, (f, m)) in feature.iter().zip(&means).enumerate() {
        bits[i / 64] |= u64::from(*f > factor * *m) << (i % 64);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::LANES;
    use std::arch::x86_64::*;

    /// The running window sums of `input` (`count = input.len() - size + 1` of them) handed to
    /// `scalar(i, sum)` one at a time or `vector(at, sums)` four at a time (`at` a multiple of
    /// four): each lane (a quarter of the outputs) advances four outputs per step, adding the
    /// prefix sums of four window differences to its running sum.
    ///
    /// # Safety
    /// The CPU must support AVX2; `size > 0` and `count >= 64`.
    #[inline(always)]
    unsafe fn running_sums(
        input: &[f64],
        size: usize,
        mut scalar: impl FnMut(usize, f64),
        mut vector: impl FnMut(usize, __m256d),
    ) {
        let count = input.len() + 1 - size;
        // Lanes of a multiple of four outputs: one scalar start, three scalar steps, then vectors.
        let part = count / (4 * LANES) * 4;
        let src = input.as_ptr();
        let zero = _mm256_setzero_pd();
        let mut carry = [zero; LANES];
        for (l, carry) in carry.iter_mut().enumerate() {
            let start = l * part;
            let mut sum = input[start..start + size].iter().sum::<f64>();
            scalar(start, sum);
            for j in start + 1..start + 4 {
                sum += input[j + size - 1] - input[j - 1];
                scalar(j, sum);
            }
            *carry = _mm256_set1_pd(sum);
        }
        for block in (4..part).step_by(4) {
            for (l, carry) in carry.iter_mut().enumerate() {
                let at = l * part + block;
                // SAFETY: `at >= 4`, and `at + 3 + size - 1 < l * part + part + size - 1 <=
                // input.len()`.
                let (entering, leaving) = unsafe {
                    (
                        _mm256_loadu_pd(src.add(at + size - 1)),
                        _mm256_loadu_pd(src.add(at - 1)),
                    )
                };
                let step = _mm256_sub_pd(entering, leaving);
                // In-register prefix sum: (a, b, c, d) -> (a, a+b, c, c+d) within each half,
                // then the low half's total added to the high half.
                let step = _mm256_add_pd(step, _mm256_shuffle_pd::<0b0000>(zero, step));
                let low_total = _mm256_permute2f128_pd::<0x08>(step, step);
                let step = _mm256_add_pd(step, _mm256_shuffle_pd::<0b1111>(low_total, low_total));
                let sums = _mm256_add_pd(*carry, step);
                vector(at, sums);
                let high = _mm256_permute2f128_pd::<0x11>(sums, sums);
                *carry = _mm256_shuffle_pd::<0b1111>(high, high);
            }
        }
        super::running_sums_from(input, size, LANES * part, scalar);
    }

    /// [`super::sliding_means_into`] with AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2; `input.len() + 1 == out.len() + size`, `size > 0` and
    /// `out.len() >= 64`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn sliding_means(input: &[f64], size: usize, scale: f64, out: &mut [f64]) {
        let dst = out.as_mut_ptr();
        let scale4 = _mm256_set1_pd(scale);
        // SAFETY: every index handed out is below `out.len()` (the sums' count), and a vector
        // index `at` has `at + 4 <= out.len()`.
        unsafe {
            running_sums(
                input,
                size,
                |i, sum| *dst.add(i) = sum * scale,
                |at, sums| _mm256_storeu_pd(dst.add(at), _mm256_mul_pd(sums, scale4)),
            )
        };
    }

    /// [`super::sliding_means_exceeded`] with AVX2 (the same means and products as
    /// [`sliding_means`] then `feature > factor * mean`).
    ///
    /// # Safety
    /// The CPU must support AVX2; `feature.len() == input.len() + 1 - size >= 64`, `size > 0`,
    /// and `bits` holds `feature.len().div_ceil(64)` zeroed words.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn means_exceeded(
        input: &[f64],
        size: usize,
        scale: f64,
        feature: &[f64],
        factor: f64,
        bits: &mut [u64],
    ) {
        let (words, values) = (bits.as_mut_ptr(), feature.as_ptr());
        let (scale4, factor4) = (_mm256_set1_pd(scale), _mm256_set1_pd(factor));
        // SAFETY: indices are below `feature.len()`; a vector index `at` is a multiple of four
        // with `at + 4 <= feature.len()`, so its four bits lie in one word.
        unsafe {
            running_sums(
                input,
                size,
                |i, sum| {
                    *words.add(i / 64) |=
                        u64::from(*values.add(i) > factor * (sum * scale)) << (i % 64)
                },
                |at, sums| {
                    let threshold = _mm256_mul_pd(factor4, _mm256_mul_pd(sums, scale4));
                    let above =
                        _mm256_cmp_pd::<_CMP_GT_OQ>(_mm256_loadu_pd(values.add(at)), threshold);
                    *words.add(at / 64) |= (_mm256_movemask_pd(above) as u64) << (at % 64);
                },
            )
        };
    }
}

/// Moving average of `size` samples, as `scipy.ndimage.uniform_filter1d(x, size, mode="nearest")`.
///
/// Output `i` averages `x[i - size/2 ..= i - size/2 + size - 1]`, edges repeating the end samples.
pub fn boxcar(x: &[f64], size: usize) -> Vec<f64> {
    let mut padded = Vec::new();
    let mut out = Vec::new();
    pad_nearest(x, size, &mut padded);
    boxcar_padded(&padded, x.len(), size, &mut out);
    out
}

/// Writes `x` into `padded` with the edge samples repeated as [`boxcar`] needs them:
/// `size / 2` copies of `x[0]` before and `size - 1 - size / 2` copies of the last sample after.
pub fn pad_nearest(x: &[f64], size: usize, padded: &mut Vec<f64>) {
    padded.clear();
    let (Some(&first), Some(&last)) = (x.first(), x.last()) else {
        return;
    };
    let size = size.max(1);
    let half = size / 2;
    padded.reserve(x.len() + size - 1);
    padded.resize(half, first);
    padded.extend_from_slice(x);
    padded.resize(x.len() + size - 1, last);
}

/// [`boxcar`] of the `len` samples held in `padded` (laid out by [`pad_nearest`]), into `out`.
pub fn boxcar_padded(padded: &[f64], len: usize, size: usize, out: &mut Vec<f64>) {
    if len == 0 || size <= 1 {
        out.clear();
        out.extend_from_slice(&padded[..len]);
        return;
    }
    sliding_means(padded, size, 1.0 / size as f64, out);
}

/// Discrete derivative as `numpy.gradient(x)`: central differences inside, one-sided at the ends.
pub fn gradient(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    if n < 2 {
        return vec![0.0; n];
    }
    let mut out = Vec::with_capacity(n);
    out.push(x[1] - x[0]);
    out.extend(x.windows(3).map(|w| (w[2] - w[0]) * 0.5));
    out.push(x[n - 1] - x[n - 2]);
    out
}

/// Zero-phase moving-average filter of `taps` samples, as `scipy.signal.filtfilt(ones(taps), [taps], x)`.
///
/// Uses scipy's defaults: odd extension by `3 * taps` samples and steady-state initial conditions
/// (the filter starts as if the first sample had always been there). Returns `x` unchanged when it
/// is not longer than the padding.
pub fn moving_average_filtfilt(x: &[f64], taps: usize) -> Vec<f64> {
    let (mut work, mut forward, mut out) = (Vec::new(), Vec::new(), Vec::new());
    moving_average_filtfilt_into(x, taps, &mut work, &mut forward, &mut out);
    out
}

/// [`moving_average_filtfilt`] into `out`, with `work` and `forward` as reusable scratch buffers.
pub fn moving_average_filtfilt_into(
    x: &[f64],
    taps: usize,
    work: &mut Vec<f64>,
    forward: &mut Vec<f64>,
    out: &mut Vec<f64>,
) {
    work.clear();
    work.resize(moving_average_margin(taps), 0.0);
    work.extend_from_slice(x);
    moving_average_filtfilt_padded(work, taps, forward, out);
}

/// Space [`moving_average_filtfilt_padded`] needs in front of the signal.
pub fn moving_average_margin(taps: usize) -> usize {
    taps.saturating_sub(1) + 3 * taps
}

/// [`moving_average_filtfilt`] of the signal held in `work` after [`moving_average_margin`]
/// leading values (overwritten), so a producer can write the signal there without another copy.
pub fn moving_average_filtfilt_padded(
    work: &mut Vec<f64>,
    taps: usize,
    forward: &mut Vec<f64>,
    out: &mut Vec<f64>,
) {
    let margin = moving_average_margin(taps);
    let n = work.len().saturating_sub(margin);
    let pad = 3 * taps;
    if taps <= 1 || n <= pad {
        out.clear();
        out.extend_from_slice(&work[margin..]);
        return;
    }
    // The odd extension by `pad` samples on each side, preceded by `taps - 1` copies of its first
    // sample so the forward running mean starts in its steady state.
    let (first, last) = (work[margin], work[margin + n - 1]);
    for i in 1..=pad {
        work[margin - i] = 2.0 * first - work[margin + i];
    }
    let start = work[margin - pad];
    work[..taps - 1].fill(start);
    work.reserve(pad);
    for i in 1..=pad {
        let mirrored = 2.0 * last - work[margin + n - 1 - i];
        work.push(mirrored);
    }
    let scale = 1.0 / taps as f64;
    sliding_means(work, taps, scale, forward);
    // The backward pass averages each forward sample with the `taps - 1` after it, the forward
    // output's last sample repeating past its end; only the unpadded middle is kept.
    let end = forward[forward.len() - 1];
    forward.resize(forward.len() + taps - 1, end);
    sliding_means(&forward[pad..pad + n + taps - 1], taps, scale, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain definition: a fresh sum per output.
    fn direct_means(input: &[f64], size: usize) -> Vec<f64> {
        input
            .windows(size)
            .map(|w| w.iter().sum::<f64>() / size as f64)
            .collect()
    }

    fn signal(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| (i as f64 * 0.37).sin() * 3.0 + (i % 7) as f64 * 0.1 + 5.0)
            .collect()
    }

    #[test]
    fn sliding_means_equal_direct_sums_for_every_split() {
        for n in [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 100, 1001] {
            for size in [1, 2, 3, 5, 14, 70] {
                let x = signal(n);
                let mut out = vec![99.0; 3];
                sliding_means(&x, size, 1.0 / size as f64, &mut out);
                let want = if n >= size {
                    direct_means(&x, size)
                } else {
                    Vec::new()
                };
                assert_eq!(out.len(), want.len(), "n {n} size {size}");
                for (a, b) in out.iter().zip(&want) {
                    assert!((a - b).abs() < 1e-12, "n {n} size {size}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn vector_running_sums_equal_the_portable_ones() {
        // Lane splits with and without leftover outputs, windows from 1 to longer than a lane.
        for n in [64, 67, 79, 80, 127, 128, 200, 1001, 42000] {
            for size in [1, 2, 3, 5, 14, 70, 525] {
                if size > n {
                    continue;
                }
                let x: Vec<f64> = signal(n + size - 1).iter().map(|v| v * 1e3 - 4e3).collect();
                let mut fast = vec![0.0; n];
                let mut plain = vec![0.0; n];
                sliding_means_into(&x, size, 1.0 / size as f64, &mut fast);
                sliding_means_portable(&x, size, 1.0 / size as f64, &mut plain);
                // Both running sums drift by rounding of the input's scale over a lane.
                let tolerance = 1e-14 * x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                for (i, (a, b)) in fast.iter().zip(&plain).enumerate() {
                    assert!(
                        (a - b).abs() < tolerance,
                        "n {n} size {size} at {i}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn exceeded_bits_are_the_means_compared_with_the_feature() {
        for n in [1, 5, 63, 64, 65, 200, 1001, 4099] {
            for size in [1, 3, 70, 525] {
                let x = signal(n + size - 1);
                let feature: Vec<f64> = signal(n + 3)[3..].iter().map(|v| v * 1.1 - 0.4).collect();
                let mut means = Vec::new();
                sliding_means(&x, size, 1.0 / size as f64, &mut means);
                let mut bits = Vec::new();
                sliding_means_exceeded(&x, size, 1.0 / size as f64, &feature, 1.5, &mut bits);
                assert_eq!(bits.len(), n.div_ceil(64), "n {n} size {size}");
                for (i, (f, m)) in feature.iter().zip(&means).enumerate() {
                    let bit = bits[i / 64] >> (i % 64) & 1 == 1;
                    assert_eq!(bit, *f > 1.5 * m, "n {n} size {size} at {i}");
                }
            }
        }
    }

    #[test]
    fn boxcar_repeats_the_edges_like_uniform_filter1d() {
        // uniform_filter1d([1, 2, 3, 4, 10], 3, mode="nearest") = [4/3, 2, 3, 17/3, 8].
        let got = boxcar(&[1.0, 2.0, 3.0, 4.0, 10.0], 3);
        let want = [4.0 / 3.0, 2.0, 3.0, 17.0 / 3.0, 8.0];
        for (a, b) in got.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{got:?}");
        }
        // Even sizes lean left: uniform_filter1d([1, 2, 3, 4], 2, mode="nearest") = [1, 1.5, 2.5, 3.5].
        assert_eq!(boxcar(&[1.0, 2.0, 3.0, 4.0], 2), [1.0, 1.5, 2.5, 3.5]);
        assert_eq!(boxcar(&[], 5), Vec::<f64>::new());
        assert_eq!(boxcar(&[2.0, 3.0], 1), [2.0, 3.0]);
    }

    /// scipy's filtfilt of a moving average, written out: odd extension, steady-state forward
    /// average, steady-state backward average.
    fn reference_filtfilt(x: &[f64], taps: usize) -> Vec<f64> {
        let n = x.len();
        let pad = 3 * taps;
        let mut ext: Vec<f64> = (1..=pad).rev().map(|i| 2.0 * x[0] - x[i]).collect();
        ext.extend_from_slice(x);
        ext.extend((1..=pad).map(|i| 2.0 * x[n - 1] - x[n - 1 - i]));
        let mean_of = |v: &[f64], range: std::ops::RangeInclusive<isize>, edge: f64| {
            range
                .map(|k| {
                    v.get(k as usize)
                        .copied()
                        .filter(|_| k >= 0)
                        .unwrap_or(edge)
                })
                .sum::<f64>()
                / taps as f64
        };
        let forward: Vec<f64> = (0..ext.len() as isize)
            .map(|i| mean_of(&ext, i - taps as isize + 1..=i, ext[0]))
            .collect();
        let last = forward[forward.len() - 1];
        (pad..pad + n)
            .map(|j| mean_of(&forward, j as isize..=(j + taps - 1) as isize, last))
            .collect()
    }

    #[test]
    fn moving_average_filtfilt_equals_the_written_out_definition() {
        for (n, taps) in [(200, 14), (43, 14), (100, 2), (1000, 7)] {
            let x = signal(n);
            let got = moving_average_filtfilt(&x, taps);
            let want = reference_filtfilt(&x, taps);
            assert_eq!(got.len(), n);
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-12, "n {n} taps {taps}: {a} vs {b}");
            }
        }
        let short = signal(42);
        assert_eq!(moving_average_filtfilt(&short, 14), short);
    }

    #[test]
    fn gradient_is_numpy_gradient() {
        assert_eq!(gradient(&[1.0, 4.0, 9.0, 16.0]), [3.0, 4.0, 6.0, 7.0]);
        assert_eq!(gradient(&[2.0]), [0.0]);
    }
}
