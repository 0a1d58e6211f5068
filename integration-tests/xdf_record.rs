//! XDF writing, end to end, checked with the real pyxdf 1.17.5 (the reader users use):
//! `heloflow record` from real pylsl outlets, the `xdf` sink of pipelines, what a kill or a full
//! disk leaves behind, refusals before recording, BIDS names and determinism.
//!
//! Needs `python3` with pyxdf, pylsl and numpy on PATH (`./scripts/test` puts .venv first). LSL
//! runs on a loopback-only configuration (`fixtures/lsl/lsl_api.cfg`). The LSL tests
//! take turns (one lock), so each has the machine's two cores to itself.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::Running;

use heloflow::stream::ChannelFormat;
use heloflow::xdf::writer::{ChannelDesc, CreateOptions, StreamHeader, Values, XdfWriter};
use serde_json::Value;

static LSL: Mutex<()> = Mutex::new(());

/// One LSL scenario at a time.
fn lsl_turn() -> MutexGuard<'static, ()> {
    LSL.lock().unwrap_or_else(|e| e.into_inner())
}

fn helpers() -> PathBuf {
    common::root().join("integration-tests/xdf")
}

/// `python3` with the loopback configuration; fails clearly when pyxdf or pylsl is missing.
fn python() -> Command {
    common::python("pyxdf, pylsl, numpy", &common::lsl_config())
}

/// A prefix no other test (or test run) uses for its streams.
fn prefix(tag: &str) -> String {
    format!("hfx{}{tag}", std::process::id())
}

/// Starts a pylsl outlet scenario (`integration-tests/xdf/outlets.py`).
fn publisher(dir: &Path, args: &[&str], tag: &str) -> Running {
    Running(
        python()
            .arg(helpers().join("outlets.py"))
            .args(args)
            .current_dir(dir)
            .stdout(File::create(dir.join(format!("{tag}.stdout"))).unwrap())
            .stderr(File::create(dir.join(format!("{tag}.stderr"))).unwrap())
            .spawn()
            .expect("the pylsl publisher starts"),
    )
}

/// Starts `heloflow args...` in `dir` (output into files there), optionally under a file-size
/// limit of `limit_kib` KiB (bash `ulimit -f`).
fn spawn_heloflow(dir: &Path, args: &[&str], tag: &str, limit_kib: Option<u64>) -> Running {
    let mut command = match limit_kib {
        Some(kib) => {
            let mut c = Command::new("bash");
            c.arg("-c")
                .arg(format!("ulimit -f {kib} && exec \"$0\" \"$@\""))
                .arg(env!("CARGO_BIN_EXE_heloflow"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_heloflow")),
    };
    Running(
        command
            .args(args)
            .current_dir(dir)
            .env("LSLAPICFG", common::lsl_config())
            .stdout(File::create(dir.join(format!("{tag}.stdout"))).unwrap())
            .stderr(File::create(dir.join(format!("{tag}.stderr"))).unwrap())
            .spawn()
            .expect("the heloflow binary starts"),
    )
}

fn signal(child: &Running, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} failed");
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

/// Waits for `child` at most `limit` (then kills it and fails); returns its status, stdout and
/// stderr.
fn finish(
    mut child: Running,
    dir: &Path,
    tag: &str,
    limit: Duration,
) -> (ExitStatus, String, String) {
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            panic!(
                "{tag} did not finish within {limit:?}; stderr:\n{}",
                read(dir, &format!("{tag}.stderr"))
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status,
        read(dir, &format!("{tag}.stdout")),
        read(dir, &format!("{tag}.stderr")),
    )
}

/// Waits until `tag`'s stderr holds `text` `count` times; false after `limit`.
fn wait_for_text(dir: &Path, tag: &str, text: &str, count: usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if read(dir, &format!("{tag}.stderr")).matches(text).count() >= count {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The file as pyxdf loads it (`integration-tests/xdf/load.py`, flags `--sync`, `--dejitter`,
/// `--digest`); fails the test with pyxdf's error when it cannot.
fn load(path: &Path, flags: &[&str]) -> Value {
    let output = python()
        .arg(helpers().join("load.py"))
        .arg(path)
        .args(flags)
        .output()
        .expect("the pyxdf loader runs");
    assert!(
        output.status.success(),
        "pyxdf could not load {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the loader prints JSON")
}

/// A float the loader printed as its repr() text (exact), or a JSON number.
fn float(value: &Value) -> f64 {
    match value {
        Value::String(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("not a float: {text}")),
        other => other
            .as_f64()
            .unwrap_or_else(|| panic!("not a number: {other}")),
    }
}

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("a list")
        .iter()
        .map(float)
        .collect()
}

/// `info[key][0]` of a loaded stream (pyxdf keeps every XML field as a list).
fn field<'a>(stream: &'a Value, key: &str) -> &'a str {
    stream["info"][key][0].as_str().unwrap_or_default()
}

fn streams(loaded: &Value) -> &Vec<Value> {
    loaded["streams"].as_array().expect("streams")
}

fn stream_with<'a>(loaded: &'a Value, key: &str, value: &str) -> &'a Value {
    streams(loaded)
        .iter()
        .find(|s| field(s, key) == value)
        .unwrap_or_else(|| panic!("no stream with {key} = {value}"))
}

/// `desc[0]` of a loaded stream.
fn desc(stream: &Value) -> &Value {
    &stream["info"]["desc"][0]
}

/// Event time of a decimal seconds text, in nanoseconds, exactly.
fn exact_nanos(text: &str) -> i64 {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let fraction = format!("{fraction:0<9}");
    let nanos =
        whole.parse::<i64>().unwrap() * 1_000_000_000 + fraction[..9].parse::<i64>().unwrap();
    if negative {
        -nanos
    } else {
        nanos
    }
}

/// One JSON Lines row with its event time exact.
struct Row {
    time: i64,
    stream: String,
    subject: String,
    /// Values as JSON (strings) ...
    values: Vec<Value>,
    /// ... and as their text (numbers: parsed exactly with `str::parse`, unlike serde_json's).
    texts: Vec<String>,
}

fn jsonl(path: &Path) -> Vec<Row> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let time = line
                .strip_prefix("{\"t\":")
                .and_then(|rest| rest.split(',').next())
                .expect("a t field first");
            let value: Value = serde_json::from_str(line).unwrap();
            let array = line
                .split_once("\"values\":[")
                .and_then(|(_, rest)| rest.strip_suffix("]}"))
                .expect("array layout");
            Row {
                time: exact_nanos(time),
                stream: value["stream"].as_str().unwrap().to_string(),
                subject: value["subject"].as_str().unwrap().to_string(),
                values: value["values"].as_array().unwrap().clone(),
                texts: array.split(',').map(str::to_string).collect(),
            }
        })
        .collect()
}

