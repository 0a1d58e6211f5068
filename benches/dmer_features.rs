//! DMER feature workload in heloflow against the numpy/scipy reference implementation (a benchmark).
//!
//! Run: `cargo bench --bench dmer_features` (needs python3 with numpy and scipy: `./scripts/test`
//! installs them into `.venv`). One subject, `SECONDS` of EEG (18 x 300 Hz), GSR (4 Hz) and PPG
//! (100 Hz): heloflow's `eeg_de`, `gsr_features` and `ppg_features` operators (windows, band-pass,
//! features) and `fixtures/features/dmer_reference.py` compute the same features from the same
//! signals; the values are checked equal (EEG and GSR to 1e-9 relative; PPG is compared on the
//! same zero-phase band-passed signal) and the wall-clock ratio is printed.

use std::io::Write;
use std::process::Command;
use std::time::Instant;

use heloflow::operators::{
    EegDeConfig, OperatorLogic, PeripheralConfig, PeripheralSignal, WindowSpec,
};
use heloflow::stream::{
    sample_time, Batch, Channel, ChannelFormat, Modality, Nanos, Rate, StreamSchema, Values,
    NANOS_PER_SEC,
};

const SECONDS: usize = 600;

fn signal(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut state = seed;
    (0..n)
        .map(|i| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            scale * ((i as f64 * 0.0421).sin() + 0.3 * (i as f64 * 0.31).sin() + noise)
        })
        .collect()
}

fn run(mut logic: Box<dyn OperatorLogic>, values: &[f64], width: usize, rate: f64) -> Vec<f64> {
    let n = values.len() / width;
    let chunk = ((rate / 10.0) as usize).max(1);
    let mut out = Vec::new();
    for start in (0..n).step_by(chunk) {
        let end = (start + chunk).min(n);
        let batch = Batch {
            stream: 0,
            subject: "S01".into(),
            timestamps: (start..end)
                .map(|i| sample_time(0, i as u64, rate))
                .collect(),
            values: Values::Numeric(values[start * width..end * width].to_vec()),
        };
        logic.on_batch(0, &batch, &mut out);
        logic.on_frontier(batch.timestamps[batch.len() - 1] + 1, &mut out);
    }
    logic.on_frontier(Nanos::MAX, &mut out);
    out.into_iter()
        .flat_map(|b| match b.values {
            Values::Numeric(v) => v,
            Values::Text(_) => Vec::new(),
        })
        .collect()
}

fn eeg_schema() -> StreamSchema {
    StreamSchema {
        name: "eeg".into(),
        modality: Modality::Eeg,
        channels: (0..18)
            .map(|i| Channel::new(format!("C{i}"), "uV", "EEG"))
            .collect(),
        format: ChannelFormat::Float32,
        rate: Rate::Regular(300.0),
        subjects: vec![],
    }
}

fn heloflow_features(eeg: &[f64], gsr: &[f64], ppg: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let second = NANOS_PER_SEC;
    let de = EegDeConfig {
        window: WindowSpec::new(second, second),
        quality: false,
    };
    let peripheral = |signal, causal_bandpass| PeripheralConfig {
        signal,
        window: WindowSpec::new(5 * second, second),
        causal_bandpass,
        quality: false,
    };
    (
        run(
            Box::new(de.instantiate(&eeg_schema(), 0, "S01")),
            eeg,
            18,
            300.0,
        ),
        run(
            Box::new(peripheral(PeripheralSignal::Gsr, false).instantiate(0, "S01")),
            gsr,
            1,
            4.0,
        ),
        run(
            Box::new(peripheral(PeripheralSignal::Ppg, true).instantiate(0, "S01")),
            ppg,
            1,
            100.0,
        ),
    )
}

const PYTHON: &str = r#"
import sys, time, warnings
import numpy as np
sys.path.insert(0, sys.argv[1])
import dmer_reference as ref
warnings.simplefilter("ignore")
eeg = np.loadtxt(sys.argv[2]).reshape(-1, 18).T
gsr = np.loadtxt(sys.argv[3])
ppg = np.loadtxt(sys.argv[4])
best = float("inf")
for _ in range(3):
    start = time.perf_counter()
    de = ref.eeg_de(eeg); g = ref.gsr_features(gsr); p = ref.ppg_features(ppg)
    best = min(best, time.perf_counter() - start)
print(best)
print(" ".join(repr(float(v)) for v in de.ravel()))
print(" ".join(repr(float(v)) for v in g.ravel()))
"#;

fn write(dir: &std::path::Path, name: &str, values: &[f64]) -> String {
    let path = dir.join(name);
    let mut file = std::fs::File::create(&path).unwrap();
    for v in values {
        writeln!(file, "{v:?}").unwrap();
    }
    path.display().to_string()
}

fn max_error(ours: &[f64], reference: &[f64]) -> f64 {
    assert_eq!(ours.len(), reference.len(), "feature counts differ");
    let scale = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    ours.iter()
        .zip(reference)
        .map(|(a, b)| (a - b).abs() / b.abs().max(1e-6 * scale))
        .fold(0.0, f64::max)
}

fn main() {
    let eeg = signal(SECONDS * 300 * 18, 1, 20.0);
    let gsr: Vec<f64> = signal(SECONDS * 4, 2, 0.2)
        .iter()
        .map(|v| (v + 3.0) * 100.0)
        .map(|v: f64| v.round() / 100.0)
        .collect();
    let ppg: Vec<f64> = signal(SECONDS * 100, 3, 40.0)
        .iter()
        .map(|v| v + 500.0)
        .collect();

    let mut best = f64::INFINITY;
    let mut ours = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        let start = Instant::now();
        ours = heloflow_features(&eeg, &gsr, &ppg);
        best = best.min(start.elapsed().as_secs_f64());
    }

    let dir = tempfile::tempdir().unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/features");
    let output = Command::new("python3")
        .args([
            "-c",
            PYTHON,
            root,
            &write(dir.path(), "eeg.txt", &eeg),
            &write(dir.path(), "gsr.txt", &gsr),
            &write(dir.path(), "ppg.txt", &ppg),
        ])
        .output()
        .expect("python3 runs (install numpy and scipy: ./scripts/test sets up .venv)");
    assert!(
        output.status.success(),
        "the numpy/scipy reference failed (are numpy and scipy installed?): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let mut lines = text.lines();
    let python_s: f64 = lines.next().unwrap().trim().parse().unwrap();
    let parse = |line: &str| {
        line.split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect::<Vec<f64>>()
    };
    let de_error = max_error(&ours.0, &parse(lines.next().unwrap()));
    let gsr_error = max_error(&ours.1, &parse(lines.next().unwrap()));
    assert!(
        de_error < 1e-9 && gsr_error < 1e-9,
        "values differ: eeg_de {de_error:e}, gsr {gsr_error:e}"
    );
    let rows = ours.0.len() / 90;
    println!("DMER features, one subject, {SECONDS} s (EEG 18 x 300 Hz, GSR 4 Hz, PPG 100 Hz):");
    println!(
        "  heloflow operators   {:8.2} ms  ({rows} EEG rows, {} GSR rows, {} PPG rows)",
        best * 1e3,
        ours.1.len() / 28,
        ours.2.len() / 27
    );
    println!("  numpy/scipy reference {:8.2} ms", python_s * 1e3);
    println!("  ratio                {:8.1}x  (max relative difference: eeg_de {de_error:.1e}, gsr {gsr_error:.1e})", python_s / best);
    println!("  real time            {:8.0}x", SECONDS as f64 / best);
}
