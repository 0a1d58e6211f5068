//! heloflow's physiological kernels and operators against NeuroKit2 0.2.13's `*_process` functions
//! on real recordings shipped inside PyPI packages: systole 0.3.1 (ECG, respiration, EDA at
//! 1000 Hz, PPG at 75 Hz), heartpy 1.2.7 (two PPG recordings), pyhrv 0.4.1 (ECG at 1000 Hz).
//!
//! systole and heartpy are GPL-3.0: their data is never committed. `fixtures/physio/real_recordings.py`
//! fetches the packages from PyPI once (pinned versions and sha256, cached in `target/recordings`,
//! so later runs are offline), cuts at most 3 minutes of each recording, runs `ecg_process`,
//! `ppg_process`, `rsp_process` and `eda_process` on the segment and on every operator window of
//! it, and writes what they report into a temporary file this test reads.
//!
//! Checked, per recording:
//! - the kernels on the whole segment: R-peaks (artefact-corrected and not), PPG peaks, breath
//!   peaks and troughs, SCR peaks, onsets and recoveries equal NeuroKit2's to the sample; the mean
//!   of `ECG_Rate`, `PPG_Rate`, `RSP_Rate`, `RSP_Amplitude` and the SCR heights, amplitudes, rise
//!   and recovery times within 1% (they agree to ~1e-12);
//! - the operators (`heart_rate_variability`, `pulse`, `respiration`, `eda_components`) fed the
//!   recording in 0.1 s batches: each window's row equals NeuroKit2 run on that window's samples
//!   (rates and amplitudes within 1%, counts exact, the kernels' peaks on the window equal
//!   NeuroKit2's to the sample).
//!
//! Not equal, for a principled reason: an operator processes each window on its own (causal: the
//! row at window end `e` uses samples in `[e - window_s, e)` only), while NeuroKit2 run once on the
//! whole recording filters and detects with samples on both sides of the window. The mean of the
//! whole-recording column over a window's samples therefore differs from the window's value, by
//! exactly what NeuroKit2 run on the window gives too. [`WHOLE_VS_WINDOW`] states the measured
//! worst difference per recording and quantity, and the test checks it has not grown.

mod common;

use std::process::Command;
use std::sync::OnceLock;

use heloflow::dsp::physio::{ecg, eda, hrv, ppg, rate, rsp};
use heloflow::operators::{Operator, OperatorLogic, PhysioConfig, PhysioFeature, WindowSpec};
use heloflow::stream::{
    sample_time, Batch, Channel, ChannelFormat, Modality, Nanos, Rate, StreamSchema, Values,
    NANOS_PER_SEC,
};
use serde::Deserialize;
use serde_json::Value;

/// Rates, amplitudes and SCR values must match NeuroKit2 within 1% (relative).
const RATE_TOLERANCE: f64 = 0.01;

/// Measured worst relative difference (percent, rounded up to 0.1) between an operator window's
/// value and the whole-recording NeuroKit2 column averaged over that window, per recording and
/// quantity; NeuroKit2 run on each window differs from its whole-recording run by the same amount.
/// The systole respiration recording breathes irregularly (0.5 to 8.7 s between breaths), so a
/// 60 s window's detection loses breaths near its edges that the whole recording keeps.
const WHOLE_VS_WINDOW: [(&str, &str, f64); 6] = [
    ("systole_task1_ecg", "rate", 0.3),
    ("pyhrv_sample_ecg", "rate", 0.8),
    ("systole_ppg", "rate", 0.4),
    ("heartpy_data", "rate", 1.4),
    ("systole_task1_rsp", "rate", 26.7),
    ("systole_task1_rsp", "amplitude", 41.2),
];

/// NeuroKit2's outputs on the recordings, computed once per test run.
fn reference() -> &'static Value {
    static REFERENCE: OnceLock<Value> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let root = common::root();
        let check = Command::new("python3")
            .args(["-c", "import neurokit2"])
            .output()
            .expect("python3 is on PATH (./scripts/test puts .venv/bin first)");
        assert!(
            check.status.success(),
            "neurokit2 must be importable by python3: run ./scripts/test, which installs \
             requirements-dev.txt into .venv ({})",
            String::from_utf8_lossy(&check.stderr)
        );
        let dir = tempfile::tempdir().expect("temporary directory");
        let out = dir.path().join("recordings.json");
        let output = Command::new("python3")
            .arg(root.join("fixtures/physio/real_recordings.py"))
            .arg(&out)
            .arg("--cache")
            .arg(root.join("target/recordings"))
            .output()
            .expect("running fixtures/physio/real_recordings.py");
        assert!(
            output.status.success(),
            "real_recordings.py failed (it needs PyPI once to fetch the recordings into \
             target/recordings): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = std::fs::read_to_string(&out).expect("reading the NeuroKit2 outputs");
        serde_json::from_str(&text).expect("parsing the NeuroKit2 outputs")
    })
}

