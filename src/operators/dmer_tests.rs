//! The DMER feature operators against `fixtures/features/dmer.json`, produced by the numpy/scipy
//! reference implementation of the published definitions (`fixtures/features/dmer_reference.py`).
//!
//! Tolerance: every value within 1e-9 relative of the reference, where "relative" is to the larger
//! of the value and the largest magnitude of that feature's group in the row (spectrum statistics
//! near zero are sums of large terms: FFT rounding is relative to the spectrum's scale, not the bin).

use super::eeg_de::EegDeConfig;
use super::peripheral_features::{PeripheralConfig, PeripheralSignal};
use super::window::WindowSpec;
use super::OperatorLogic;
use crate::stream::{sample_time, Batch, Nanos, Values, NANOS_PER_SEC};

const TOLERANCE: f64 = 1e-9;

fn fixture() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/features/dmer.json");
    let text = std::fs::read_to_string(path).expect("fixtures/features/dmer.json is readable");
    serde_json::from_str(&text).expect("dmer.json is JSON")
}

fn floats(value: &serde_json::Value) -> Vec<f64> {
    value
        .as_str()
        .expect("floats are stored as a string")
        .split_whitespace()
        .map(|v| v.parse().expect("a float"))
        .collect()
}

/// Feeds `samples` (row-major, `width` channels at `rate` Hz from t = 0) in uneven chunks and returns every output row.
fn run(
    mut logic: Box<dyn OperatorLogic>,
    samples: &[f64],
    width: usize,
    rate: f64,
) -> (Vec<Nanos>, Vec<f64>) {
    let n = samples.len() / width;
    let mut out = Vec::new();
    let mut start = 0;
    let mut chunk = 7;
    while start < n {
        let end = (start + chunk).min(n);
        let batch = Batch {
            stream: 0,
            subject: "S01".into(),
            timestamps: (start..end)
                .map(|i| sample_time(0, i as u64, rate))
                .collect(),
            values: Values::Numeric(samples[start * width..end * width].to_vec()),
        };
        logic.on_batch(0, &batch, &mut out);
        logic.on_frontier(batch.timestamps[batch.len() - 1] + 1, &mut out);
        start = end;
        chunk = chunk * 3 % 97 + 5;
    }
    logic.on_frontier(Nanos::MAX, &mut out);
    let mut times = Vec::new();
    let mut values = Vec::new();
    for batch in out {
        times.extend(batch.timestamps);
        let Values::Numeric(v) = batch.values else {
            panic!("numeric output")
        };
        values.extend(v);
    }
    (times, values)
}

/// Compares row by row; `groups` are the lengths of feature groups sharing a scale.
fn compare(what: &str, actual: &[f64], expected: &[f64], row: usize, groups: &[usize]) {
    assert_eq!(actual.len(), expected.len(), "{what}: value count");
    let mut worst = 0.0f64;
    for (r, (a_row, e_row)) in actual.chunks(row).zip(expected.chunks(row)).enumerate() {
        let mut offset = 0;
        for &len in groups.iter().cycle() {
            if offset >= row {
                break;
            }
            let e = &e_row[offset..offset + len];
            let scale = e.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for (i, (&a, &b)) in a_row[offset..offset + len].iter().zip(e).enumerate() {
                let error = (a - b).abs() / b.abs().max(scale).max(f64::MIN_POSITIVE);
                worst = worst.max(error);
                assert!(
                    error <= TOLERANCE,
                    "{what}: row {r} value {} is {a}, reference {b} (relative error {error:e})",
                    offset + i
                );
            }
            offset += len;
        }
    }
    eprintln!("{what}: worst relative error {worst:e}");
}

#[test]
fn eeg_de_matches_the_dmer_reference() {
    let doc = fixture();
    let eeg = &doc["eeg"];
    let width = eeg["channels"].as_u64().unwrap() as usize;
    let config = EegDeConfig {
        window: WindowSpec::new(NANOS_PER_SEC, NANOS_PER_SEC),
        quality: false,
    };
    let logic = Box::new(config.instantiate(&eeg_schema(width), 0, "S01"));
    let (times, values) = run(logic, &floats(&eeg["samples"]), width, 300.0);
    let windows = eeg["windows"].as_u64().unwrap() as usize;
    assert_eq!(
        times,
        (1..=windows as i64)
            .map(|s| s * NANOS_PER_SEC)
            .collect::<Vec<_>>()
    );
    compare(
        "eeg_de",
        &values,
        &floats(&eeg["features"]),
        width * 5,
        &[1],
    );
}

