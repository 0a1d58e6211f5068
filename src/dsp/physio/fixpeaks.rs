//! Beat artefact correction, as NeuroKit2's `signal_fixpeaks(peaks, fs, method="Kubios")`
//! (Lipponen & Tarvainen 2019), which `nk.ecg_process` applies to the R-peaks it detects
//! (`ecg_peaks(..., correct_artifacts=True)`).
//!
//! Successive period differences and deviations from the 11-beat median, each normalised by a
//! threshold from their 91-beat interquartile range, classify beats as ectopic, missed, extra or
//! long/short; extra beats are deleted, missed ones inserted halfway, the others moved halfway
//! between their neighbours. Detection and correction repeat while the number of artefacts falls.

/// Subspace boundaries of the ectopic criterion (NeuroKit2's `c1`, `c2`).
const C1: f64 = 0.13;
const C2: f64 = 0.17;
/// Threshold scale applied to half the interquartile range.
const ALPHA: f64 = 5.2;
/// Beats in the rolling window of the thresholds.
const THRESHOLD_WINDOW: usize = 91;
/// Beats in the rolling median of the periods.
const MEDIAN_WINDOW: usize = 11;

/// Beat indices (into the peak list) of each artefact class, as NeuroKit2's `_find_artifacts`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Artifacts {
    /// Ectopic beats (moved).
    pub ectopic: Vec<usize>,
    /// Beats after a missed one (a beat is inserted before them).
    pub missed: Vec<usize>,
    /// Extra beats (deleted).
    pub extra: Vec<usize>,
    /// Long or short periods (moved).
    pub longshort: Vec<usize>,
}

impl Artifacts {
    /// How many artefacts of all classes.
    pub fn count(&self) -> usize {
        self.ectopic.len() + self.missed.len() + self.extra.len() + self.longshort.len()
    }
}

/// `peaks` (sample indices, increasing) with artefacts corrected, as
/// `nk.signal_fixpeaks(peaks, fs, method="Kubios")[1]` (iterative, the default).
pub fn fix_peaks_kubios(peaks: &[usize], fs: f64) -> Vec<usize> {
    let artifacts = find_artifacts(peaks, fs);
    let mut current = artifacts.count();
    let mut clean = correct_artifacts(&artifacts, peaks);
    loop {
        let found = find_artifacts(&clean, fs);
        let previous = current;
        current = found.count();
        if current >= previous {
            return clean;
        }
        clean = correct_artifacts(&found, &clean);
    }
}