fn secs_to_nanos(seconds: f64) -> i64 {
    heloflow::stream::secs_to_nanos(seconds)
}

/// The file as pyxdf loads it with its `<datetime>` blanked, to compare two runs byte for byte.
fn without_datetime(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let start = text.find("<datetime>").expect("a datetime");
    let end = text.find("</datetime>").expect("a datetime end");
    let mut out = bytes[..start].to_vec();
    out.extend_from_slice(&bytes[end..]);
    out
}

// --- The writer's crash states, loaded with pyxdf --------------------------------------------

/// Every state a kill can leave while the writer writes (a segment with its first byte still
/// zero, cut anywhere) loads in pyxdf with exactly the samples before the segment, while plain
/// truncations at the same places make pyxdf raise: the write order is what makes kills safe.
#[test]
fn every_state_a_kill_can_leave_loads_in_pyxdf() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("states.xdf");
    let mut writer = XdfWriter::create(&path, &CreateOptions::default()).unwrap();
    let mut segments: Vec<(u64, u64, u64)> = vec![(4, writer.bytes_written(), 0)];
    let mut samples = 0u64;
    let mut ids = Vec::new();
    let formats = ChannelFormat::ALL;
    for flush in 0..12u32 {
        let before = writer.bytes_written();
        // Streams join over time (new headers mid-file).
        if flush % 4 == 0 {
            for &format in &formats[(flush / 4 * 3) as usize..((flush / 4 * 3 + 3) as usize).min(7)]
            {
                let channels = vec![
                    ChannelDesc::new("a", "microvolts", "EEG"),
                    ChannelDesc::new("b", "microvolts", "EEG"),
                ];
                let header = StreamHeader::new(format.lsl_name(), "EEG", format, 10.0, channels);
                ids.push((writer.add_stream(&header).unwrap(), format));
            }
        }
        for &(id, format) in &ids {
            let rows = 3 + (flush as usize + id as usize) % 4;
            let times: Vec<f64> = (0..rows)
                .map(|i| f64::from(flush) + i as f64 * 0.1)
                .collect();
            let numbers: Vec<f64> = (0..rows * 2).map(|i| i as f64 * 1.5 - 3.0).collect();
            let texts: Vec<String> = (0..rows * 2).map(|i| format!("marker <{i}> é")).collect();
            let values = if format == ChannelFormat::String {
                Values::Strings(&texts)
            } else {
                Values::Numbers(&numbers)
            };
            writer.push_samples(id, &times, values).unwrap();
            writer
                .push_clock_offset(id, f64::from(flush) + 0.5, -0.001 * f64::from(flush))
                .unwrap();
        }
        if flush % 3 == 2 {
            writer.push_boundary().unwrap();
        }
        writer.flush().unwrap();
        segments.push((before, writer.bytes_written(), samples));
        samples = ids
            .iter()
            .map(|&(id, _)| writer.stream_summary(id).unwrap().samples)
            .sum();
    }
    let before = writer.bytes_written();
    let summary = writer.finish().unwrap();
    segments.push((before, summary.bytes, samples));
    let segments_path = dir.path().join("segments.json");
    std::fs::write(&segments_path, serde_json::to_string(&segments).unwrap()).unwrap();

    let output = python()
        .arg(helpers().join("states.py"))
        .arg(&path)
        .arg(&segments_path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut naive_raised = 0;
    let mut states = 0;
    for (segment, result) in segments.iter().zip(results.as_array().unwrap()) {
        let (start, end, before) = *segment;
        assert_eq!(
            result["raised"], 0,
            "segment {start}..{end}: {}",
            result["errors"]
        );
        assert_eq!(
            result["samples"],
            serde_json::json!([before]),
            "segment {start}..{end}: a partial segment must show exactly what came before it"
        );
        assert!(
            result["complete_error"].is_null(),
            "{}",
            result["complete_error"]
        );
        states += result["states"].as_u64().unwrap();
        naive_raised += result["naive_raised"].as_u64().unwrap();
    }
    let total: u64 = summary.streams.iter().map(|s| s.samples).sum();
    assert_eq!(
        results.as_array().unwrap().last().unwrap()["complete_samples"],
        total
    );
    assert!(states > 1000, "{states} states checked");
    assert!(
        naive_raised > 0,
        "plain truncation never made pyxdf raise, so this test would not see a wrong write order"
    );
}

// --- The xdf sink without LSL -----------------------------------------------------------------

const SIMULATED: &str = r#"
[pipeline]
name = "xdf-sim"

[sources.sim]
kind = "simulator"
seed = 11
subjects = 2
streams = ["eeg", "eda", "emotion", "markers"]
duration_s = 30

[operators.bands]
kind = "band_power"
inputs = ["sim.eeg"]

[operators.truth]
kind = "window_stats"
inputs = ["sim.emotion"]
stats = ["mean"]

[sinks.rec]
kind = "xdf"
inputs = ["sim.eeg", "sim.eda", "sim.markers", "bands", "truth"]
bids = { root = "study", subject = "P07", session = "S2", task = "sim", run = "3", modality = "physio" }

[sinks.log]
kind = "jsonl"
inputs = ["sim.eeg", "sim.eda", "sim.markers", "bands", "truth"]
path = "log.jsonl"
layout = "array"
"#;

const SIMULATED_XDF: &str = "study/sub-P07/ses-S2/physio/sub-P07_ses-S2_task-sim_run-3_physio.xdf";

