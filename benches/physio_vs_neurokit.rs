//! The same physiological workload in heloflow, NeuroKit2 and plain numpy/scipy, in one run.
//!
//! Workload: 10 minutes of ECG (700 Hz) and EDA (32 Hz) simulated by NeuroKit2; per 60 s window
//! sliding by 10 s, ECG clean + artefact-corrected R-peaks + HRV (time and frequency) and EDA
//! clean + tonic/phasic + SCRs. `benches/physio_vs_neurokit.py` simulates the signals and times
//! the two Python versions; this bench streams the same samples through heloflow's
//! `heart_rate_variability` and `eda_components` operators, checks every window's values against
//! NeuroKit2's, and prints times and ratios. Run: `cargo bench --bench physio_vs_neurokit` (needs
//! .venv with requirements-dev.txt).
//! To profile heloflow alone, `PHYSIO_BENCH_REUSE=DIR` reads `signals.json` and `python.json` from a
//! directory an earlier `benches/physio_vs_neurokit.py DIR` wrote instead of running Python again.

use std::process::Command;
use std::time::Instant;

use heloflow::operators::{Operator, OperatorLogic, PhysioConfig, PhysioFeature, WindowSpec};
use heloflow::stream::{
    sample_time, Batch, Channel, ChannelFormat, Modality, Nanos, Rate, StreamSchema, Values,
    NANOS_PER_SEC,
};
use serde_json::Value;

fn schema(modality: Modality, fs: f64) -> StreamSchema {
    StreamSchema {
        name: modality.name().into(),
        modality,
        channels: vec![Channel::new("x", "u", "x")],
        format: ChannelFormat::Float32,
        rate: Rate::Regular(fs),
        subjects: vec![],
    }
}

/// `signal` as the 0.1 s batches a source would deliver, with the frontier after each one.
fn batches(fs: f64, signal: &[f64]) -> Vec<(Batch, Nanos)> {
    let chunk = (fs / 10.0) as usize;
    signal
        .chunks(chunk)
        .enumerate()
        .map(|(k, values)| {
            let start = (k * chunk) as u64;
            let batch = Batch {
                stream: 0,
                subject: "S01".into(),
                timestamps: (0..values.len() as u64)
                    .map(|i| sample_time(0, start + i, fs))
                    .collect(),
                values: Values::Numeric(values.to_vec()),
            };
            (batch, sample_time(0, start + values.len() as u64, fs))
        })
        .collect()
}

/// Streams the batches through the operator; returns every output row.
fn run(
    feature: PhysioFeature,
    modality: Modality,
    fs: f64,
    batches: &[(Batch, Nanos)],
) -> Vec<Vec<f64>> {
    let config = PhysioConfig {
        feature,
        window: WindowSpec::new(60 * NANOS_PER_SEC, 10 * NANOS_PER_SEC),
        max_invalid: 0.1,
        flat_s: 1.0,
    };
    let input = schema(modality, fs);
    let width = config
        .output_schema("out", &[&input])
        .expect("ports")
        .channel_count();
    let mut logic = config.instantiate(&input, 1, "S01");
    let mut out = Vec::new();
    for (batch, frontier) in batches {
        logic.on_batch(0, batch, &mut out);
        logic.on_frontier(*frontier, &mut out);
    }
    logic.on_frontier(Nanos::MAX, &mut out);
    out.iter()
        .flat_map(|b| match &b.values {
            Values::Numeric(v) => v.chunks(width).map(<[f64]>::to_vec).collect(),
            Values::Text(_) => Vec::new(),
        })
        .collect()
}

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_f64().unwrap_or(f64::NAN))
        .collect()
}

fn agree(what: &str, ours: &[f64], theirs: &[f64]) -> f64 {
    let mut worst: f64 = 0.0;
    for (a, b) in ours.iter().zip(theirs) {
        if a.is_nan() && b.is_nan() {
            continue;
        }
        let rel = (a - b).abs() / b.abs().max(1e-12);
        if rel > 1e-6 {
            println!("  MISMATCH {what}: heloflow {ours:?} vs NeuroKit2 {theirs:?}");
        }
        worst = worst.max(rel);
    }
    worst
}