/// The artefacts of `peaks`, as NeuroKit2's `_find_artifacts` with its defaults.
pub fn find_artifacts(peaks: &[usize], fs: f64) -> Artifacts {
    let n = peaks.len();
    let mut artifacts = Artifacts::default();
    // The classification reads two beats ahead: with fewer than three there is nothing to find.
    if n < 3 {
        return artifacts;
    }
    let mut rr: Vec<f64> = std::iter::once(0.0)
        .chain(peaks.windows(2).map(|w| (w[1] as f64 - w[0] as f64) / fs))
        .collect();
    rr[0] = mean(&rr[1..]);
    let mut drrs: Vec<f64> = std::iter::once(0.0)
        .chain(rr.windows(2).map(|w| w[1] - w[0]))
        .collect();
    drrs[0] = mean(&drrs[1..]);
    let th1 = threshold(&drrs);
    for (d, t) in drrs.iter_mut().zip(&th1) {
        *d = if *t != 0.0 { *d / t } else { f64::NAN };
    }
    // numpy's `np.pad(drrs, 2, "reflect")`, read through an index.
    let padded = |k: usize| -> f64 {
        match k {
            0 => drrs[2],
            1 => drrs[1],
            _ if k - 2 < n => drrs[k - 2],
            _ => drrs[2 * n - (k - 2) - 2],
        }
    };
    let (mut s12, mut s22) = (vec![0.0; n], vec![0.0; n]);
    for i in 0..n {
        let d = i + 2;
        let here = padded(d);
        if here > 0.0 {
            s12[i] = nan_max(padded(d - 1), padded(d + 1));
        } else if here < 0.0 {
            s12[i] = nan_min(padded(d - 1), padded(d + 1));
        }
        if here >= 0.0 {
            s22[i] = nan_min(padded(d + 1), padded(d + 2));
        } else if here < 0.0 {
            s22[i] = nan_max(padded(d + 1), padded(d + 2));
        }
    }
    let medrr = rolling_median(&rr, MEDIAN_WINDOW);
    let mut mrrs: Vec<f64> = rr
        .iter()
        .zip(&medrr)
        .map(|(r, m)| {
            let deviation = r - m;
            if deviation < 0.0 {
                deviation * 2.0
            } else {
                deviation
            }
        })
        .collect();
    let th2 = threshold(&mrrs);
    for (d, t) in mrrs.iter_mut().zip(&th2) {
        *d = if *t != 0.0 { *d / t } else { f64::NAN };
    }
    // The flow of NeuroKit2's loop (Lipponen & Tarvainen 2019, figure 1), comparisons with NaN
    // false as in numpy.
    let mut i = 0;
    while i + 2 < n {
        if drrs[i].abs() <= 1.0 {
            i += 1;
            continue;
        }
        let eq1 = drrs[i] > 1.0 && s12[i] < -C1 * drrs[i] - C2;
        let eq2 = drrs[i] < -1.0 && s12[i] > -C1 * drrs[i] + C2;
        if eq1 || eq2 {
            artifacts.ectopic.push(i);
            i += 1;
            continue;
        }
        if !(drrs[i].abs() > 1.0 || mrrs[i].abs() > 3.0) {
            i += 1;
            continue;
        }
        let mut candidates = vec![i];
        if drrs[i + 1].abs() < drrs[i + 2].abs() {
            candidates.push(i + 1);
        }
        // Each candidate advances `i` by one, whatever its class (as NeuroKit2's inner loop).
        for j in candidates {
            i += 1;
            let long = drrs[j] > 1.0 && s22[j] < -1.0;
            let long_or_short = mrrs[j].abs() > 3.0;
            let short = drrs[j] < -1.0 && s22[j] > 1.0;
            if !(long || long_or_short || short) {
                continue;
            }
            let missed = (rr[j] / 2.0 - medrr[j]).abs() < th2[j];
            let extra = (rr[j] + rr[j + 1] - medrr[j]).abs() < th2[j];
            if short && extra {
                artifacts.extra.push(j);
            } else if long && missed {
                artifacts.missed.push(j);
            } else {
                artifacts.longshort.push(j);
            }
        }
    }
    artifacts
}

/// `peaks` corrected for `artifacts`, as NeuroKit2's `_correct_artifacts`: extra beats deleted,
/// missed ones inserted, ectopic then long/short ones moved, other classes' indices kept in step.
pub fn correct_artifacts(artifacts: &Artifacts, peaks: &[usize]) -> Vec<usize> {
    let mut peaks = peaks.to_vec();
    let mut missed = artifacts.missed.clone();
    let mut ectopic = artifacts.ectopic.clone();
    let mut longshort = artifacts.longshort.clone();
    let extra = &artifacts.extra;
    if !extra.is_empty() {
        let mut k = 0;
        peaks.retain(|_| {
            k += 1;
            !extra.contains(&(k - 1))
        });
        missed = shift_indices(extra, &missed, false);
        ectopic = shift_indices(extra, &ectopic, false);
        longshort = shift_indices(extra, &longshort, false);
    }
    if !missed.is_empty() {
        peaks = insert_missed(&missed, &peaks);
        ectopic = shift_indices(&missed, &ectopic, true);
        longshort = shift_indices(&missed, &longshort, true);
    }
    if !ectopic.is_empty() {
        peaks = move_misaligned(&ectopic, &peaks);
    }
    if !longshort.is_empty() {
        peaks = move_misaligned(&longshort, &peaks);
    }
    peaks
}

/// NeuroKit2's `_update_indices`: for each source index in turn, every index above it moves by
/// one (up when `up`), then the list is sorted and deduplicated.
fn shift_indices(sources: &[usize], indices: &[usize], up: bool) -> Vec<usize> {
    if indices.is_empty() {
        return Vec::new();
    }
    let mut shifted = indices.to_vec();
    for &s in sources {
        for u in &mut shifted {
            if *u > s {
                *u = if up { *u + 1 } else { *u - 1 };
            }
        }
    }
    shifted.sort_unstable();
    shifted.dedup();
    shifted
}