/// Every value and event time of every stream and subject the sink records equals the JSON Lines
/// rows of the same run; the bytes do not depend on the number of workers; BIDS names the file.
#[test]
fn the_xdf_sink_is_deterministic_and_matches_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), SIMULATED).unwrap();
    let mut runs = Vec::new();
    for workers in ["1", "3"] {
        let path = dir.path().join(SIMULATED_XDF);
        let _ = std::fs::remove_file(&path);
        common::heloflow_ok(
            dir.path(),
            &["run", "p.toml", "--status", "off", "-w", workers],
        );
        runs.push(std::fs::read(&path).unwrap());
    }
    assert_eq!(
        without_datetime(&runs[0]),
        without_datetime(&runs[1]),
        "-w 1 and -w 3 wrote different bytes"
    );

    let path = dir.path().join(SIMULATED_XDF);
    let loaded = load(&path, &[]);
    let rows = jsonl(&dir.path().join("log.jsonl"));
    let pipeline_text = std::fs::read_to_string(dir.path().join("p.toml")).unwrap();
    let heloflow = &loaded["fileheader"]["info"]["heloflow"][0];
    assert_eq!(heloflow["pipeline"][0]["text"][0], pipeline_text.as_str());
    assert_eq!(heloflow["version"][0], env!("CARGO_PKG_VERSION"));
    assert_eq!(streams(&loaded).len(), 10, "5 inputs x 2 subjects");
    for stream in streams(&loaded) {
        let name = desc(stream)["heloflow"][0]["stream"][0].as_str().unwrap();
        let subject = desc(stream)["subject"][0].as_str().unwrap();
        assert_eq!(
            field(stream, "source_id"),
            format!("heloflow:xdf-sim:{name}:{subject}")
        );
        assert!(desc(stream).get("model").is_none());
        let expected: Vec<&Row> = rows
            .iter()
            .filter(|r| r.stream == name && r.subject == subject)
            .collect();
        let stamps = floats(&stream["time_stamps"]);
        assert_eq!(stamps.len(), expected.len(), "{name}/{subject}");
        assert!(!expected.is_empty());
        let format = field(stream, "channel_format");
        for ((row, stamp), values) in expected
            .iter()
            .zip(&stamps)
            .zip(stream["time_series"].as_array().unwrap())
        {
            assert_eq!(
                secs_to_nanos(*stamp),
                row.time,
                "{name}/{subject} event time"
            );
            compare_values(format, row, values, name);
        }
        let footer = &stream["footer"]["info"];
        assert_eq!(
            footer["sample_count"][0],
            expected.len().to_string().as_str()
        );
    }
}

/// One row: JSON Lines values (shortest text of the stream's format) against pyxdf's.
fn compare_values(format: &str, row: &Row, got: &Value, what: &str) {
    let got = got.as_array().unwrap();
    assert_eq!(row.values.len(), got.len(), "{what}: channel count");
    for ((value, text), g) in row.values.iter().zip(&row.texts).zip(got) {
        if format == "string" {
            assert_eq!(value, g, "{what}");
            continue;
        }
        let g = float(g);
        if text == "null" {
            assert!(!g.is_finite(), "{what}: null is NaN or infinite");
        } else if format == "float32" {
            assert_eq!(text.parse::<f32>().unwrap(), g as f32, "{what}");
        } else {
            assert_eq!(text.parse::<f64>().unwrap(), g, "{what}");
        }
    }
}

/// A full disk (here a file-size limit) stops the run with a clear error and a non-zero exit;
/// the file loads in pyxdf and holds a prefix of what an unlimited run writes.
#[test]
fn a_full_disk_stops_the_pipeline_and_keeps_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let text = SIMULATED
        .replace("duration_s = 30", "duration_s = 120")
        .replace(
            "[sinks.log]\nkind = \"jsonl\"\ninputs = [\"sim.eeg\", \"sim.eda\", \"sim.markers\", \"bands\", \"truth\"]\npath = \"log.jsonl\"\nlayout = \"array\"\n",
            "",
        );
    assert!(!text.contains("jsonl"));
    std::fs::write(dir.path().join("p.toml"), &text).unwrap();
    common::heloflow_ok(dir.path(), &["run", "p.toml", "--status", "off"]);
    let full = load(&dir.path().join(SIMULATED_XDF), &[]);
    std::fs::remove_file(dir.path().join(SIMULATED_XDF)).unwrap();

    let limit_kib = 400;
    let child = spawn_heloflow(
        dir.path(),
        &["run", "p.toml", "--status", "off"],
        "limited",
        Some(limit_kib),
    );
    let (status, _, stderr) = finish(child, dir.path(), "limited", Duration::from_secs(60));
    assert!(!status.success(), "the run must fail: {stderr}");
    assert!(stderr.contains("File too large"), "{stderr}");
    assert!(stderr.contains("every chunk complete"), "{stderr}");
    let path = dir.path().join(SIMULATED_XDF);
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(
        size <= limit_kib * 1024 && size > limit_kib * 1024 / 2,
        "{size} bytes kept"
    );
    let kept = load(&path, &[]);
    let mut kept_samples = 0;
    for stream in streams(&kept) {
        let whole = stream_with(&full, "source_id", field(stream, "source_id"));
        let n = stream["time_stamps"].as_array().unwrap().len();
        kept_samples += n;
        assert_eq!(
            stream["time_stamps"].as_array().unwrap()[..],
            whole["time_stamps"].as_array().unwrap()[..n]
        );
        assert_eq!(
            stream["time_series"].as_array().unwrap()[..],
            whole["time_series"].as_array().unwrap()[..n]
        );
    }
    assert!(kept_samples > 2_000, "{kept_samples} samples kept");
}

