//! Overload: the full demo pipeline fed faster than it can go, with each queue policy (a
//! benchmark, not a test).
//!
//! Run: `cargo bench --bench overload` (ONNX Runtime from `.venv`; `-- --subjects 2000 --duration
//! 30 --speeds 1.5,2 --workers 2` are the defaults; `--capacity N` sets the source's queue
//! capacity, else the source's default applies: four steps of its batches). The recording of the HeLo capacity benchmark
//! (`target/demo-recordings/`, made once) is played at `--speeds` times real time, past what the
//! machine serves (about 1500 subject-seconds per second here), once with the source's queue
//! blocking (`policy = "block"`, a file waits for the pipeline), once dropping its oldest
//! batches (`policy = "drop_oldest"`) and once shedding whole subjects (`policy =
//! "shed_subjects"`), as a live LSL inlet must do one way or the other. Printed per run: how far the
//! source fell behind the wall clock, the queue's peak depth against its capacity, the samples
//! dropped (counted, per reason, as the run reports them), the emotion rows written and their
//! close-to-written latency, the windows left without a row (HeLo's first windows fill up; with
//! drops, windows missing an input are not scored), and the process's peak memory so far.

#[path = "common/args.rs"]
mod args;
#[allow(dead_code)] // shared with the other benches; this one uses part of it
#[path = "common/demo_recording.rs"]
mod demo_recording;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use heloflow::metrics::PipelineMetrics;
use heloflow::runtime::status::StatusMode;
use heloflow::runtime::{run, RunOptions};

/// The process's peak resident memory so far, in GB (Linux's VmHWM).
fn peak_memory_gb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1e6)
}

fn main() {
    let subjects: usize = args::number("--subjects", 2000);
    let duration: f64 = args::number("--duration", 30.0);
    let workers: usize = args::number("--workers", 2);
    // The source queue's capacity in batches (0: the source's default, sized to its streams).
    let capacity: usize = args::number("--capacity", 0);
    let speeds: Vec<f64> = args::numbers("--speeds", vec![1.5, 2.0]);
    let recording = demo_recording::recording(subjects, duration);
    let dir = tempfile::tempdir().expect("a temporary directory");
    println!(
        "Overload: pipelines/demo.toml over {subjects} recorded subjects ({duration} s) played faster than real time, -w {workers}, one queue per worker"
    );
    println!("| speed | subject-seconds/s offered | queue policy | behind real time s | queue peak / capacity | samples dropped | emotion rows written | close to written p50 / p99 ms | windows without a row | peak memory so far GB |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let sized = match capacity {
        0 => String::new(),
        n => format!("capacity = {n}, "),
    };
    for &speed in &speeds {
        for policy in ["block", "drop_oldest", "shed_subjects"] {
            let options =
                format!("speed = {speed:?}\nqueue = {{ {sized}policy = \"{policy}\" }}\n");
            let pipeline = demo_recording::demo_over(&recording, &options, dir.path());
            let capacity = pipeline.sources[0]
                .config
                .component()
                .queue()
                .for_shares(workers)
                .capacity;
            let demo_recording::HeloOutput {
                sink: live, port, ..
            } = demo_recording::HeloOutput::of(&pipeline);
            let metrics = PipelineMetrics::for_pipeline(&pipeline);
            let run_options = RunOptions {
                workers,
                status: StatusMode::Off,
                metrics: Some(metrics.clone()),
                ..RunOptions::default()
            };
            let report = run(&pipeline, &run_options, Arc::new(AtomicBool::new(false)))
                .expect("an overloaded run still ends cleanly");
            let latency = metrics.sinks[live].window_latency[port]
                .as_ref()
                .expect("the live sink reads helo")
                .snapshot();
            let windows = subjects as f64 * duration;
            let written = metrics.sinks[live].inputs[port].load(Ordering::Relaxed);
            let peak = metrics.sources[0].queue_peak.load(Ordering::Relaxed);
            let ms = |q: f64| {
                latency
                    .quantile(q)
                    .map_or("-".into(), |s| format!("{:.0}", s * 1e3))
            };
            println!(
                "| {speed} | {:.0} | {policy} | {:.2} | {peak} / {capacity} | {} | {written} of {windows:.0} windows | {} / {} | {} | {:.1} |",
                subjects as f64 * speed,
                report.behind_real_time_s,
                report.drops,
                ms(0.5),
                ms(0.99),
                written_gap(windows, written),
                peak_memory_gb(),
            );
        }
    }
}

/// Windows of the recording with no emotion row.
fn written_gap(windows: f64, written: u64) -> String {
    format!("{:.0}", (windows - written as f64).max(0.0))
}
