use std::collections::HashMap;
use std::sync::OnceLock;

use super::*;
use emotion::partner_share;
use face::AU_TABLE;
use subject::SubjectWorld;

const START: Nanos = 1_234_567_890_123;

fn settings(seed: u64, subjects: usize, streams: &[SimStream]) -> SimulatorSettings {
    SimulatorSettings {
        seed,
        subjects: (0..subjects).map(|i| format!("S{i:02}")).collect(),
        streams: streams.to_vec(),
        start: START,
    }
}

fn secs(s: f64) -> Nanos {
    START + (s * NANOS_PER_SEC as f64).round() as Nanos
}

/// Runs the simulator with the given step sizes (cycled) up to `until` seconds.
fn run(settings: &SimulatorSettings, until: f64, steps: &[f64]) -> Vec<Batch> {
    let mut sim = Simulator::new(settings.clone());
    let mut out = Vec::new();
    let end = secs(until);
    let mut t = START;
    let mut i = 0;
    while t < end {
        t = (t + (steps[i % steps.len()] * NANOS_PER_SEC as f64) as Nanos).min(end);
        let before = out.len();
        sim.advance(t, &mut out);
        assert_eq!(sim.produced_until(), t);
        // One batch per (subject, stream) at most, in subject then stream order.
        let keys: Vec<(usize, u32)> = out[before..]
            .iter()
            .map(|b| {
                let s = settings.subjects.iter().position(|x| *x == b.subject);
                (s.unwrap(), b.stream)
            })
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "batch order {keys:?}");
        assert!(out[before..].iter().all(|b| !b.is_empty()));
        i += 1;
    }
    out
}

/// Concatenates batches per (subject, stream index).
fn merge(batches: &[Batch]) -> HashMap<(String, u32), (Vec<Nanos>, Values)> {
    let mut map: HashMap<(String, u32), (Vec<Nanos>, Values)> = HashMap::new();
    for b in batches {
        let entry = map
            .entry((b.subject.clone(), b.stream))
            .or_insert_with(|| match b.values {
                Values::Numeric(_) => (Vec::new(), Values::Numeric(Vec::new())),
                Values::Text(_) => (Vec::new(), Values::Text(Vec::new())),
            });
        entry.0.extend_from_slice(&b.timestamps);
        match (&mut entry.1, &b.values) {
            (Values::Numeric(a), Values::Numeric(v)) => a.extend_from_slice(v),
            (Values::Text(a), Values::Text(v)) => a.extend_from_slice(v),
            _ => panic!("mixed value kinds"),
        }
    }
    map
}

fn numeric<'a>(
    map: &'a HashMap<(String, u32), (Vec<Nanos>, Values)>,
    subject: &str,
    stream: u32,
) -> &'a [f64] {
    match &map[&(subject.to_string(), stream)].1 {
        Values::Numeric(v) => v,
        Values::Text(_) => panic!("not numeric"),
    }
}

fn correlation(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len()) as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    sxy / (sxx * syy).sqrt()
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len().max(1) as f64
}

#[test]
fn names_rates_and_schemas() {
    let subjects = vec!["a".to_string(), "b".to_string()];
    for s in SimStream::ALL {
        assert_eq!(SimStream::from_name(s.name()), Some(s));
        let schema = s.schema("sim", &subjects);
        assert_eq!(schema.name, format!("sim.{}", s.name()));
        assert_eq!(schema.subjects, subjects);
        assert_eq!(schema.rate, s.rate());
        assert_eq!(schema.format.is_numeric(), s != SimStream::Markers);
    }
    assert_eq!(SimStream::from_name("nope"), None);
    assert_eq!(SimStream::Eeg.schema("x", &[]).channel_count(), 18);
    assert_eq!(SimStream::Face.schema("x", &[]).channel_count(), 19);
    assert_eq!(SimStream::Emotion.schema("x", &[]).labels(), EMOTION_LABELS);
    assert_eq!(SimStream::EdaFast.name(), "eda_700");
    assert_eq!(SimStream::EdaFast.schema("x", &[]).modality, Modality::Eda);
}

#[test]
fn step_size_does_not_change_output() {
    let s = settings(7, 2, &SimStream::ALL);
    let one = merge(&run(&s, 40.0, &[40.0]));
    let small = merge(&run(&s, 40.0, &[0.01]));
    let mixed = merge(&run(&s, 40.0, &[0.007, 0.333, 1e-9, 2.5, 0.0001, 17.0]));
    assert_eq!(one.len(), 2 * SimStream::ALL.len(), "every stream produced");
    for (key, value) in &one {
        assert_eq!(
            Some(value),
            small.get(key),
            "10 ms steps differ for {key:?}"
        );
        assert_eq!(
            Some(value),
            mixed.get(key),
            "mixed steps differ for {key:?}"
        );
    }
    assert_eq!(one.len(), small.len());
    assert_eq!(one.len(), mixed.len());
}

