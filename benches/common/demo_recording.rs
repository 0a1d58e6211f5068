//! The demo pipeline over a recording: simulated subjects recorded once into an XDF file under
//! `target/`, and `pipelines/demo.toml` with its simulator replaced by an `xdf` source reading it.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use heloflow::pipeline::{self, Pipeline};
use heloflow::runtime::status::StatusMode;
use heloflow::runtime::{run, RunOptions};

const STREAMS: &str = r#"["eeg", "eda", "ppg", "face", "emotion", "markers"]"#;

/// Parses a pipeline text, failing the benchmark with its diagnostic.
pub fn parse(text: &str) -> Pipeline {
    pipeline::parse("bench.toml", text).unwrap_or_else(|e| panic!("{e}"))
}

/// The recording of `subjects` simulated subjects (seed 7) over `seconds`, made once and kept in
/// `target/demo-recordings/` for the next run.
pub fn recording(subjects: usize, seconds: f64) -> PathBuf {
    let dir = Path::new("target/demo-recordings");
    std::fs::create_dir_all(dir).expect("target/ is writable");
    let path = dir.join(format!("demo-{subjects}-subjects-{seconds}s.xdf"));
    if !path.exists() {
        let partial = path.with_extension("partial.xdf");
        let record = format!(
            "[sources.sim]\nkind = \"simulator\"\nseed = 7\nsubjects = {subjects}\nstreams = {STREAMS}\nduration_s = {seconds}\n\n[sinks.session]\nkind = \"xdf\"\ninputs = [\"sim.eeg\", \"sim.eda\", \"sim.ppg\", \"sim.face\", \"sim.emotion\", \"sim.markers\"]\npath = {:?}\noverwrite = true\n",
            partial.display().to_string()
        );
        let options = RunOptions {
            workers: 2,
            status: StatusMode::Off,
            ..RunOptions::default()
        };
        run(&parse(&record), &options, Arc::new(AtomicBool::new(false)))
            .expect("the recording runs");
        std::fs::rename(&partial, &path).expect("the recording is kept");
    }
    path
}

/// The demo pipeline over `recording`, with `source_options` (TOML lines such as `speed = 1.0`;
/// none plays it as fast as possible) on its `xdf` source, emotion rows to /dev/null and the
/// features CSV into `dir`.
pub fn demo_over(recording: &Path, source_options: &str, dir: &Path) -> Pipeline {
    let demo =
        std::fs::read_to_string("pipelines/demo.toml").expect("run from the repository root");
    let body = &demo[demo
        .find("# The four HeLo inputs")
        .expect("demo.toml's shape")..];
    let body = body
        .replace("path = \"-\"", "path = \"/dev/null\"")
        .replace(
            "path = \"out/demo-eeg-de.csv\"",
            &format!("path = {:?}", dir.join("eeg-de.csv").display().to_string()),
        )
        .replace("\"sim.", "\"rec.");
    parse(&format!(
        "[sources.rec]\nkind = \"xdf\"\npath = {:?}\n{source_options}subject_from = \"desc:subject\"\nstreams = {{ eeg = {{ type = \"EEG\" }}, eda = {{ type = \"GSR\" }}, ppg = {{ type = \"PPG\" }}, face = {{ type = \"FaceAU\" }}, emotion = {{ type = \"EmotionDistribution\" }}, markers = {{ type = \"Markers\" }} }}\n\n{body}",
        recording.display().to_string(),
    ))
}

/// Where the demo's emotion rows are: the `helo` operator's index, the `live` sink's index, and
/// the sink's input port that reads `helo`.
pub struct HeloOutput {
    pub operator: usize,
    pub sink: usize,
    pub port: usize,
}

impl HeloOutput {
    /// Finds them in a demo pipeline.
    pub fn of(pipeline: &Pipeline) -> HeloOutput {
        let operator = pipeline
            .operators
            .iter()
            .position(|o| o.name == "helo")
            .expect("the demo has a helo operator");
        let sink = pipeline
            .sinks
            .iter()
            .position(|s| s.name == "live")
            .expect("the demo has a live sink");
        let port = pipeline.sinks[sink]
            .inputs
            .iter()
            .position(|&id| id == pipeline.operators[operator].output)
            .expect("the live sink reads helo");
        HeloOutput {
            operator,
            sink,
            port,
        }
    }
}
