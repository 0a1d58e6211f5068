//! HeLo at scale: how many subjects the full demo pipeline serves in real time on this machine,
//! over a recording played at its own pace, with window-close-to-output latency, beside a bare
//! ONNX Runtime session running batches of the same size (a benchmark, not a test).
//!
//! Run: `cargo bench --bench helo_capacity` (ONNX Runtime from `.venv`, as ./scripts/test installs;
//! `-- --subjects 500,1000,1500 --duration 30 --workers 2` are the defaults). For each subject
//! count the simulator's EEG, EDA, PPG, face, emotion and marker streams are recorded once into an
//! XDF file under `target/demo-recordings/` (kept for the next run); then `pipelines/demo.toml`, its
//! simulator replaced by an `xdf` source with `speed = 1.0`, runs through the real runtime in real
//! time. A count is served in real time when the source never falls more than one hop (1 s)
//! behind the wall clock and the emotion rows' close-to-written p99 stays under a hop.
//!
//! Columns: how far the source fell behind; HeLo's window close to model output (the `helo`
//! operator seeing the frontier that closes a window, to its rows leaving) and close to written
//! (the `live` sink's flush), p50 and p99; the pipeline's ONNX Runtime run per batch and its rows;
//! the same-size batch on a bare session (one per worker, run side by side, as the workers do); and
//! the pipeline's overhead over bare inference: (mean close to output - mean bare run) / mean
//! bare run, and how much of it is ONNX Runtime itself running slower beside the rest of the
//! pipeline on the same cores: (mean pipeline run - mean bare run) / mean bare run. Means are exact; the pipeline's p50/p99 come from its bucketed histograms
//! (interpolated between bucket bounds: 10, 25, 50, 100, 250 ms, ...).

#[path = "common/args.rs"]
mod args;
#[path = "common/demo_recording.rs"]
mod demo_recording;
#[allow(dead_code)] // shared with the other benches; this one uses part of it
#[path = "common/helo_fixture.rs"]
mod helo_fixture;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use heloflow::metrics::PipelineMetrics;
use heloflow::model::onnx::{ModelSession, SessionOptions};
use heloflow::pipeline::Pipeline;
use heloflow::runtime::status::StatusMode;
use heloflow::runtime::{run, RunOptions, RunReport};

/// Windows at the start left out of the bare comparison (HeLo's 5 s inputs filling).
const WARM_UP_WINDOWS: usize = 5;

struct Args {
    subjects: Vec<usize>,
    duration: f64,
    workers: usize,
}

fn args() -> Args {
    Args {
        subjects: args::numbers("--subjects", vec![500, 1000, 1500]),
        duration: args::number("--duration", 30.0),
        workers: args::number("--workers", 2),
    }
}

fn run_pipeline(pipeline: &Pipeline, workers: usize) -> (RunReport, Arc<PipelineMetrics>) {
    let metrics = PipelineMetrics::for_pipeline(pipeline);
    let options = RunOptions {
        workers,
        status: StatusMode::Off,
        metrics: Some(metrics.clone()),
        ..RunOptions::default()
    };
    let report =
        run(pipeline, &options, Arc::new(AtomicBool::new(false))).expect("the pipeline runs");
    (report, metrics)
}

/// Mean, median and 99th percentile of a bare session running `runs` batches of `rows` windows,
/// one session per worker side by side, in milliseconds.
fn bare_inference(rows: usize, runs: usize, workers: usize) -> (f64, f64, f64) {
    let (manifest, windows) = helo_fixture::shipped_model_and_windows();
    let inputs = helo_fixture::batch_of(&windows, rows);
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let manifest = manifest.clone();
            let inputs = inputs.clone();
            std::thread::spawn(move || {
                let mut session = ModelSession::open(&manifest, &SessionOptions::default())
                    .expect("the model opens");
                session.run(rows, &inputs).expect("warm-up run");
                (0..runs)
                    .map(|_| {
                        let started = Instant::now();
                        session.run(rows, &inputs).expect("run");
                        started.elapsed().as_secs_f64() * 1e3
                    })
                    .collect::<Vec<f64>>()
            })
        })
        .collect();
    let mut times: Vec<f64> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("a bare run"))
        .collect();
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    (mean, at(0.5), at(0.99))
}

fn ms(value: Option<f64>) -> String {
    value.map_or("-".to_string(), |v| format!("{:.1}", v * 1e3))
}

fn main() {
    let args = args();
    println!(
        "HeLo capacity: the demo pipeline over a recording played in real time ({} s), -w {}",
        args.duration, args.workers
    );
    println!("| subjects | behind real time s | close to output p50 / p99 ms | close to written p50 / p99 ms | close to output mean ms | pipeline ORT run mean ms (rows) | bare ORT run mean / p50 / p99 ms | overhead over bare | of which ORT slower under load | real time |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut served = 0;
    let dir = tempfile::tempdir().expect("a temporary directory");
    for &subjects in &args.subjects {
        let recording = demo_recording::recording(subjects, args.duration);
        let pipeline = demo_recording::demo_over(&recording, "speed = 1.0\n", dir.path());
        let demo_recording::HeloOutput {
            operator: helo,
            sink: live,
            port: live_helo,
        } = demo_recording::HeloOutput::of(&pipeline);
        let (report, metrics) = run_pipeline(&pipeline, args.workers);
        let operator = &metrics.operators[helo];
        let emit = operator.emit_latency.snapshot();
        let emitted = (emit.quantile(0.5), emit.quantile(0.99));
        let written = metrics.sinks[live].window_latency[live_helo]
            .as_ref()
            .map(|h| h.snapshot())
            .map(|h| (h.quantile(0.5), h.quantile(0.99)))
            .unwrap_or((None, None));
        let inference = operator.inference.snapshot();
        let run_ms = inference.mean().unwrap_or(0.0) * 1e3;
        let rows = operator.batch_rows.snapshot().mean().unwrap_or(0.0);
        let windows = (args.duration as usize)
            .saturating_sub(WARM_UP_WINDOWS)
            .max(1);
        let (bare_mean, bare_p50, bare_p99) =
            bare_inference(rows.round().max(1.0) as usize, windows, args.workers);
        let emit_mean = emit.mean().map_or(0.0, |e| e * 1e3);
        let overhead = (emit_mean - bare_mean) / bare_mean;
        let under_load = (run_ms - bare_mean) / bare_mean;
        let realtime = report.behind_real_time_s < 1.0 && written.1.is_some_and(|p99| p99 < 1.0);
        if realtime {
            served = served.max(subjects);
        }
        println!(
            "| {subjects} | {:.2} | {} / {} | {} / {} | {emit_mean:.1} | {run_ms:.1} ({rows:.0}) | {bare_mean:.1} / {bare_p50:.1} / {bare_p99:.1} | {:.0}% | {:.0}% | {} |",
            report.behind_real_time_s,
            ms(emitted.0),
            ms(emitted.1),
            ms(written.0),
            ms(written.1),
            overhead * 100.0,
            under_load * 100.0,
            if realtime { "yes" } else { "no" },
        );
    }
    println!(
        "\nmost subjects served in real time: {served} (of {:?}) with -w {}",
        args.subjects, args.workers
    );
}