#[test]
fn sample_counts_and_timestamps() {
    let s = settings(3, 2, &SimStream::ALL);
    let merged = merge(&run(&s, 60.0, &[0.9]));
    for (index, stream) in SimStream::ALL.iter().enumerate() {
        for subject in &s.subjects {
            let (times, values) = &merged[&(subject.clone(), index as u32)];
            assert!(times.windows(2).all(|w| w[0] < w[1]), "{stream:?}");
            assert!(times.iter().all(|&t| (START..secs(60.0)).contains(&t)));
            let width = stream.channels().len();
            assert_eq!(values.len(), times.len() * width, "{stream:?}");
            match stream.rate() {
                Rate::Regular(hz) => {
                    assert_eq!(times.len() as f64, hz * 60.0, "{stream:?}");
                    for (k, &t) in times.iter().enumerate() {
                        assert_eq!(t, sample_time(START, k as u64, hz));
                    }
                }
                Rate::Irregular => {
                    let Values::Text(text) = values else {
                        panic!("markers are text")
                    };
                    assert!(!text.is_empty(), "a clip starts within 30 s");
                    assert!(text[0].starts_with("stimulus_start:clip_"), "{}", text[0]);
                    for pair in text.chunks(2) {
                        if let [a, b] = pair {
                            assert_eq!(a.replace("start", "end"), *b);
                        }
                    }
                }
            }
            if let Values::Numeric(v) = values {
                assert!(v.iter().all(|x| x.is_finite()), "{stream:?}");
            }
        }
    }
}

#[test]
fn nothing_before_start_or_twice() {
    let mut sim = Simulator::new(settings(1, 1, &SimStream::ALL));
    let mut out = Vec::new();
    sim.advance(START - 5, &mut out);
    sim.advance(START, &mut out);
    assert!(out.is_empty());
    sim.advance(START + 1, &mut out);
    // Only regular streams have a sample at `start`.
    assert_eq!(out.len(), SimStream::ALL.len() - 1);
    out.clear();
    sim.advance(START + 1, &mut out);
    sim.advance(START - 100, &mut out);
    assert!(out.is_empty());
    assert_eq!(sim.produced_until(), START + 1);
    let mut empty = Simulator::new(settings(1, 0, &[]));
    empty.advance(Nanos::MAX / 2, &mut out);
    assert!(out.is_empty());
}

#[test]
fn emotion_is_a_distribution_that_drifts() {
    let s = settings(11, 1, &[SimStream::Emotion]);
    let merged = merge(&run(&s, 300.0, &[5.0]));
    let v = numeric(&merged, "S00", 0);
    let rows: Vec<&[f64]> = v.chunks(10).collect();
    assert_eq!(rows.len(), 3000);
    for row in &rows {
        assert!(row.iter().all(|&p| p >= 0.0));
        // A distribution to float32 precision (the stream is float32: ten values of 6e-8 each).
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-6);
    }
    let moved = rows
        .iter()
        .map(|r| {
            r.iter()
                .zip(rows[0])
                .map(|(a, b)| (a - b).abs())
                .sum::<f64>()
        })
        .fold(0.0, f64::max);
    assert!(moved > 0.3, "distribution barely moved: {moved}");
}

#[test]
fn streams_do_not_affect_each_other() {
    let all = merge(&run(&settings(5, 2, &SimStream::ALL), 20.0, &[1.0]));
    let ecg = merge(&run(&settings(5, 2, &[SimStream::Ecg]), 20.0, &[1.0]));
    let some = merge(&run(
        &settings(5, 2, &[SimStream::Face, SimStream::Eda, SimStream::Ecg]),
        20.0,
        &[0.3],
    ));
    for subject in ["S00", "S01"] {
        let k = |i: u32| (subject.to_string(), i);
        assert_eq!(all[&k(1)], ecg[&k(0)]);
        assert_eq!(all[&k(1)], some[&k(2)]);
        assert_eq!(all[&k(2)], some[&k(1)]);
        assert_eq!(all[&k(8)], some[&k(0)]);
    }
    // A third subject does not change the first two.
    let three = merge(&run(&settings(5, 3, &[SimStream::Ecg]), 20.0, &[1.0]));
    assert_eq!(three[&("S01".to_string(), 0)], ecg[&("S01".to_string(), 0)]);
    // A subject is its id: simulated alone, S01 is the same person as beside S00.
    let mut alone = settings(5, 2, &[SimStream::Ecg]);
    alone.subjects = vec!["S01".to_string()];
    let alone = merge(&run(&alone, 20.0, &[1.0]));
    assert_eq!(alone[&("S01".to_string(), 0)], ecg[&("S01".to_string(), 0)]);
}

#[test]
fn seeds_and_subjects() {
    let a = run(&settings(42, 2, &SimStream::ALL), 10.0, &[1.0]);
    let b = run(&settings(42, 2, &SimStream::ALL), 10.0, &[1.0]);
    let c = run(&settings(43, 2, &SimStream::ALL), 10.0, &[1.0]);
    assert_eq!(a, b);
    let (a, c) = (merge(&a), merge(&c));
    for i in 0..10u32 {
        assert_ne!(a[&("S00".to_string(), i)], c[&("S00".to_string(), i)]);
        assert_ne!(a[&("S00".to_string(), i)].1, a[&("S01".to_string(), i)].1);
    }
}

