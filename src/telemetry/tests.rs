//! Telemetry against real runs: the exposition's figures equal what the run reports and what its
//! sinks wrote.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::exposition::Exposition;
use super::top::{draw, snapshot_text, View};
use super::Telemetry;
use crate::metrics::{InletStats, TimestampDrops};
use crate::runtime::status::StatusMode;
use crate::runtime::{run, RunOptions, RunReport};

/// Two simulated subjects through the HeLo features and model, and a windowed ground truth.
fn pipeline_text(jsonl: &str, csv: &str) -> String {
    format!(
        r#"
[pipeline]
name = "telemetry-test"

[sources.sim]
kind = "simulator"
seed = 3
subjects = 2
streams = ["eeg", "eda", "ppg", "face", "emotion", "markers"]
duration_s = 8

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
hop_s = 1.0
stats = ["mean"]

[sinks.out]
kind = "jsonl"
inputs = ["helo", "truth", "sim.markers"]
path = "{jsonl}"

[sinks.features]
kind = "csv"
inputs = ["eeg_de"]
path = "{csv}"
"#
    )
}

/// Runs the test pipeline on `workers` workers with telemetry; the report, the telemetry and the
/// jsonl sink's lines.
fn run_with_telemetry(workers: usize) -> (RunReport, Arc<Telemetry>, String) {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("out.jsonl");
    let csv = dir.path().join("features.csv");
    let text = pipeline_text(jsonl.to_str().unwrap(), csv.to_str().unwrap());
    let pipeline = crate::pipeline::parse("telemetry-test.toml", &text).unwrap();
    let telemetry = Arc::new(Telemetry::new(&pipeline));
    let options = RunOptions {
        workers,
        status: StatusMode::Off,
        metrics: Some(telemetry.metrics().clone()),
        ..RunOptions::default()
    };
    let report = run(&pipeline, &options, Arc::new(AtomicBool::new(false))).unwrap();
    let lines = std::fs::read_to_string(&jsonl).unwrap();
    (report, telemetry, lines)
}

/// Rows of `stream` in the jsonl sink's output.
fn rows_of(lines: &str, stream: &str) -> f64 {
    let tag = format!("\"stream\":\"{stream}\"");
    lines.lines().filter(|l| l.contains(&tag)).count() as f64
}

