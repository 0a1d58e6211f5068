//! End-to-end runs of the shipped pipeline files through the real binary.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{heloflow, heloflow_ok, parse_jsonl, pipeline, root};

#[path = "../benches/common/workload.rs"]
mod workload;

const RATES: [(&str, f64); 10] = [
    ("sim.eeg", 300.0),
    ("sim.ecg", 700.0),
    ("sim.eda", 4.0),
    ("sim.eda_700", 700.0),
    ("sim.ppg", 100.0),
    ("sim.resp", 50.0),
    ("sim.temp", 4.0),
    ("sim.accel", 32.0),
    ("sim.face", 30.0),
    ("sim.emotion", 10.0),
];

#[test]
fn recorded_streams_have_the_right_sample_counts_and_monotonic_time() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline("record-simulated.toml");
    heloflow_ok(
        dir.path(),
        &["run", file.to_str().unwrap(), "--status", "off"],
    );
    let text = fs::read_to_string(dir.path().join("out/simulated.jsonl")).unwrap();
    let rows = parse_jsonl(&text);

    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut last_time: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut previous_time = f64::NEG_INFINITY;
    for row in &rows {
        let key = (row.stream.clone(), row.subject.clone());
        *counts.entry(key.clone()).or_default() += 1;
        if let Some(last) = last_time.insert(key.clone(), row.time) {
            assert!(
                row.time > last,
                "time went back in {key:?}: {last} then {}",
                row.time
            );
        }
        assert!(
            row.time >= previous_time,
            "the file is not in event-time order"
        );
        previous_time = row.time;
        assert!((0.0..30.0).contains(&row.time));
    }
    for subject in ["S01", "S02"] {
        for (stream, rate) in RATES {
            let count = counts[&(stream.to_string(), subject.to_string())];
            assert_eq!(count, (rate * 30.0) as usize, "{stream} of {subject}");
        }
        let markers = counts
            .get(&("sim.markers".to_string(), subject.to_string()))
            .copied()
            .unwrap_or(0);
        assert!(markers >= 1, "no markers for {subject}");
    }
    // Channel counts follow the schemas.
    let eeg = rows.iter().find(|r| r.stream == "sim.eeg").unwrap();
    assert_eq!(eeg.values.as_array().unwrap().len(), 18);
    let face = rows.iter().find(|r| r.stream == "sim.face").unwrap();
    assert_eq!(face.values.as_array().unwrap().len(), 19);

    let csv = fs::read_to_string(dir.path().join("out/emotion.csv")).unwrap();
    let mut lines = csv.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("timestamp,subject,neutral,amusement,joy"));
    assert_eq!(lines.count(), 2 * 300);
}

#[test]
fn same_seed_gives_byte_identical_output_and_another_seed_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let run = |seed: &str, name: &str| {
        let out = dir.path().join(name);
        heloflow_ok(
            dir.path(),
            &[
                "simulate",
                "--subjects",
                "2",
                "--duration",
                "5",
                "--seed",
                seed,
                "--out",
                out.to_str().unwrap(),
                "--status",
                "off",
            ],
        );
        fs::read(out).unwrap()
    };
    let first = run("11", "a.jsonl");
    let second = run("11", "b.jsonl");
    let other = run("12", "c.jsonl");
    assert!(first.len() > 100_000);
    assert!(first == second, "same seed, different bytes");
    assert!(first != other, "different seeds, same bytes");
}

