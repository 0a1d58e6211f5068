//! LSL interop, end to end: real pylsl outlets -> the heloflow binary -> real pylsl inlets, all on a
//! loopback-only liblsl configuration (fixtures/lsl/lsl_api.cfg, passed through `LSLAPICFG`).
//!
//! Needs `python3` with pylsl on PATH (`./scripts/test` installs requirements-dev.txt into .venv and
//! puts it first); a missing pylsl fails these tests with a message saying so.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{parse_jsonl, JsonRow};
use serde_json::Value;

fn peer_script() -> PathBuf {
    common::root().join("integration-tests/lsl/peer.py")
}

/// `python3` with the loopback configuration; fails the test clearly when pylsl is missing.
fn python() -> Command {
    common::python("pylsl", &common::lsl_config())
}

/// Starts `heloflow args...` in `dir` with its output going to files there.
fn spawn_heloflow(dir: &Path, args: &[&str], tag: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .args(args)
        .current_dir(dir)
        .env("LSLAPICFG", common::lsl_config())
        .stdout(File::create(dir.join(format!("{tag}.stdout"))).unwrap())
        .stderr(File::create(dir.join(format!("{tag}.stderr"))).unwrap())
        .spawn()
        .expect("the heloflow binary starts")
}

/// Ctrl-C for a child: heloflow drains and flushes, then exits.
fn interrupt(child: &Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Waits for `child` at most `limit`, killing it after that; returns (success, stderr).
fn finish(mut child: Child, dir: &Path, tag: &str, limit: Duration) -> (bool, String) {
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "heloflow ({tag}) did not finish within {limit:?}; stderr:\n{}",
                std::fs::read_to_string(dir.join(format!("{tag}.stderr"))).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(dir.join(format!("{tag}.stderr"))).unwrap_or_default();
    (status.success(), stderr)
}

/// Runs a peer scenario and parses the JSON it prints.
fn run_peer(scenario: &str) -> Output {
    python()
        .arg(peer_script())
        .arg(scenario)
        .output()
        .expect("the pylsl peer runs")
}

fn peer_json(output: &Output, heloflow_stderr: impl FnOnce() -> String) -> Value {
    assert!(
        output.status.success(),
        "pylsl peer failed: {}\nheloflow stderr:\n{}",
        String::from_utf8_lossy(&output.stderr),
        heloflow_stderr()
    );
    serde_json::from_slice(&output.stdout).expect("the peer prints JSON")
}

fn rows_of<'a>(rows: &'a [JsonRow], stream: &str) -> Vec<&'a JsonRow> {
    rows.iter().filter(|r| r.stream == stream).collect()
}

fn numbers(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_f64().unwrap_or(f64::NAN))
        .collect()
}

const PASSTHROUGH: &str = r#"
[pipeline]
name = "lsl-passthrough"

[sources.amp]
kind = "lsl"
source_id = "heloflow-test-amp"
type = "EEG"
channels = ["C3", "C4", "Cz"]
unit = "microvolts"
rate = 100
format = "double64"
subjects = { "heloflow-test-amp" = "P01" }
timeout_s = 30

[operators.mean]
kind = "window_stats"
inputs = ["amp.eeg"]
window_s = 1.0
hop_s = 1.0
stats = ["mean"]

[sinks.raw]
kind = "lsl"
inputs = ["amp.eeg"]
source_id = "heloflow-test:raw:{subject}"

[sinks.win]
kind = "lsl"
inputs = ["mean"]
source_id = "heloflow-test:win:{subject}"

[sinks.file]
kind = "jsonl"
inputs = ["amp.eeg"]
path = "raw.jsonl"
layout = "array"
"#;

