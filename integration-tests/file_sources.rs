//! File sources end to end through the real binary: the `xdf` source playing LabRecorder's
//! example files as real pyxdf loads them, the `csv` source reading recordings, and windows
//! aligned on a trial's first sample reproducing DMER's per-trial feature windows.

mod common;
#[path = "xdf/pyxdf.rs"]
mod pyxdf;

use std::path::Path;

use common::{heloflow, heloflow_ok, parse_jsonl};

fn dmer_fixture() -> serde_json::Value {
    let text = std::fs::read_to_string(common::root().join("fixtures/features/dmer.json"))
        .expect("fixtures/features/dmer.json");
    serde_json::from_str(&text).expect("JSON")
}

fn floats(value: &serde_json::Value) -> Vec<f64> {
    value
        .as_str()
        .expect("floats as a string")
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect()
}

/// Writes one channel at `rate` Hz starting at `start` seconds as `timestamp,subject,<label>`.
fn write_trial(path: &Path, label: &str, samples: &[f64], rate: f64, start: f64) {
    let mut text = format!("timestamp,subject,{label}\n");
    for (i, v) in samples.iter().enumerate() {
        text.push_str(&format!("{},P01,{v}\n", start + i as f64 / rate));
    }
    std::fs::write(path, text).unwrap();
}

/// Every value within 1e-9 of the reference, relative to its feature group's scale (as the unit
/// tests of the DMER operators compare).
fn assert_rows_match(what: &str, rows: &[Vec<f64>], expected: &[f64], groups: &[usize]) {
    let width: usize = groups.iter().sum();
    assert_eq!(
        rows.len() * width,
        expected.len(),
        "{what}: number of windows"
    );
    for (r, (row, reference)) in rows.iter().zip(expected.chunks(width)).enumerate() {
        assert_eq!(row.len(), width, "{what}: row {r} width");
        let mut offset = 0;
        for &len in groups {
            let group = &reference[offset..offset + len];
            let scale = group.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for i in offset..offset + len {
                let error = (row[i] - reference[i]).abs() / reference[i].abs().max(scale);
                assert!(
                    error <= 1e-9,
                    "{what}: window {r} value {i}: {} vs DMER reference {} ({error:e})",
                    row[i],
                    reference[i]
                );
            }
            offset += len;
        }
    }
}

fn numbers(values: &serde_json::Value) -> Vec<f64> {
    values
        .as_array()
        .expect("array layout")
        .iter()
        .map(|v| v.as_f64().unwrap_or(f64::NAN))
        .collect()
}

const TRIAL_PIPELINE: &str = r#"
[sources.gsr]
kind = "csv"
path = "gsr.csv"
modality = "eda"
unit = "uS"

[sources.ppg]
kind = "csv"
path = "ppg.csv"
modality = "ppg"

[operators.gsr_features]
kind = "gsr_features"
inputs = ["gsr.eda"]
quality = false
ALIGN

[operators.ppg_features]
kind = "ppg_features"
inputs = ["ppg.ppg"]
bandpass = "none"
quality = false
ALIGN

[sinks.out]
kind = "jsonl"
inputs = ["gsr_features", "ppg_features"]
path = "features.jsonl"
layout = "array"
"#;

#[test]
fn first_sample_windows_reproduce_dmer_trial_features_from_a_recording() {
    let doc = dmer_fixture();
    let dir = tempfile::tempdir().unwrap();
    // The trial starts off the hop grid, as any recorded trial does.
    let start = 100.37;
    write_trial(
        &dir.path().join("gsr.csv"),
        "EDA",
        &floats(&doc["gsr"]["samples"]),
        4.0,
        start,
    );
    write_trial(
        &dir.path().join("ppg.csv"),
        "PPG",
        &floats(&doc["ppg"]["filtered"]),
        100.0,
        start,
    );
    let aligned = TRIAL_PIPELINE.replace("ALIGN", "align = \"first_sample\"");
    std::fs::write(dir.path().join("trial.toml"), &aligned).unwrap();
    heloflow_ok(dir.path(), &["run", "trial.toml", "--status", "off"]);
    let rows = parse_jsonl(&std::fs::read_to_string(dir.path().join("features.jsonl")).unwrap());
    let of = |stream: &str| -> Vec<Vec<f64>> {
        rows.iter()
            .filter(|r| r.stream == stream)
            .map(|r| numbers(&r.values))
            .collect()
    };
    let gsr_times: Vec<f64> = rows
        .iter()
        .filter(|r| r.stream == "gsr_features")
        .map(|r| r.time)
        .collect();
    assert!(
        (gsr_times[0] - (start + 5.0)).abs() < 1e-9,
        "window 0 ends 5 s after the first sample: {}",
        gsr_times[0]
    );
    assert_rows_match(
        "gsr_features",
        &of("gsr_features"),
        &floats(&doc["gsr"]["features"]),
        &[7, 7, 7, 6, 1],
    );
    assert_rows_match(
        "ppg_features",
        &of("ppg_features"),
        &floats(&doc["ppg"]["features"]),
        &[7, 7, 7, 6],
    );

    // On the clock grid the first window of an off-grid trial is lost: that is what `align` fixes.
    let clock = TRIAL_PIPELINE.replace("ALIGN", "");
    std::fs::write(dir.path().join("clock.toml"), &clock).unwrap();
    heloflow_ok(dir.path(), &["run", "clock.toml", "--status", "off"]);
    let rows = parse_jsonl(&std::fs::read_to_string(dir.path().join("features.jsonl")).unwrap());
    let first = rows.iter().find(|r| r.stream == "gsr_features").unwrap();
    assert!((first.time - 106.0).abs() < 1e-9, "{}", first.time);
}

