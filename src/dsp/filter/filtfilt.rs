//! Offline zero-phase filtering: forward-backward `sosfilt` with odd extension and steady-state
//! initial conditions, as `scipy.signal.sosfiltfilt` with its defaults (`padtype='odd'`).

use super::sosfilt::{filter_sample, sosfilt_zi};
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
/// streaming. The signal must be finite and longer than [`sosfiltfilt_padlen`].
pub fn sosfiltfilt(sos: &Sos, signal: &[f64]) -> Result<Vec<f64>, FilterError> {
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
    let mut ext = Vec::with_capacity(n + 2 * edge);
    ext.extend((1..=edge).rev().map(|i| 2.0 * first - signal[i]));
    ext.extend_from_slice(signal);
    ext.extend((1..=edge).map(|i| 2.0 * last - signal[n - 1 - i]));

    let zi = sosfilt_zi(sos);
    let len = ext.len();
    let x0 = ext[0];
    run_sections(&sos.0, &zi, x0, ext.iter_mut());
    let x0 = ext[len - 1];
    run_sections(&sos.0, &zi, x0, ext.iter_mut().rev());
    ext.truncate(edge + n);
    ext.drain(..edge);
    Ok(ext)
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
            let mut state: Vec<[f64; 2]> = zi.iter().map(|z| [z[0] * x0, z[1] * x0]).collect();
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