/// A path that cannot be written, or an existing file without `overwrite`, stops the run before
/// it starts, for root too; `overwrite = true` replaces the file.
#[test]
fn the_xdf_sink_refuses_paths_before_the_run_starts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("regular"), "a file").unwrap();
    for (path, message) in [
        ("regular/sub/x.xdf", "cannot create the directory"),
        ("/proc/heloflow-test/x.xdf", "cannot create the directory"),
        (
            "existing.xdf",
            "already exists and is left untouched; set overwrite = true",
        ),
    ] {
        std::fs::write(dir.path().join("existing.xdf"), "precious").unwrap();
        let text = format!(
            "[sources.sim]\nkind = \"simulator\"\nstreams = [\"eda\"]\nduration_s = 2\n\n[sinks.rec]\nkind = \"xdf\"\ninputs = [\"sim.eda\"]\npath = \"{path}\"\n"
        );
        std::fs::write(dir.path().join("p.toml"), text).unwrap();
        let output = common::heloflow(dir.path(), &["run", "p.toml", "--status", "off"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{path}: {stderr}");
        assert!(stderr.contains(message), "{path}: {stderr}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("existing.xdf")).unwrap(),
            "precious"
        );
    }
    let text = "[sources.sim]\nkind = \"simulator\"\nstreams = [\"eda\"]\nduration_s = 2\n\n[sinks.rec]\nkind = \"xdf\"\ninputs = [\"sim.eda\"]\npath = \"existing.xdf\"\noverwrite = true\n";
    std::fs::write(dir.path().join("p.toml"), text).unwrap();
    common::heloflow_ok(dir.path(), &["run", "p.toml", "--status", "off"]);
    let loaded = load(&dir.path().join("existing.xdf"), &[]);
    assert_eq!(streams(&loaded)[0]["count"], 8, "2 s of 4 Hz EDA");
}

/// `heloflow record` of the streams whose source_id starts with `tag:`, waiting up to 60 s for
/// `min_streams` of them, with `args` saying where to write (its output goes to `record.*`).
fn spawn_record(dir: &Path, tag: &str, min_streams: usize, args: &[&str]) -> Running {
    let predicate = format!("starts-with(source_id, '{tag}:')");
    let min_streams = min_streams.to_string();
    let mut all = vec![
        "record",
        "--predicate",
        &predicate,
        "--min-streams",
        &min_streams,
        "--timeout",
        "60",
    ];
    all.extend_from_slice(args);
    spawn_heloflow(dir, &all, "record", None)
}

/// Waits for the publisher script to push everything it was asked to, failing with its and the
/// recorder's messages otherwise.
fn wait_for_publisher(outlets: Running, dir: &Path) {
    let (published, _, outlet_err) = finish(outlets, dir, "outlets", Duration::from_secs(120));
    assert!(
        published.success(),
        "publisher: {outlet_err}\nrecord: {}",
        read(dir, "record.stderr")
    );
}

// --- heloflow record ----------------------------------------------------------------------------

const FORMATS: [&str; 7] = [
    "int8", "int16", "int32", "int64", "float32", "double64", "string",
];

/// pylsl outlets of every format -> `heloflow record` (BIDS-named file) -> pyxdf: every value and
/// timestamp is the one pushed (exactly without synchronisation, within the offset with it),
/// headers carry the full stream info, footers are there, clock offsets come about every 5 s.
#[test]
fn every_format_round_trips_through_record_into_pyxdf() {
    let _turn = lsl_turn();
    let dir = tempfile::tempdir().unwrap();
    let tag = prefix("fmt");
    let outlets = publisher(
        dir.path(),
        &["formats", &tag, "12", "pushed.json"],
        "outlets",
    );
    let record = spawn_record(
        dir.path(),
        &tag,
        7,
        &[
            "--bids-root",
            "study",
            "--subject",
            "P01",
            "--session",
            "S1",
            "--task",
            "formats",
            "--run",
            "2",
        ],
    );
    wait_for_publisher(outlets, dir.path());
    signal(&record, "INT");
    let (status, stdout, stderr) = finish(record, dir.path(), "record", Duration::from_secs(30));
    assert!(status.success(), "{stderr}");
    let path = dir
        .path()
        .join("study/sub-P01/ses-S1/eeg/sub-P01_ses-S1_task-formats_run-2_eeg.xdf");
    assert!(
        stdout.contains("sub-P01_ses-S1_task-formats_run-2_eeg.xdf"),
        "{stdout}"
    );
    assert_eq!(stdout.matches(" 0 dropped").count(), 7, "{stdout}");

    let pushed: Value =
        serde_json::from_str(&read(dir.path(), "pushed.json")).expect("what was pushed");
    let raw = load(&path, &[]);
    let synced = load(&path, &["--sync", "--dejitter"]);
    assert_eq!(streams(&raw).len(), 7);
    assert_eq!(
        raw["fileheader"]["info"]["heloflow"][0]["command"][0],
        "record"
    );
    for format in FORMATS {
        let sent = &pushed[format];
        let source_id = sent["source_id"].as_str().unwrap();
        let stream = stream_with(&raw, "source_id", source_id);
        assert_eq!(field(stream, "name"), sent["name"].as_str().unwrap());
        assert_eq!(field(stream, "channel_format"), format);
        assert_eq!(
            float(&stream["info"]["nominal_srate"][0]),
            sent["rate"].as_f64().unwrap()
        );
        assert_eq!(
            field(stream, "type"),
            if format == "string" { "Markers" } else { "EEG" }
        );
        let labels: Vec<&str> = desc(stream)["channels"][0]["channel"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["label"][0].as_str().unwrap())
            .collect();
        let sent_labels: Vec<&str> = sent["channels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        assert_eq!(labels, sent_labels, "{format}");
        assert_eq!(
            desc(stream)["channels"][0]["channel"][0]["unit"][0],
            "microvolts"
        );
        let acquisition = &desc(stream)["acquisition"][0];
        assert_eq!(acquisition["manufacturer"][0], "heloflow-tests");
        assert_eq!(acquisition["serial"][0], source_id);

        // Every value and every timestamp, exactly (repr texts of the same doubles).
        assert_eq!(stream["time_stamps"], sent["stamps"], "{format} timestamps");
        assert_eq!(stream["time_series"], sent["values"], "{format} values");
        let count = sent["stamps"].as_array().unwrap().len();
        assert!(
            count >= if format == "string" { 50 } else { 500 },
            "{format}: {count}"
        );

        let footer = &stream["footer"]["info"];
        assert_eq!(footer["sample_count"][0], count.to_string().as_str());
        let stamps = floats(&sent["stamps"]);
        assert_eq!(float(&footer["first_timestamp"][0]), stamps[0]);
        assert_eq!(float(&footer["last_timestamp"][0]), stamps[count - 1]);

        // One offset when the stream connects, then about every 5 s.
        let times = floats(&stream["clock_times"]);
        let values = floats(&stream["clock_values"]);
        assert!(times.len() >= 3, "{format}: {times:?}");
        assert!(
            times
                .windows(2)
                .all(|w| (4.0..7.0).contains(&(w[1] - w[0]))),
            "{format}: {times:?}"
        );
        assert!(values.iter().all(|v| v.abs() < 0.01), "{values:?}");
        let offsets = footer["clock_offsets"][0]["offset"].as_array().unwrap();
        assert_eq!(offsets.len(), times.len());

        // pyxdf's defaults (clock synchronisation, dejittering) move stamps by the offset only.
        let synced = floats(&stream_with(&synced, "source_id", source_id)["time_stamps"]);
        let worst = synced
            .iter()
            .zip(&stamps)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(
            worst < 1e-3,
            "{format}: synchronised stamps moved by {worst} s"
        );
    }
}

/// 64 channels at 2 kHz plus 20 other streams, pushed in real time for 10 s: every sample of
/// every stream is in the file (counts and SHA-256 of stamps and values equal what was pushed),
/// and SIGTERM ends the recording with footers.
#[test]
fn record_keeps_up_with_a_full_lab() {
    let _turn = lsl_turn();
    let dir = tempfile::tempdir().unwrap();
    let tag = prefix("lab");
    let outlets = publisher(
        dir.path(),
        &["throughput", &tag, "10", "pushed.json"],
        "outlets",
    );
    let record = spawn_record(dir.path(), &tag, 21, &["--out", "lab.xdf"]);
    wait_for_publisher(outlets, dir.path());
    // SIGTERM stops cleanly too (footers written).
    signal(&record, "TERM");
    let (status, stdout, stderr) = finish(record, dir.path(), "record", Duration::from_secs(60));
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout.matches(" 0 dropped").count(), 21, "{stdout}");
    let pushed: Value = serde_json::from_str(&read(dir.path(), "pushed.json")).unwrap();
    let loaded = load(&dir.path().join("lab.xdf"), &["--digest"]);
    assert_eq!(streams(&loaded).len(), 21);
    let mut total = 0;
    for (source_id, sent) in pushed.as_object().unwrap() {
        let stream = stream_with(&loaded, "source_id", source_id);
        assert_eq!(stream["count"], sent["count"], "{source_id}: samples");
        assert_eq!(
            stream["stamps_sha256"], sent["stamps_sha256"],
            "{source_id}: stamps"
        );
        assert_eq!(
            stream["values_sha256"], sent["values_sha256"],
            "{source_id}: values"
        );
        total += sent["count"].as_u64().unwrap();
    }
    assert!(total >= 77_000, "{total} samples");
}

/// One device publishing several streams under one source_id (muselsl's EEG, PPG and ACC):
/// every one of them is recorded, told apart by name and type.
#[test]
fn streams_sharing_a_source_id_are_all_recorded() {
    let _turn = lsl_turn();
    let dir = tempfile::tempdir().unwrap();
    let tag = prefix("dev");
    let outlets = publisher(dir.path(), &["device", &tag, "3"], "outlets");
    let record = spawn_record(dir.path(), &tag, 3, &["--out", "device.xdf"]);
    wait_for_publisher(outlets, dir.path());
    signal(&record, "INT");
    let (status, stdout, stderr) = finish(record, dir.path(), "record", Duration::from_secs(30));
    assert!(status.success(), "{stderr}");
    assert!(
        stdout.contains("recorded 3 stream(s)"),
        "{stdout}\n{stderr}"
    );
    let loaded = load(&dir.path().join("device.xdf"), &[]);
    let mut kinds: Vec<&str> = streams(&loaded).iter().map(|s| field(s, "type")).collect();
    kinds.sort();
    assert_eq!(kinds, ["ACC", "EEG", "PPG"]);
    for stream in streams(&loaded) {
        assert_eq!(field(stream, "source_id"), format!("{tag}:muse"));
        assert!(
            stream["count"].as_u64().unwrap() > 100,
            "{}",
            field(stream, "type")
        );
    }
}

/// A stream that appears during the recording is added; one whose outlet vanishes is reported,
/// and recorded again when it returns (same source_id); `--duration` ends the recording.
#[test]
fn record_adds_late_streams_and_recovers_vanished_ones() {
    let _turn = lsl_turn();
    let dir = tempfile::tempdir().unwrap();
    let tag = prefix("come");
    let outlets = publisher(dir.path(), &["comings", &tag, "pushed.json"], "outlets");
    let predicate = format!("starts-with(source_id, '{tag}:')");
    let record = spawn_heloflow(
        dir.path(),
        &[
            "record",
            "--predicate",
            &predicate,
            "--timeout",
            "60",
            "--duration",
            "17",
            "--out",
            "comings.xdf",
        ],
        "record",
        None,
    );
    let (published, _, outlet_err) =
        finish(outlets, dir.path(), "outlets", Duration::from_secs(120));
    assert!(
        published.success(),
        "{outlet_err}\n{}",
        read(dir.path(), "record.stderr")
    );
    let (status, stdout, stderr) = finish(record, dir.path(), "record", Duration::from_secs(60));
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("new stream \"{tag}-b\"")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("stream {tag}:a vanished")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("stream {tag}:a is back")),
        "{stderr}"
    );
    assert!(stdout.contains("recorded 2 stream(s)"), "{stdout}");
    let pushed: Value = serde_json::from_str(&read(dir.path(), "pushed.json")).unwrap();
    let loaded = load(&dir.path().join("comings.xdf"), &[]);
    for (source_id, sent) in pushed.as_object().unwrap() {
        let stream = stream_with(&loaded, "source_id", source_id);
        let sent = sent.as_array().unwrap();
        let stamps = stream["time_stamps"].as_array().unwrap();
        let values = stream["time_series"].as_array().unwrap();
        let missing = sent.iter().find(|s| !stamps.contains(&s[0]));
        assert!(
            missing.is_none(),
            "{source_id}: pushed sample {missing:?} is missing"
        );
        assert_eq!(stamps.len(), sent.len(), "{source_id}: samples");
        for (i, want) in sent.iter().enumerate() {
            assert_eq!(
                (&stamps[i], &values[i]),
                (&want[0], &want[1]),
                "{source_id}: sample {i}"
            );
        }
    }
    assert_eq!(
        pushed[format!("{tag}:a")].as_array().unwrap().len(),
        600,
        "both lives of `a`"
    );
}