#[test]
fn a_csv_sink_recording_reads_back_through_the_csv_source() {
    let dir = tempfile::tempdir().unwrap();
    let record = r#"
[sources.sim]
kind = "simulator"
seed = 3
subjects = 2
streams = ["eda", "temp"]
duration_s = 12

[sinks.eda]
kind = "csv"
inputs = ["sim.eda"]
path = "eda.csv"

[sinks.raw]
kind = "jsonl"
inputs = ["sim.eda"]
path = "raw.jsonl"
"#;
    std::fs::write(dir.path().join("record.toml"), record).unwrap();
    heloflow_ok(dir.path(), &["run", "record.toml", "--status", "off"]);
    let replay = r#"
[sources.rec]
kind = "csv"
path = "eda.csv"
modality = "eda"
unit = "uS"
subject_column = "subject"

[sinks.out]
kind = "jsonl"
inputs = ["rec.eda"]
path = "replayed.jsonl"
"#;
    std::fs::write(dir.path().join("replay.toml"), replay).unwrap();
    heloflow_ok(
        dir.path(),
        &["run", "replay.toml", "--status", "off", "-w", "2"],
    );
    let raw = parse_jsonl(&std::fs::read_to_string(dir.path().join("raw.jsonl")).unwrap());
    let replayed =
        parse_jsonl(&std::fs::read_to_string(dir.path().join("replayed.jsonl")).unwrap());
    assert_eq!(raw.len(), replayed.len());
    assert!(raw.len() > 2 * 4 * 11, "{} rows", raw.len());
    for (a, b) in raw.iter().zip(&replayed) {
        assert_eq!((a.time, &a.subject), (b.time, &b.subject));
        assert_eq!(
            a.values["EDA"], b.values["EDA"],
            "at {} {}",
            a.time, a.subject
        );
    }
}

#[test]
fn markers_and_bad_cells() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("session.csv"),
        "time_ms,EDA,event\n0,1.5,\n250,1.6,start\n500,,\n750,1.8,end\n",
    )
    .unwrap();
    let pipeline = r#"
[sources.rec]
kind = "csv"
path = "session.csv"
modality = "eda"
time_column = "time_ms"
time_scale = 0.001
markers = "event"
subject = "P07"

[sinks.out]
kind = "jsonl"
inputs = ["rec.eda", "rec.markers"]
path = "out.jsonl"
layout = "array"
"#;
    std::fs::write(dir.path().join("p.toml"), pipeline).unwrap();
    heloflow_ok(dir.path(), &["run", "p.toml", "--status", "off"]);
    let rows = parse_jsonl(&std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap());
    let markers: Vec<(f64, String)> = rows
        .iter()
        .filter(|r| r.stream == "rec.markers")
        .map(|r| (r.time, r.values[0].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        markers,
        vec![(0.25, "start".to_string()), (0.75, "end".to_string())]
    );
    let eda: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r.stream == "rec.eda")
        .map(|r| &r.values[0])
        .collect();
    assert_eq!(eda.len(), 4);
    assert!(eda[2].is_null(), "an empty cell is a missing value");
    assert!(rows.iter().all(|r| r.subject == "P07"));

    std::fs::write(
        dir.path().join("session.csv"),
        "time_ms,EDA,event\n0,1.5,\n250,abc,start\n",
    )
    .unwrap();
    let output = heloflow(dir.path(), &["run", "p.toml", "--status", "off"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("session.csv:3: column `EDA`: \"abc\" is not a number"),
        "{stderr}"
    );
}

