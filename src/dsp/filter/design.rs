//! Filter design: Butterworth (via analog prototype, prewarped bilinear transform and
//! `zpk2sos` with nearest pairing, as `scipy.signal.butter(..., output='sos')`) and notch
//! (as `scipy.signal.iirnotch`, as one second-order section).
//!
//! Poles, zeros and gain are computed with numpy's formulas and operation order, and sections are
//! paired and ordered by the same rules as scipy, so coefficients agree to ~1e-13. One known
//! exception: for a bandpass/bandstop whose edges sum exactly to `fs / 2`, mirrored poles are
//! exactly as far from the unit circle, scipy breaks that tie on last-bit rounding noise, and the
//! sections may be grouped or ordered differently (same poles, zeros and gain; filter outputs
//! agree with scipy's to ~1e-15 of the signal scale).

use super::complex::{prod, C64};
use super::{FilterError, Sos};
use std::f64::consts::PI;

/// Highest Butterworth order accepted; higher orders gain little and grow numerically fragile.
pub const MAX_ORDER: usize = 12;

/// Which frequencies a Butterworth filter passes, selecting how many cutoffs it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BandType {
    /// Passes frequencies below one cutoff.
    Lowpass,
    /// Passes frequencies above one cutoff.
    Highpass,
    /// Passes frequencies between two band edges.
    Bandpass,
    /// Rejects frequencies between two band edges.
    Bandstop,
}

impl BandType {
    fn name(self) -> &'static str {
        match self {
            Self::Lowpass => "lowpass",
            Self::Highpass => "highpass",
            Self::Bandpass => "bandpass",
            Self::Bandstop => "bandstop",
        }
    }

    fn n_cutoffs(self) -> usize {
        match self {
            Self::Lowpass | Self::Highpass => 1,
            Self::Bandpass | Self::Bandstop => 2,
        }
    }
}

/// Zeros, poles and gain of a transfer function.
struct Zpk {
    z: Vec<C64>,
    p: Vec<C64>,
    k: f64,
}

fn check_fs(fs: f64) -> Result<(), FilterError> {
    if fs.is_finite() && fs > 0.0 {
        Ok(())
    } else {
        Err(FilterError::InvalidSampleRate { fs })
    }
}

fn check_freq(freq_hz: f64, fs: f64) -> Result<(), FilterError> {
    if !(freq_hz.is_finite() && freq_hz > 0.0) {
        return Err(FilterError::FrequencyNotPositive { freq_hz });
    }
    if freq_hz >= fs / 2.0 || freq_hz / (fs / 2.0) >= 1.0 {
        return Err(FilterError::FrequencyAboveNyquist { freq_hz, fs });
    }
    Ok(())
}

/// Designs a digital Butterworth filter as second-order sections, matching `scipy.signal.butter(order, cutoff_hz, band, fs=fs, output='sos')`.
///
/// `cutoff_hz` holds one cutoff for lowpass/highpass and `[low, high]` band edges for
/// bandpass/bandstop, all strictly between 0 Hz and the Nyquist frequency `fs / 2`.
/// Bandpass and bandstop filters have `2 * order` poles.
pub fn butter(
    order: usize,
    cutoff_hz: &[f64],
    band: BandType,
    fs: f64,
) -> Result<Sos, FilterError> {
    check_fs(fs)?;
    if order == 0 || order > MAX_ORDER {
        return Err(FilterError::InvalidOrder { order });
    }
    if cutoff_hz.len() != band.n_cutoffs() {
        return Err(FilterError::WrongCutoffCount {
            band: band.name(),
            got: cutoff_hz.len(),
            expected: band.n_cutoffs(),
        });
    }
    for &c in cutoff_hz {
        check_freq(c, fs)?;
    }
    if cutoff_hz.len() == 2 && cutoff_hz[0] >= cutoff_hz[1] {
        return Err(FilterError::BandEdgesReversed {
            low_hz: cutoff_hz[0],
            high_hz: cutoff_hz[1],
        });
    }

    // Normalise to the Nyquist frequency and prewarp for the bilinear transform (scipy uses fs = 2 here).
    let warped: Vec<f64> = cutoff_hz
        .iter()
        .map(|&c| {
            let wn = c / (fs / 2.0);
            2.0 * 2.0 * (PI * wn / 2.0).tan()
        })
        .collect();

    let proto = buttap(order);
    let analog = match band {
        BandType::Lowpass => lp2lp(proto, warped[0]),
        BandType::Highpass => lp2hp(proto, warped[0]),
        BandType::Bandpass | BandType::Bandstop => {
            let bw = warped[1] - warped[0];
            let wo = (warped[0] * warped[1]).sqrt();
            if band == BandType::Bandpass {
                lp2bp(proto, wo, bw)
            } else {
                lp2bs(proto, wo, bw)
            }
        }
    };
    let digital = bilinear(analog, 2.0);
    zpk2sos(digital)
}