/// One recording's segment and NeuroKit2's outputs on it.
struct Recording {
    name: String,
    fs: f64,
    signal: Vec<f64>,
    whole: Value,
    windows: Vec<Value>,
    window_s: Option<i64>,
    hop_s: Option<i64>,
}

fn recordings(kind: &str) -> Vec<Recording> {
    let all: Vec<Recording> = reference()["recordings"]
        .as_array()
        .expect("recordings")
        .iter()
        .filter(|r| r["kind"] == kind)
        .map(|r| Recording {
            name: r["name"].as_str().expect("name").to_string(),
            fs: r["fs"].as_f64().expect("fs"),
            signal: floats(&r["signal"]),
            whole: r["whole"].clone(),
            windows: r["windows"].as_array().cloned().unwrap_or_default(),
            window_s: r["window_s"].as_i64(),
            hop_s: r["hop_s"].as_i64(),
        })
        .collect();
    assert!(!all.is_empty(), "no {kind} recording");
    all
}

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_str()
        .expect("float text")
        .split_whitespace()
        .map(|v| v.parse().expect("float"))
        .collect()
}

fn indices(value: &Value) -> Vec<usize> {
    Vec::<usize>::deserialize(value).expect("index list")
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

/// Mean of the finite values (NaN when none), as `np.nanmean`.
fn nan_mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values
        .filter(|v| v.is_finite())
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

fn nan_mean_of(values: &Value) -> f64 {
    nan_mean(values.as_array().expect("values").iter().map(number))
}

/// Relative difference, 0 when both are NaN.
fn relative(ours: f64, theirs: f64) -> f64 {
    if ours.is_nan() && theirs.is_nan() {
        0.0
    } else {
        (ours - theirs).abs() / theirs.abs().max(1e-12)
    }
}

/// Asserts `ours` within 1% of NeuroKit2's value; returns the relative difference.
fn matches(what: &str, ours: f64, theirs: f64) -> f64 {
    let difference = relative(ours, theirs);
    assert!(
        difference <= RATE_TOLERANCE,
        "{what}: heloflow {ours} vs NeuroKit2 {theirs} ({:.3}%)",
        difference * 100.0
    );
    difference
}

/// The stated whole-vs-window bound (percent) of a recording's quantity.
fn stated_bound(name: &str, quantity: &str) -> f64 {
    WHOLE_VS_WINDOW
        .iter()
        .find(|(n, q, _)| *n == name && *q == quantity)
        .map(|(_, _, b)| *b)
        .unwrap_or_else(|| panic!("no stated whole-vs-window bound for {name} {quantity}"))
}

/// Runs a physiological operator over `signal` in 0.1 s batches; returns the output labels and
/// (window end, row) pairs.
fn run_operator(
    feature: PhysioFeature,
    modality: Modality,
    recording: &Recording,
) -> (Vec<String>, Vec<(Nanos, Vec<f64>)>) {
    let (window_s, hop_s) = (
        recording.window_s.expect("window_s"),
        recording.hop_s.expect("hop_s"),
    );
    let fs = recording.fs;
    let config = PhysioConfig {
        feature,
        window: WindowSpec::new(window_s * NANOS_PER_SEC, hop_s * NANOS_PER_SEC),
        max_invalid: 0.1,
        flat_s: 1.0,
    };
    let input = StreamSchema {
        name: recording.name.clone(),
        modality,
        channels: vec![Channel::new("x", "u", modality.lsl_type())],
        format: ChannelFormat::Double64,
        rate: Rate::Regular(fs),
        subjects: vec![],
    };
    let schema = config.output_schema("out", &[&input]).expect("ports");
    let labels: Vec<String> = schema.labels().iter().map(|l| l.to_string()).collect();
    let mut logic = config.instantiate(&input, 1, "S01");
    let mut out = Vec::new();
    let chunk = (fs / 10.0).round() as usize;
    for (k, values) in recording.signal.chunks(chunk).enumerate() {
        let first = (k * chunk) as u64;
        let batch = Batch {
            stream: 0,
            subject: "S01".into(),
            timestamps: (0..values.len() as u64)
                .map(|i| sample_time(0, first + i, fs))
                .collect(),
            values: Values::Numeric(values.to_vec()),
        };
        logic.on_batch(0, &batch, &mut out);
        logic.on_frontier(sample_time(0, first + values.len() as u64, fs), &mut out);
    }
    logic.on_frontier(Nanos::MAX, &mut out);
    let width = labels.len();
    let rows = out
        .iter()
        .flat_map(|b| {
            let Values::Numeric(v) = &b.values else {
                panic!("numeric rows")
            };
            b.timestamps
                .iter()
                .copied()
                .zip(v.chunks(width).map(<[f64]>::to_vec))
                .collect::<Vec<_>>()
        })
        .collect();
    (labels, rows)
}

/// Each NeuroKit2 window with the operator's row for it (matched by window end, after checking
/// the row covers exactly the window's samples) and a column lookup.
fn windows_with_rows<'a>(
    recording: &'a Recording,
    labels: &[String],
    rows: &[(Nanos, Vec<f64>)],
) -> Vec<(&'a Value, Vec<f64>)> {
    let coverage = labels
        .iter()
        .position(|l| l == "coverage")
        .expect("coverage");
    let fs = recording.fs;
    let window_s = recording.window_s.expect("window_s") as f64;
    assert!(
        !recording.windows.is_empty(),
        "{}: no windows",
        recording.name
    );
    recording
        .windows
        .iter()
        .map(|window| {
            let (start, end) = (
                window["start"].as_u64().expect("start"),
                window["end"].as_u64().expect("end"),
            );
            let end_time = sample_time(0, end, fs);
            let row = rows
                .iter()
                .find(|(t, _)| *t == end_time)
                .unwrap_or_else(|| panic!("{}: no operator row at {end_time} ns", recording.name));
            // The operator's window [end - window_s, end) holds exactly samples start..end.
            let expected_start = (end as f64 - window_s * fs).round() as u64;
            assert_eq!(start, expected_start, "{}: window start", recording.name);
            assert_eq!(row.1[coverage], 1.0, "{}: window coverage", recording.name);
            (window, row.1.clone())
        })
        .collect()
}