#[test]
fn pylsl_outlet_through_heloflow_to_pylsl_inlet() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), PASSTHROUGH).unwrap();
    let heloflow = spawn_heloflow(dir.path(), &["run", "p.toml", "--status", "off"], "run");
    let peer = run_peer("passthrough");
    let read_stderr = || std::fs::read_to_string(dir.path().join("run.stderr")).unwrap_or_default();
    let result = peer_json(&peer, read_stderr);
    interrupt(&heloflow);
    let (ok, stderr) = finish(heloflow, dir.path(), "run", Duration::from_secs(20));
    assert!(ok, "heloflow failed: {stderr}");

    // Every sample arrives with its values and its timestamp (clock corrections are ~0 on one host).
    let sent = result["sent"].as_array().unwrap();
    let raw = result["raw"].as_array().unwrap();
    assert_eq!(raw.len(), sent.len(), "samples relayed");
    let correction = result["raw_time_correction"].as_f64().unwrap();
    for (got, want) in raw.iter().zip(sent) {
        assert_eq!(numbers(&got[1]), numbers(&want[1]));
        let (t_got, t_want) = (
            got[0].as_f64().unwrap() + correction,
            want[0].as_f64().unwrap(),
        );
        assert!(
            (t_got - t_want).abs() < 1e-3,
            "timestamp {t_got} vs sent {t_want}"
        );
    }

    // Channel metadata, subject and pipeline travel in the outlets' desc; only model outputs
    // have desc/model (integration-tests/mne_lsl.rs checks those).
    let meta = &result["raw_meta"];
    assert_eq!(meta["type"], "EEG");
    assert_eq!(meta["source_id"], "heloflow-test:raw:P01");
    assert_eq!(meta["nominal_srate"].as_f64(), Some(100.0));
    assert_eq!(meta["subject"], "P01");
    assert_eq!(meta["pipeline"], "lsl-passthrough");
    let labels: Vec<&str> = meta["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["C3", "C4", "Cz"]);
    assert!(meta["channels"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["unit"] == "microvolts" && c["type"] == "eeg"));
    let win_meta = &result["win_meta"];
    assert_eq!(
        win_meta["model_name"], "",
        "a window mean is no model output"
    );
    let win_types: Vec<&str> = win_meta["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(win_types, ["Feature", "Feature", "Feature", "Quality"]);
    assert_eq!(win_meta["nominal_srate"].as_f64(), Some(1.0));
    let win_labels: Vec<&str> = win_meta["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["label"].as_str().unwrap())
        .collect();
    assert_eq!(win_labels, ["C3_mean", "C4_mean", "Cz_mean", "coverage"]);

    // Window outputs are stamped with the end of the window they describe, and hold its mean.
    let file = std::fs::read_to_string(dir.path().join("raw.jsonl")).unwrap();
    let local = parse_jsonl(&file);
    assert_eq!(local.len(), sent.len());
    let windows = result["windows"].as_array().unwrap();
    assert!(windows.len() >= 2, "windows received: {windows:?}");
    let mut full = 0;
    for window in windows {
        let end = window[0].as_f64().unwrap() + correction;
        assert!(
            (end - end.round()).abs() < 1e-3,
            "window end {end} is on the hop grid"
        );
        let end = end.round();
        let inside: Vec<&JsonRow> = local
            .iter()
            .filter(|r| r.time >= end - 1.0 && r.time < end)
            .collect();
        let values = numbers(&window[1]);
        if inside.len() == 100 {
            full += 1;
            let mean0 = inside
                .iter()
                .map(|r| r.values[0].as_f64().unwrap())
                .sum::<f64>()
                / 100.0;
            assert!(
                (values[0] - mean0).abs() < 1e-3 * mean0.abs().max(1.0),
                "{values:?} vs {mean0}"
            );
            assert_eq!(values[3], 1.0, "coverage of a full window");
        }
    }
    assert!(full >= 1, "at least one full window was published");
    assert!(stderr.contains("0 gap(s)"), "{stderr}");
}

const RESTART: &str = r#"
[sources.wrist]
kind = "lsl"
source_id = "heloflow-test-wrist"
type = "GSR"
channels = ["EDA"]
unit = "uS"
rate = 50
stall_timeout_s = 1
timeout_s = 30

[operators.eda_mean]
kind = "window_stats"
inputs = ["wrist.eda"]
window_s = 0.5
hop_s = 0.5
stats = ["mean", "count"]

[sinks.out]
kind = "jsonl"
inputs = ["wrist.eda", "wrist.events", "eda_mean"]
path = "out.jsonl"
"#;

#[test]
fn a_stream_killed_and_restarted_resumes_and_the_gap_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), RESTART).unwrap();
    let heloflow = spawn_heloflow(dir.path(), &["run", "p.toml", "--status", "off"], "run");
    let peer = run_peer("restart");
    let read_stderr = || std::fs::read_to_string(dir.path().join("run.stderr")).unwrap_or_default();
    let result = peer_json(&peer, read_stderr);
    interrupt(&heloflow);
    let (ok, stderr) = finish(heloflow, dir.path(), "run", Duration::from_secs(20));
    assert!(ok, "heloflow failed: {stderr}");
    let rows = parse_jsonl(&std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap());

    let first_end = result["first"][1].as_f64().unwrap();
    let second_start = result["second"][0].as_f64().unwrap();
    let data = rows_of(&rows, "wrist.eda");
    let ones = data.iter().filter(|r| r.values["EDA"] == 1.0).count();
    let twos = data.iter().filter(|r| r.values["EDA"] == 2.0).count();
    assert_eq!(
        (ones, twos),
        (100, 100),
        "every sample before and after the restart arrived"
    );

    let events = rows_of(&rows, "wrist.events");
    let kinds: Vec<&str> = events
        .iter()
        .map(|r| r.values["event"].as_str().unwrap())
        .collect();
    // The peer leaves after its second segment, so a final `lost` may follow.
    assert_eq!(kinds[..2], ["lost", "resumed"], "{stderr}");
    assert!(
        kinds.len() == 2 || (kinds.len() == 3 && kinds[2] == "lost"),
        "{kinds:?}"
    );
    let second_end = result["second"][1].as_f64().unwrap();
    assert!(events[0].time > first_end - 1e-3 && events[0].time < second_start);
    assert!(events.iter().skip(2).all(|e| e.time > second_end - 1e-3));
    let gap: f64 = events[1].values["seconds"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (gap - (second_start - first_end)).abs() < 0.05,
        "gap {gap} vs {}",
        second_start - first_end
    );
    assert!(gap > 2.5);
    assert!((events[1].time - second_start).abs() < 1e-3);

    // Windows inside the gap are emitted with coverage 0; the pipeline carried on after it.
    let windows = rows_of(&rows, "eda_mean");
    let in_gap: Vec<_> = windows
        .iter()
        .filter(|w| w.time - 0.5 > first_end + 0.05 && w.time < second_start - 0.05)
        .collect();
    assert!(!in_gap.is_empty());
    assert!(in_gap.iter().all(|w| w.values["coverage"] == 0.0));
    let after: Vec<_> = windows
        .iter()
        .filter(|w| w.time - 0.5 > second_start && w.values["coverage"] == 1.0)
        .collect();
    assert!(!after.is_empty());
    assert!(after.iter().all(|w| w.values["EDA_mean"] == 2.0));
    assert!(stderr.contains("resumed after a"), "{stderr}");
    // A final `lost` (the peer left) is the second gap, still open at the end.
    assert!(
        stderr.contains("1 gap(s)")
            || stderr.contains("2 gap(s) (") && stderr.contains("the last still open"),
        "{stderr}"
    );
}

