//! Telemetry end to end: the Prometheus text a real run exposes is read by the reference parser
//! (Python `prometheus_client`, pinned in requirements-dev.txt) exactly as heloflow's own parser
//! (`heloflow top`) reads it, with valid histograms and the run's figures; `heloflow top` fails
//! clearly when there is nothing to read.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use heloflow::runtime::status::StatusMode;
use heloflow::runtime::{run, RunOptions, RunReport};
use heloflow::telemetry::exposition::Exposition;
use heloflow::telemetry::Telemetry;
use serde_json::Value;

/// Two simulated subjects through HeLo, with a windowed ground truth and the markers.
fn pipeline(jsonl: &str) -> String {
    format!(
        r#"
[pipeline]
name = "telemetry \"it\""

[sources.sim]
kind = "simulator"
seed = 11
subjects = ["P01", "P02"]
streams = ["eeg", "eda", "ppg", "face", "emotion", "markers"]
duration_s = 7

# A second source whose queue is too small to keep up: it drops, and counts what it drops.
[sources.lossy]
kind = "simulator"
seed = 12
streams = ["eeg"]
duration_s = 7
queue = {{ capacity = 1, policy = "drop_oldest" }}

[operators.eeg_de]
kind = "eeg_de"
inputs = ["sim.eeg"]

[operators.gsr_features]
kind = "gsr_features"
inputs = ["sim.eda"]

[operators.ppg_features]
kind = "ppg_features"
inputs = ["sim.ppg"]

[operators.face_features]
kind = "face_features"
inputs = ["sim.face"]

[operators.helo]
kind = "helo"
inputs = ["eeg_de", "gsr_features", "ppg_features", "face_features"]

[operators.truth]
kind = "window_stats"
inputs = ["sim.emotion"]
window_s = 1.0
hop_s = 0.5
stats = ["mean"]

[sinks.out]
kind = "jsonl"
inputs = ["helo", "truth", "sim.markers", "lossy.eeg"]
path = "{jsonl}"
"#
    )
}

fn run_pipeline() -> (RunReport, Telemetry) {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("out.jsonl");
    let text = pipeline(jsonl.to_str().unwrap());
    let pipeline = heloflow::pipeline::parse("telemetry.toml", &text).unwrap();
    let telemetry = Telemetry::new(&pipeline);
    let options = RunOptions {
        workers: 2,
        status: StatusMode::Off,
        metrics: Some(telemetry.metrics().clone()),
    };
    let report = run(&pipeline, &options, Arc::new(AtomicBool::new(false))).unwrap();
    (report, telemetry)
}

/// What the reference parser reads from `text`: families and histogram problems.
fn reference(text: &str) -> Value {
    let mut child = common::python("prometheus_client", &common::lsl_config())
        .arg(common::root().join("integration-tests/telemetry/parse.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the reference parser refused the text: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Every sample as `name{sorted labels} value`, one per line, sorted.
fn canonical(samples: impl Iterator<Item = (String, Vec<(String, String)>, f64)>) -> Vec<String> {
    let mut lines: Vec<String> = samples
        .map(|(name, mut labels, value)| {
            labels.sort();
            format!("{name}{labels:?} {value:?}")
        })
        .collect();
    lines.sort();
    lines
}

/// Checks `text` with the reference parser: valid, the same samples heloflow's parser reads, and
/// the families typed as heloflow declares them. Returns heloflow's parse.
fn check_with_reference(text: &str) -> Exposition {
    let parsed = reference(text);
    assert_eq!(parsed["problems"], serde_json::json!([]), "{text}");
    let families = parsed["families"].as_array().unwrap();
    let theirs = canonical(families.iter().flat_map(|f| {
        f["samples"].as_array().unwrap().iter().map(|s| {
            let labels = s["labels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            let value = match s["value"].as_str().unwrap() {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                text => text.parse().unwrap(),
            };
            (s["name"].as_str().unwrap().to_string(), labels, value)
        })
    }));
    let ours = Exposition::parse(text).unwrap();
    let mine = canonical(
        ours.samples
            .iter()
            .map(|s| (s.name.clone(), s.labels.clone(), s.value)),
    );
    let only_theirs: Vec<_> = theirs.iter().filter(|s| !mine.contains(s)).collect();
    let only_mine: Vec<_> = mine.iter().filter(|s| !theirs.contains(s)).collect();
    assert!(
        only_theirs.is_empty() && only_mine.is_empty() && theirs.len() == mine.len(),
        "the reference parser read {only_theirs:#?}\nheloflow's read {only_mine:#?}"
    );
    let kind = |name: &str| {
        families
            .iter()
            .find(|f| f["name"] == name)
            .map(|f| f["type"].as_str().unwrap().to_string())
    };
    for (family, expected) in [
        ("heloflow_stream_samples_in", "counter"),
        ("heloflow_stream_samples_out", "counter"),
        ("heloflow_stream_dropped_samples", "counter"),
        ("heloflow_stream_gaps", "counter"),
        ("heloflow_stream_late_samples", "counter"),
        ("heloflow_queue_depth_batches", "gauge"),
        ("heloflow_window_output_latency_seconds", "histogram"),
        ("heloflow_operator_emit_latency_seconds", "histogram"),
        ("heloflow_model_inference_seconds", "histogram"),
        ("heloflow_model_batch_rows", "histogram"),
        ("heloflow_model_info", "gauge"),
    ] {
        assert_eq!(kind(family).as_deref(), Some(expected), "{family}");
    }
    ours
}

#[test]
fn the_reference_parser_reads_what_a_run_exposes() {
    let (report, telemetry) = run_pipeline();
    let text = telemetry.prometheus_text();
    let e = check_with_reference(&text);
    // The pipeline's name, quotes and all, survives as a label value.
    let info = e.named("heloflow_pipeline_info").next().unwrap();
    assert_eq!(info.label("pipeline"), Some("telemetry \"it\""));
    // The figures are the run's.
    let sources: f64 = e
        .named("heloflow_stream_samples_in_total")
        .filter(|s| {
            s.label("stream")
                .is_some_and(|n| n.starts_with("sim.") || n.starts_with("lossy."))
        })
        .map(|s| s.value)
        .sum();
    assert_eq!(sources, report.samples_in as f64);
    assert_eq!(
        e.total("heloflow_stream_samples_out_total", &[("sink", "out")]),
        report.rows_out as f64
    );
    assert_eq!(
        e.total("heloflow_dropped_samples_total", &[]),
        report.dropped as f64
    );
    let queue_full = e.total(
        "heloflow_stream_dropped_samples_total",
        &[("reason", "queue_full")],
    );
    assert_eq!(queue_full, report.drops.queue_full as f64);
    for (operator, sink) in [("helo", "out"), ("truth", "out")] {
        let h = e
            .histogram(
                "heloflow_window_output_latency_seconds",
                &[("operator", operator), ("sink", sink)],
            )
            .unwrap();
        assert!(h.count > 0, "{operator}");
    }
    let batches = e
        .histogram("heloflow_model_batch_rows", &[("operator", "helo")])
        .unwrap();
    assert!(batches.count > 0 && batches.mean().unwrap() >= 1.0);
}

#[test]
fn top_says_when_there_is_nothing_to_read() {
    // Port 9 on loopback: nothing listens there in the test network.
    let output = common::heloflow(&common::root(), &["top", "--once", "127.0.0.1:9"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("http://127.0.0.1:9/metrics: cannot connect"),
        "{stderr}"
    );
    let output = common::heloflow(&common::root(), &["top", "--once", "localhost"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("give host:port"), "{stderr}");
}