/// The plan `outlets.py stream` publishes: start stamp, marker interval, rate per source_id.
struct StreamPlan {
    start: f64,
    rates: Vec<(String, f64)>,
}

fn stream_plan(dir: &Path) -> StreamPlan {
    let path = dir.join("plan.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(Instant::now() < deadline, "the publisher wrote no plan");
        std::thread::sleep(Duration::from_millis(50));
    }
    let plan: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let marker_rate = 1.0 / plan["marker_every"].as_f64().unwrap();
    StreamPlan {
        start: float(&plan["start"]),
        rates: plan["streams"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(id, rate)| {
                let rate = rate.as_f64().unwrap();
                (id.clone(), if rate > 0.0 { rate } else { marker_rate })
            })
            .collect(),
    }
}

/// Checks a file left by a kill at local clock `killed`: each stream's stamps are consecutive
/// samples of what was pushed (within `tolerance` s), and none pushed more than 1 s before the
/// kill is missing. Returns how many streams had samples.
fn check_killed_file(path: &Path, plan: &StreamPlan, killed: f64, tolerance: f64) -> usize {
    let loaded = load(path, &[]);
    let mut with_samples = 0;
    for stream in streams(&loaded) {
        let source_id = desc_source_id(stream);
        let Some((_, rate)) = plan.rates.iter().find(|(id, _)| *id == source_id) else {
            panic!("unexpected stream {source_id}");
        };
        let stamps = floats(&stream["time_stamps"]);
        let Some(&first) = stamps.first() else {
            continue;
        };
        with_samples += 1;
        let index0 = ((first - plan.start) * rate).round();
        for (i, stamp) in stamps.iter().enumerate() {
            let want = plan.start + (index0 + i as f64) / rate;
            assert!(
                (stamp - want).abs() <= tolerance,
                "{source_id}: sample {i} at {stamp}, pushed at {want}"
            );
        }
        eprintln!(
            "{}: {source_id}: {} samples, the last {:.3} s before the kill",
            path.display(),
            stamps.len(),
            killed - stamps.last().unwrap()
        );
        let due = ((killed - 1.0 - plan.start) * rate).floor();
        let last_due = plan.start + due / rate;
        if first < last_due {
            let last = *stamps.last().unwrap();
            assert!(
                last >= last_due - tolerance,
                "{source_id}: the file ends at {last}, but the kill came at {killed}: {:.3} s lost",
                killed - last
            );
        }
    }
    with_samples
}