#[test]
fn the_exposition_counts_what_the_run_did() {
    let (report, telemetry, lines) = run_with_telemetry(2);
    let text = telemetry.prometheus_text();
    let e = Exposition::parse(&text).unwrap();

    // Samples in: per source stream, adding up to the report's count.
    let sources = [
        "sim.eeg",
        "sim.eda",
        "sim.ppg",
        "sim.face",
        "sim.emotion",
        "sim.markers",
    ];
    let per_stream: f64 = sources
        .iter()
        .map(|s| {
            e.value("heloflow_stream_samples_in_total", &[("stream", s)])
                .unwrap()
        })
        .sum();
    assert_eq!(per_stream, report.samples_in as f64);
    assert_eq!(
        e.value("heloflow_samples_in_total", &[]),
        Some(report.samples_in as f64)
    );
    // 8 s of EEG at 300 Hz for two subjects.
    assert_eq!(
        e.value("heloflow_stream_samples_in_total", &[("stream", "sim.eeg")]),
        Some(2.0 * 8.0 * 300.0)
    );

    // Samples out: per (stream, sink), as many as the jsonl sink wrote, adding up to rows out.
    for stream in ["helo", "truth", "sim.markers"] {
        let written = e
            .value(
                "heloflow_stream_samples_out_total",
                &[("stream", stream), ("sink", "out")],
            )
            .unwrap();
        assert_eq!(written, rows_of(&lines, stream), "{stream}");
    }
    assert!(rows_of(&lines, "helo") > 0.0);
    assert_eq!(
        e.total("heloflow_stream_samples_out_total", &[]),
        report.rows_out as f64
    );
    assert_eq!(
        e.value("heloflow_rows_out_total", &[]),
        Some(report.rows_out as f64)
    );
    assert_eq!(
        e.value("heloflow_sink_rows_total", &[("sink", "out")]),
        Some(lines.lines().count() as f64)
    );
    // An operator's stream: what it emitted went to the sinks that read it.
    assert_eq!(
        e.value("heloflow_stream_samples_in_total", &[("stream", "helo")]),
        Some(rows_of(&lines, "helo"))
    );

    // Drops by reason, as the report has them.
    let d = &report.drops;
    for (reason, count) in [
        ("queue_full", d.queue_full),
        ("unplayable", d.unplayable),
        ("late", d.timestamps.late),
        ("ahead", d.timestamps.ahead),
        ("behind", d.timestamps.behind),
        ("invalid", d.timestamps.invalid),
        ("late_in_operator", d.late_in_operators),
    ] {
        assert_eq!(
            e.value("heloflow_dropped_samples_total", &[("reason", reason)]),
            Some(count as f64),
            "{reason}"
        );
    }
    // The simulator's regular streams have no gaps.
    assert_eq!(e.total("heloflow_stream_gaps_total", &[]), 0.0);

    // Window close-to-output latency: every windowed operator that a sink reads, per sink.
    for (operator, sink, rows) in [
        ("helo", "out", rows_of(&lines, "helo")),
        ("truth", "out", rows_of(&lines, "truth")),
        ("eeg_de", "features", f64::INFINITY),
    ] {
        let h = e
            .histogram(
                "heloflow_window_output_latency_seconds",
                &[("operator", operator), ("sink", sink)],
            )
            .unwrap();
        assert!(h.count > 0 && h.count as f64 <= rows, "{operator}: {h:?}");
        assert_eq!(h.buckets.last().unwrap(), &(f64::INFINITY, h.count));
        assert!(h.buckets.windows(2).all(|w| w[0].1 <= w[1].1));
        assert!(h.sum > 0.0);
    }
    for operator in ["eeg_de", "helo", "truth"] {
        let h = e
            .histogram(
                "heloflow_operator_emit_latency_seconds",
                &[("operator", operator)],
            )
            .unwrap();
        assert!(h.count > 0, "{operator}");
    }

    // The model: one inference per batch, every scored window a row, both subjects together.
    let by = [("operator", "helo"), ("model", "helo-sim")];
    let inference = e
        .histogram("heloflow_model_inference_seconds", &by)
        .unwrap();
    let batches = e.histogram("heloflow_model_batch_rows", &by).unwrap();
    assert!(inference.count > 0);
    assert_eq!(batches.count, inference.count);
    assert_eq!(batches.sum, rows_of(&lines, "helo"));
    assert_eq!(
        batches.buckets.last().unwrap(),
        &(f64::INFINITY, batches.count)
    );
    // Here each subject is scored by its own worker's session; on one worker the windows both
    // subjects close at one frontier are one batch.
    let (_, single, single_lines) = run_with_telemetry(1);
    let single = Exposition::parse(&single.prometheus_text()).unwrap();
    let single_batches = single.histogram("heloflow_model_batch_rows", &by).unwrap();
    assert_eq!(single_batches.sum, rows_of(&single_lines, "helo"));
    assert!(
        single_batches.mean().unwrap() >= 2.0,
        "both subjects' windows are scored together: {single_batches:?}"
    );
    let info = e.named("heloflow_model_info").next().unwrap();
    assert_eq!(info.label("provider"), Some("CPUExecutionProvider"));

    // Queues: depth within capacity, a peak seen.
    let peak = e
        .value("heloflow_queue_peak_batches", &[("source", "sim")])
        .unwrap();
    let capacity = e
        .value("heloflow_queue_capacity_batches", &[("source", "sim")])
        .unwrap();
    assert!(peak >= 1.0 && peak <= capacity, "{peak} of {capacity}");

    // The JSON status carries the same figures.
    let status = telemetry.status_json();
    assert_eq!(status["pipeline"], "telemetry-test");
    assert_eq!(status["samples_in"], report.samples_in);
    assert_eq!(status["rows_out"], report.rows_out);
    assert_eq!(status["drops"]["total"], report.dropped);
    let model = &status["models"][0];
    assert_eq!(model["provider"], "CPUExecutionProvider");
    assert_eq!(model["batch_rows"]["count"], batches.count);
    assert_eq!(model["inference_s"]["count"], inference.count);
    let helo = status["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "helo")
        .unwrap();
    assert!(
        helo["window_output_latency_s"][0]["latency_s"]["p50"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(status["sources"][0]["queue"]["peak"], peak as u64);

    // `top` reads the same text back: its snapshot and its terminal view show the figures.
    let view = View::from(&e);
    assert_eq!(view.pipeline, "telemetry-test");
    assert_eq!(view.samples_in, report.samples_in as f64);
    let snapshot = snapshot_text(&view, "http://127.0.0.1:8750/metrics");
    assert!(
        snapshot.contains(&format!("{} samples in", report.samples_in)),
        "{snapshot}"
    );
    assert!(snapshot.contains("CPUExecutionProvider"), "{snapshot}");
    let backend = ratatui::backend::TestBackend::new(160, 60);
    let mut terminal = ratatui::Terminal::new(backend).unwrap();
    terminal
        .draw(|frame| draw(frame, &view, "http://127.0.0.1:8750/metrics | q quits"))
        .unwrap();
    let screen: String = terminal
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|cell| cell.symbol())
        .collect();
    for shown in [
        "heloflow top: telemetry-test",
        &format!("{} samples in", report.samples_in),
        "sim.eeg",
        "4800",
        "CPUExecutionProvider",
        "window close to output",
        "sink out",
    ] {
        assert!(screen.contains(shown), "`{shown}` is not on the screen");
    }
}

#[test]
fn inlets_are_exported_one_series_each() {
    let pipeline = crate::pipeline::parse(
        "t.toml",
        "[sources.sim]\nkind = \"simulator\"\nstreams = [\"eda\"]\nduration_s = 1\n\n[sinks.out]\nkind = \"jsonl\"\ninputs = [\"sim.eda\"]\npath = \"-\"\n",
    )
    .unwrap();
    let telemetry = Telemetry::new(&pipeline);
    let stream = pipeline.sources[0].outputs[0];
    let inlet = |subject: &str, offset: f64| InletStats {
        name: format!("E4 {subject}"),
        source_id: format!("e4-{subject}"),
        stream,
        subject: subject.to_string(),
        clock_offset_s: offset,
        jitter_s: 0.002,
        effective_rate_hz: 3.98,
        samples: 400,
        gaps: 1,
        dropped: TimestampDrops {
            late: 3,
            ahead: 1,
            ..TimestampDrops::default()
        },
        live: true,
        ..InletStats::default()
    };
    telemetry.metrics().sources[0]
        .inlets
        .lock()
        .unwrap()
        .extend([inlet("P01", -0.25), inlet("P\"02\"", 0.5)]);
    let e = Exposition::parse(&telemetry.prometheus_text()).unwrap();
    let by = |subject: &'static str| {
        [
            ("source", "sim"),
            ("stream", "sim.eda"),
            ("subject", subject),
        ]
    };
    assert_eq!(
        e.value("heloflow_inlet_clock_offset_seconds", &by("P01")),
        Some(-0.25)
    );
    assert_eq!(
        e.value("heloflow_inlet_clock_offset_seconds", &by("P\"02\"")),
        Some(0.5)
    );
    assert_eq!(
        e.value("heloflow_inlet_jitter_seconds", &by("P01")),
        Some(0.002)
    );
    assert_eq!(e.value("heloflow_inlet_gaps_total", &by("P01")), Some(1.0));
    assert_eq!(e.value("heloflow_inlet_live", &by("P01")), Some(1.0));
    // The stream's late samples and drops by reason add the inlets up.
    assert_eq!(
        e.value(
            "heloflow_stream_late_samples_total",
            &[("stream", "sim.eda")]
        ),
        Some(6.0)
    );
    assert_eq!(
        e.value(
            "heloflow_stream_dropped_samples_total",
            &[("stream", "sim.eda"), ("reason", "ahead")]
        ),
        Some(2.0)
    );
    let status = telemetry.status_json();
    assert_eq!(status["sources"][0]["inlets"][1]["subject"], "P\"02\"");
    assert_eq!(status["sources"][0]["inlets"][0]["clock_offset_s"], -0.25);
    let view = View::from(&e);
    assert_eq!(view.inlets.len(), 2);
    assert!(snapshot_text(&view, "x").contains("sim/sim.eda/P01"));
}

#[test]
fn counters_made_for_another_pipeline_are_refused() {
    let parse = |streams: &str| {
        crate::pipeline::parse(
            "t.toml",
            &format!("[sources.sim]\nkind = \"simulator\"\nstreams = [{streams}]\nduration_s = 1\n\n[sinks.out]\nkind = \"jsonl\"\ninputs = [\"sim.eda\"]\npath = \"-\"\n"),
        )
        .unwrap()
    };
    let telemetry = Telemetry::new(&parse("\"eda\", \"temp\""));
    let options = RunOptions {
        status: StatusMode::Off,
        metrics: Some(telemetry.metrics().clone()),
        ..RunOptions::default()
    };
    let error = run(&parse("\"eda\""), &options, Arc::default()).unwrap_err();
    assert_eq!(error, "the run's counters were made for another pipeline");
}