fn column(labels: &[String], label: &str) -> usize {
    labels
        .iter()
        .position(|l| l == label)
        .unwrap_or_else(|| panic!("no `{label}` channel in {labels:?}"))
}

/// Worst window-vs-whole difference (percent) of one quantity, checked against its stated bound.
fn whole_vs_window(name: &str, quantity: &str, worst: f64) {
    let bound = stated_bound(name, quantity);
    println!("  {name} {quantity}: window vs whole recording, worst {worst:.3}% (stated {bound}%)");
    assert!(
        worst <= bound,
        "{name} {quantity}: window vs whole-recording difference {worst:.3}% exceeds the \
         stated {bound}% (update WHOLE_VS_WINDOW and the README if NeuroKit2 changed)"
    );
}

#[test]
fn ecg_recordings_match_ecg_process() {
    for recording in recordings("ecg") {
        let (name, fs, n) = (&recording.name, recording.fs, recording.signal.len());
        let whole = &recording.whole;
        let clean = ecg::ecg_clean(&recording.signal, fs).expect("clean");
        assert_eq!(
            ecg::ecg_peaks(&clean, fs),
            indices(&whole["peaks_uncorrected"]),
            "{name}: uncorrected R-peaks"
        );
        let mut scratch = ecg::EcgScratch::default();
        let peaks =
            ecg::ecg_process_peaks(&recording.signal, None, fs, &mut scratch).expect("peaks");
        assert_eq!(peaks, indices(&whole["peaks"]), "{name}: ECG_R_Peaks");
        let rate_difference = matches(
            &format!("{name} ECG_Rate mean"),
            rate::mean_rate(&peaks, fs, n),
            number(&whole["rate_mean"]),
        );
        let time = hrv::hrv_time(&peaks, fs);
        matches("MeanNN", time.mean_nn, number(&whole["hrv"]["MeanNN"]));
        matches("RMSSD", time.rmssd, number(&whole["hrv"]["RMSSD"]));
        println!(
            "{name}: {} R-peaks equal, ECG_Rate mean differs by {:.1e}",
            peaks.len(),
            rate_difference
        );
        if recording.window_s.is_none() {
            continue;
        }
        let (labels, rows) = run_operator(
            PhysioFeature::HeartRateVariability,
            Modality::Ecg,
            &recording,
        );
        let (rate_at, beats_at, rmssd_at) = (
            column(&labels, "heart_rate"),
            column(&labels, "beats"),
            column(&labels, "rmssd"),
        );
        let (mut worst, mut worst_whole): (f64, f64) = (0.0, 0.0);
        for (window, row) in windows_with_rows(&recording, &labels, &rows) {
            let segment = &recording.signal[window["start"].as_u64().expect("start") as usize
                ..window["end"].as_u64().expect("end") as usize];
            let mut fresh = ecg::EcgScratch::default();
            let window_peaks = ecg::ecg_process_peaks(segment, None, fs, &mut fresh).expect("ok");
            assert_eq!(
                window_peaks,
                indices(&window["peaks"]),
                "{name}: window peaks"
            );
            assert_eq!(row[beats_at], window_peaks.len() as f64, "{name}: beats");
            worst = worst.max(matches(
                "heart_rate",
                row[rate_at],
                number(&window["rate_mean"]),
            ));
            matches("rmssd", row[rmssd_at], number(&window["hrv"]["RMSSD"]));
            worst_whole = worst_whole.max(relative(
                row[rate_at],
                number(&window["whole_mean"]["rate"]),
            ));
        }
        println!(
            "  {name} heart_rate: {} windows equal NeuroKit2 on each window (worst {worst:.1e})",
            rows.len()
        );
        whole_vs_window(name, "rate", worst_whole * 100.0);
    }
}