const MARKERS: &str = r#"
[sources.stim]
kind = "lsl"
source_id = "heloflow-test-markers"
modality = "markers"
timeout_s = 30

[sinks.out]
kind = "jsonl"
inputs = ["stim.markers"]
path = "markers.jsonl"

[sinks.relay]
kind = "lsl"
inputs = ["stim.markers"]
layout = "subject_channel"
subjects = ["heloflow-test-markers"]
source_id = "heloflow-test:markers-relay"
"#;

#[test]
fn string_marker_streams_arrive_intact_with_their_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), MARKERS).unwrap();
    let heloflow = spawn_heloflow(dir.path(), &["run", "p.toml", "--status", "off"], "run");
    let peer = run_peer("markers");
    let read_stderr = || std::fs::read_to_string(dir.path().join("run.stderr")).unwrap_or_default();
    let result = peer_json(&peer, read_stderr);
    interrupt(&heloflow);
    let (ok, stderr) = finish(heloflow, dir.path(), "run", Duration::from_secs(20));
    assert!(ok, "heloflow failed: {stderr}");
    let rows = parse_jsonl(&std::fs::read_to_string(dir.path().join("markers.jsonl")).unwrap());
    let sent = result["sent"].as_array().unwrap();
    assert_eq!(rows.len(), sent.len(), "{stderr}");
    for (row, want) in rows.iter().zip(sent) {
        assert_eq!(row.values["Marker"], want[1]);
        assert!((row.time - want[0].as_f64().unwrap()).abs() < 1e-3);
        assert_eq!(row.subject, "heloflow-test-markers");
    }

    // Republished as one LSL string stream whose first channel names the subject.
    let relayed = result["relayed"].as_array().unwrap();
    assert_eq!(relayed.len(), sent.len());
    for (got, want) in relayed.iter().zip(sent) {
        assert_eq!(got[1][0], "heloflow-test-markers");
        assert_eq!(got[1][1], want[1]);
        assert!((got[0].as_f64().unwrap() - want[0].as_f64().unwrap()).abs() < 1e-3);
    }
    let meta = &result["relay_meta"];
    assert_eq!(meta["type"], "Markers");
    assert_eq!(meta["nominal_srate"].as_f64(), Some(0.0));
    let labels: Vec<&str> = meta["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["subject", "Marker"]);
}

