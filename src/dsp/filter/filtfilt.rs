//! Offline zero-phase filtering: forward-backward `sosfilt` with odd extension and steady-state
//! initial conditions, as `scipy.signal.sosfiltfilt` with its defaults (`padtype='odd'`).

use super::block::{pass_blocked, Kernel};
use super::sosfilt::{filter_sample, sosfilt_zi, steady_state};
use super::{FilterError, Sos};

/// Odd-extension padding length scipy's `sosfiltfilt` uses for `sos`; signals must be longer than this.
///
/// `3 * (2 * n_sections + 1 - min(#sections with b2 == 0, #sections with a2 == 0))`.
pub fn sosfiltfilt_padlen(sos: &Sos) -> usize {
    let b2_zero = sos.0.iter().filter(|r| r[2] == 0.0).count();
    let a2_zero = sos.0.iter().filter(|r| r[5] == 0.0).count();
    let ntaps = 2 * sos.0.len() + 1 - b2_zero.min(a2_zero);
    3 * ntaps
}

/// Zero-phase filters one channel offline, matching `scipy.signal.sosfiltfilt(sos, signal)` with default padding.
///
/// The magnitude response is squared and the phase is zero, so it suits offline analysis, not
/// streaming. The signal must be finite and longer than [`sosfiltfilt_padlen`]. A thin wrapper of
/// [`sosfiltfilt_into`] that returns an owned vector.
pub fn sosfiltfilt(sos: &Sos, signal: &[f64]) -> Result<Vec<f64>, FilterError> {
    let mut ext = Vec::new();
    let edge = zero_phase(sos, signal, &mut ext, Kernel::detect())?;
    ext.truncate(edge + signal.len());
    ext.drain(..edge);
    Ok(ext)
}

/// [`sosfiltfilt`] into the caller's buffer: returns the filtered signal as a slice of `scratch`.
///
/// Reusing `scratch` across calls avoids the allocation (when its capacity suffices) and the copy
/// that dropping the padding from an owned vector costs; its previous contents are discarded.
pub fn sosfiltfilt_into<'a>(
    sos: &Sos,
    signal: &[f64],
    scratch: &'a mut Vec<f64>,
) -> Result<&'a [f64], FilterError> {
    sosfiltfilt_with(sos, signal, scratch, Kernel::detect())
}

/// [`sosfiltfilt_into`] with an explicit pass kernel, so tests can run every dispatch path.
pub(crate) fn sosfiltfilt_with<'a>(
    sos: &Sos,
    signal: &[f64],
    scratch: &'a mut Vec<f64>,
    kernel: Kernel,
) -> Result<&'a [f64], FilterError> {
    let edge = zero_phase(sos, signal, scratch, kernel)?;
    Ok(&scratch[edge..edge + signal.len()])
}

/// Fills `ext` with the odd-extended signal filtered forward and backward; returns the padding
/// length on each side.
fn zero_phase(
    sos: &Sos,
    signal: &[f64],
    ext: &mut Vec<f64>,
    kernel: Kernel,
) -> Result<usize, FilterError> {
    sos.validate()?;
    let edge = sosfiltfilt_padlen(sos);
    if signal.len() <= edge {
        return Err(FilterError::SignalTooShort {
            len: signal.len(),
            padlen: edge,
        });
    }
    if let Some(i) = signal.iter().position(|v| !v.is_finite()) {
        return Err(FilterError::NonFinite {
            what: format!("signal sample {i} (value {})", signal[i]),
        });
    }
    let n = signal.len();
    let first = signal[0];
    let last = signal[n - 1];
    ext.clear();
    ext.reserve(n + 2 * edge);
    ext.extend((1..=edge).rev().map(|i| 2.0 * first - signal[i]));
    ext.extend_from_slice(signal);
    ext.extend((1..=edge).map(|i| 2.0 * last - signal[n - 1 - i]));

    let zi = sosfilt_zi(sos);
    let len = ext.len();
    let x0 = ext[0];
    match kernel {
        Kernel::Avx2 => pass_blocked(&sos.0, &zi, x0, ext, false),
        Kernel::Recurrence => run_sections(&sos.0, &zi, x0, ext.iter_mut()),
    }
    let x0 = ext[len - 1];
    match kernel {
        Kernel::Avx2 => pass_blocked(&sos.0, &zi, x0, ext, true),
        Kernel::Recurrence => run_sections(&sos.0, &zi, x0, ext.iter_mut().rev()),
    }
    Ok(edge)
}

/// Filters `data` in place (in the iterator's order) from the steady state of level `x0`.
///
/// The signal was checked finite, so the per-sample NaN guard of [`filter_sample`] is not needed;
/// the usual section counts get a fixed-size loop whose state stays in registers.
fn run_sections<'a>(
    sos: &[[f64; 6]],
    zi: &[[f64; 2]],
    x0: f64,
    data: impl Iterator<Item = &'a mut f64>,
) {
    match sos.len() {
        1 => run_fixed::<1, _>(sos, zi, x0, data),
        2 => run_fixed::<2, _>(sos, zi, x0, data),
        3 => run_fixed::<3, _>(sos, zi, x0, data),
        4 => run_fixed::<4, _>(sos, zi, x0, data),
        _ => {
            let mut state = steady_state(zi, x0);
            for x in data {
                *x = filter_sample(sos, &mut state, *x);
            }
        }
    }
}

/// [`run_sections`] for exactly `S` sections: the recurrence of [`filter_sample`], same operations.
fn run_fixed<'a, const S: usize, I: Iterator<Item = &'a mut f64>>(
    sos: &[[f64; 6]],
    zi: &[[f64; 2]],
    x0: f64,
    data: I,
) {
    let sos: [[f64; 6]; S] = std::array::from_fn(|k| sos[k]);
    let mut state: [[f64; 2]; S] = std::array::from_fn(|k| [zi[k][0] * x0, zi[k][1] * x0]);
    for x in data {
        let mut x_cur = *x;
        for (s, z) in sos.iter().zip(state.iter_mut()) {
            let x_new = s[0] * x_cur + z[0];
            z[0] = s[1] * x_cur - s[4] * x_new + z[1];
            z[1] = s[2] * x_cur - s[5] * x_new;
            x_cur = x_new;
        }
        *x = x_cur;
    }
}
