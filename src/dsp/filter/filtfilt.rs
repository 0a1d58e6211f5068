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
    let run = |data: &mut [f64]| {
        let x0 = data[0];
        let mut state: Vec<[f64; 2]> = zi.iter().map(|z| [z[0] * x0, z[1] * x0]).collect();
        for x in data.iter_mut() {
            *x = filter_sample(&sos.0, &mut state, *x);
        }
    };
    run(&mut ext);
    ext.reverse();
    run(&mut ext);
    ext.reverse();
    Ok(ext[edge..edge + n].to_vec())
}