/// Designs a second-order IIR notch at `freq_hz` with quality `quality` (bandwidth `freq_hz / quality` at -3 dB), matching `scipy.signal.iirnotch`.
///
/// The result is the single section `[b0, b1, b2, 1, a1, a2]` equal to `tf2sos(*iirnotch(...))`.
pub fn notch(freq_hz: f64, quality: f64, fs: f64) -> Result<Sos, FilterError> {
    check_fs(fs)?;
    check_freq(freq_hz, fs)?;
    if !(quality.is_finite() && quality > 0.0) {
        return Err(FilterError::InvalidQuality { quality });
    }
    let w0 = 2.0 * freq_hz / fs;
    let bw = w0 / quality * PI;
    let w0 = w0 * PI;
    let beta = (bw / 2.0).tan();
    let gain = 1.0 / (1.0 + beta);
    let cos_w0 = w0.cos();
    Ok(Sos(vec![[
        gain,
        gain * (-2.0 * cos_w0),
        gain,
        1.0,
        -2.0 * gain * cos_w0,
        2.0 * gain - 1.0,
    ]]))
}

/// Analog Butterworth lowpass prototype with a 1 rad/s cutoff, as `scipy.signal.buttap`.
fn buttap(order: usize) -> Zpk {
    let n = order as f64;
    let p = (0..order)
        .map(|i| {
            let m = -n + 1.0 + 2.0 * i as f64;
            // Same operation order as numpy: (1j * pi * m) / (2 * N), then exp.
            let arg = C64::new(0.0, PI).scale(m).div(C64::real(2.0 * n));
            let e = arg.re.exp();
            -C64::new(e * arg.im.cos(), e * arg.im.sin())
        })
        .collect();
    Zpk {
        z: Vec::new(),
        p,
        k: 1.0,
    }
}

fn relative_degree(zpk: &Zpk) -> usize {
    zpk.p.len().saturating_sub(zpk.z.len())
}

fn lp2lp(zpk: Zpk, wo: f64) -> Zpk {
    let degree = relative_degree(&zpk);
    Zpk {
        z: zpk.z.iter().map(|&z| C64::real(wo) * z).collect(),
        p: zpk.p.iter().map(|&p| C64::real(wo) * p).collect(),
        k: zpk.k * wo.powf(degree as f64),
    }
}

fn lp2hp(zpk: Zpk, wo: f64) -> Zpk {
    let degree = relative_degree(&zpk);
    let mut z: Vec<C64> = zpk.z.iter().map(|&z| C64::real(wo).div(z)).collect();
    z.extend(std::iter::repeat_n(C64::real(0.0), degree));
    let neg_z: Vec<C64> = zpk.z.iter().map(|&z| -z).collect();
    let neg_p: Vec<C64> = zpk.p.iter().map(|&p| -p).collect();
    Zpk {
        z,
        p: zpk.p.iter().map(|&p| C64::real(wo).div(p)).collect(),
        k: zpk.k * prod(&neg_z).div(prod(&neg_p)).re,
    }
}

/// Duplicates each root and shifts the copies to `+wo` and `-wo`: `r ± sqrt(r^2 - wo^2)`.
fn shift_pairs(roots: &[C64], wo: f64) -> Vec<C64> {
    let disc = |r: C64| (r * r - C64::real(wo.powf(2.0))).sqrt();
    let plus = roots.iter().map(|&r| r + disc(r));
    let minus = roots.iter().map(|&r| r - disc(r));
    plus.chain(minus).collect()
}

fn lp2bp(zpk: Zpk, wo: f64, bw: f64) -> Zpk {
    let degree = relative_degree(&zpk);
    let z_lp: Vec<C64> = zpk
        .z
        .iter()
        .map(|&z| z.scale(bw).div(C64::real(2.0)))
        .collect();
    let p_lp: Vec<C64> = zpk
        .p
        .iter()
        .map(|&p| p.scale(bw).div(C64::real(2.0)))
        .collect();
    let mut z = shift_pairs(&z_lp, wo);
    z.extend(std::iter::repeat_n(C64::real(0.0), degree));
    Zpk {
        z,
        p: shift_pairs(&p_lp, wo),
        k: zpk.k * bw.powf(degree as f64),
    }
}