#[test]
fn simulated_subjects_over_lsl_are_listed_and_matched_by_one_source() {
    let dir = tempfile::tempdir().unwrap();
    let seed = (std::process::id() % 100_000).to_string();
    let simulate = spawn_heloflow(
        dir.path(),
        &[
            "simulate",
            "--lsl",
            "--subjects",
            "3",
            "--streams",
            "eda,face",
            "--seed",
            &seed,
            "--duration",
            "0",
            "--status",
            "off",
        ],
        "simulate",
    );

    // `heloflow streams` lists the outlets with their metadata.
    let prefix = format!("heloflow-sim:seed{seed}:");
    let mut listed = Vec::new();
    for _ in 0..10 {
        let output = Command::new(env!("CARGO_BIN_EXE_heloflow"))
            .args(["streams", "--json", "--timeout", "1.5"])
            .env("LSLAPICFG", common::lsl_config())
            .stderr(Stdio::null())
            .output()
            .unwrap();
        listed = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| {
                v["source_id"]
                    .as_str()
                    .is_some_and(|s| s.starts_with(&prefix))
            })
            .collect();
        if listed.len() == 6 {
            break;
        }
    }
    assert_eq!(listed.len(), 6, "three subjects x (eda, face): {listed:?}");
    let eda = listed
        .iter()
        .find(|v| v["source_id"] == format!("{prefix}sim.eda:S02"))
        .expect("S02's EDA outlet");
    assert_eq!(eda["kind"], "GSR");
    assert_eq!(eda["nominal_srate"].as_f64(), Some(4.0));
    assert_eq!(eda["channels"][0]["label"], "EDA");
    // Written as MNE-LSL reads channel metadata (the source below still declares "uS": the
    // declared unit is checked by meaning, not by spelling).
    assert_eq!(eda["channels"][0]["unit"], "microsiemens");
    assert_eq!(eda["channels"][0]["kind"], "gsr");

    // One source takes all three subjects' EDA streams, the subject read from desc/subject.
    let pipeline = format!(
        r#"
[sources.wrists]
kind = "lsl"
type = "GSR"
predicate = "starts-with(source_id, '{prefix}')"
channels = ["EDA"]
unit = "uS"
rate = 4
subject_from = "desc:subject"
min_streams = 3
timeout_s = 20

[sources.cameras]
kind = "lsl"
type = "FaceAU"
predicate = "starts-with(source_id, '{prefix}')"
channels = ["AU01_r", "AU02_r", "AU04_r", "AU05_r", "AU06_r", "AU07_r", "AU09_r", "AU10_r", "AU12_r", "AU14_r", "AU15_r", "AU17_r", "AU20_r", "AU23_r", "AU25_r", "AU26_r", "AU45_r", "confidence", "success"]
rate = 30
subject_from = "desc:subject"
min_streams = 3
timeout_s = 20

[operators.eda_mean]
kind = "window_stats"
inputs = ["wrists.eda"]
window_s = 1.0
hop_s = 1.0
stats = ["mean"]

[operators.smile_units]
kind = "select"
inputs = ["cameras.face"]
channels = ["AU12_r"]

[operators.smile]
kind = "window_stats"
inputs = ["smile_units"]
window_s = 1.0
hop_s = 1.0
stats = ["mean"]

[sinks.out]
kind = "jsonl"
inputs = ["wrists.eda", "eda_mean", "smile"]
path = "subjects.jsonl"
"#
    );
    std::fs::write(dir.path().join("p.toml"), pipeline).unwrap();
    let run = spawn_heloflow(dir.path(), &["run", "p.toml", "--status", "off"], "run");
    std::thread::sleep(Duration::from_secs(6));
    interrupt(&run);
    let (ok, stderr) = finish(run, dir.path(), "run", Duration::from_secs(20));
    assert!(ok, "heloflow failed: {stderr}");

    // A source matching nothing fails within its timeout and lists what is visible.
    let missing = r#"
