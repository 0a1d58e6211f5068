//! Replay speed of the full demo pipeline (DMER features and HeLo on ONNX Runtime) from an XDF
//! recording, as a multiple of real time, beside real pyxdf merely loading the same file.
//!
//! Run: `cargo bench --bench replay` (ONNX Runtime and pyxdf from `.venv`: put `.venv/bin` first on
//! PATH). For 1 subject (an hour, and 600 s) and 100 subjects (60 s): the simulator's EEG, EDA, PPG, face,
//! emotion and markers streams are recorded through the `xdf` sink (not timed), then
//! `pipelines/demo.toml`, its simulator replaced by an `xdf` source reading that file, runs as fast
//! as possible through the real runtime (timed, best of 3, the model session included). pyxdf
//! 1.17.5 `load_xdf` (defaults) reads the same file in the same run, best of 2. Opening the HeLo
//! model's ONNX Runtime session is a fixed cost of every run (about 0.45 s here; Python's
//! onnxruntime takes as long): the 600 s row shows its weight on a short recording.
//! `REPLAY_BENCH_WORKERS` sets `-w` for the replay (default 1).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use heloflow::pipeline;
use heloflow::runtime::status::StatusMode;
use heloflow::runtime::{run, RunOptions};

const STREAMS: &str = r#"["eeg", "eda", "ppg", "face", "emotion", "markers"]"#;

fn run_text(text: &str, workers: usize) -> f64 {
    let pipeline = pipeline::parse("bench.toml", text).unwrap_or_else(|e| panic!("{e}"));
    let options = RunOptions {
        workers,
        status: StatusMode::Off,
        ..RunOptions::default()
    };
    let started = Instant::now();
    run(&pipeline, &options, Arc::new(AtomicBool::new(false))).expect("the pipeline runs");
    started.elapsed().as_secs_f64()
}

/// The demo pipeline after its source: emotions to /dev/null, features into `dir`.
fn demo_body(dir: &Path) -> String {
    let demo =
        std::fs::read_to_string("pipelines/demo.toml").expect("run from the repository root");
    let body = &demo[demo.find("# The four HeLo inputs").unwrap()..];
    body.replace("path = \"-\"", "path = \"/dev/null\"")
        .replace(
            "path = \"out/demo-eeg-de.csv\"",
            &format!("path = {:?}", dir.join("eeg-de.csv").display().to_string()),
        )
}

fn pyxdf_load_seconds(path: &Path) -> Option<f64> {
    let script = "import sys, time, pyxdf\nbest = 1e9\nfor _ in range(2):\n    t = time.perf_counter(); pyxdf.load_xdf(sys.argv[1]); best = min(best, time.perf_counter() - t)\nprint(best)";
    let output = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

fn main() {
    let workers: usize = std::env::var("REPLAY_BENCH_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(1);
    let dir = tempfile::tempdir().expect("a temporary directory");
    println!("| subjects | recorded s | file MB | heloflow replay s | x real time | pyxdf load s | pyxdf / heloflow |");
    println!("|---|---|---|---|---|---|---|");
    for (subjects, seconds) in [(1usize, 3600.0f64), (1, 600.0), (100, 60.0)] {
        let path = dir.path().join(format!("session-{subjects}-{seconds}.xdf"));
        let record = format!(
            "[sources.sim]\nkind = \"simulator\"\nseed = 7\nsubjects = {subjects}\nstreams = {STREAMS}\nduration_s = {seconds}\n\n[sinks.session]\nkind = \"xdf\"\ninputs = [\"sim.eeg\", \"sim.eda\", \"sim.ppg\", \"sim.face\", \"sim.emotion\", \"sim.markers\"]\npath = {:?}\noverwrite = true\n",
            path.display().to_string()
        );
        run_text(&record, 2);
        let megabytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
        let replay = format!(
            "[sources.sim]\nkind = \"xdf\"\npath = {:?}\nsubject_from = \"desc:subject\"\nstreams = {{ eeg = {{ type = \"EEG\" }}, eda = {{ type = \"GSR\" }}, ppg = {{ type = \"PPG\" }}, face = {{ type = \"FaceAU\" }}, emotion = {{ type = \"EmotionDistribution\" }}, markers = {{ type = \"Markers\" }} }}\n\n{}",
            path.display().to_string(),
            demo_body(dir.path())
        );
        let best = (0..3)
            .map(|_| run_text(&replay, workers))
            .fold(f64::INFINITY, f64::min);
        let pyxdf = pyxdf_load_seconds(&path);
        println!(
            "| {subjects} | {seconds} | {megabytes:.1} | {best:.3} | {:.0} | {} | {} |",
            seconds / best,
            pyxdf.map_or("(pyxdf not found)".to_string(), |p| format!("{p:.3}")),
            pyxdf.map_or("-".to_string(), |p| format!("{:.1}x", p / best)),
        );
    }
}