#[test]
fn ppg_recordings_match_ppg_process() {
    for recording in recordings("ppg") {
        let (name, fs, n) = (&recording.name, recording.fs, recording.signal.len());
        let clean = ppg::ppg_clean(&recording.signal, fs).expect("clean");
        let peaks = ppg::ppg_peaks(&clean, fs);
        assert_eq!(
            peaks,
            indices(&recording.whole["peaks"]),
            "{name}: PPG_Peaks"
        );
        let difference = matches(
            &format!("{name} PPG_Rate mean"),
            rate::mean_rate(&peaks, fs, n),
            number(&recording.whole["rate_mean"]),
        );
        println!(
            "{name}: {} peaks equal, PPG_Rate mean differs by {difference:.1e}",
            peaks.len()
        );
        if recording.window_s.is_none() {
            continue;
        }
        let (labels, rows) = run_operator(PhysioFeature::Pulse, Modality::Ppg, &recording);
        let (rate_at, beats_at) = (column(&labels, "pulse_rate"), column(&labels, "beats"));
        let (mut worst, mut worst_whole): (f64, f64) = (0.0, 0.0);
        for (window, row) in windows_with_rows(&recording, &labels, &rows) {
            let segment = &recording.signal[window["start"].as_u64().expect("start") as usize
                ..window["end"].as_u64().expect("end") as usize];
            let window_peaks = ppg::ppg_peaks(&ppg::ppg_clean(segment, fs).expect("clean"), fs);
            assert_eq!(
                window_peaks,
                indices(&window["peaks"]),
                "{name}: window peaks"
            );
            assert_eq!(row[beats_at], window_peaks.len() as f64, "{name}: beats");
            worst = worst.max(matches(
                "pulse_rate",
                row[rate_at],
                number(&window["rate_mean"]),
            ));
            worst_whole = worst_whole.max(relative(
                row[rate_at],
                number(&window["whole_mean"]["rate"]),
            ));
        }
        println!(
            "  {name} pulse_rate: {} windows equal NeuroKit2 on each window (worst {worst:.1e})",
            rows.len()
        );
        whole_vs_window(name, "rate", worst_whole * 100.0);
    }
}

