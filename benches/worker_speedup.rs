//! Worker speed-up: the full demo pipeline (DMER features and HeLo on ONNX Runtime) over many
//! simulated subjects as fast as possible, with 1 and then 2 workers (a benchmark, not a test).
//!
//! Run: `cargo bench --bench worker_speedup` (ONNX Runtime from `.venv`, as ./scripts/test
//! installs; `-- --subjects 1000 --duration 20 --repeat 2` are the defaults). The pipeline is
//! `pipelines/demo.toml` with its simulator set to the subject count, its pacing off, its emotion
//! rows going to /dev/null and its features CSV to a temporary file; each worker count runs `--repeat` times and the best wall time counts. The
//! simulator alone (every stream of every subject generated, nothing else) runs the same way: it
//! makes one thread per worker, each generating the subjects that worker owns; then the same pipeline
//! over an XDF recording of the same subjects (made once under `target/demo-recordings/`, not
//! timed), where the source only reads and decodes.

#[allow(dead_code)] // this bench reads only numbers
#[path = "common/args.rs"]
mod args;
#[allow(dead_code)] // this bench finds no model output
#[path = "common/demo_recording.rs"]
mod demo_recording;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use heloflow::pipeline::{self, Pipeline};
use heloflow::runtime::status::StatusMode;
use heloflow::runtime::{run, RunOptions};

/// The demo pipeline for `subjects` subjects over `seconds`, unpaced, emotions to /dev/null and
/// features into `dir`; with `simulator_only`, its source alone.
fn demo(subjects: usize, seconds: f64, simulator_only: bool, dir: &std::path::Path) -> Pipeline {
    let text =
        std::fs::read_to_string("pipelines/demo.toml").expect("run from the repository root");
    let text = text
        .replace("subjects = 1\n", &format!("subjects = {subjects}\n"))
        .replace("duration_s = 20\n", &format!("duration_s = {seconds}\n"))
        .replace("realtime = true", "realtime = false")
        .replace("path = \"-\"", "path = \"/dev/null\"")
        .replace(
            "path = \"out/demo-eeg-de.csv\"",
            &format!("path = {:?}", dir.join("eeg-de.csv").display().to_string()),
        );
    let mut pipeline = pipeline::parse("demo.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    if simulator_only {
        let body = text[..text
            .find("# The four HeLo inputs")
            .expect("demo.toml's shape")]
            .to_string();
        pipeline = pipeline::parse(
            "simulator.toml",
            &format!("{body}\n[sinks.none]\nkind = \"jsonl\"\ninputs = [\"sim.markers\"]\npath = \"/dev/null\"\n"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    pipeline
}

/// The best wall time of `repeat` runs of `pipeline` on `workers` workers, and its samples.
fn best(pipeline: &Pipeline, workers: usize, repeat: usize) -> (f64, u64) {
    let mut best = (f64::INFINITY, 0);
    for _ in 0..repeat {
        let options = RunOptions {
            workers,
            status: StatusMode::Off,
            ..RunOptions::default()
        };
        let started = Instant::now();
        let report =
            run(pipeline, &options, Arc::new(AtomicBool::new(false))).expect("the pipeline runs");
        let seconds = started.elapsed().as_secs_f64();
        if seconds < best.0 {
            best = (seconds, report.samples_in);
        }
    }
    best
}

fn main() {
    let subjects: usize = args::number("--subjects", 1000);
    let seconds: f64 = args::number("--duration", 20.0);
    let repeat: usize = args::number("--repeat", 2);
    println!(
        "Worker speed-up: pipelines/demo.toml, {subjects} simulated subjects, {seconds} s, unpaced, best of {repeat}"
    );
    println!("| run | workers | seconds | samples/s | subject-seconds/s | speed-up |");
    println!("|---|---|---|---|---|---|");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let simulator_only = demo(subjects, seconds, true, dir.path());
    let mut one = None;
    for workers in [1usize, 2] {
        let (alone, samples) = best(&simulator_only, workers, repeat);
        let base = *one.get_or_insert(alone);
        println!(
            "| simulator alone | {workers} | {alone:.2} | {:.3e} | {:.0} | {:.2}x |",
            samples as f64 / alone,
            subjects as f64 * seconds / alone,
            base / alone
        );
    }
    let simulated = demo(subjects, seconds, false, dir.path());
    let recorded = demo_recording::demo_over(
        &demo_recording::recording(subjects, seconds),
        "",
        dir.path(),
    );
    for (name, pipeline) in [
        ("full pipeline, simulated subjects", &simulated),
        ("full pipeline over their XDF recording", &recorded),
    ] {
        let mut one = None;
        for workers in [1usize, 2] {
            let (wall, samples) = best(pipeline, workers, repeat);
            let base = *one.get_or_insert(wall);
            println!(
                "| {name} | {workers} | {wall:.2} | {:.3e} | {:.0} | {:.2}x |",
                samples as f64 / wall,
                subjects as f64 * seconds / wall,
                base / wall
            );
        }
    }
}
