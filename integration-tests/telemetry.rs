//! Telemetry end to end: the Prometheus text a real run exposes, in process and over HTTP from
//! `heloflow run --serve`, is read by the reference parser (Python `prometheus_client`, pinned in
//! requirements-dev.txt) exactly as heloflow's own parser (`heloflow top`) reads it, with valid
//! histograms and the run's figures; `heloflow top --once` prints them, sends HELOFLOW_TOKEN off
//! loopback (in a network namespace), and fails clearly when there is nothing to read.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

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
        ..RunOptions::default()
    };
    let report = run(&pipeline, &options, Arc::new(AtomicBool::new(false))).unwrap();
    (report, telemetry)
}

/// What the reference parser reads from `text`, or with `url` from a GET of it: families,
/// problems, and the text read.
fn reference(text: &str, url: Option<&str>) -> Value {
    let mut command = common::python("prometheus_client", &common::lsl_config());
    command
        .arg(common::root().join("integration-tests/telemetry/parse.py"))
        .args(url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
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

/// Checks what the reference parser read (`reference`): valid, the same samples heloflow's parser
/// reads from the same text, and the families typed as heloflow declares them. Returns
/// heloflow's parse.
fn check_with_reference(parsed: Value) -> Exposition {
    let text = parsed["text"].as_str().unwrap();
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
    // Every family heloflow typed has that type for the reference parser (which names counter
    // families without `_total`).
    assert!(!ours.types.is_empty());
    for (family, declared) in &ours.types {
        let name = match declared.as_str() {
            "counter" => family.strip_suffix("_total").unwrap_or(family),
            _ => family,
        };
        assert_eq!(kind(name).as_deref(), Some(declared.as_str()), "{family}");
    }
    ours
}

#[test]
fn the_reference_parser_reads_what_a_run_exposes() {
    let (report, telemetry) = run_pipeline();
    let text = telemetry.prometheus_text();
    let e = check_with_reference(reference(&text, None));
    for (family, expected) in [
        ("heloflow_stream_samples_in_total", "counter"),
        ("heloflow_stream_samples_out_total", "counter"),
        ("heloflow_stream_dropped_samples_total", "counter"),
        ("heloflow_stream_gaps_total", "counter"),
        ("heloflow_stream_late_samples_total", "counter"),
        ("heloflow_queue_depth_batches", "gauge"),
        ("heloflow_window_output_latency_seconds", "histogram"),
        ("heloflow_operator_emit_latency_seconds", "histogram"),
        ("heloflow_model_inference_seconds", "histogram"),
        ("heloflow_model_batch_rows", "histogram"),
        ("heloflow_model_info", "gauge"),
    ] {
        assert_eq!(
            e.types.get(family).map(String::as_str),
            Some(expected),
            "{family}"
        );
    }
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

/// A realtime simulated session served live: windowed ground truth and the markers to a file.
const SERVED: &str = r#"
[pipeline]
name = "served"

[sources.sim]
kind = "simulator"
seed = 4
subjects = 2
streams = ["eda", "emotion", "markers"]
duration_s = DURATION
realtime = true

[operators.truth]
kind = "window_stats"
inputs = ["sim.emotion"]
window_s = 1.0
hop_s = 0.5
stats = ["mean"]

[sinks.out]
kind = "jsonl"
inputs = ["truth", "sim.markers", "sim.eda"]
path = "rows.jsonl"
"#;

/// Starts the served session for `seconds` with `heloflow run p.toml --serve LISTEN` in `dir`.
fn serve(dir: &Path, seconds: u32, listen: &str, envs: &[(&str, &str)]) -> common::Served {
    common::serve(
        dir,
        &SERVED.replace("DURATION", &seconds.to_string()),
        listen,
        envs,
    )
}

/// `heloflow top --once ADDR` with `token` in HELOFLOW_TOKEN (or none).
fn top_once(addr: &str, token: Option<&str>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_heloflow"));
    command
        .args(["top", "--once", addr])
        .env_remove("HELOFLOW_TOKEN");
    if let Some(token) = token {
        command.env("HELOFLOW_TOKEN", token);
    }
    command.output().unwrap()
}

#[test]
fn metrics_over_http_and_top_read_a_running_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), 8, "127.0.0.1:0", &[]);
    let addr = served.address.to_string();
    // Let event time pass a few window ends.
    std::thread::sleep(Duration::from_secs(3));
    let url = format!("http://{addr}/metrics");
    let e = check_with_reference(reference("", Some(&url)));
    let eda = e
        .value("heloflow_stream_samples_in_total", &[("stream", "sim.eda")])
        .unwrap();
    assert!(eda > 0.0);
    let truth = e
        .histogram(
            "heloflow_window_output_latency_seconds",
            &[("operator", "truth"), ("sink", "out")],
        )
        .unwrap();
    assert!(truth.count > 0, "{truth:?}");
    // In real time, a window's rows reach the file well within a second of its close.
    assert!(truth.quantile(0.5).unwrap() < 1.0, "{truth:?}");
    let written = e
        .value(
            "heloflow_stream_samples_out_total",
            &[("stream", "truth"), ("sink", "out")],
        )
        .unwrap();

    let output = top_once(&addr, None);
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "heloflow top: pipeline served",
        "samples in",
        "sim.eda",
        "queues (batches)",
        "window close to output",
        "sink out",
    ] {
        assert!(shown.contains(expected), "`{expected}` missing:\n{shown}");
    }

    served.finish();
    let rows = std::fs::read_to_string(dir.path().join("rows.jsonl")).unwrap();
    let truth_rows = rows
        .lines()
        .filter(|l| l.contains("\"stream\":\"truth\""))
        .count();
    assert!(written > 0.0 && written <= truth_rows as f64);
}