#[test]
fn respiration_recordings_match_rsp_process() {
    for recording in recordings("rsp") {
        let (name, fs) = (&recording.name, recording.fs);
        let whole = &recording.whole;
        let clean = rsp::rsp_clean(&recording.signal, fs).expect("clean");
        let (peaks, troughs) = rsp::rsp_peaks(&clean);
        assert_eq!(peaks, indices(&whole["peaks"]), "{name}: RSP_Peaks");
        assert_eq!(troughs, indices(&whole["troughs"]), "{name}: RSP_Troughs");
        let rate_difference = matches(
            &format!("{name} RSP_Rate mean"),
            rsp::rsp_rate(&troughs, fs, clean.len()),
            number(&whole["rate_mean"]),
        );
        let amplitude_difference = matches(
            &format!("{name} RSP_Amplitude mean"),
            rsp::rsp_amplitude(&clean, &peaks, &troughs),
            number(&whole["amplitude_mean"]),
        );
        println!(
            "{name}: {} breaths equal, RSP_Rate mean differs by {rate_difference:.1e}, \
             RSP_Amplitude mean by {amplitude_difference:.1e}",
            peaks.len()
        );
        let (labels, rows) = run_operator(PhysioFeature::Respiration, Modality::Resp, &recording);
        let (rate_at, amplitude_at, breaths_at) = (
            column(&labels, "respiration_rate"),
            column(&labels, "respiration_amplitude"),
            column(&labels, "breaths"),
        );
        let (mut worst, mut worst_rate, mut worst_amplitude): (f64, f64, f64) = (0.0, 0.0, 0.0);
        for (window, row) in windows_with_rows(&recording, &labels, &rows) {
            assert_eq!(
                row[breaths_at],
                indices(&window["peaks"]).len() as f64,
                "{name}: breaths"
            );
            worst = worst.max(matches(
                "respiration_rate",
                row[rate_at],
                number(&window["rate_mean"]),
            ));
            worst = worst.max(matches(
                "respiration_amplitude",
                row[amplitude_at],
                number(&window["amplitude_mean"]),
            ));
            worst_rate = worst_rate.max(relative(
                row[rate_at],
                number(&window["whole_mean"]["rate"]),
            ));
            worst_amplitude = worst_amplitude.max(relative(
                row[amplitude_at],
                number(&window["whole_mean"]["amplitude"]),
            ));
        }
        println!(
            "  {name}: {} windows equal NeuroKit2 on each window (worst {worst:.1e})",
            rows.len()
        );
        whole_vs_window(name, "rate", worst_rate * 100.0);
        whole_vs_window(name, "amplitude", worst_amplitude * 100.0);
    }
}

#[test]
fn eda_recordings_match_eda_process() {
    for recording in recordings("eda") {
        let (name, fs) = (&recording.name, recording.fs);
        let whole = &recording.whole;
        let clean = eda::eda_clean(&recording.signal, fs).expect("clean");
        let (_, phasic) = eda::eda_phasic(&clean, fs).expect("phasic");
        let scrs = eda::scr_peaks(&phasic, fs);
        let peaks: Vec<usize> = scrs.iter().map(|s| s.peak).collect();
        assert_eq!(peaks, indices(&whole["scr_peaks"]), "{name}: SCR_Peaks");
        let onsets: Vec<Option<usize>> = scrs.iter().map(|s| s.onset).collect();
        let want = Vec::<Option<usize>>::deserialize(&whole["scr_onsets"]).expect("onsets");
        assert_eq!(onsets, want, "{name}: SCR_Onsets");
        let recoveries: Vec<Option<usize>> = scrs.iter().map(|s| s.recovery).collect();
        let want = Vec::<Option<usize>>::deserialize(&whole["scr_recovery"]).expect("recovery");
        assert_eq!(recoveries, want, "{name}: SCR_Recovery");
        let mut worst: f64 = 0.0;
        for (k, scr) in scrs.iter().enumerate() {
            for (what, ours, key) in [
                ("SCR_Height", scr.height, "scr_height"),
                ("SCR_Amplitude", scr.amplitude, "scr_amplitude"),
                ("SCR_RiseTime", scr.rise_time, "scr_rise_time"),
                ("SCR_RecoveryTime", scr.recovery_time, "scr_recovery_time"),
            ] {
                worst = worst.max(matches(what, ours, number(&whole[key][k])));
            }
        }
        println!(
            "{name}: {} SCRs equal (peaks, onsets, recoveries), values differ by at most {worst:.1e}",
            scrs.len()
        );
        let (labels, rows) = run_operator(PhysioFeature::EdaComponents, Modality::Eda, &recording);
        let mut worst: f64 = 0.0;
        for (window, row) in windows_with_rows(&recording, &labels, &rows) {
            assert_eq!(
                row[column(&labels, "scr_count")],
                indices(&window["scr_peaks"]).len() as f64,
                "{name}: scr_count"
            );
            for (label, key) in [
                ("scr_amplitude_mean", "scr_amplitude"),
                ("scr_rise_time_mean", "scr_rise_time"),
                ("scr_height_mean", "scr_height"),
                ("scr_recovery_time_mean", "scr_recovery_time"),
            ] {
                worst = worst.max(matches(
                    label,
                    row[column(&labels, label)],
                    nan_mean_of(&window[key]),
                ));
            }
        }
        println!(
            "  {name}: {} windows equal NeuroKit2 on each window (worst {worst:.1e})",
            rows.len()
        );
    }
}