/// `heloflow xdf repair` completes a killed recording: the repaired copy loads in pyxdf with a
/// footer for every stream that counts its samples, and holds exactly the samples pyxdf loaded
/// from the killed file; repairing it again changes nothing.
fn check_repair(dir: &Path, path: &Path) {
    let repaired = path.with_extension("repaired.xdf");
    let output = Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .current_dir(dir)
        .arg("xdf")
        .arg("repair")
        .arg(path)
        .arg("--out")
        .arg(&repaired)
        .output()
        .expect("heloflow runs");
    assert!(
        output.status.success(),
        "repair of {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let killed = load(path, &["--digest"]);
    let complete = load(&repaired, &["--digest"]);
    assert_eq!(streams(&killed).len(), streams(&complete).len());
    for (before, after) in streams(&killed).iter().zip(streams(&complete)) {
        let name = field(after, "name");
        for key in ["count", "stamps_sha256", "values_sha256"] {
            assert_eq!(
                before[key], after[key],
                "{name}: {key} changed by the repair"
            );
        }
        let footer_count = after["footer"]["info"]["sample_count"][0]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no footer after the repair"));
        assert_eq!(
            footer_count.parse::<u64>().unwrap(),
            after["count"].as_u64().unwrap(),
            "{name}: footer sample count"
        );
    }
    let again = Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .args(["xdf", "repair"])
        .arg(&repaired)
        .output()
        .expect("heloflow runs");
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(text.contains("already complete"), "{text}");
}

/// The sender's source_id of a loaded stream.
fn desc_source_id(stream: &Value) -> String {
    field(stream, "source_id").to_string()
}

/// `heloflow record` killed with SIGKILL at five moments (one before any stream connected):
/// every file loads in pyxdf and lacks at most the last second of what the outlets pushed, and
/// `heloflow xdf repair` completes each one.
#[test]
fn record_killed_at_any_moment_leaves_a_loadable_file() {
    let _turn = lsl_turn();
    let dir = tempfile::tempdir().unwrap();
    let tag = prefix("kill");
    let outlets = publisher(dir.path(), &["stream", &tag, "plan.json"], "outlets");
    let plan = stream_plan(dir.path());
    let predicate = format!("starts-with(source_id, '{tag}:')");
    let mut recorded = 0;
    for (attempt, delay) in [(0, 0.05), (1, 0.4), (2, 1.3), (3, 2.2), (4, 3.7)] {
        let name = format!("kill{attempt}.xdf");
        let record = spawn_heloflow(
            dir.path(),
            &[
                "record",
                "--predicate",
                &predicate,
                "--min-streams",
                "3",
                "--timeout",
                "60",
                "--out",
                &name,
            ],
            &format!("record{attempt}"),
            None,
        );
        if attempt > 0 {
            assert!(
                wait_for_text(
                    dir.path(),
                    &format!("record{attempt}"),
                    "recording 3 stream(s)",
                    1,
                    Duration::from_secs(60)
                ),
                "{}",
                read(dir.path(), &format!("record{attempt}.stderr"))
            );
        }
        std::thread::sleep(Duration::from_secs_f64(delay));
        let killed = lsl::local_clock();
        signal(&record, "KILL");
        let _ = finish(
            record,
            dir.path(),
            &format!("record{attempt}"),
            Duration::from_secs(10),
        );
        let path = dir.path().join(&name);
        if path.exists() {
            if check_killed_file(&path, &plan, killed, 0.0) == 3 {
                recorded += 1;
            }
            check_repair(dir.path(), &path);
        } else {
            assert_eq!(attempt, 0, "no file after {delay} s of recording");
        }
    }
    drop(outlets);
    assert!(
        recorded >= 4,
        "only {recorded} of the killed recordings held samples"
    );
}

/// A full disk (a file-size limit) stops `heloflow record` with a clear error and a non-zero
/// exit; the file loads in pyxdf with consecutive samples up to the limit.
#[test]
fn a_full_disk_stops_record_and_keeps_what_was_written() {
    let _turn = lsl_turn();
    let dir = tempfile::tempdir().unwrap();
    let tag = prefix("full");
    let outlets = publisher(dir.path(), &["stream", &tag, "plan.json"], "outlets");
    let plan = stream_plan(dir.path());
    let predicate = format!("starts-with(source_id, '{tag}:')");
    let limit_kib = 300;
    let record = spawn_heloflow(
        dir.path(),
        &[
            "record",
            "--predicate",
            &predicate,
            "--min-streams",
            "3",
            "--timeout",
            "60",
            "--out",
            "full.xdf",
        ],
        "record",
        Some(limit_kib),
    );
    let (status, _, stderr) = finish(record, dir.path(), "record", Duration::from_secs(120));
    drop(outlets);
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("File too large"), "{stderr}");
    assert!(stderr.contains("every chunk complete"), "{stderr}");
    let path = dir.path().join("full.xdf");
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(
        size <= limit_kib * 1024 && size > limit_kib * 1024 / 2,
        "{size} bytes"
    );
    // Consecutive samples; the end is where the disk filled, not a kill (no loss bound).
    assert_eq!(check_killed_file(&path, &plan, f64::NEG_INFINITY, 0.0), 3);
}

/// Before anything is recorded: a path under a regular file, one under /proc (refused for root
/// too) and an existing file without --overwrite are refused at once, leaving files untouched.
#[test]
fn record_refuses_paths_before_recording_starts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("regular"), "a file").unwrap();
    std::fs::write(dir.path().join("existing.xdf"), "precious").unwrap();
    for (path, message) in [
        ("regular/sub/x.xdf", "cannot create the directory"),
        ("/proc/heloflow-test/x.xdf", "cannot create the directory"),
        (
            "existing.xdf",
            "already exists and is left untouched; pass --overwrite",
        ),
    ] {
        let started = Instant::now();
        let output = Command::new(env!("CARGO_BIN_EXE_heloflow"))
            .args([
                "record",
                "--type",
                "NoSuchType",
                "--timeout",
                "60",
                "--out",
                path,
            ])
            .current_dir(dir.path())
            .env("LSLAPICFG", common::lsl_config())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{path}: {stderr}");
        assert!(stderr.contains(message), "{path}: {stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{path}: it waited for streams first"
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("existing.xdf")).unwrap(),
        "precious"
    );
    for bad in [
        vec!["--duration", "nan"],
        vec!["--duration", "-1"],
        vec!["--timeout", "inf"],
        vec!["--subject", "P01"],
    ] {
        let mut args = vec!["record", "--out", "x.xdf"];
        args.extend(bad.iter().copied());
        let output = common::heloflow(dir.path(), &args);
        assert!(!output.status.success(), "{bad:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("error"),
            "{bad:?}"
        );
    }
    assert!(!dir.path().join("x.xdf").exists());
}