/// Halfway between two beat positions, truncated to a sample as numpy's integer cast.
fn halfway(previous: usize, next: usize) -> usize {
    let position = previous as f64 + (next as f64 - previous as f64) / 2.0;
    position as usize
}

/// NeuroKit2's `_correct_missed`: a beat halfway before each index (from 2 to the last), inserted
/// before it (indices sorted and distinct).
fn insert_missed(missed: &[usize], peaks: &[usize]) -> Vec<usize> {
    let valid: Vec<usize> = missed
        .iter()
        .copied()
        .filter(|&m| m > 1 && m < peaks.len())
        .collect();
    let mut out = Vec::with_capacity(peaks.len() + valid.len());
    let mut next = valid.iter().peekable();
    for (k, &p) in peaks.iter().enumerate() {
        while next.next_if(|&&m| m == k).is_some() {
            out.push(halfway(peaks[k - 1], peaks[k]));
        }
        out.push(p);
    }
    out
}

/// NeuroKit2's `_correct_misaligned`: each index (from 2 to the last but one) moved halfway
/// between its neighbours, then sorted.
fn move_misaligned(misaligned: &[usize], peaks: &[usize]) -> Vec<usize> {
    let valid: Vec<usize> = misaligned
        .iter()
        .copied()
        .filter(|&m| m > 1 && m + 1 < peaks.len())
        .collect();
    let moved: Vec<usize> = valid
        .iter()
        .map(|&m| halfway(peaks[m - 1], peaks[m + 1]))
        .collect();
    let mut out: Vec<usize> = peaks
        .iter()
        .enumerate()
        .filter(|(k, _)| !valid.contains(k))
        .map(|(_, &p)| p)
        .chain(moved)
        .collect();
    out.sort_unstable();
    out
}

/// NeuroKit2's `_compute_threshold`: `ALPHA` times half the interquartile range of `|values|` over
/// a centred rolling window of `THRESHOLD_WINDOW` beats (pandas, `min_periods=1`).
fn threshold(values: &[f64]) -> Vec<f64> {
    let absolute: Vec<f64> = values.iter().map(|v| v.abs()).collect();
    rolling(&absolute, THRESHOLD_WINDOW, |sorted| {
        ALPHA * ((quantile(sorted, 0.75) - quantile(sorted, 0.25)) / 2.0)
    })
}

/// pandas' `rolling(window, center=True, min_periods=1).median()`.
fn rolling_median(values: &[f64], window: usize) -> Vec<f64> {
    rolling(values, window, |sorted| {
        let mid = sorted.len() / 2;
        if sorted.len() % 2 == 1 {
            sorted[mid]
        } else {
            (sorted[mid] + sorted[mid - 1]) / 2.0
        }
    })
}

/// `statistic` of the sorted values of pandas' centred window of odd length `window` around each
/// index, clipped at the ends. The sorted window slides: one insertion and one removal per step.
fn rolling(values: &[f64], window: usize, statistic: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let half = (window - 1) / 2;
    let n = values.len();
    let mut sorted: Vec<f64> = values[..(half + 1).min(n)].to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(statistic(&sorted));
        if let Some(&entering) = values.get(i + half + 1) {
            let at = sorted.partition_point(|v| v.total_cmp(&entering).is_lt());
            sorted.insert(at, entering);
        }
        if i >= half {
            let leaving = values[i - half];
            let at = sorted.partition_point(|v| v.total_cmp(&leaving).is_lt());
            sorted.remove(at);
        }
    }
    out
}

/// pandas' rolling quantile with linear interpolation, of sorted non-empty `sorted`.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.len() == 1 {
        return sorted[0];
    }
    let position = q * (sorted.len() - 1) as f64;
    let low = position as usize;
    if position == low as f64 {
        sorted[low]
    } else {
        let (a, b) = (sorted[low], sorted[low + 1]);
        a + (b - a) * (position - low as f64)
    }
}

/// Mean of a non-empty slice.
fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// numpy's `max` of two values: NaN when either is.
fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// numpy's `min` of two values: NaN when either is.
fn nan_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}
