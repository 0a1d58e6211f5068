//! ECG cleaning and R-peak detection, as NeuroKit2's default `ecg_clean` / `ecg_peaks` (`neurokit`),
//! and the artefact-corrected R-peaks `ecg_process` reports.

use super::fixpeaks::fix_peaks_kubios;
use super::peaks::{wave_edges_of_bits, WaveDetector};
use super::smooth::{
    moving_average_filtfilt_padded, moving_average_margin, sliding_means_exceeded,
    sliding_means_into,
};
use crate::dsp::filter::{butter, sosfiltfilt_into, BandType, FilterError, SlidingFiltfilt};

/// What [`ecg_r_peaks`] keeps from one window of a stream to the next: the high-pass filter that
/// reuses the overlap of consecutive windows, and buffers allocated once.
#[derive(Debug, Default)]
pub struct EcgScratch {
    /// The 0.5 Hz high-pass for the sampling rate it was designed for.
    highpass: Option<(f64, SlidingFiltfilt)>,
    highpassed: Vec<f64>,
    clean: Vec<f64>,
    padded: Vec<f64>,
    smooth: Vec<f64>,
    means: Vec<f64>,
    /// Where the smoothed gradient exceeds its threshold, a bit per sample.
    above: Vec<u64>,
}

/// Cleans one ECG segment: 0.5 Hz Butterworth highpass (order 5, zero phase) then the 50 Hz
/// powerline moving average (`fs / 50` taps, zero phase), as `nk.ecg_clean(x, fs)`.
pub fn ecg_clean(x: &[f64], fs: f64) -> Result<Vec<f64>, FilterError> {
    let mut scratch = EcgScratch::default();
    clean_into(x, None, fs, &mut scratch)?;
    Ok(scratch.clean)
}

/// R-peak sample indices of a cleaned ECG segment, as `nk.ecg_peaks(clean, fs)` (method `neurokit`).
///
/// QRS complexes are where the smoothed absolute gradient (0.1 s boxcar) exceeds 1.5 times its
/// 0.75 s average; each long-enough complex gives its most prominent maximum, at least 0.3 s apart.
pub fn ecg_peaks(clean: &[f64], fs: f64) -> Vec<usize> {
    let mut scratch = EcgScratch::default();
    peaks_of_clean(clean, fs, &mut scratch)
}

/// [`ecg_clean`] then [`ecg_peaks`] on one raw segment. When `first_sample` gives the segment's
/// position in its stream, consecutive overlapping segments passed with the same `scratch` share
/// their high-pass work (results equal to filtering each segment alone, to rounding); pass `None`
/// for a segment whose samples differ from the stream's (e.g. gaps filled for this window only).
pub fn ecg_r_peaks(
    x: &[f64],
    first_sample: Option<u64>,
    fs: f64,
    scratch: &mut EcgScratch,
) -> Result<Vec<usize>, FilterError> {
    clean_into(x, first_sample, fs, scratch)?;
    let clean = std::mem::take(&mut scratch.clean);
    let peaks = peaks_of_clean(&clean, fs, scratch);
    scratch.clean = clean;
    Ok(peaks)
}

/// The R-peaks `nk.ecg_process(x, fs)` reports (`info["ECG_R_Peaks"]`): [`ecg_r_peaks`] corrected
/// for artefacts as `ecg_peaks(..., correct_artifacts=True)` does ([`fix_peaks_kubios`]).
pub fn ecg_process_peaks(
    x: &[f64],
    first_sample: Option<u64>,
    fs: f64,
    scratch: &mut EcgScratch,
) -> Result<Vec<usize>, FilterError> {
    Ok(fix_peaks_kubios(
        &ecg_r_peaks(x, first_sample, fs, scratch)?,
        fs,
    ))
}