// --- The xdf sink of live pipelines ----------------------------------------------------------

/// A pipeline recording the `stream` publisher's outlets (`{tag}:eeg`, `:acc`, `:markers`).
fn live_pipeline(tag: &str) -> String {
    format!(
        r#"
[pipeline]
name = "xdf-live"

[sources.eeg]
kind = "lsl"
type = "EEG"
predicate = "starts-with(source_id, '{tag}:')"
channels = 16
rate = 500
format = "float32"
timeout_s = 60

[sources.acc]
kind = "lsl"
type = "ACC"
predicate = "starts-with(source_id, '{tag}:')"
channels = 4
rate = 100
format = "int16"
timeout_s = 60

[sources.stim]
kind = "lsl"
type = "Markers"
predicate = "starts-with(source_id, '{tag}:')"
lateness_s = 0.2
timeout_s = 60

[sinks.rec]
kind = "xdf"
inputs = ["eeg.eeg", "acc.accel", "stim.markers"]
path = "live.xdf"
overwrite = true
"#
    )
}

/// A pipeline with an xdf sink killed with SIGKILL at five moments: every file loads in pyxdf,
/// holds consecutive samples with the senders' stamps, lacks at most the last second, and
/// `heloflow xdf repair` completes it.
#[test]
fn a_pipeline_killed_at_any_moment_leaves_a_loadable_file() {
    let _turn = lsl_turn();
    let dir = tempfile::tempdir().unwrap();
    let tag = prefix("pipekill");
    let outlets = publisher(dir.path(), &["stream", &tag, "plan.json"], "outlets");
    let plan = stream_plan(dir.path());
    std::fs::write(dir.path().join("p.toml"), live_pipeline(&tag)).unwrap();
    let mut recorded = 0;
    for (attempt, delay) in [0.3, 1.1, 1.9, 3.2, 4.5].into_iter().enumerate() {
        let run_tag = format!("run{attempt}");
        let run = spawn_heloflow(
            dir.path(),
            &["run", "p.toml", "--status", "off"],
            &run_tag,
            None,
        );
        assert!(
            wait_for_text(dir.path(), &run_tag, " <- ", 3, Duration::from_secs(60)),
            "{}",
            read(dir.path(), &format!("{run_tag}.stderr"))
        );
        std::thread::sleep(Duration::from_secs_f64(delay));
        let killed = lsl::local_clock();
        signal(&run, "KILL");
        let _ = finish(run, dir.path(), &run_tag, Duration::from_secs(10));
        let copy = dir.path().join(format!("killed{attempt}.xdf"));
        std::fs::copy(dir.path().join("live.xdf"), &copy).unwrap();
        // Stamps are the senders' own, recovered from nanosecond event times.
        if check_killed_file(&copy, &plan, killed, 1e-6) == 3 {
            recorded += 1;
        }
        check_repair(dir.path(), &copy);
    }
    drop(outlets);
    assert!(
        recorded >= 4,
        "only {recorded} of the killed runs recorded every stream"
    );
}