/// Long two-stream-set run shared by the physiology tests.
struct Long {
    subjects: Vec<String>,
    data: HashMap<(String, u32), (Vec<Nanos>, Values)>,
}

const LONG_SECS: f64 = 1200.0;
const L_ECG: u32 = 0;
const L_EDA: u32 = 1;
const L_FACE: u32 = 2;
const L_EMO: u32 = 3;

fn long_run() -> &'static Long {
    static LONG: OnceLock<Long> = OnceLock::new();
    LONG.get_or_init(|| {
        let streams = [
            SimStream::Ecg,
            SimStream::Eda,
            SimStream::Face,
            SimStream::Emotion,
        ];
        let s = settings(2024, 3, &streams);
        Long {
            subjects: s.subjects.clone(),
            data: merge(&run(&s, LONG_SECS, &[30.0])),
        }
    })
}

/// Mean arousal and valence of the emotion rows in each window of `win` seconds.
fn affect_windows(long: &Long, subject: &str, win: f64) -> Vec<(f64, f64)> {
    affect_of(numeric(&long.data, subject, L_EMO), win)
}

/// Mean physiological factors (before subject gains) of 10 Hz emotion rows `emo` in each window
/// of `win` seconds.
fn physio_of(emo: &[f64], win: f64) -> Vec<Physio> {
    let per = (10.0 * win) as usize;
    emo.chunks(10 * per)
        .map(|w| {
            let mut sum = [0.0; 4];
            for row in w.chunks(10) {
                for (p, loading) in row.iter().zip(EMOTION_PHYSIOLOGY) {
                    for (s, l) in sum.iter_mut().zip(loading.to_array()) {
                        *s += p * l;
                    }
                }
            }
            let n = (w.len() / 10) as f64;
            Physio {
                arousal: sum[0] / n,
                vagal: sum[1] / n,
                valence: sum[2] / n,
                absorption: sum[3] / n,
            }
        })
        .collect()
}

/// Mean arousal and valence of 10 Hz emotion rows `emo` in each window of `win` seconds.
fn affect_of(emo: &[f64], win: f64) -> Vec<(f64, f64)> {
    physio_of(emo, win)
        .into_iter()
        .map(|f| (f.arousal, f.valence))
        .collect()
}

/// Heart rate (bpm) in windows of `win` seconds from simple R-peak detection.
fn heart_rate_windows(ecg: &[f64], win: f64) -> Vec<f64> {
    let mut sorted: Vec<f64> = ecg.to_vec();
    sorted.sort_by(f64::total_cmp);
    let thr = 0.6 * sorted[(sorted.len() as f64 * 0.999) as usize];
    let half = 140; // 200 ms at 700 Hz
    let mut peaks = Vec::new();
    for i in half..ecg.len() - half {
        let x = ecg[i];
        if x > thr && ecg[i - half..i + half].iter().all(|&y| y <= x) {
            peaks.push(i as f64 / 700.0);
        }
    }
    let n = (ecg.len() as f64 / 700.0 / win) as usize;
    (0..n)
        .map(|w| {
            let (lo, hi) = (w as f64 * win, (w + 1) as f64 * win);
            let p: Vec<f64> = peaks
                .iter()
                .copied()
                .filter(|&t| t >= lo && t < hi)
                .collect();
            if p.len() < 2 {
                return f64::NAN;
            }
            60.0 * (p.len() - 1) as f64 / (p[p.len() - 1] - p[0])
        })
        .collect()
}

#[test]
fn heart_rate_follows_arousal_and_vagal_drive() {
    let long = long_run();
    for subject in &long.subjects {
        let hr = heart_rate_windows(numeric(&long.data, subject, L_ECG), 10.0);
        let factors = physio_of(numeric(&long.data, subject, L_EMO), 10.0);
        assert!(hr.iter().all(|h| (40.0..150.0).contains(h)), "{hr:?}");
        let p = SubjectWorld::new(2024, subject_key(subject), START).profile;
        let drive: Vec<f64> = factors
            .iter()
            .map(|f| {
                let f = f.scaled(&p.physio_gain);
                p.hr_gain * f.arousal - p.hr_vagal_gain * f.vagal
            })
            .collect();
        let r = correlation(&hr, &drive);
        assert!(r > 0.4, "{subject}: corr(HR, cardiac drive) = {r}");
    }
}