fn xdf_example(name: &str) -> String {
    common::root()
        .join("fixtures/xdf")
        .join(name)
        .display()
        .to_string()
}

/// Event-time nanoseconds of a pyxdf timestamp, as the source rounds it.
fn nanos(seconds: f64) -> i64 {
    (seconds * 1e9).round() as i64
}

fn jsonl_nanos(time: f64) -> i64 {
    (time * 1e9).round() as i64
}

/// Plays clock_resets.xdf (two streams, a clock reset) through an `xdf` source and compares every
/// sample with what real pyxdf loads under the same options; samples whose synchronised time goes
/// back (around the reset) are the ones the source drops and counts.
fn play_like_pyxdf(dejitter: bool) {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = format!(
        r#"
[sources.rec]
kind = "xdf"
path = "{}"
dejitter = {dejitter}
streams = {{ eeg = {{ type = "EEG" }}, markers = {{ type = "Markers" }} }}

[sinks.out]
kind = "jsonl"
inputs = ["rec.eeg", "rec.markers"]
path = "out.jsonl"
layout = "array"
"#,
        xdf_example("clock_resets.xdf")
    );
    std::fs::write(dir.path().join("p.toml"), pipeline).unwrap();
    let output = heloflow_ok(dir.path(), &["run", "p.toml", "--status", "plain"]);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let rows = parse_jsonl(&std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap());
    let flag = if dejitter { "true" } else { "false" };
    let theirs = pyxdf::load(
        Path::new(&xdf_example("clock_resets.xdf")),
        &["--dejitter-timestamps", flag],
    );
    let mut dropped = 0;
    for (stream, name) in [("rec.eeg", "BioSemi"), ("rec.markers", "MyMarkerStream")] {
        let reference = theirs["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["info"]["name"] == name)
            .unwrap();
        let mut expected = Vec::new();
        let mut last = i64::MIN;
        for (t, v) in reference["time_stamps"]
            .as_array()
            .unwrap()
            .iter()
            .zip(reference["time_series"].as_array().unwrap())
        {
            let t = nanos(pyxdf::number(t));
            if t >= last {
                expected.push((t, v.clone()));
                last = t;
            } else {
                dropped += 1;
            }
        }
        let ours: Vec<&common::JsonRow> = rows.iter().filter(|r| r.stream == stream).collect();
        assert_eq!(ours.len(), expected.len(), "{stream}: samples played");
        for (row, (t, v)) in ours.iter().zip(&expected) {
            // Timestamps equal pyxdf's to a few nanoseconds, not to the bit: pyxdf fits clock
            // offsets with numpy's lstsq, whose BLAS kernels differ per CPU. Earlier machines agreed
            // to the bit; an AVX-512 AMD EPYC differs by up to 2 ns (over both runs, 15,063 of 55,630 EEG
            // samples by 1 ns, 8 of 350 markers by 2 ns).
            let tolerance = 5;
            assert!(
                (jsonl_nanos(row.time) - *t).abs() <= tolerance,
                "{stream}: timestamp {} vs pyxdf {t}",
                jsonl_nanos(row.time)
            );
            let values: Vec<serde_json::Value> = row.values.as_array().unwrap().clone();
            for (a, b) in values.iter().zip(v.as_array().unwrap()) {
                match b.as_str() {
                    Some(text) if stream == "rec.markers" => assert_eq!(a.as_str(), Some(text)),
                    // float32 channels: the jsonl text is the shortest float32 text.
                    Some(text) => assert_eq!(
                        a.to_string().parse::<f32>().unwrap(),
                        text.parse::<f64>().unwrap() as f32,
                        "{stream} at {t}"
                    ),
                    None => panic!("unexpected value {b}"),
                }
            }
        }
    }
    if dropped > 0 {
        assert!(
            stderr.contains(&format!("dropped {dropped} sample(s)")),
            "the drop is reported: {stderr}"
        );
    }
}

#[test]
fn xdf_recordings_play_with_the_timestamps_pyxdf_loads() {
    play_like_pyxdf(false);
    play_like_pyxdf(true);
}

#[test]
fn xdf_playback_is_identical_on_every_run_and_worker_count() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = format!(
        r#"
[sources.rec]
kind = "xdf"
path = "{}"
type = "EEG"

[operators.bands]
kind = "band_power"
inputs = ["rec.eeg"]
window_s = 2
hop_s = 1
bands = {{ alpha = [8, 12], beta = [13, 30] }}

[operators.smooth]
kind = "filter"
inputs = ["rec.eeg"]
type = "lowpass"
cutoff_hz = 20
zero_phase = true

[sinks.out]
kind = "jsonl"
inputs = ["bands", "smooth"]
path = "out.jsonl"
"#,
        xdf_example("clock_resets.xdf")
    );
    std::fs::write(dir.path().join("p.toml"), pipeline).unwrap();
    let mut outputs = Vec::new();
    for workers in ["1", "1", "2"] {
        heloflow_ok(
            dir.path(),
            &["run", "p.toml", "--status", "off", "-w", workers],
        );
        outputs.push(std::fs::read(dir.path().join("out.jsonl")).unwrap());
    }
    assert!(outputs[0].len() > 100_000, "{} bytes", outputs[0].len());
    assert!(outputs[0] == outputs[1], "two runs differ");
    assert!(outputs[0] == outputs[2], "-w 2 differs from -w 1");
}