fn lp2bs(zpk: Zpk, wo: f64, bw: f64) -> Zpk {
    let degree = relative_degree(&zpk);
    let half = C64::real(bw / 2.0);
    let z_hp: Vec<C64> = zpk.z.iter().map(|&z| half.div(z)).collect();
    let p_hp: Vec<C64> = zpk.p.iter().map(|&p| half.div(p)).collect();
    let mut z = shift_pairs(&z_hp, wo);
    z.extend(std::iter::repeat_n(C64::new(0.0, wo), degree));
    z.extend(std::iter::repeat_n(C64::new(0.0, -wo), degree));
    let neg_z: Vec<C64> = zpk.z.iter().map(|&z| -z).collect();
    let neg_p: Vec<C64> = zpk.p.iter().map(|&p| -p).collect();
    Zpk {
        z,
        p: shift_pairs(&p_hp, wo),
        k: zpk.k * prod(&neg_z).div(prod(&neg_p)).re,
    }
}

/// Bilinear (Tustin) transform of an analog zpk to digital, as `scipy.signal.bilinear_zpk`.
fn bilinear(zpk: Zpk, fs: f64) -> Zpk {
    let degree = relative_degree(&zpk);
    let fs2 = C64::real(2.0 * fs);
    let mut z: Vec<C64> = zpk.z.iter().map(|&z| (fs2 + z).div(fs2 - z)).collect();
    z.extend(std::iter::repeat_n(C64::real(-1.0), degree));
    let p = zpk.p.iter().map(|&p| (fs2 + p).div(fs2 - p)).collect();
    let num: Vec<C64> = zpk.z.iter().map(|&z| fs2 - z).collect();
    let den: Vec<C64> = zpk.p.iter().map(|&p| fs2 - p).collect();
    Zpk {
        z,
        p,
        k: zpk.k * prod(&num).div(prod(&den)).re,
    }
}

/// Splits roots into one representative per conjugate pair (positive imaginary part) and the real roots, as scipy's `_cplxreal`.
fn cplxreal(roots: &[C64]) -> Result<(Vec<C64>, Vec<f64>), FilterError> {
    let tol = 100.0 * f64::EPSILON;
    let mut z = roots.to_vec();
    z.sort_by(|a, b| {
        a.re.total_cmp(&b.re)
            .then_with(|| a.im.abs().total_cmp(&b.im.abs()))
    });
    let (real, cplx): (Vec<C64>, Vec<C64>) =
        z.into_iter().partition(|r| r.im.abs() <= tol * r.abs());
    let zr: Vec<f64> = real.iter().map(|r| r.re).collect();
    if cplx.is_empty() {
        return Ok((Vec::new(), zr));
    }
    let mut zp: Vec<C64> = cplx.iter().copied().filter(|r| r.im > 0.0).collect();
    let mut zn: Vec<C64> = cplx.iter().copied().filter(|r| r.im < 0.0).collect();
    let unpaired = || FilterError::Internal {
        detail: "complex root without a matching conjugate".to_string(),
    };
    if zp.len() != zn.len() {
        return Err(unpaired());
    }
    // Runs of (nearly) equal real part are re-sorted by imaginary magnitude.
    let same_real: Vec<bool> = zp
        .windows(2)
        .map(|w| w[1].re - w[0].re <= tol * w[0].abs())
        .collect();
    let mut start = 0;
    while start < same_real.len() {
        if !same_real[start] {
            start += 1;
            continue;
        }
        let mut stop = start;
        while stop < same_real.len() && same_real[stop] {
            stop += 1;
        }
        // Elements start..=stop share (nearly) the same real part.
        for chunk in [&mut zp[start..=stop], &mut zn[start..=stop]] {
            chunk.sort_by(|a, b| a.im.abs().total_cmp(&b.im.abs()));
        }
        start = stop + 1;
    }
    if zp
        .iter()
        .zip(&zn)
        .any(|(&a, &b)| (a - b.conj()).abs() > tol * b.abs())
    {
        return Err(unpaired());
    }
    let zc = zp
        .iter()
        .zip(&zn)
        .map(|(&a, &b)| (a + b.conj()).div(C64::real(2.0)))
        .collect();
    Ok((zc, zr))
}

/// Index of the root closest to the unit circle (first on ties), scipy's digital `idx_worst`.
fn idx_worst(roots: &[C64], candidates: impl Iterator<Item = usize>) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for i in candidates {
        let d = (1.0 - roots[i].abs()).abs();
        if best.is_none_or(|(_, bd)| d < bd) {
            best = Some((i, d));
        }
    }
    best.map(|(i, _)| i)
}

#[derive(Clone, Copy, PartialEq)]
enum Which {
    Real,
    Complex,
    Any,
}