/// Power of `x` (sampled at `fs`) in the band `lo..=hi` Hz, from a direct DFT.
fn band_power(x: &[f64], fs: f64, lo: f64, hi: f64) -> f64 {
    let n = x.len();
    let m = mean(x);
    let df = fs / n as f64;
    let mut power = 0.0;
    let mut k = (lo / df).ceil() as usize;
    while k as f64 * df <= hi {
        let w = std::f64::consts::TAU * k as f64 / n as f64;
        let (mut re, mut im) = (0.0, 0.0);
        for (i, v) in x.iter().enumerate() {
            re += (v - m) * (w * i as f64).cos();
            im -= (v - m) * (w * i as f64).sin();
        }
        power += re * re + im * im;
        k += 1;
    }
    power / (n * n) as f64
}

#[test]
fn eeg_bands_follow_arousal() {
    // EEG is the costliest stream in debug builds: one subject, ten minutes.
    let s = settings(2024, 1, &[SimStream::Eeg, SimStream::Emotion]);
    let data = merge(&run(&s, 600.0, &[30.0]));
    for subject in &s.subjects {
        let eeg = numeric(&data, subject, 0);
        let affect = affect_of(numeric(&data, subject, 1), 2.0);
        let channel = |c: usize, w: usize| -> Vec<f64> {
            eeg[w * 600 * 18..(w + 1) * 600 * 18]
                .iter()
                .skip(c)
                .step_by(18)
                .copied()
                .collect()
        };
        let mut order: Vec<usize> = (0..affect.len()).collect();
        order.sort_by(|&a, &b| affect[a].0.total_cmp(&affect[b].0));
        let third = order.len() / 3;
        let (low, high) = (&order[..third], &order[order.len() - third..]);
        let avg = |idx: &[usize], c: usize, lo: f64, hi: f64| {
            mean(
                &idx.iter()
                    .map(|&w| band_power(&channel(c, w), 300.0, lo, hi))
                    .collect::<Vec<_>>(),
            )
        };
        // Cz beta up, O1 alpha down with arousal.
        let (beta_low, beta_high) = (avg(low, 7, 14.0, 30.0), avg(high, 7, 14.0, 30.0));
        assert!(
            beta_high > 1.1 * beta_low,
            "{subject}: beta {beta_low} -> {beta_high}"
        );
        let (alpha_low, alpha_high) = (avg(low, 16, 8.0, 12.0), avg(high, 16, 8.0, 12.0));
        assert!(
            alpha_high < alpha_low,
            "{subject}: alpha {alpha_low} -> {alpha_high}"
        );
        // Amplitudes in the usual range.
        let rms = (eeg.iter().map(|v| v * v).sum::<f64>() / eeg.len() as f64).sqrt();
        assert!((8.0..60.0).contains(&rms), "rms {rms}");
    }
}

#[test]
fn action_units_follow_the_face_table() {
    let long = long_run();
    for subject in &long.subjects {
        let face = numeric(&long.data, subject, L_FACE);
        let emo = numeric(&long.data, subject, L_EMO);
        // AU12 (smile), AU26 (jaw drop), AU09 (nose wrinkle), AU05 (upper lid raise).
        for au in [8, 15, 6, 3] {
            let (mut seen, mut expected) = (Vec::new(), Vec::new());
            for (w, frames) in face.chunks(19 * 30).enumerate() {
                let ok: Vec<f64> = frames
                    .chunks(19)
                    .filter(|f| f[18] == 1.0)
                    .map(|f| f[au])
                    .collect();
                let Some(rows) = emo.get(w * 100..(w + 1) * 100) else {
                    continue;
                };
                if ok.len() > 10 {
                    seen.push(mean(&ok));
                    let drive = rows
                        .chunks(10)
                        .map(|r| r.iter().zip(&AU_TABLE).map(|(p, t)| p * t[au]).sum())
                        .collect::<Vec<f64>>();
                    expected.push(mean(&drive));
                }
            }
            let r = correlation(&seen, &expected);
            assert!(r > 0.6, "{subject}: corr({}, table) = {r}", AU_LABELS[au]);
        }
    }
}

#[test]
fn scrs_follow_arousal() {
    let long = long_run();
    let (mut low_rate, mut high_rate) = (0.0, 0.0);
    for subject in &long.subjects {
        let eda = numeric(&long.data, subject, L_EDA);
        let affect = affect_windows(long, subject, 30.0);
        // SCR onsets: the 1-s rise exceeds 0.05 uS, counted once until the signal turns down
        // (a peak); rises out of a contact-loss episode are not responses.
        let rise: Vec<f64> = eda
            .windows(5)
            .map(|w| if w[0] < 0.1 { 0.0 } else { w[4] - w[0] })
            .collect();
        let mut counts = vec![0.0; affect.len()];
        let mut armed = true;
        for (i, &r) in rise.iter().enumerate() {
            if armed && r > 0.05 {
                armed = false;
                if let Some(c) = counts.get_mut(i / 120) {
                    *c += 1.0;
                }
            } else if r <= 0.0 {
                armed = true;
            }
        }
        let mut order: Vec<usize> = (0..affect.len()).collect();
        order.sort_by(|&a, &b| affect[a].0.total_cmp(&affect[b].0));
        let third = order.len() / 3;
        low_rate += mean(
            &order[..third]
                .iter()
                .map(|&w| counts[w])
                .collect::<Vec<_>>(),
        );
        high_rate += mean(
            &order[order.len() - third..]
                .iter()
                .map(|&w| counts[w])
                .collect::<Vec<_>>(),
        );
        // Outside contact-loss episodes (an open circuit reads near zero).
        assert!(
            eda.iter().all(|&v| v < 0.1 || (0.5..40.0).contains(&v)),
            "EDA out of range"
        );
    }
    assert!(
        high_rate > 1.3 * low_rate,
        "SCRs per 30 s: low {low_rate}, high {high_rate}"
    );
}

