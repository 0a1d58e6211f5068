//! HeLo on ONNX Runtime, end to end: the shipped model against PyTorch's outputs, the demo, the
//! held-out evaluation, the CUDA fallback policy, and bad model files.
//!
//! These tests need the ONNX Runtime library from the `onnxruntime` wheel that `./scripts/test`
//! installs into `.venv`; without it they fail and say so.

mod common;

use std::fs;

use common::{heloflow, heloflow_ok, parse_jsonl, root};
use heloflow::model::ldl::Metric;
use heloflow::model::manifest::LoadedManifest;
use heloflow::model::onnx::{ModelSession, SessionOptions};

fn manifest_path() -> std::path::PathBuf {
    root().join(heloflow::operators::DEFAULT_HELO_MANIFEST)
}

#[test]
fn rust_onnx_runtime_reproduces_pytorch_on_the_fixture() {
    let manifest = LoadedManifest::read(&manifest_path()).unwrap();
    let fixture_path = manifest_path().with_file_name("helo-sim.fixture.json");
    let fixture: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(fixture_path).unwrap()).unwrap();
    let mut session = ModelSession::open(&manifest, &SessionOptions::default())
        .unwrap_or_else(|e| panic!("{e} (run ./scripts/test to install ONNX Runtime)"));
    assert_eq!(session.provider, "CPUExecutionProvider");
    let expected: Vec<Vec<f64>> =
        serde_json::from_value(fixture["pytorch_output"].clone()).unwrap();
    let inputs: Vec<Vec<f32>> = manifest
        .manifest
        .inputs
        .iter()
        .map(|input| {
            let rows: Vec<Vec<f32>> =
                serde_json::from_value(fixture["inputs"][&input.name].clone()).unwrap();
            rows.concat()
        })
        .collect();
    let output = session.run(expected.len(), &inputs).unwrap();
    let labels = manifest.manifest.labels.len();
    let mut worst = 0.0f64;
    for (row, want) in expected.iter().enumerate() {
        for (label, value) in want.iter().enumerate() {
            worst = worst.max((f64::from(output[row * labels + label]) - value).abs());
        }
    }
    assert!(worst < 1e-5, "ONNX Runtime differs from PyTorch by {worst}");
}

#[test]
fn the_demo_ends_in_live_helo_distributions() {
    let output = heloflow_ok(
        &root(),
        &[
            "demo",
            "--fast",
            "--duration",
            "9",
            "--subjects",
            "2",
            "--status",
            "off",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("runs on CPUExecutionProvider"), "{stderr}");
    let rows = parse_jsonl(&String::from_utf8(output.stdout).unwrap());
    let helo: Vec<_> = rows.iter().filter(|r| r.stream == "helo").collect();
    // GSR features need 5 s of data: windows end at 5..=9 s, for two subjects. A window through
    // which the simulated face tracker lost the face has no face features: HeLo does not score it,
    // and says so.
    let not_scored: usize = stderr
        .lines()
        .find_map(|line| {
            line.strip_prefix("heloflow: operator `helo`: ")?
                .split_once(" windows not scored")
        })
        .map_or(0, |(n, _)| n.parse().unwrap());
    assert_eq!(
        helo.len() + not_scored,
        2 * 5,
        "{} HeLo rows: {stderr}",
        helo.len()
    );
    assert!(not_scored <= 2, "{stderr}");
    for row in &helo {
        let values = row.values.as_object().unwrap();
        assert_eq!(values.len(), 10);
        let total: f64 = values.values().map(|v| v.as_f64().unwrap()).sum();
        assert!((total - 1.0).abs() < 1e-4, "distribution sums to {total}");
        assert!(values.contains_key("joy") && values.contains_key("fear"));
    }
    assert!(helo.iter().any(|r| r.subject == "S02"));
    assert_eq!(rows.iter().filter(|r| r.stream == "truth").count(), 2 * 9);
}

/// The row of `table` (heloflow eval's Markdown) for `model`, as six numbers.
fn table_row(table: &str, model: &str) -> Vec<f64> {
    let line = table
        .lines()
        .find(|l| l.starts_with(&format!("| {model} ")))
        .unwrap_or_else(|| panic!("no row for {model}: {table}"));
    line.split('|')
        .skip(2)
        .filter(|cell| !cell.trim().is_empty())
        .map(|cell| cell.trim().parse().unwrap())
        .collect()
}

#[test]
fn eval_on_held_out_subjects_reproduces_the_manifests_scores_and_claims() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = fs::read_to_string(root().join("pipelines/helo-training.toml"))
        .unwrap()
        .replace("subjects = 10", "subjects = [\"S09\", \"S10\"]");
    let file = dir.path().join("held-out.toml");
    fs::write(&file, pipeline).unwrap();
    heloflow_ok(
        dir.path(),
        &["run", file.to_str().unwrap(), "--status", "off"],
    );
    let recording = dir.path().join("out/helo-training.jsonl");
    let output = heloflow_ok(
        &root(),
        &[
            "eval",
            "--model",
            manifest_path().to_str().unwrap(),
            "--recording",
            recording.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("(subjects S09, S10)"), "{stdout}");
    let manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(manifest_path()).unwrap()).unwrap();
    let model = format!(
        "{} {}",
        manifest["name"].as_str().unwrap(),
        manifest["version"].as_str().unwrap()
    );
    let held_out = &manifest["metrics"]["held_out"];
    // (row in eval's table, key in the manifest): the model, then every baseline heloflow can run.
    let scored = [
        (model.as_str(), "helo"),
        ("uniform", "uniform"),
        ("training mean", "training_mean"),
        ("linear", "linear"),
        ("mlp", "mlp"),
    ];
    // Every model the manifest scored and heloflow can run: the same numbers from the ONNX files.
    for &(row, key) in &scored {
        let values = table_row(&stdout, row);
        for (metric, value) in Metric::ALL.iter().zip(values) {
            let written = held_out[key][metric.name()].as_f64().unwrap();
            assert!(
                (value - written).abs() < 2e-4,
                "{row} {}: eval {value}, manifest {written}\n{stdout}",
                metric.name()
            );
        }
    }
    // The claim heloflow prints against each baseline is the one the manifest (and README) makes.
    for &(row, key) in &scored[1..] {
        let won: Vec<&str> = manifest["metrics"]["better_than"][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap())
            .collect();
        let listed = if won.is_empty() {
            "none".to_string()
        } else {
            won.join(", ")
        };
        let claim = format!(
            "{model} is better than {row} on {} of 6 metrics: {listed}",
            won.len()
        );
        assert!(stdout.contains(&claim), "missing {claim:?}: {stdout}");
    }
}