/// Index of the root in `from` nearest to `to` with the requested realness, as scipy's `_nearest_real_complex_idx`.
fn nearest_idx(from: &[C64], to: C64, which: Which) -> Result<usize, FilterError> {
    let mut order: Vec<usize> = (0..from.len()).collect();
    order.sort_by(|&a, &b| (from[a] - to).abs().total_cmp(&(from[b] - to).abs()));
    order
        .into_iter()
        .find(|&i| match which {
            Which::Any => true,
            Which::Real => from[i].is_real(),
            Which::Complex => !from[i].is_real(),
        })
        .ok_or_else(|| FilterError::Internal {
            detail: "no zero left to pair with a pole".to_string(),
        })
}

/// Monic polynomial coefficients (highest power first) with the given roots, real part as numpy's `poly` keeps for conjugate sets.
fn poly(roots: &[C64]) -> Vec<f64> {
    let mut a = vec![C64::real(1.0)];
    for &r in roots {
        let v = [C64::real(1.0), -r];
        let mut out = vec![C64::real(0.0); a.len() + 1];
        for (i, &ai) in a.iter().enumerate() {
            for (j, &vj) in v.iter().enumerate() {
                out[i + j] = out[i + j] + ai * vj;
            }
        }
        a = out;
    }
    a.iter().map(|c| c.re).collect()
}

/// One section from up to two zeros and two poles, coefficients right-aligned as scipy's `_single_zpksos`.
fn single_section(z: &[C64], p: &[C64]) -> [f64; 6] {
    let mut sos = [0.0; 6];
    let b = poly(z);
    let a = poly(p);
    sos[3 - b.len()..3].copy_from_slice(&b);
    sos[6 - a.len()..6].copy_from_slice(&a);
    sos
}

/// Converts a digital zpk to second-order sections exactly as `scipy.signal.zpk2sos(z, p, k, pairing='nearest')`.
fn zpk2sos(zpk: Zpk) -> Result<Sos, FilterError> {
    let Zpk { mut z, mut p, k } = zpk;
    if z.is_empty() && p.is_empty() {
        return Ok(Sos(vec![[k, 0.0, 0.0, 1.0, 0.0, 0.0]]));
    }
    let n = z.len().max(p.len());
    z.resize(n, C64::real(0.0));
    p.resize(n, C64::real(0.0));
    let n_sections = n.div_ceil(2);
    if n % 2 == 1 {
        z.push(C64::real(0.0));
        p.push(C64::real(0.0));
    }
    let join = |(c, r): (Vec<C64>, Vec<f64>)| -> Vec<C64> {
        c.into_iter().chain(r.into_iter().map(C64::real)).collect()
    };
    let mut z = join(cplxreal(&z)?);
    let mut p = join(cplxreal(&p)?);
    let missing = || FilterError::Internal {
        detail: "pole/zero bookkeeping in zpk2sos".to_string(),
    };

    let mut sos = vec![[0.0; 6]; n_sections];
    for si in (0..n_sections).rev() {
        let p1_idx = idx_worst(&p, 0..p.len()).ok_or_else(missing)?;
        let p1 = p.remove(p1_idx);
        let n_real_p = p.iter().filter(|r| r.is_real()).count();
        let n_real_z = z.iter().filter(|r| r.is_real()).count();

        sos[si] = if p1.is_real() && n_real_p == 0 {
            // Last remaining real pole: pair with the nearest real zero as a first-order section.
            let z1 = z.remove(nearest_idx(&z, p1, Which::Real)?);
            single_section(&[z1, C64::real(0.0)], &[p1, C64::real(0.0)])
        } else if p.len() + 1 == z.len() && !p1.is_real() && n_real_p == 1 && n_real_z == 1 {
            // One real pole and one real zero remain: this complex pole must take a complex zero.
            let z1 = z.remove(nearest_idx(&z, p1, Which::Complex)?);
            single_section(&[z1, z1.conj()], &[p1, p1.conj()])
        } else {
            let p2 = if p1.is_real() {
                let p2_idx =
                    idx_worst(&p, (0..p.len()).filter(|&i| p[i].is_real())).ok_or_else(missing)?;
                p.remove(p2_idx)
            } else {
                p1.conj()
            };
            if z.is_empty() {
                single_section(&[], &[p1, p2])
            } else {
                let z1 = z.remove(nearest_idx(&z, p1, Which::Any)?);
                if !z1.is_real() {
                    single_section(&[z1, z1.conj()], &[p1, p2])
                } else if z.is_empty() {
                    single_section(&[z1], &[p1, p2])
                } else {
                    let z2 = z.remove(nearest_idx(&z, p1, Which::Real)?);
                    single_section(&[z1, z2], &[p1, p2])
                }
            }
        };
    }
    if !p.is_empty() || !z.is_empty() {
        return Err(missing());
    }
    for v in &mut sos[0][..3] {
        *v *= k;
    }
    Ok(Sos(sos))
}
