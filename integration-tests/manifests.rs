//! Model manifests are checked against the ONNX model itself before anything runs: a manifest
//! whose labels, input widths or SHA-256 disagree with the real HeLo model is refused by
//! `validate`, `run` and `eval` alike, at the operator's `model` option.
//!
//! Every bad manifest is a copy of the shipped one with one field edited, beside a copy of the
//! real model file; the checks run on real ONNX Runtime (the `onnxruntime` wheel in `.venv`).

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{heloflow, heloflow_ok, root};

/// Copies the shipped model (manifest, ONNX file, baselines) into `dir/model`, with the manifest
/// edited by `edit`; returns the manifest's path.
fn edited_model(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let shipped = root().join("plugins/helo/model");
    let model = dir.join("model");
    fs::create_dir_all(&model).unwrap();
    for file in ["helo-sim.onnx", "helo-sim-linear.onnx", "helo-sim-mlp.onnx"] {
        fs::copy(shipped.join(file), model.join(file)).unwrap();
    }
    let mut manifest: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(shipped.join("helo-sim.json")).unwrap()).unwrap();
    edit(&mut manifest);
    let path = model.join("helo-sim.json");
    fs::write(&path, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
    path
}

/// The demo pipeline, short and as fast as possible, running the model of `manifest` and writing
/// its rows to `dir/out`.
fn pipeline_with(dir: &Path, manifest: &Path) -> PathBuf {
    let text = fs::read_to_string(root().join("pipelines/demo.toml"))
        .unwrap()
        .replace("realtime = true", "realtime = false")
        .replace("duration_s = 20", "duration_s = 6")
        .replace("path = \"-\"", "path = \"out/live.jsonl\"")
        .replace(
            "model = \"plugins/helo/model/helo-sim.json\"",
            &format!("model = {:?}", manifest.display().to_string()),
        );
    let file = dir.join("pipeline.toml");
    fs::write(&file, text).unwrap();
    file
}

/// The line of `pipeline.toml` holding `model = ...` (1-based), where errors must point.
fn model_line(file: &Path) -> usize {
    fs::read_to_string(file)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("model = "))
        .unwrap()
        + 1
}

/// `validate` and `run` both refuse the pipeline with `expected` at the `model` option, and the run
/// writes nothing; `eval` refuses the manifest too.
fn refused_everywhere(dir: &Path, manifest: &Path, expected: &str) {
    let file = pipeline_with(dir, manifest);
    let at = format!("pipeline.toml:{}:", model_line(&file));
    let validate: &[&str] = &["validate", "pipeline.toml"];
    let run: &[&str] = &["run", "pipeline.toml", "--status", "off"];
    for args in [validate, run] {
        let command = args[0];
        let output = heloflow(dir, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{command} accepted it: {stderr}");
        assert!(stderr.contains(expected), "{command}: {stderr}");
        assert!(
            stderr.contains(&at),
            "{command} does not point at `model`: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert!(
        !dir.join("out/live.jsonl").exists(),
        "the refused run wrote output"
    );
    let recording = dir.join("recording.jsonl");
    fs::write(&recording, "").unwrap();
    let output = heloflow(
        dir,
        &[
            "eval",
            "--model",
            manifest.to_str().unwrap(),
            "--recording",
            recording.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "eval accepted it: {stderr}");
    assert!(stderr.contains(expected), "eval: {stderr}");
}

#[test]
fn the_unedited_copy_validates_so_the_edits_are_what_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = edited_model(dir.path(), |_| {});
    pipeline_with(dir.path(), &manifest);
    heloflow_ok(dir.path(), &["validate", "pipeline.toml"]);
}

#[test]
fn a_label_count_the_model_does_not_output_is_refused() {
    // Nine labels, with the manifest's own output shape and training mean edited to agree: only
    // the model's graph (ten outputs) can tell.
    let dir = tempfile::tempdir().unwrap();
    let manifest = edited_model(dir.path(), |m| {
        m["labels"].as_array_mut().unwrap().pop();
        m["training_mean"].as_array_mut().unwrap().pop();
        m["output"]["shape"] = serde_json::json!([-1, 9]);
    });
    refused_everywhere(
        dir.path(),
        &manifest,
        "output `distribution` has 10 labels, but the manifest says 9",
    );
}

#[test]
fn a_label_count_that_disagrees_with_the_manifest_output_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = edited_model(dir.path(), |m| {
        m["labels"].as_array_mut().unwrap().push("boredom".into());
    });
    refused_everywhere(
        dir.path(),
        &manifest,
        "output `distribution` has shape [-1, 10] but 11 labels are listed",
    );
}

#[test]
fn an_input_width_the_model_does_not_take_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = edited_model(dir.path(), |m| {
        let eeg = &mut m["inputs"][0];
        eeg["shape"] = serde_json::json!([-1, 89]);
        eeg["channels"].as_array_mut().unwrap().pop();
    });
    refused_everywhere(
        dir.path(),
        &manifest,
        "input `eeg` has 90 features, but the manifest says 89",
    );
}

#[test]
fn a_model_file_with_another_sha256_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = edited_model(dir.path(), |m| {
        m["sha256"] = "00".repeat(32).into();
    });
    refused_everywhere(
        dir.path(),
        &manifest,
        "says 0000000000000000000000000000000000000000000000000000000000000000: the file is not",
    );
    // And the other way round: the manifest is right, the model file was replaced.
    let dir = tempfile::tempdir().unwrap();
    let manifest = edited_model(dir.path(), |_| {});
    fs::copy(
        root().join("plugins/helo/model/helo-sim-linear.onnx"),
        dir.path().join("model/helo-sim.onnx"),
    )
    .unwrap();
    refused_everywhere(
        dir.path(),
        &manifest,
        "the file is not the model the manifest describes",
    );
}