#[test]
fn subjects_have_different_baselines() {
    let long = long_run();
    let hr: Vec<f64> = long
        .subjects
        .iter()
        .map(|s| mean(&heart_rate_windows(numeric(&long.data, s, L_ECG), 60.0)))
        .collect();
    let eda: Vec<f64> = long
        .subjects
        .iter()
        .map(|s| mean(numeric(&long.data, s, L_EDA)))
        .collect();
    for i in 0..hr.len() {
        for j in i + 1..hr.len() {
            assert!(
                (hr[i] - hr[j]).abs() > 0.5 || (eda[i] - eda[j]).abs() > 0.2,
                "{hr:?} {eda:?}"
            );
        }
    }
    assert!(hr.iter().all(|h| (50.0..100.0).contains(h)), "{hr:?}");
}

#[test]
fn other_signals_are_plausible() {
    let s = settings(
        9,
        1,
        &[
            SimStream::Resp,
            SimStream::Temp,
            SimStream::Accel,
            SimStream::Ppg,
        ],
    );
    let merged = merge(&run(&s, 120.0, &[10.0]));
    let resp = numeric(&merged, "S00", 0);
    let m = mean(resp);
    let crossings = resp.windows(2).filter(|w| w[0] < m && w[1] >= m).count() as f64;
    assert!(
        (15.0..50.0).contains(&crossings),
        "breaths in 2 min: {crossings}"
    );
    let temp = numeric(&merged, "S00", 1);
    assert!(temp.iter().all(|t| (31.0..37.0).contains(t)), "temp");
    let acc = numeric(&merged, "S00", 2);
    let norm = mean(
        &acc.chunks(3)
            .map(|a| (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt())
            .collect::<Vec<_>>(),
    );
    assert!((0.9..1.1).contains(&norm), "gravity {norm}");
    let ppg = numeric(&merged, "S00", 3);
    assert!(ppg.iter().all(|v| v.is_finite()));
}

/// Rank of the matrix `rows` (Gaussian elimination with partial pivoting).
fn rank(mut rows: Vec<Vec<f64>>) -> usize {
    let cols = rows.first().map_or(0, Vec::len);
    let mut rank = 0;
    for c in 0..cols {
        let Some(pivot) =
            (rank..rows.len()).max_by(|&a, &b| rows[a][c].abs().total_cmp(&rows[b][c].abs()))
        else {
            break;
        };
        if rows[pivot][c].abs() < 1e-9 {
            continue;
        }
        rows.swap(rank, pivot);
        for r in 0..rows.len() {
            if r != rank {
                let f = rows[r][c] / rows[rank][c];
                let top = rows[rank].clone();
                for (x, y) in rows[r].iter_mut().zip(top) {
                    *x -= f * y;
                }
            }
        }
        rank += 1;
    }
    rank
}

/// Label indices by name.
fn label(name: &str) -> usize {
    EMOTION_LABELS.iter().position(|l| *l == name).unwrap()
}

/// What each modality sees of label `l`, with a constant 1 (the distribution sums to 1).
fn face_column(l: usize) -> Vec<f64> {
    let mut c = AU_TABLE[l].to_vec();
    c.push(1.0);
    c
}

fn physio_column(l: usize) -> Vec<f64> {
    let mut c = EMOTION_PHYSIOLOGY[l].to_array().to_vec();
    c.push(1.0);
    c
}

#[test]
fn only_face_and_physiology_together_identify_the_distribution() {
    let face: Vec<Vec<f64>> = (0..10).map(face_column).collect();
    let physio: Vec<Vec<f64>> = (0..10).map(physio_column).collect();
    let both: Vec<Vec<f64>> = (0..10)
        .map(|l| [face_column(l), physio_column(l)].concat())
        .collect();
    // Columns are labels: a rank below 10 means distributions the modality cannot tell apart.
    assert_eq!(rank(face), 7, "the face confuses three pairs");
    assert_eq!(rank(physio), 5, "physiology has four factors");
    assert_eq!(rank(both), 10, "together they identify every distribution");
    let same_face = |a: &str, b: &str| AU_TABLE[label(a)] == AU_TABLE[label(b)];
    let same_body = |a: &str, b: &str| EMOTION_PHYSIOLOGY[label(a)] == EMOTION_PHYSIOLOGY[label(b)];
    for (a, b) in [
        ("fear", "surprise"),
        ("anger", "disgust"),
        ("inspiration", "neutral"),
    ] {
        assert!(
            same_face(a, b) && !same_body(a, b),
            "{a} and {b}: physiology only"
        );
    }
    for (a, b) in [("amusement", "joy"), ("anger", "fear")] {
        assert!(
            same_body(a, b) && !same_face(a, b),
            "{a} and {b}: face only"
        );
    }
    // Every other pair differs in both.
    let mut alike = 0;
    for a in 0..10 {
        for b in a + 1..10 {
            assert!(AU_TABLE[a] != AU_TABLE[b] || EMOTION_PHYSIOLOGY[a] != EMOTION_PHYSIOLOGY[b]);
            alike += usize::from(
                AU_TABLE[a] == AU_TABLE[b] || EMOTION_PHYSIOLOGY[a] == EMOTION_PHYSIOLOGY[b],
            );
        }
    }
    assert_eq!(alike, 5);
    // Partners are mutual.
    for (l, partner) in EMOTION_PARTNERS.iter().enumerate() {
        if let Some(p) = partner {
            assert_eq!(EMOTION_PARTNERS[*p], Some(l));
        }
    }
}

/// Every sample of `stream` over `duration` seconds of one subject who fully feels `name` all along.
fn pinned(name: &str, stream: SimStream, duration: f64) -> Vec<f64> {
    let (seed, index) = (77, subject_key("P01"));
    let mut world = SubjectWorld::new(seed, index, START);
    let mut probs = [0.0; 10];
    probs[label(name)] = 1.0;
    world.pin_emotion(probs);
    let mut state = StreamState::new(stream, seed, index, &world);
    let (mut times, mut values) = (Vec::new(), Values::Numeric(Vec::new()));
    let end = secs(duration);
    let mut t = START;
    while t < end {
        let next = (t + CHUNK_NS).min(end);
        state.generate(&mut world, START, t, next, &mut times, &mut values);
        world.prune(next);
        t = next;
    }
    match values {
        Values::Numeric(v) => v,
        Values::Text(_) => panic!("not numeric"),
    }
}

/// Mean of column `c` of `width`-wide face frames that were tracked.
fn tracked_mean(face: &[f64], c: usize) -> f64 {
    mean(
        &face
            .chunks(19)
            .filter(|f| f[18] == 1.0)
            .map(|f| f[c])
            .collect::<Vec<_>>(),
    )
}

/// Phasic electrodermal activity of a 4 Hz EDA signal: its total rise (uS), outside dropouts.
fn eda_rise(eda: &[f64]) -> f64 {
    eda.windows(2)
        .filter(|w| w[0] >= 0.1 && w[1] >= 0.1)
        .map(|w| (w[1] - w[0]).max(0.0))
        .sum()
}

/// [`eda_rise`] over ten minutes of a subject held at one emotion.
fn pinned_eda_rise(name: &str) -> f64 {
    eda_rise(&pinned(name, SimStream::Eda, 600.0))
}

/// The physiological streams a subject's body produces (not the face, the truth or markers).
const BODY: [SimStream; 5] = [
    SimStream::Ecg,
    SimStream::Eda,
    SimStream::Ppg,
    SimStream::Resp,
    SimStream::Temp,
];

#[test]
fn amusement_and_joy_differ_only_in_the_mouth() {
    for stream in BODY {
        assert!(
            pinned("amusement", stream, 60.0) == pinned("joy", stream, 60.0),
            "{stream:?} tells amusement from joy"
        );
    }
    assert!(pinned("amusement", SimStream::Eeg, 20.0) == pinned("joy", SimStream::Eeg, 20.0));
    let (amused, joyful) = (
        pinned("amusement", SimStream::Face, 120.0),
        pinned("joy", SimStream::Face, 120.0),
    );
    // The smile (AU06, AU12) is the same frame for frame; the laugh opens the jaw (AU25, AU26).
    for (a, j) in amused.chunks(19).zip(joyful.chunks(19)) {
        assert_eq!((a[4], a[8]), (j[4], j[8]));
    }
    for au in [14, 15] {
        let (a, j) = (tracked_mean(&amused, au), tracked_mean(&joyful, au));
        assert!(a > j + 1.0, "{}: amusement {a}, joy {j}", AU_LABELS[au]);
    }
}

#[test]
fn fear_and_surprise_differ_only_in_physiology() {
    assert!(pinned("fear", SimStream::Face, 120.0) == pinned("surprise", SimStream::Face, 120.0));
    let hr = |name: &str| {
        mean(&heart_rate_windows(
            &pinned(name, SimStream::Ecg, 120.0),
            30.0,
        ))
    };
    let (fear, surprise, neutral) = (hr("fear"), hr("surprise"), hr("neutral"));
    assert!(
        fear > surprise + 10.0,
        "HR: fear {fear}, surprise {surprise}"
    );
    assert!(
        surprise < neutral - 3.0,
        "HR decelerates: surprise {surprise}, neutral {neutral}"
    );
    let (fear, surprise) = (pinned_eda_rise("fear"), pinned_eda_rise("surprise"));
    assert!(
        fear > 3.0 * surprise,
        "EDA rise in 10 min: fear {fear}, surprise {surprise}"
    );
}

#[test]
fn anger_takes_both_the_face_and_the_body_to_tell() {
    let face = |name: &str| pinned(name, SimStream::Face, 60.0);
    assert!(
        face("anger") == face("disgust"),
        "anger shows disgust's face"
    );
    assert!(face("anger") != face("fear"));
    for stream in BODY {
        assert!(
            pinned("anger", stream, 60.0) == pinned("fear", stream, 60.0),
            "{stream:?} tells anger from fear"
        );
    }
    let (anger, disgust) = (pinned_eda_rise("anger"), pinned_eda_rise("disgust"));
    assert!(
        anger > 3.0 * disgust,
        "EDA rise in 10 min: anger {anger}, disgust {disgust}"
    );
}

#[test]
fn inspiration_has_the_neutral_face_and_its_own_eeg() {
    assert!(
        pinned("inspiration", SimStream::Face, 60.0) == pinned("neutral", SimStream::Face, 60.0)
    );
    let power = |name: &str, channel: usize, lo: f64, hi: f64| {
        let eeg = pinned(name, SimStream::Eeg, 40.0);
        mean(
            &eeg.chunks(600 * 18)
                .map(|w| {
                    let x: Vec<f64> = w.iter().skip(channel).step_by(18).copied().collect();
                    band_power(&x, 300.0, lo, hi)
                })
                .collect::<Vec<_>>(),
        )
    };
    // Frontal-midline theta (Fz) and posterior alpha (O1) rise together.
    let (inspired, neutral) = (
        power("inspiration", 2, 4.0, 7.0),
        power("neutral", 2, 4.0, 7.0),
    );
    assert!(
        inspired > 1.5 * neutral,
        "Fz theta: {inspired} vs {neutral}"
    );
    let (inspired, neutral) = (
        power("inspiration", 16, 8.0, 12.0),
        power("neutral", 16, 8.0, 12.0),
    );
    assert!(
        inspired > 1.2 * neutral,
        "O1 alpha: {inspired} vs {neutral}"
    );
}

/// Maximal runs of consecutive `true`: (count, total length).
fn runs(flags: impl Iterator<Item = bool>) -> (usize, usize) {
    let (mut count, mut total, mut previous) = (0, 0, false);
    for f in flags {
        count += usize::from(f && !previous);
        total += usize::from(f);
        previous = f;
    }
    (count, total)
}

#[test]
fn dropout_episodes_come_at_their_documented_rate() {
    for (tag, spec) in [(1, FACE_TRACKING_LOSS), (2, EDA_CONTACT_LOSS)] {
        let hours = 200.0;
        let mut episodes = dropout::Dropouts::new(noise::rng_for(3, 0, tag), spec);
        let (count, steps) =
            runs((0..(hours * 3600.0 * 10.0) as usize).map(|i| episodes.active(i as f64 / 10.0)));
        let per_hour = count as f64 / hours;
        let fraction = steps as f64 / (hours * 3600.0 * 10.0);
        assert!(
            (per_hour / spec.per_hour() - 1.0).abs() < 0.1,
            "{per_hour} per hour, {spec:?}"
        );
        assert!(
            (fraction / spec.fraction() - 1.0).abs() < 0.1,
            "{fraction} of the time, {spec:?}"
        );
    }
    // Episodes are part of the seeded output: however the simulator is stepped, the same frames
    // and samples are lost.
    let s = settings(8, 1, &[SimStream::Face, SimStream::Eda, SimStream::EdaFast]);
    let coarse = merge(&run(&s, 900.0, &[60.0]));
    let fine = merge(&run(&s, 900.0, &[0.37, 2.0, 0.01]));
    assert_eq!(coarse, fine);
    assert!(runs(numeric(&coarse, "S00", 0).chunks(19).map(|f| f[18] == 0.0)).0 > 3);
    let (wrist, chest) = (numeric(&coarse, "S00", 1), numeric(&coarse, "S00", 2));
    assert!(runs(wrist.iter().map(|&v| v < 0.1)).0 > 0);
    // The two EDA sensors lose contact independently.
    let chest_out: Vec<bool> = chest.iter().step_by(175).map(|&v| v < 0.1).collect();
    assert!(wrist.iter().zip(&chest_out).any(|(&w, &c)| (w < 0.1) != c));
    // In the streams: the face tracker reports lost frames, the EDA sensors an open circuit.
    let long = long_run();
    let hours = LONG_SECS * long.subjects.len() as f64 / 3600.0;
    let (mut face_episodes, mut face_lost, mut eda_episodes, mut frames) = (0, 0, 0, 0);
    for subject in &long.subjects {
        let face = numeric(&long.data, subject, L_FACE);
        let (n, lost) = runs(face.chunks(19).map(|f| f[18] == 0.0));
        assert!(face
            .chunks(19)
            .filter(|f| f[18] == 0.0)
            .all(|f| f[..17].iter().all(|&v| v == 0.0)));
        face_episodes += n;
        face_lost += lost;
        frames += face.len() / 19;
        eda_episodes += runs(numeric(&long.data, subject, L_EDA).iter().map(|&v| v < 0.1)).0;
    }
    let face_rate = face_episodes as f64 / hours;
    assert!(
        (0.7..1.3).contains(&(face_rate / FACE_TRACKING_LOSS.per_hour())),
        "{face_rate} face losses per hour"
    );
    let fraction = face_lost as f64 / frames as f64;
    assert!(
        (0.6..1.4).contains(&(fraction / FACE_TRACKING_LOSS.fraction())),
        "{fraction} of frames lost"
    );
    let eda_rate = eda_episodes as f64 / hours;
    assert!(
        (0.4..1.8).contains(&(eda_rate / EDA_CONTACT_LOSS.per_hour())),
        "{eda_rate} contact losses per hour"
    );
}

/// Start, end (seconds since the start) and number of every clip in a marker stream.
fn clips(times: &[Nanos], markers: &[String], until: f64) -> Vec<(f64, f64, u32)> {
    let at = |t: Nanos| (t - START) as f64 / NANOS_PER_SEC as f64;
    let mut out = Vec::new();
    for (i, marker) in markers.iter().enumerate() {
        if let Some(clip) = marker.strip_prefix("stimulus_start:clip_") {
            let end = times.get(i + 1).map_or(until, |&t| at(t));
            out.push((at(times[i]), end, clip.parse().unwrap()));
        }
    }
    out
}

#[test]
fn clips_raise_their_target_and_its_partner() {
    // Six subjects for two hours: about 25 presentations of the clips aimed at each label.
    let until = 7200.0;
    let s = settings(31, 6, &[SimStream::Emotion, SimStream::Markers]);
    let data = merge(&run(&s, until, &[600.0]));
    // Mean probability of each label during clips aimed at each label (after their first 10 s).
    let mut during = [[0.0; 10]; 10];
    let mut counts = [0.0; 10];
    let mut pairs = (Vec::new(), Vec::new());
    for subject in &s.subjects {
        let emo = numeric(&data, subject, 0);
        let (times, Values::Text(markers)) = &data[&(subject.clone(), 1)] else {
            panic!("markers are text")
        };
        let clips = clips(times, markers, until);
        for (i, row) in emo.chunks(10).enumerate() {
            let t = i as f64 / 10.0;
            pairs.0.push(row[label("fear")]);
            pairs.1.push(row[label("surprise")]);
            if let Some(&(_, _, clip)) = clips.iter().find(|c| c.0 + 10.0 <= t && t < c.1) {
                let target = emotion::clip_target(clip);
                for (d, p) in during[target].iter_mut().zip(row) {
                    *d += p;
                }
                counts[target] += 1.0;
            }
        }
    }
    let mean_during = |target: usize, l: usize| during[target][l] / counts[target];
    for (target, partner) in EMOTION_PARTNERS.iter().enumerate() {
        let Some(partner) = *partner else { continue };
        let raised = mean_during(target, partner);
        // Clips aimed elsewhere (not at the pair, not at neutral) leave the partner low.
        let elsewhere: Vec<f64> = (1..10)
            .filter(|&c| c != target && c != partner)
            .map(|c| mean_during(c, partner))
            .collect();
        let elsewhere = mean(&elsewhere);
        let label_of = |l: usize| EMOTION_LABELS[l];
        assert!(
            raised > 2.0 * elsewhere,
            "{} clips: {} {raised} vs {elsewhere} during other clips",
            label_of(target),
            label_of(partner)
        );
        // More than any emotion but the target (neutral, displaced, may still be above).
        for other in 1..10 {
            let o = mean_during(target, other);
            assert!(
                other == target || other == partner || raised > o,
                "{} clips: {} {raised} vs {} {o}",
                label_of(target),
                label_of(partner),
                label_of(other)
            );
        }
    }
    let r = correlation(&pairs.0, &pairs.1);
    assert!(r > 0.2, "corr(fear, surprise) = {r}");
    assert_eq!(partner_share(1), 0.35);
    assert_eq!(partner_share(30), 0.75);
}

#[test]
fn shares_together_produce_what_one_simulator_does() {
    let all = settings(5, 7, &SimStream::ALL);
    let whole = merge(&run(&all, 3.0, &[0.1, 0.25]));
    for count in 1..=4 {
        let mut parts = HashMap::new();
        for index in 0..count {
            let share = crate::stream::SubjectShare { index, count };
            let mut mine = all.clone();
            mine.subjects.retain(|s| share.owns(s));
            let produced = merge(&run(&mine, 3.0, &[0.1, 0.25]));
            for key in produced.keys() {
                assert!(!parts.contains_key(key), "{key:?} produced by two shares");
            }
            parts.extend(produced);
        }
        assert_eq!(parts, whole, "{count} shares");
    }
}
