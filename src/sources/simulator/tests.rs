use std::collections::HashMap;
use std::sync::OnceLock;

use super::*;

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

/// Mean arousal and valence of 10 Hz emotion rows `emo` in each window of `win` seconds.
fn affect_of(emo: &[f64], win: f64) -> Vec<(f64, f64)> {
    let per = (10.0 * win) as usize;
    emo.chunks(10 * per)
        .map(|w| {
            let (mut a, mut v) = (0.0, 0.0);
            for row in w.chunks(10) {
                for (p, (val, aro)) in row.iter().zip(EMOTION_VALENCE_AROUSAL) {
                    a += p * aro;
                    v += p * val;
                }
            }
            let n = (w.len() / 10) as f64;
            (a / n, v / n)
        })
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
fn heart_rate_follows_arousal() {
    let long = long_run();
    for subject in &long.subjects {
        let hr = heart_rate_windows(numeric(&long.data, subject, L_ECG), 10.0);
        let affect = affect_windows(long, subject, 10.0);
        assert!(hr.iter().all(|h| (40.0..150.0).contains(h)), "{hr:?}");
        let arousal: Vec<f64> = affect.iter().map(|a| a.0).collect();
        let r = correlation(&hr, &arousal);
        assert!(r > 0.4, "{subject}: corr(HR, arousal) = {r}");
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
fn smiles_follow_valence() {
    let long = long_run();
    for subject in &long.subjects {
        let face = numeric(&long.data, subject, L_FACE);
        let affect = affect_windows(long, subject, 1.0);
        let mut au12 = Vec::new();
        let mut valence = Vec::new();
        for (w, frames) in face.chunks(19 * 30).enumerate() {
            let ok: Vec<f64> = frames
                .chunks(19)
                .filter(|f| f[18] == 1.0)
                .map(|f| f[8])
                .collect();
            if ok.len() > 10 && w < affect.len() {
                au12.push(mean(&ok));
                valence.push(affect[w].1);
            }
        }
        let r = correlation(&au12, &valence);
        assert!(r > 0.4, "{subject}: corr(AU12, valence) = {r}");
        let lost = face.chunks(19).filter(|f| f[18] == 0.0).count();
        assert!(
            lost > 0 && lost < face.len() / 19 / 10,
            "lost frames {lost}"
        );
    }
}

#[test]
fn scrs_follow_arousal() {
    let long = long_run();
    let (mut low_rate, mut high_rate) = (0.0, 0.0);
    for subject in &long.subjects {
        let eda = numeric(&long.data, subject, L_EDA);
        let affect = affect_windows(long, subject, 30.0);
        // SCR onsets: the 1-s rise crosses 0.03 uS upwards.
        let rise: Vec<f64> = eda.windows(5).map(|w| w[4] - w[0]).collect();
        let mut counts = vec![0.0; affect.len()];
        for i in 1..rise.len() {
            if rise[i] > 0.03 && rise[i - 1] <= 0.03 {
                if let Some(c) = counts.get_mut(i / 120) {
                    *c += 1.0;
                }
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
        assert!(
            eda.iter().all(|&v| (0.5..40.0).contains(&v)),
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