[sources.none]
kind = "lsl"
type = "NoSuchType"
modality = "eeg"
channels = 1
rate = 1
timeout_s = 1

[sinks.out]
kind = "jsonl"
inputs = ["none.eeg"]
"#;
    std::fs::write(dir.path().join("missing.toml"), missing).unwrap();
    let failing = spawn_heloflow(
        dir.path(),
        &["run", "missing.toml", "--status", "off"],
        "missing",
    );
    let (failed_ok, failed_stderr) =
        finish(failing, dir.path(), "missing", Duration::from_secs(20));

    interrupt(&simulate);
    let (sim_ok, sim_stderr) = finish(simulate, dir.path(), "simulate", Duration::from_secs(20));
    assert!(sim_ok, "simulate --lsl failed: {sim_stderr}");

    assert!(!failed_ok);
    assert!(
        failed_stderr.contains("found 0 of 1 stream(s)"),
        "{failed_stderr}"
    );
    assert!(failed_stderr.contains("visible streams"), "{failed_stderr}");
    assert!(
        failed_stderr.contains(&format!("source_id={prefix}sim.eda:S01")),
        "{failed_stderr}"
    );

    let rows = parse_jsonl(&std::fs::read_to_string(dir.path().join("subjects.jsonl")).unwrap());
    for subject in ["S01", "S02", "S03"] {
        let samples: Vec<_> = rows
            .iter()
            .filter(|r| r.stream == "wrists.eda" && r.subject == subject)
            .collect();
        assert!(
            samples.len() >= 12,
            "{subject}: {} samples; {stderr}",
            samples.len()
        );
        assert!(samples.iter().all(|r| r.values["EDA"]
            .as_f64()
            .is_some_and(|v| v > 0.0 && v < 50.0)));
        assert!(samples.windows(2).all(|w| {
            let step = w[1].time - w[0].time;
            (step - 0.25).abs() < 1e-3
        }));
        let windows = rows
            .iter()
            .filter(|r| r.stream == "eda_mean" && r.subject == subject)
            .count();
        assert!(windows >= 2, "{subject}: {windows} windows");
        // Video features (OpenFace-style action units) are a modality like any other.
        let smiles: Vec<f64> = rows
            .iter()
            .filter(|r| r.stream == "smile" && r.subject == subject)
            .filter(|r| r.values["coverage"] == 1.0)
            .map(|r| r.values["AU12_r_mean"].as_f64().unwrap())
            .collect();
        assert!(
            smiles.len() >= 2,
            "{subject}: {} full smile windows",
            smiles.len()
        );
        assert!(smiles.iter().all(|v| (0.0..=5.0).contains(v)), "{smiles:?}");
    }
}
