//! Sessions end to end: a live run of the demo pipeline records its raw inputs and its emotion
//! output to XDF; the same pipeline, with the simulator swapped for an `xdf` source, replays the
//! recording and gives the live run's output byte for byte, on every run and with `-w 2`.

mod common;

use std::path::Path;

use common::heloflow_ok;

/// The demo pipeline with its source and sinks as a test needs them.
fn demo_with(source: &str, extra_sinks: &str) -> String {
    let demo = std::fs::read_to_string(common::pipeline("demo.toml")).unwrap();
    let start = demo.find("[sources.sim]").unwrap();
    let end = demo.find("# The four HeLo inputs").unwrap();
    let body = demo[end..]
        .replace(
            "model = \"plugins/helo/model/helo-sim.json\"",
            &format!(
                "model = {:?}",
                common::root()
                    .join("plugins/helo/model/helo-sim.json")
                    .display()
                    .to_string()
            ),
        )
        .replace("path = \"-\"", "path = \"live.jsonl\"");
    format!("{}{source}\n{body}\n{extra_sinks}", &demo[..start])
}

const LIVE_SOURCE: &str = r#"[sources.sim]
kind = "simulator"
seed = 21
subjects = 3
streams = ["eeg", "eda", "ppg", "face", "emotion", "markers"]
duration_s = 18
realtime = true
"#;

const RECORDING_SINK: &str = r#"[sinks.session]
kind = "xdf"
inputs = ["sim.eeg", "sim.eda", "sim.ppg", "sim.face", "sim.emotion", "sim.markers", "helo"]
path = "session.xdf"
"#;

/// The recording's streams under the simulator's names: the pipeline runs unchanged on it.
const REPLAY_SOURCE: &str = r#"[sources.sim]
kind = "xdf"
path = "session.xdf"
subject_from = "desc:subject"
streams = { eeg = { type = "EEG" }, eda = { type = "GSR" }, ppg = { type = "PPG" }, face = { type = "FaceAU" }, emotion = { predicate = "desc/heloflow/stream='sim.emotion'" }, markers = { type = "Markers" } }
"#;

fn run(dir: &Path, pipeline: &str, workers: &str) -> (Vec<u8>, Vec<u8>) {
    std::fs::write(dir.join("p.toml"), pipeline).unwrap();
    heloflow_ok(dir, &["run", "p.toml", "--status", "off", "-w", workers]);
    (
        std::fs::read(dir.join("live.jsonl")).unwrap(),
        std::fs::read(dir.join("out/demo-eeg-de.csv")).unwrap(),
    )
}

#[test]
fn the_demo_replayed_from_its_recording_gives_the_live_output_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (live, live_features) = run(dir.path(), &demo_with(LIVE_SOURCE, RECORDING_SINK), "1");
    let rows = common::parse_jsonl(&String::from_utf8_lossy(&live));
    assert!(
        rows.iter().filter(|r| r.stream == "helo").count() >= 18,
        "the live run scored each subject every second"
    );
    assert!(rows.iter().any(|r| r.stream == "sim.markers"));

    // With more than one worker the file is read in shares, one per worker.
    let replay = demo_with(REPLAY_SOURCE, "");
    for (attempt, workers) in ["1", "1", "2", "4"].into_iter().enumerate() {
        let (output, features) = run(dir.path(), &replay, workers);
        assert!(
            output == live,
            "replay {attempt} (-w {workers}) differs from the live run:\nlive:\n{}\nreplay:\n{}",
            String::from_utf8_lossy(&live),
            String::from_utf8_lossy(&output)
        );
        assert!(
            features == live_features,
            "replay {attempt}: features differ"
        );
    }
}