fn main() {
    let root = env!("CARGO_MANIFEST_DIR");
    let venv = format!("{root}/.venv/bin/python");
    let python = if std::path::Path::new(&venv).exists() {
        venv
    } else {
        "python3".into()
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = match std::env::var_os("PHYSIO_BENCH_REUSE") {
        Some(reused) => std::path::PathBuf::from(reused),
        None => {
            let status = Command::new(&python)
                .arg(format!("{root}/benches/physio_vs_neurokit.py"))
                .arg(dir.path())
                .env("PYTHONWARNINGS", "ignore")
                .status()
                .expect(
                    "running python3: install it and requirements-dev.txt (./scripts/test does)",
                );
            assert!(
                status.success(),
                "physio_vs_neurokit.py failed: needs neurokit2 (pip install -r requirements-dev.txt)"
            );
            dir.path().to_path_buf()
        }
    };
    let read = |name: &str| -> Value {
        let path = data_dir.join(name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        serde_json::from_str(&text).expect("json")
    };
    let signals = read("signals.json");
    let python_results = read("python.json");
    let ecg = floats(&signals["ecg"]);
    let eda = floats(&signals["eda"]);
    let (ecg_fs, eda_fs) = (
        signals["ecg_fs"].as_f64().expect("fs"),
        signals["eda_fs"].as_f64().expect("fs"),
    );

    let (ecg_batches, eda_batches) = (batches(ecg_fs, &ecg), batches(eda_fs, &eda));
    let mut best = f64::INFINITY;
    let mut rows = (Vec::new(), Vec::new());
    // Five untimed rounds first (the CPU leaves its idle clock, caches and plans fill), then the
    // best of 20 back-to-back rounds, as the Python side is timed on a busy CPU too.
    for round in 0..25 {
        let start = Instant::now();
        rows = (
            run(
                PhysioFeature::HeartRateVariability,
                Modality::Ecg,
                ecg_fs,
                &ecg_batches,
            ),
            run(
                PhysioFeature::EdaComponents,
                Modality::Eda,
                eda_fs,
                &eda_batches,
            ),
        );
        if round >= 5 {
            best = best.min(start.elapsed().as_secs_f64());
        }
    }
    let (hrv_rows, eda_rows) = rows;
    let nk_ecg = python_results["neurokit_ecg"].as_array().expect("rows");
    let nk_eda = python_results["neurokit_eda"].as_array().expect("rows");
    assert_eq!(hrv_rows.len(), nk_ecg.len(), "ECG window count");
    assert_eq!(eda_rows.len(), nk_eda.len(), "EDA window count");
    let mut worst: f64 = 0.0;
    for (ours, theirs) in hrv_rows.iter().zip(nk_ecg) {
        // NeuroKit2 row: beats, MeanNN, SDNN, RMSSD, pNN50, LF, HF, LFHF; ours from column 1.
        worst = worst.max(agree("HRV", &ours[1..9], &floats(theirs)));
    }
    for (ours, theirs) in eda_rows.iter().zip(nk_eda) {
        let t = floats(theirs);
        worst = worst.max(agree("EDA", &[ours[0], ours[2], ours[3]], &t));
    }
    let nk_s = python_results["neurokit_s"].as_f64().expect("time");
    let scipy_s = python_results["scipy_s"].as_f64().expect("time");
    println!(
        "physio workload: 10 min ECG 700 Hz + EDA 32 Hz, {} + {} windows of 60 s every 10 s",
        hrv_rows.len(),
        eda_rows.len()
    );
    println!(
        "  values: heloflow equals NeuroKit2 {} (worst relative difference {worst:.1e})",
        python_results["neurokit2"]
    );
    println!("  heloflow      {:8.1} ms", best * 1e3);
    println!(
        "  numpy/scipy   {:8.1} ms  ({:.1}x heloflow)",
        scipy_s * 1e3,
        scipy_s / best
    );
    println!(
        "  NeuroKit2     {:8.1} ms  ({:.1}x heloflow)",
        nk_s * 1e3,
        nk_s / best
    );
}