/// Runs inside a network namespace (see the test below): on a non-loopback address `top` needs
/// HELOFLOW_TOKEN, says so without it, and never prints it.
fn token_scenario() {
    const TOKEN: &str = "7a6b5c4d3e2f10293847566574839201";
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), 6, "10.77.0.2:0", &[("HELOFLOW_TOKEN", TOKEN)]);
    let addr = served.address.to_string();
    std::thread::sleep(Duration::from_secs(2));
    let refused = top_once(&addr, None);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("401 Unauthorized: the server needs a token; set HELOFLOW_TOKEN"),
        "{message}"
    );
    let wrong = top_once(&addr, Some("not-the-token-not-the-token-0000"));
    let message = String::from_utf8_lossy(&wrong.stderr);
    assert!(message.contains("refused HELOFLOW_TOKEN"), "{message}");
    assert!(!message.contains("not-the-token"), "{message}");
    let allowed = top_once(&addr, Some(TOKEN));
    let shown = String::from_utf8_lossy(&allowed.stdout);
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    assert!(shown.contains("heloflow top: pipeline served"), "{shown}");
    assert!(!shown.contains(TOKEN));
}

#[test]
fn top_sends_the_token_off_loopback() {
    if std::env::var_os("HELOFLOW_IN_NETNS").is_some() {
        token_scenario();
        return;
    }
    // The same test binary in a network namespace whose loopback interface also carries
    // 10.77.0.2 (not a loopback address): nothing reaches it from outside, nothing leaves.
    let output = Command::new("unshare")
        .args([
            "-n",
            "sh",
            "-c",
            "ip link set lo up && ip addr add 10.77.0.2/32 dev lo && exec \"$0\" \"$@\"",
        ])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "top_sends_the_token_off_loopback", "--nocapture"])
        .env("HELOFLOW_IN_NETNS", "1")
        .output()
        .expect("unshare runs (root or user namespaces are needed)");
    assert!(
        output.status.success(),
        "in the namespace:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("1 passed"));
}