/// Writes the cleaned segment into `scratch.clean`; `first_sample` (the segment's position in its
/// stream) lets the high-pass reuse the previous segment's work.
fn clean_into(
    x: &[f64],
    first_sample: Option<u64>,
    fs: f64,
    scratch: &mut EcgScratch,
) -> Result<(), FilterError> {
    let taps = if fs >= 100.0 { (fs / 50.0) as usize } else { 2 };
    let EcgScratch {
        highpass: sliding,
        highpassed,
        clean,
        padded,
        means,
        ..
    } = scratch;
    // The high-passed signal goes straight after the margin the moving average pads into.
    padded.clear();
    padded.resize(moving_average_margin(taps), 0.0);
    match first_sample {
        None => {
            if let Some((_, filter)) = sliding {
                filter.reset();
            }
            padded.extend_from_slice(sosfiltfilt_into(&highpass(fs)?, x, highpassed)?);
        }
        Some(first) => {
            let filter = match sliding {
                Some((rate, filter)) if *rate == fs => filter,
                slot => &mut slot.insert((fs, SlidingFiltfilt::new(&highpass(fs)?)?)).1,
            };
            filter.filter(first, x, padded)?;
        }
    }
    moving_average_filtfilt_padded(padded, taps, means, clean);
    Ok(())
}

/// NeuroKit2's ECG high-pass: 0.5 Hz Butterworth, order 5.
fn highpass(fs: f64) -> Result<crate::dsp::filter::Sos, FilterError> {
    butter(5, &[0.5], BandType::Highpass, fs)
}

/// The R-peaks of `clean`, with `scratch`'s buffers other than `clean` as work space.
fn peaks_of_clean(clean: &[f64], fs: f64, scratch: &mut EcgScratch) -> Vec<usize> {
    let EcgScratch {
        padded,
        smooth: smoothgrad,
        above,
        ..
    } = scratch;
    let n = clean.len();
    if n < 3 {
        return Vec::new();
    }
    let smooth_size = ((0.1 * fs).round_ties_even() as usize).clamp(1, n);
    let avg_size = ((0.75 * fs).round_ties_even() as usize).clamp(1, n);
    // |numpy.gradient(clean)|, written straight into the edge-padded layout the boxcar reads.
    let half = smooth_size / 2;
    padded.clear();
    padded.reserve(n + smooth_size - 1);
    let first_slope = (clean[1] - clean[0]).abs();
    let last_slope = (clean[n - 1] - clean[n - 2]).abs();
    padded.resize(half + 1, first_slope);
    padded.extend(clean.windows(3).map(|w| ((w[2] - w[0]) * 0.5).abs()));
    padded.resize(n + smooth_size - 1, last_slope);
    // The smoothed gradient goes straight into the edge-padded layout of the second average.
    let half_avg = avg_size / 2;
    smoothgrad.truncate(n + avg_size - 1);
    smoothgrad.resize(n + avg_size - 1, 0.0);
    sliding_means_into(
        padded,
        smooth_size,
        1.0 / smooth_size as f64,
        &mut smoothgrad[half_avg..half_avg + n],
    );
    let (first, last) = (smoothgrad[half_avg], smoothgrad[half_avg + n - 1]);
    smoothgrad[..half_avg].fill(first);
    smoothgrad[half_avg + n..].fill(last);
    // QRS complexes: where the smoothed gradient exceeds 1.5 times its moving average.
    sliding_means_exceeded(
        smoothgrad,
        avg_size,
        1.0 / avg_size as f64,
        &smoothgrad[half_avg..half_avg + n],
        1.5,
        above,
    );
    let (begins, ends) = wave_edges_of_bits(above, n);
    if begins.is_empty() {
        return Vec::new();
    }
    let mean_len = begins
        .iter()
        .zip(&ends)
        .map(|(b, e)| (e - b) as f64)
        .sum::<f64>()
        / begins.len() as f64;
    WaveDetector {
        min_len: mean_len * 0.4,
        min_delay: (0.3 * fs).round_ties_even() as usize,
    }
    .detect_in_waves(clean, &begins, &ends)
}