fn demo_with(dir: &std::path::Path, replace: &str, with: &str) -> std::path::PathBuf {
    let text = fs::read_to_string(root().join("pipelines/demo.toml"))
        .unwrap()
        .replace("realtime = true", "realtime = false")
        .replace("duration_s = 20", "duration_s = 6")
        .replace(
            "model = \"plugins/helo/model/helo-sim.json\"",
            &format!("model = {:?}", manifest_path().display().to_string()),
        )
        .replace(replace, with);
    let file = dir.join("pipeline.toml");
    fs::write(&file, text).unwrap();
    file
}

#[test]
fn cuda_falls_back_loudly_or_refuses_as_configured() {
    let dir = tempfile::tempdir().unwrap();
    let file = demo_with(
        dir.path(),
        "execution_provider = \"cpu\"",
        "execution_provider = \"cuda\"",
    );
    let output = heloflow(
        dir.path(),
        &["run", file.to_str().unwrap(), "--status", "off"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    // This machine's ONNX Runtime has no CUDA provider (or no GPU): the default policy runs on
    // CPU and says so; a GPU machine reports CUDAExecutionProvider instead.
    if stderr.contains("runs on CUDAExecutionProvider") {
        assert!(output.status.success(), "{stderr}");
        return;
    }
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("WARNING"), "{stderr}");
    assert!(
        stderr.contains("CUDA execution provider unavailable"),
        "{stderr}"
    );
    assert!(stderr.contains("runs on CPUExecutionProvider"), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("\"stream\":\"helo\""));

    let file = demo_with(
        dir.path(),
        "execution_provider = \"cpu\"",
        "execution_provider = \"cuda\"\nfallback = \"error\"",
    );
    let output = heloflow(
        dir.path(),
        &["run", file.to_str().unwrap(), "--status", "off"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("the CUDA execution provider is not available and fallback = \"error\""),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_models_and_libraries_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    // Inputs in the wrong order: PPG features where the model takes GSR features.
    let file = demo_with(
        dir.path(),
        "inputs = [\"eeg_de\", \"gsr_features\", \"ppg_features\", \"face_features\"]",
        "inputs = [\"eeg_de\", \"ppg_features\", \"gsr_features\", \"face_features\"]",
    );
    let output = heloflow(dir.path(), &["validate", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("`ppg_features` lacks"), "{stderr}");
    assert!(stderr.contains("the model's input `gsr` needs"), "{stderr}");
    assert!(
        stderr.contains("inputs = [\"eeg_de\", \"ppg_features\""),
        "{stderr}"
    );

    // A missing manifest is reported at the `model` option.
    let file = demo_with(
        dir.path(),
        "kind = \"helo\"",
        "kind = \"helo\"\nthreads = 2",
    );
    let text = fs::read_to_string(&file)
        .unwrap()
        .replace(&manifest_path().display().to_string(), "no/such/model.json");
    fs::write(&file, text).unwrap();
    let output = heloflow(dir.path(), &["validate", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot read model manifest no/such/model.json"),
        "{stderr}"
    );

    // A named ONNX Runtime library that does not exist.
    let file = demo_with(
        dir.path(),
        "execution_provider = \"cpu\"",
        "library = \"/nonexistent/libonnxruntime.so\"",
    );
    let output = heloflow(
        dir.path(),
        &["run", file.to_str().unwrap(), "--status", "off"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("ONNX Runtime library /nonexistent/libonnxruntime.so does not exist"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
