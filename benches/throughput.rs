//! Simulator-to-sink throughput, in samples per second (a benchmark, not a test).
//!
//! Run: `cargo bench --bench throughput`. Each case builds a pipeline file, runs it as fast as
//! possible through the real runtime and reports samples produced per wall-clock second and how
//! many times faster than real time that is.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use heloflow::pipeline;
use heloflow::runtime::status::StatusMode;
use heloflow::runtime::{run, RunOptions};

struct Case {
    name: &'static str,
    subjects: usize,
    seconds: f64,
    workers: usize,
    body: &'static str,
}

const RAW: &str = r#"
[sinks.out]
kind = "jsonl"
inputs = ["sim.eeg", "sim.ecg", "sim.eda", "sim.eda_700", "sim.ppg", "sim.resp", "sim.temp", "sim.accel", "sim.face", "sim.emotion", "sim.markers"]
path = "/dev/null"
"#;

const FEATURES: &str = r#"
[operators.bands]
kind = "band_power"
inputs = ["sim.eeg"]

[operators.eda]
kind = "window_stats"
inputs = ["sim.eda_700"]
window_s = 5.0

[operators.emotion]
kind = "window_stats"
inputs = ["sim.emotion"]
stats = ["mean"]

[sinks.out]
kind = "jsonl"
inputs = ["bands", "eda", "emotion"]
path = "/dev/null"
"#;

fn main() {
    let cases = [
        Case {
            name: "all streams -> jsonl",
            subjects: 1,
            seconds: 120.0,
            workers: 1,
            body: RAW,
        },
        Case {
            name: "all streams -> jsonl",
            subjects: 4,
            seconds: 60.0,
            workers: 2,
            body: RAW,
        },
        Case {
            name: "eeg band power + eda + emotion -> jsonl",
            subjects: 1,
            seconds: 120.0,
            workers: 1,
            body: FEATURES,
        },
        Case {
            name: "eeg band power + eda + emotion -> jsonl",
            subjects: 4,
            seconds: 60.0,
            workers: 2,
            body: FEATURES,
        },
    ];
    println!("| pipeline | subjects | workers | samples | seconds | samples/s | x real time |");
    println!("|---|---|---|---|---|---|---|");
    for case in cases {
        let text = format!(
            "[sources.sim]\nkind = \"simulator\"\nseed = 1\nsubjects = {}\nduration_s = {}\nchunk_s = 1.0\n{}",
            case.subjects, case.seconds, case.body
        );
        let pipeline = pipeline::parse("bench.toml", &text).expect("benchmark pipeline is valid");
        let options = RunOptions {
            workers: case.workers,
            status: StatusMode::Off,
            ..RunOptions::default()
        };
        let report =
            run(&pipeline, &options, Arc::new(AtomicBool::new(false))).expect("run succeeds");
        let seconds = report.elapsed.as_secs_f64();
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.2e} | {:.0} |",
            case.name,
            case.subjects,
            case.workers,
            report.samples_in,
            seconds,
            report.samples_in as f64 / seconds,
            case.seconds * case.subjects as f64 / seconds
        );
    }
}