#[test]
fn worker_count_does_not_change_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline("features.toml");
    let mut outputs = Vec::new();
    for workers in ["1", "2", "3"] {
        heloflow_ok(
            dir.path(),
            &[
                "run",
                file.to_str().unwrap(),
                "-w",
                workers,
                "--status",
                "off",
            ],
        );
        outputs.push(fs::read(dir.path().join("out/features.jsonl")).unwrap());
    }
    assert!(outputs[0] == outputs[1], "-w 1 and -w 2 differ");
    assert!(outputs[0] == outputs[2], "-w 1 and -w 3 differ");

    let rows = parse_jsonl(&String::from_utf8(outputs[0].clone()).unwrap());
    let subjects: std::collections::BTreeSet<_> = rows.iter().map(|r| r.subject.clone()).collect();
    assert_eq!(subjects.len(), 3);
    // One emotion distribution per subject per second (windows end at 1..=60 s), each summing to 1.
    let emotion: Vec<_> = rows.iter().filter(|r| r.stream == "emotion").collect();
    assert_eq!(emotion.len(), 3 * 60);
    for row in emotion {
        let total: f64 = row
            .values
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_f64().unwrap())
            .sum();
        assert!((total - 1.0).abs() < 1e-6, "distribution sums to {total}");
    }
    // Band power: 18 channels x 5 bands + coverage, full coverage for every window.
    let bands: Vec<_> = rows.iter().filter(|r| r.stream == "eeg_bands").collect();
    assert_eq!(bands.len(), 3 * 60);
    for row in &bands {
        let values = row.values.as_object().unwrap();
        assert_eq!(values.len(), 91);
        assert_eq!(values["coverage"].as_f64(), Some(1.0));
        assert!(values["O1_alpha"].as_f64().unwrap() > 0.0);
    }
    // EDA windows of 5 s start once the first 5 s of data exist: ends at 5..=60 s.
    assert_eq!(
        rows.iter().filter(|r| r.stream == "eda_stats").count(),
        3 * 56
    );
}

#[test]
fn shipped_pipelines_validate_and_draw() {
    let dir = tempfile::tempdir().unwrap();
    // pipelines/session-replay.toml reads the recording the README's session walkthrough makes
    // (`heloflow record --bids-root data --subject P01 ...`): a short one stands in for it.
    let record = r#"
[sources.sim]
kind = "simulator"
streams = ["eeg", "eda", "ppg", "face", "markers"]
duration_s = 3

[sinks.session]
kind = "xdf"
inputs = ["sim.eeg", "sim.eda", "sim.ppg", "sim.face", "sim.markers"]
bids = { root = "data", subject = "P01", session = "1", task = "film", run = 1 }
"#;
    fs::write(dir.path().join("record.toml"), record).unwrap();
    heloflow_ok(dir.path(), &["run", "record.toml", "--status", "off"]);
    // pipelines/systole-task1.toml reads the CSV fixtures/physio/systole_task1_csv.py writes from
    // the GPL-3.0 recording (never committed): a few rows in its columns stand in for it.
    let systole = dir.path().join("target/recordings");
    fs::create_dir_all(&systole).unwrap();
    fs::write(
        systole.join("systole-task1.csv"),
        "time,ECG,EDA,RSP,stim\n0,0.1,5.2,0.3,1\n0.001,0.1,5.2,0.3,\n0.002,0.1,5.2,0.3,2\n",
    )
    .unwrap();
    // pipelines/common-workload.toml reads the file `cargo bench --bench common_workload` writes.
    let workload = dir.path().join("target/common-workload");
    fs::create_dir_all(&workload).unwrap();
    workload::write_xdf(&[0.5; 700 * workload::CHANNELS], &workload.join("data.xdf"));
    let mut files: Vec<_> = fs::read_dir(root().join("pipelines"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3);
    let mut args = vec!["validate".to_string()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = heloflow_ok(dir.path(), &args);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.matches(": ok (").count(), files.len(), "{stdout}");

    let output = heloflow_ok(
        dir.path(),
        &["graph", pipeline("demo.toml").to_str().unwrap()],
    );
    let dot = String::from_utf8(output.stdout).unwrap();
    assert!(dot.starts_with("digraph \"demo\" {"));
    assert!(
        dot.contains("\"source:sim\" -> \"operator:eeg_de\" [label=\"sim.eeg\\n18 ch, 300 Hz\"]"),
        "{dot}"
    );
    assert!(
        dot.contains("\"operator:eeg_de\" -> \"operator:helo\" [label=\"eeg_de\\n94 ch, 1 Hz\"]"),
        "{dot}"
    );
    assert!(
        dot.contains("\"operator:helo\" -> \"sink:live\" [label=\"helo\\n10 ch, 1 Hz\"]"),
        "{dot}"
    );
}

/// The common workload of BENCHMARKS.md through `pipelines/common-workload.toml` gives the check
/// values ezmsg, Timeflux and numpy/scipy give (scipy's sosfilt with zi, welch, numpy's std).
#[test]
fn the_common_workload_gives_the_peers_check_values() {
    let dir = tempfile::tempdir().unwrap();
    let workload = dir.path().join("target/common-workload");
    fs::create_dir_all(&workload).unwrap();
    let data = workload.join("data.f32");
    let status = Command::new("python3")
        .arg(root().join("benches/common_workload/data.py"))
        .arg("--out")
        .arg(&data)
        .status()
        .expect("python3 with numpy is on PATH (./scripts/test puts .venv/bin first)");
    assert!(status.success(), "data.py failed");
    workload::write_xdf(&workload::read_f32(&data), &workload.join("data.xdf"));
    let file = pipeline("common-workload.toml");
    heloflow_ok(
        dir.path(),
        &["run", file.to_str().unwrap(), "--status", "off"],
    );
    let (last, all) = workload::check_values(&workload.join("heloflow-features.jsonl"));
    assert!(
        (last - workload::LAST_WINDOW_SUM).abs() < 5e-7,
        "last window: {last:.6}"
    );
    assert!(
        (all - workload::ALL_WINDOWS_SUM).abs() < 5e-7,
        "all windows: {all:.6}"
    );
}

#[test]
fn simulate_writes_csv_files_per_stream() {
    let dir = tempfile::tempdir().unwrap();
    heloflow_ok(
        dir.path(),
        &[
            "simulate",
            "--format",
            "csv",
            "--out",
            "csv",
            "--duration",
            "3",
            "--streams",
            "ecg,emotion,markers",
            "--status",
            "off",
        ],
    );
    let ecg = fs::read_to_string(dir.path().join("csv/ecg.csv")).unwrap();
    assert!(ecg.starts_with("timestamp,subject,ECG\n"));
    assert_eq!(ecg.lines().count(), 1 + 3 * 700);
    assert!(dir.path().join("csv/markers.csv").exists());
    let failed = heloflow(dir.path(), &["simulate", "--streams", "ecg,gsr"]);
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("no stream \"gsr\""));
}

