//! Signal operators (`filter`, `normalize`, `rereference`, `resample`, `join`) driven like the
//! runtime drives them, against scipy fixtures (`fixtures/dsp/filters.json`) and numpy formulas.

use super::filter::FilterConfig;
use super::join::{JoinConfig, Missing};
use super::normalize::NormalizeConfig;
use super::resample::ResampleConfig;
use super::OperatorLogic;
use crate::dsp::filter::{butter, BandType, SosFilter};
use crate::stream::{
    sample_time, Batch, Channel, ChannelFormat, Modality, Nanos, Rate, StreamSchema, Values,
};

fn schema(rate: f64, width: usize) -> StreamSchema {
    StreamSchema {
        name: "x".into(),
        modality: Modality::Eeg,
        channels: (0..width)
            .map(|i| Channel::new(format!("C{i}"), "uV", "EEG"))
            .collect(),
        format: ChannelFormat::Float32,
        rate: Rate::Regular(rate),
        subjects: vec![],
    }
}

/// Runs a logic over one channel in uneven chunks; returns output times and values.
fn run(logic: &mut dyn OperatorLogic, signal: &[f64], rate: f64) -> (Vec<Nanos>, Vec<f64>) {
    let mut out = Vec::new();
    let (mut start, mut chunk) = (0, 3);
    while start < signal.len() {
        let end = (start + chunk).min(signal.len());
        let batch = Batch {
            stream: 0,
            subject: "S".into(),
            timestamps: (start..end)
                .map(|i| sample_time(0, i as u64, rate))
                .collect(),
            values: Values::Numeric(signal[start..end].to_vec()),
        };
        logic.on_batch(0, &batch, &mut out);
        logic.on_frontier(batch.timestamps[0], &mut out);
        start = end;
        chunk = chunk * 5 % 61 + 1;
    }
    logic.on_frontier(Nanos::MAX, &mut out);
    let (mut times, mut values) = (Vec::new(), Vec::new());
    for batch in out {
        times.extend(batch.timestamps);
        let Values::Numeric(v) = batch.values else {
            panic!()
        };
        values.extend(v);
    }
    (times, values)
}

fn fixture() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/dsp/filters.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn floats(value: &serde_json::Value) -> Vec<f64> {
    value
        .as_str()
        .unwrap()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect()
}

/// Within 1e-9 relative to the signal's scale (its largest magnitude), as the filter kernel tests.
fn assert_close(what: &str, actual: &[f64], expected: &[f64], signal: &[f64]) {
    assert_eq!(actual.len(), expected.len(), "{what}");
    let scale = signal.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= 1e-9 * scale,
            "{what}: sample {i}: {a} vs scipy {e}"
        );
    }
}

fn config_for(case: &serde_json::Value, zero_phase: bool) -> FilterConfig {
    let notch = case["kind"] == "notch";
    FilterConfig {
        filter_type: if notch {
            "notch"
        } else {
            match case["band"].as_str().unwrap() {
                "lowpass" => "lowpass",
                "highpass" => "highpass",
                "bandstop" => "bandstop",
                _ => "bandpass",
            }
        },
        order: case["order"].as_u64().unwrap_or(2) as usize,
        cutoff_hz: if notch {
            vec![case["freq_hz"].as_f64().unwrap()]
        } else {
            case["cutoff_hz"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        },
        q: case["quality"].as_f64().unwrap_or(30.0),
        zero_phase,
        restart_after_gap: false,
        steady_state_start: false,
    }
}

#[test]
fn filter_operator_matches_scipy_sosfilt_and_sosfiltfilt_on_every_fixture_case() {
    let doc = fixture();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() > 20);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let rate = case["fs"].as_f64().unwrap();
        let signal = floats(&doc["signals"][case["signal"].as_str().unwrap()]);
        for zero_phase in [false, true] {
            let config = config_for(case, zero_phase);
            let mut logic = config.instantiate(&schema(rate, 1), 0, "S");
            let (times, values) = run(&mut logic, &signal, rate);
            assert_eq!(times.len(), signal.len(), "{name}");
            let key = if zero_phase { "sosfiltfilt" } else { "sosfilt" };
            assert_close(
                &format!("{name} {key}"),
                &values,
                &floats(&case[key]),
                &signal,
            );
        }
    }
}

#[test]
fn a_steady_state_start_matches_sosfilt_with_zi_times_the_first_sample() {
    let doc = fixture();
    for case in doc["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let rate = case["fs"].as_f64().unwrap();
        let signal = floats(&doc["signals"][case["signal"].as_str().unwrap()]);
        let config = FilterConfig {
            steady_state_start: true,
            ..config_for(case, false)
        };
        let mut logic = config.instantiate(&schema(rate, 1), 0, "S");
        let (_, values) = run(&mut logic, &signal, rate);
        assert_close(
            &format!("{name} sosfilt_steady"),
            &values,
            &floats(&case["sosfilt_steady"]),
            &signal,
        );
    }
}