/// The HeLo pipeline over `heloflow simulate --lsl` streams, with an xdf sink recording the raw
/// LSL inputs, the markers and the emotion output next to a jsonl sink of the same streams:
/// pyxdf's values equal the rows; without synchronisation stamps plus the applied offsets equal
/// the event times exactly, with it they are within the spread of the measured clock offsets
/// (tens of microseconds on one machine); the file header holds
/// the pipeline, the model's SHA-256 and heloflow's version; only the model stream has
/// `desc/model`.
#[test]
fn a_helo_pipeline_records_raw_inputs_markers_and_emotions() {
    let _turn = lsl_turn();
    let dir = tempfile::tempdir().unwrap();
    let seed = (std::process::id() % 90_000 + 10_000).to_string();
    let simulate = spawn_heloflow(
        dir.path(),
        &[
            "simulate",
            "--lsl",
            "--subjects",
            "1",
            "--streams",
            "eeg,eda,ppg,face,markers",
            "--seed",
            &seed,
            "--duration",
            "0",
            "--status",
            "off",
        ],
        "simulate",
        None,
    );
    let stim_tag = prefix("stim");
    let stim = publisher(dir.path(), &["markers", &stim_tag, "S01"], "stim");
    let manifest_path = common::root().join(heloflow::operators::DEFAULT_HELO_MANIFEST);
    let prefix = format!("heloflow-sim:seed{seed}:");
    let pipeline = format!(
        r#"
[pipeline]
name = "xdf-helo"

[sources.amp]
kind = "lsl"
type = "EEG"
predicate = "starts-with(source_id, '{prefix}')"
channels = ["Fp1", "Fp2", "Fz", "F3", "F4", "F7", "F8", "Cz", "C3", "C4", "T3", "T4", "T5", "T6", "P3", "P4", "O1", "O2"]
rate = 300
subject_from = "desc:subject"
timeout_s = 60

[sources.face]
kind = "lsl"
type = "FaceAU"
predicate = "starts-with(source_id, '{prefix}')"
channels = ["AU01_r", "AU02_r", "AU04_r", "AU05_r", "AU06_r", "AU07_r", "AU09_r", "AU10_r", "AU12_r", "AU14_r", "AU15_r", "AU17_r", "AU20_r", "AU23_r", "AU25_r", "AU26_r", "AU45_r", "confidence", "success"]
rate = 30
subject_from = "desc:subject"
timeout_s = 60

[sources.wrist]
kind = "lsl"
predicate = "type='GSR' and starts-with(source_id, '{prefix}')"
modality = "eda"
channels = ["EDA"]
rate = 4
subject_from = "desc:subject"
timeout_s = 60

[sources.pulse]
kind = "lsl"
type = "PPG"
predicate = "starts-with(source_id, '{prefix}')"
channels = ["PPG"]
rate = 100
subject_from = "desc:subject"
timeout_s = 60

[sources.stim]
kind = "lsl"
type = "Markers"
predicate = "starts-with(source_id, '{stim_tag}:')"
subject_from = "desc:subject"
timeout_s = 60

[operators.eeg_de]
kind = "eeg_de"
inputs = ["amp.eeg"]

[operators.gsr_features]
kind = "gsr_features"
inputs = ["wrist.eda"]

[operators.ppg_features]
kind = "ppg_features"
inputs = ["pulse.ppg"]

[operators.face_features]
kind = "face_features"
inputs = ["face.face"]

[operators.emotion]
kind = "helo"
inputs = ["eeg_de", "gsr_features", "ppg_features", "face_features"]

[sinks.session]
kind = "xdf"
inputs = ["amp.eeg", "wrist.eda", "stim.markers", "emotion"]
path = "recordings/session.xdf"

[sinks.log]
kind = "jsonl"
inputs = ["amp.eeg", "wrist.eda", "stim.markers", "emotion"]
path = "session.jsonl"
layout = "array"
"#
    );
    std::fs::write(dir.path().join("p.toml"), &pipeline).unwrap();
    let run = spawn_heloflow(
        dir.path(),
        &["run", "p.toml", "--status", "off"],
        "run",
        None,
    );
    assert!(
        wait_for_text(dir.path(), "run", " <- ", 5, Duration::from_secs(60)),
        "{}",
        read(dir.path(), "run.stderr")
    );
    std::thread::sleep(Duration::from_secs(14));
    signal(&run, "INT");
    let (status, _, stderr) = finish(run, dir.path(), "run", Duration::from_secs(30));
    signal(&simulate, "INT");
    let _ = finish(simulate, dir.path(), "simulate", Duration::from_secs(30));
    drop(stim);
    assert!(status.success(), "{stderr}");

    let path = dir.path().join("recordings/session.xdf");
    let rows = jsonl(&dir.path().join("session.jsonl"));
    let raw = load(&path, &[]);
    let synced = load(&path, &["--sync"]);
    let defaults = load(&path, &["--sync", "--dejitter"]);

    // Provenance.
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let heloflow = &raw["fileheader"]["info"]["heloflow"][0];
    assert_eq!(heloflow["version"][0], env!("CARGO_PKG_VERSION"));
    assert_eq!(heloflow["pipeline"][0]["name"][0], "xdf-helo");
    assert_eq!(heloflow["pipeline"][0]["text"][0], pipeline.as_str());
    let model = &heloflow["models"][0]["model"][0];
    assert_eq!(model["sha256"][0], manifest["sha256"]);
    assert_eq!(model["name"][0], manifest["name"]);
    assert_eq!(model["version"][0], manifest["version"]);

    let mut worst_synced = 0.0f64;
    for stream_name in ["amp.eeg", "wrist.eda", "stim.markers", "emotion"] {
        let stream = streams(&raw)
            .iter()
            .find(|s| desc(s)["heloflow"][0]["stream"][0] == stream_name)
            .unwrap_or_else(|| panic!("no {stream_name} stream"));
        assert_eq!(desc(stream)["subject"][0], "S01");
        assert_eq!(desc(stream)["heloflow"][0]["pipeline"][0], "xdf-helo");
        let expected: Vec<&Row> = rows.iter().filter(|r| r.stream == stream_name).collect();
        assert!(!expected.is_empty(), "{stream_name}: no rows");
        let stamps = floats(&stream["time_stamps"]);
        assert_eq!(stamps.len(), expected.len(), "{stream_name}: samples");
        let format = field(stream, "channel_format");
        for (row, values) in expected
            .iter()
            .zip(stream["time_series"].as_array().unwrap())
        {
            compare_values(format, row, values, stream_name);
        }
        let offsets = floats(&stream["clock_values"]);
        let source_id = field(stream, "source_id");
        let synced_stamps = floats(&stream_with(&synced, "source_id", source_id)["time_stamps"]);
        let default_stamps = floats(&stream_with(&defaults, "source_id", source_id)["time_stamps"]);
        if stream_name == "emotion" {
            // A model output: heloflow's identity, event times, no offsets, desc/model.
            assert_eq!(source_id, "heloflow:xdf-helo:emotion:S01");
            assert!(offsets.is_empty());
            for (row, stamp) in expected.iter().zip(&stamps) {
                assert_eq!(secs_to_nanos(*stamp), row.time, "emotion event time");
            }
            assert_eq!(synced_stamps, stamps);
            let model = &desc(stream)["model"][0];
            assert_eq!(model["sha256"][0], manifest["sha256"]);
            let labels: Vec<&Value> = model["labels"][0]["label"]
                .as_array()
                .unwrap()
                .iter()
                .collect();
            assert_eq!(labels.len(), manifest["labels"].as_array().unwrap().len());
            assert_eq!(
                float(&model["hop_s"][0]),
                manifest["hop_s"].as_f64().unwrap()
            );
            continue;
        }
        // A raw input: the sender's identity and desc are kept, it has no desc/model.
        assert!(
            source_id.starts_with(&prefix) || source_id.starts_with(&stim_tag),
            "{source_id}"
        );
        assert!(
            desc(stream).get("model").is_none(),
            "{stream_name} has desc/model"
        );
        assert!(offsets.len() >= 2, "{stream_name}: offsets {offsets:?}");
        let times = floats(&stream["clock_times"]);
        assert!(
            times
                .windows(2)
                .all(|w| (4.0..7.0).contains(&(w[1] - w[0]))),
            "{times:?}"
        );
        // Without synchronisation: stamp + the offset in force (one of the file's) = event
        // time, exactly, the offsets used in the order they were measured.
        let mut in_force = 0;
        for (row, stamp) in expected.iter().zip(&stamps) {
            let found = (in_force..offsets.len())
                .find(|&i| secs_to_nanos(stamp + offsets[i]) == row.time)
                .unwrap_or_else(|| {
                    panic!(
                        "{stream_name}: no offset makes {stamp} the event time {}",
                        row.time
                    )
                });
            in_force = found;
        }
        // pyxdf's synchronisation (a line fitted through the offsets) reproduces the event times
        // (stamps plus the offset last measured) to within the spread of the measurements.
        let spread = offsets.iter().copied().fold(f64::MIN, f64::max)
            - offsets.iter().copied().fold(f64::MAX, f64::min);
        for (row, stamp) in expected.iter().zip(&synced_stamps) {
            let error = (stamp - row.time as f64 / 1e9).abs();
            assert!(
                error <= spread + 2e-6,
                "{stream_name}: synchronised stamp off by {error} s, offsets spread {spread} s"
            );
            worst_synced = worst_synced.max(error);
        }
        for (row, stamp) in expected.iter().zip(&default_stamps) {
            assert!(
                (stamp - row.time as f64 / 1e9).abs() < 1e-3,
                "{stream_name}: dejittered"
            );
        }
    }
    eprintln!("synchronised stamps differ from event times by at most {worst_synced:e} s");
    assert!(
        worst_synced < 1e-3,
        "synchronised stamps off by {worst_synced} s"
    );
}