/// A short recording of held-out subject S09 (the model's inputs and the truth), made by the
/// training pipeline; returns its lines.
fn recording_lines(dir: &Path) -> Vec<String> {
    let pipeline = fs::read_to_string(root().join("pipelines/helo-training.toml"))
        .unwrap()
        .replace("subjects = 10", "subjects = [\"S09\"]")
        .replace("duration_s = 600", "duration_s = 12");
    fs::write(dir.join("training.toml"), pipeline).unwrap();
    heloflow_ok(dir, &["run", "training.toml", "--status", "off"]);
    fs::read_to_string(dir.join("out/helo-training.jsonl"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// Runs `eval` of the shipped model on `lines` (written to a file in `dir`).
fn eval_on(dir: &Path, lines: &[String], extra: &[&str]) -> std::process::Output {
    let recording = dir.join("edited.jsonl");
    fs::write(&recording, lines.join("\n") + "\n").unwrap();
    let manifest = root().join("plugins/helo/model/helo-sim.json");
    let mut args = vec![
        "eval",
        "--model",
        manifest.to_str().unwrap(),
        "--recording",
        recording.to_str().unwrap(),
        "--subjects",
        "S09",
    ];
    args.extend_from_slice(extra);
    heloflow(dir, &args)
}

/// `line` (a JSON row) with `edit` applied.
fn edited_row(line: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut row: serde_json::Value = serde_json::from_str(line).unwrap();
    edit(&mut row);
    row.to_string()
}

#[test]
fn eval_counts_lines_without_time_and_warns_on_empty_or_negative_truth() {
    let dir = tempfile::tempdir().unwrap();
    let lines = recording_lines(dir.path());
    let truth_rows: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains("\"stream\":\"emotion\""))
        .collect();
    assert!(truth_rows.len() >= 4, "{} truth rows", truth_rows.len());

    // Three lines lose their event time, one truth row is all zeros.
    let mut edited = lines.clone();
    for &index in &[0, 1, 2] {
        edited[index] = edited_row(&edited[index], |row| {
            row.as_object_mut().unwrap().remove("t");
        });
    }
    edited[truth_rows[1]] = edited_row(&edited[truth_rows[1]], |row| {
        for value in row["values"].as_object_mut().unwrap().values_mut() {
            *value = 0.0.into();
        }
    });
    let output = eval_on(dir.path(), &edited, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("WARNING") && stderr.contains("3 line(s) without a finite `t`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 `emotion` row(s) with every probability zero skipped"),
        "{stderr}"
    );

    // A negative probability in the truth is refused, naming the line.
    let mut edited = lines.clone();
    let row = truth_rows[2];
    edited[row] = edited_row(&edited[row], |row| {
        row["values"]["joy"] = (-0.25).into();
    });
    let output = eval_on(dir.path(), &edited, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "edited.jsonl:{}: `emotion` gives `joy` the probability -0.25",
            row + 1
        )),
        "{stderr}"
    );

    // Event times join as whole nanoseconds, not as JSON text; an unnormalised truth is
    // renormalised and reported.
    let scored = |stderr: &str| {
        stderr
            .lines()
            .find(|line| line.contains(" window(s) scored;"))
            .map(str::to_string)
    };
    let baseline = eval_on(dir.path(), &lines, &[]);
    let baseline_count = scored(&String::from_utf8_lossy(&baseline.stderr));
    let mut edited = lines.clone();
    let row = truth_rows[3];
    edited[row] = edited_row(&edited[row], |row| {
        let t = row["t"].as_f64().unwrap();
        row["t"] = (t + 1e-12).into();
        for value in row["values"].as_object_mut().unwrap().values_mut() {
            *value = (value.as_f64().unwrap() * 2.0).into();
        }
    });
    let output = eval_on(dir.path(), &edited, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("1 `emotion` row(s) do not sum to 1 (within 0.01); renormalised"),
        "{stderr}"
    );
    assert!(baseline_count.is_some(), "{stderr}");
    assert_eq!(scored(&stderr), baseline_count, "{stderr}");

    // Another subject's windows, complete or not, count neither as scored nor as skipped when
    // `--subjects S09` leaves it out.
    let mut two_subjects = lines.clone();
    two_subjects.extend(
        lines
            .iter()
            .skip(1)
            .map(|line| edited_row(line, |row| row["subject"] = "S98".into())),
    );
    let output = eval_on(dir.path(), &two_subjects, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(scored(&stderr), baseline_count, "{stderr}");

    // The unedited recording scores without warnings.
    let output = eval_on(dir.path(), &lines, &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("WARNING"), "{stderr}");
    assert!(stderr.contains("runs on CPUExecutionProvider"), "{stderr}");
}

#[test]
fn eval_on_cuda_without_cuda_says_it_runs_on_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let lines = recording_lines(dir.path());
    let output = eval_on(dir.path(), &lines, &["--execution-provider", "cuda"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // A machine with CUDA (library and GPU) runs there; any other must say it fell back.
    if !stderr.contains("runs on CUDAExecutionProvider") {
        assert!(
            stderr.contains("WARNING")
                && stderr.contains("CUDA execution provider unavailable")
                && stderr.contains("runs on CPUExecutionProvider"),
            "{stderr}"
        );
    }
}