#[test]
fn zero_phase_holds_back_the_frontier_until_the_end() {
    let config = FilterConfig {
        filter_type: "lowpass",
        order: 2,
        cutoff_hz: vec![10.0],
        q: 30.0,
        zero_phase: true,
        restart_after_gap: false,
        steady_state_start: false,
    };
    let mut logic = config.instantiate(&schema(100.0, 1), 0, "S");
    let batch = Batch {
        stream: 0,
        subject: "S".into(),
        timestamps: vec![50, 60],
        values: Values::Numeric(vec![1.0, 2.0]),
    };
    logic.on_batch(0, &batch, &mut Vec::new());
    assert_eq!(logic.hold(), Some(50));
}

#[test]
fn causal_filter_recovers_after_a_nan_burst() {
    let rate = 100.0;
    let signal: Vec<f64> = (0..600)
        .map(|i| (i as f64 * 0.07).sin() * 3.0 + 1.0)
        .collect();
    let mut dirty = signal.clone();
    dirty[200..230].iter_mut().for_each(|v| *v = f64::NAN);
    for restart in [false, true] {
        let config = FilterConfig {
            filter_type: "bandpass",
            order: 2,
            cutoff_hz: vec![0.5, 8.0],
            q: 30.0,
            zero_phase: false,
            restart_after_gap: restart,
            steady_state_start: false,
        };
        let mut logic = config.instantiate(&schema(rate, 1), 0, "S");
        let (_, values) = run(&mut logic, &dirty, rate);
        assert!(values[200..230].iter().all(|v| v.is_nan()));
        assert!(
            values[230..].iter().all(|v| v.is_finite()),
            "restart = {restart}"
        );
        assert!(values[550..].iter().all(|v| v.abs() < 10.0));
    }
}

#[test]
fn normalize_is_the_running_z_score_after_the_warm_up() {
    let rate = 10.0;
    let signal: Vec<f64> = (0..100).map(|i| ((i * 37 % 11) as f64) - 3.0).collect();
    let config = NormalizeConfig {
        warmup: 2_000_000_000,
    };
    let mut logic = config.instantiate(&schema(rate, 1), 0);
    let (_, values) = run(&mut logic, &signal, rate);
    for (i, v) in values.iter().enumerate() {
        if i < 20 {
            assert!(v.is_nan(), "warm-up sample {i}");
            continue;
        }
        let seen = &signal[..=i];
        let mean = seen.iter().sum::<f64>() / seen.len() as f64;
        let std = (seen.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / seen.len() as f64).sqrt();
        assert!((v - (signal[i] - mean) / std).abs() < 1e-12, "sample {i}");
    }
}

#[test]
fn resample_is_the_anti_aliased_signal_interpolated_on_the_event_time_grid() {
    let rate = 700.0;
    let signal: Vec<f64> = (0..7000)
        .map(|i| (i as f64 * 0.003).sin() + 0.2 * (i as f64 * 0.9).sin())
        .collect();
    let config = ResampleConfig {
        rate_hz: 4.0,
        order: 4,
        cutoff_ratio: 0.8,
    };
    let mut logic = config.instantiate(&schema(rate, 1), 0);
    let (times, values) = run(&mut logic, &signal, rate);
    let mut reference = signal.clone();
    let sos = butter(4, &[1.6], BandType::Lowpass, rate).unwrap();
    SosFilter::new(&sos, 1)
        .unwrap()
        .process(&mut reference)
        .unwrap();
    assert_eq!(times.len(), 40);
    for (k, (&t, v)) in times.iter().zip(&values).enumerate() {
        assert_eq!(t, k as i64 * 250_000_000);
        // 700 Hz and 4 Hz share every 175th sample: the grid falls on input samples exactly.
        assert_eq!(*v, reference[k * 175], "grid point {k}");
    }
}

#[test]
fn join_aligns_rows_and_applies_the_missing_data_policy() {
    let a = schema(1.0, 1);
    let b = schema(1.0, 2);
    for (missing, rows) in [(Missing::Emit, 3), (Missing::Fill, 3), (Missing::Skip, 2)] {
        let config = JoinConfig {
            missing,
            coverage: true,
            prefix: true,
        };
        let mut logic = config.instantiate(&[&a, &b], 0, "S");
        let mut out = Vec::new();
        let batch = |times: Vec<Nanos>, values: Vec<f64>| Batch {
            stream: 0,
            subject: "S".into(),
            timestamps: times,
            values: Values::Numeric(values),
        };
        logic.on_batch(0, &batch(vec![1, 2, 3], vec![10.0, 20.0, 30.0]), &mut out);
        logic.on_batch(1, &batch(vec![1, 3], vec![1.0, 2.0, 5.0, 6.0]), &mut out);
        logic.on_frontier(4, &mut out);
        logic.on_batch(1, &batch(vec![2], vec![9.0, 9.0]), &mut out);
        assert_eq!(logic.late_samples(), 1);
        let Values::Numeric(values) = &out[0].values else {
            panic!()
        };
        assert_eq!(out[0].timestamps.len(), rows);
        assert_eq!(&values[..4], &[10.0, 1.0, 2.0, 1.0]);
        if missing == Missing::Fill {
            assert_eq!(&values[4..8], &[20.0, 1.0, 2.0, 0.5]);
        }
        if missing == Missing::Emit {
            assert!(values[5].is_nan() && values[7] == 0.5);
        }
    }
}