#[test]
fn xdf_sources_check_the_file_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let check = |source: &str| -> String {
        let text = format!("[sources.rec]\nkind = \"xdf\"\n{source}\n[sinks.out]\nkind = \"jsonl\"\ninputs = [\"rec.eeg\"]\n");
        std::fs::write(dir.path().join("p.toml"), text).unwrap();
        let output = heloflow(dir.path(), &["validate", "p.toml"]);
        String::from_utf8_lossy(&output.stderr).to_string()
    };
    let path = format!("path = \"{}\"", xdf_example("clock_resets.xdf"));
    let none = check(&format!("{path}\ntype = \"GSR\"\nmodality = \"eeg\""));
    assert!(none.contains("no stream of"), "{none}");
    assert!(
        none.contains("\"BioSemi\" type \"EEG\""),
        "the file's streams are listed: {none}"
    );
    let channels = check(&format!("{path}\ntype = \"EEG\"\nchannels = 3"));
    assert!(
        channels.contains("has 8 channel(s), but the source declares 3"),
        "{channels}"
    );
    let rate = check(&format!("{path}\ntype = \"EEG\"\nrate = 256"));
    assert!(
        rate.contains("nominal rate 100 Hz, but the source declares rate = 256"),
        "{rate}"
    );
    let missing = check("path = \"nowhere.xdf\"\ntype = \"EEG\"");
    assert!(missing.contains("cannot open nowhere.xdf"), "{missing}");
    let speed = check(&format!("{path}\ntype = \"EEG\"\nspeed = 0"));
    assert!(
        speed.contains("`sources.rec.speed` must be between 0.001 and 1000000, found 0"),
        "{speed}"
    );
    let misplaced = check(&format!(
        "{path}\nunit = \"uV\"\nstreams = {{ eeg = {{ type = \"EEG\" }} }}"
    ));
    assert!(
        misplaced.contains("with `streams`, `unit` belongs in each entry of `streams`"),
        "{misplaced}"
    );
    assert!(check(&format!("{path}\ntype = \"EEG\"")).is_empty());
}

#[test]
fn a_paced_xdf_source_follows_the_wall_clock_and_counts_as_live() {
    let dir = tempfile::tempdir().unwrap();
    let source = format!(
        "[sources.rec]\nkind = \"xdf\"\npath = \"{}\"\ntype = \"EEG\"\nspeed = 200\n",
        xdf_example("clock_resets.xdf")
    );
    let paced = format!(
        "{source}\n[sinks.out]\nkind = \"jsonl\"\ninputs = [\"rec.eeg\"]\npath = \"out.jsonl\"\n"
    );
    std::fs::write(dir.path().join("paced.toml"), paced).unwrap();
    let started = std::time::Instant::now();
    heloflow_ok(dir.path(), &["run", "paced.toml", "--status", "off"]);
    // 573 s of recording at 200x: about 2.9 s, not as fast as possible (a few milliseconds).
    assert!(
        started.elapsed() > std::time::Duration::from_secs_f64(2.6),
        "{:?}",
        started.elapsed()
    );
    let offline = format!(
        "{source}\n[operators.smooth]\nkind = \"filter\"\ninputs = [\"rec.eeg\"]\ntype = \"lowpass\"\ncutoff_hz = 20\nzero_phase = true\n\n[sinks.out]\nkind = \"jsonl\"\ninputs = [\"smooth\"]\n"
    );
    std::fs::write(dir.path().join("offline.toml"), offline).unwrap();
    let output = heloflow(dir.path(), &["validate", "offline.toml"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("needs the whole recording, but it is fed by the real-time source `rec`"),
        "{stderr}"
    );
}