fn eeg_schema(width: usize) -> crate::stream::StreamSchema {
    use crate::stream::{Channel, ChannelFormat, Modality, Rate, StreamSchema};
    StreamSchema {
        name: "eeg".into(),
        modality: Modality::Eeg,
        channels: (0..width)
            .map(|i| Channel::new(format!("C{i}"), "uV", "EEG"))
            .collect(),
        format: ChannelFormat::Float32,
        rate: Rate::Regular(300.0),
        subjects: vec![],
    }
}

fn peripheral(signal: PeripheralSignal, causal_bandpass: bool) -> Box<dyn OperatorLogic> {
    let config = PeripheralConfig {
        signal,
        window: WindowSpec::new(5 * NANOS_PER_SEC, NANOS_PER_SEC),
        causal_bandpass,
        quality: false,
    };
    Box::new(config.instantiate(0, "S01"))
}

/// Group sizes of a GSR/PPG row: seven statistics three times, the spectrum six, (PSD one).
const PERIPHERAL_GROUPS: [usize; 5] = [7, 7, 7, 6, 1];

#[test]
fn gsr_features_match_the_dmer_reference() {
    let doc = fixture();
    let gsr = &doc["gsr"];
    let (times, values) = run(
        peripheral(PeripheralSignal::Gsr, false),
        &floats(&gsr["samples"]),
        1,
        4.0,
    );
    let windows = gsr["windows"].as_u64().unwrap() as i64;
    assert_eq!(
        times,
        (5..5 + windows)
            .map(|s| s * NANOS_PER_SEC)
            .collect::<Vec<_>>()
    );
    compare(
        "gsr_features",
        &values,
        &floats(&gsr["features"]),
        28,
        &PERIPHERAL_GROUPS,
    );
}

#[test]
fn ppg_features_of_the_band_passed_signal_match_the_dmer_reference() {
    let doc = fixture();
    let ppg = &doc["ppg"];
    let (times, values) = run(
        peripheral(PeripheralSignal::Ppg, false),
        &floats(&ppg["filtered"]),
        1,
        100.0,
    );
    let windows = ppg["windows"].as_u64().unwrap() as i64;
    assert_eq!(times.len() as i64, windows);
    compare(
        "ppg_features",
        &values,
        &floats(&ppg["features"]),
        27,
        &PERIPHERAL_GROUPS[..4],
    );
}

#[test]
fn zero_phase_band_pass_matches_dmer_filtfilt() {
    // DMER: filtfilt(b, a) of butter(3, [0.5, 8] / 50, "band"); heloflow: the same filter as
    // second-order sections, forward-backward with the same padding and initial conditions.
    use crate::dsp::filter::{butter, sosfiltfilt, BandType};
    let doc = fixture();
    let ppg = &doc["ppg"];
    let sos = butter(3, &[0.5, 8.0], BandType::Bandpass, 100.0).unwrap();
    let ours = sosfiltfilt(&sos, &floats(&ppg["samples"])).unwrap();
    compare(
        "ppg band-pass",
        &ours,
        &floats(&ppg["filtered"]),
        ours.len(),
        &[ours.len()],
    );
}

#[test]
fn nan_bursts_are_flagged_and_later_windows_recover() {
    let doc = fixture();
    let ppg = &doc["ppg"];
    let clean = floats(&ppg["samples"]);
    let mut dirty = clean.clone();
    for v in &mut dirty[250..300] {
        *v = f64::NAN;
    }
    let config = PeripheralConfig {
        signal: PeripheralSignal::Ppg,
        window: WindowSpec::new(5 * NANOS_PER_SEC, NANOS_PER_SEC),
        causal_bandpass: true,
        quality: true,
    };
    let (_, with_nan) = run(Box::new(config.instantiate(0, "S01")), &dirty, 1, 100.0);
    let row = 27 + 4;
    let rows: Vec<&[f64]> = with_nan.chunks(row).collect();
    // Windows ending at 5 s and 6 s hold the burst (2.5-3 s): NaN features, 50 flagged samples.
    for r in &rows[..2] {
        assert!(r[0].is_nan());
        assert_eq!(r[27 + 1], 50.0);
    }
    // Later windows are finite: the causal filter skipped the NaN samples without corrupting its state.
    for r in &rows[3..] {
        assert!(r[..27].iter().all(|v| v.is_finite()), "{r:?}");
        assert_eq!(r[27 + 1], 0.0);
    }
}