#[test]
fn interrupt_drains_and_flushes_every_sink() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("live.toml");
    fs::write(
        &file,
        "[sources.sim]\nkind = \"simulator\"\nrealtime = true\nstreams = [\"ecg\", \"emotion\"]\n\n\
         [operators.emotion]\nkind = \"window_stats\"\ninputs = [\"sim.emotion\"]\nstats = [\"mean\"]\nwindow_s = 0.5\nhop_s = 0.5\n\n\
         [sinks.ecg]\nkind = \"csv\"\ninputs = [\"sim.ecg\"]\npath = \"ecg.csv\"\n\n\
         [sinks.emotion_out]\nkind = \"jsonl\"\ninputs = [\"emotion\"]\npath = \"emotion.jsonl\"\n",
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .args(["run", file.to_str().unwrap(), "--status", "off"])
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "drain took too long"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("draining the pipeline"), "{stderr}");

    let ecg = fs::read_to_string(dir.path().join("ecg.csv")).unwrap();
    let samples = ecg.lines().count() - 1;
    assert!(samples >= 700, "only {samples} ECG samples after 2.5 s");
    assert!(ecg.ends_with('\n'), "last CSV row cut off");
    // Every sample the source produced reached the file: 100 ms chunks of 70 samples each.
    assert_eq!(samples % 70, 0, "a partial chunk was lost: {samples}");
    let emotion = fs::read_to_string(dir.path().join("emotion.jsonl")).unwrap();
    let rows = parse_jsonl(&emotion);
    assert!(rows.len() >= 4, "{} emotion rows", rows.len());
}
