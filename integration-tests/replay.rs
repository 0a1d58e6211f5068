//! `heloflow replay` against a real pylsl client: a LabRecorder recording republished with its
//! metadata, every sample in order, paced at the speed asked for. Loopback LSL only.

mod common;
#[path = "xdf/pyxdf.rs"]
mod pyxdf;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Loopback only, with a wide port range so other tests' outlets cannot crowd these out.
fn example() -> PathBuf {
    common::root().join("fixtures/xdf/clock_resets.xdf")
}

#[test]
fn a_recording_replays_to_pylsl_with_its_metadata_every_sample_and_its_pacing() {
    pyxdf::require_pyxdf();
    let recorded = pyxdf::load(&example(), &["--dejitter-timestamps", "false"]);
    let stream = |name: &str| -> Value {
        recorded["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["info"]["name"] == name)
            .unwrap()
            .clone()
    };
    let (eeg, markers) = (stream("BioSemi"), stream("MyMarkerStream"));
    let eeg_count = eeg["time_stamps"].as_array().unwrap().len();
    let marker_count = markers["time_stamps"].as_array().unwrap().len();

    let client = Command::new("python3")
        .arg(common::root().join("integration-tests/xdf/replay_client.py"))
        .args([
            format!("EEG:{eeg_count}"),
            format!("Markers:{marker_count}"),
            "--timeout".to_string(),
            "90".to_string(),
        ])
        .env("LSLAPICFG", common::lsl_config())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 with pylsl (./scripts/test puts .venv first on PATH)");
    let speed = 100.0;
    let started = Instant::now();
    let replay = Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .args(["replay"])
        .arg(example())
        .args(["--speed", "100", "--wait-for-consumers", "60"])
        .env("LSLAPICFG", common::lsl_config())
        .output()
        .expect("heloflow runs");
    let elapsed = started.elapsed();
    let replay_stderr = String::from_utf8_lossy(&replay.stderr).to_string();
    assert!(replay.status.success(), "replay failed: {replay_stderr}");
    let output = client.wait_with_output().expect("the client ends");
    assert!(
        output.status.success(),
        "client failed: {}\nreplay: {replay_stderr}",
        String::from_utf8_lossy(&output.stderr)
    );
    let received: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    // 573 s of recording at 100x: about 5.7 s of replay (plus the wait for the client).
    assert!(
        elapsed > Duration::from_secs_f64(5.5),
        "paced, not dumped: {elapsed:?}"
    );

    for (kind, reference) in [("EEG", &eeg), ("Markers", &markers)] {
        let got = &received[kind];
        let info = &reference["info"];
        assert_eq!(got["name"], info["name"], "{kind}");
        assert_eq!(got["source_id"], info["source_id"], "{kind}");
        assert_eq!(got["channel_format"], info["channel_format"], "{kind}");
        assert_eq!(
            got["channel_count"].as_u64().unwrap().to_string(),
            info["channel_count"].as_str().unwrap(),
            "{kind}"
        );
        let samples = got["samples"].as_array().unwrap();
        let series = reference["time_series"].as_array().unwrap();
        assert_eq!(samples.len(), series.len(), "{kind}: every sample arrives");
        for (i, (a, b)) in samples.iter().zip(series).enumerate() {
            for (x, y) in a.as_array().unwrap().iter().zip(b.as_array().unwrap()) {
                match (x.as_str(), y.as_str()) {
                    (Some(x), Some(y)) if kind == "Markers" => assert_eq!(x, y, "{kind} {i}"),
                    (None, Some(y)) => assert_eq!(
                        x.as_f64().unwrap() as f32,
                        y.parse::<f64>().unwrap() as f32,
                        "{kind} sample {i}"
                    ),
                    other => panic!("{kind} sample {i}: {other:?}"),
                }
            }
        }
        // Spacing: recorded intervals divided by the speed (to a microsecond of LSL clock).
        let stamps: Vec<f64> = got["timestamps"]
            .as_array()
            .unwrap()
            .iter()
            .map(pyxdf::number)
            .collect();
        let times: Vec<f64> = reference["time_stamps"]
            .as_array()
            .unwrap()
            .iter()
            .map(pyxdf::number)
            .collect();
        for i in (1..stamps.len()).step_by(97) {
            let replayed = stamps[i] - stamps[0];
            let expected = (times[i] - times[0]) / speed;
            assert!(
                (replayed - expected).abs() < 1e-6,
                "{kind} sample {i}: {replayed} s after the first, recorded {expected}"
            );
        }
    }
}

/// Looped replay into `heloflow record` (LabRecorder's role): the recording cycles through the
/// original samples in order, pass after pass, on an increasing clock.
#[test]
fn a_looped_replay_records_as_the_recording_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let example = common::root().join("fixtures/xdf/minimal.xdf");
    let mut replay = Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .arg("replay")
        .arg(&example)
        .args([
            "--loop",
            "--speed",
            "2",
            "--type",
            "EEG",
            "--wait-for-consumers",
            "30",
        ])
        .env("LSLAPICFG", common::lsl_config())
        .stderr(Stdio::piped())
        .spawn()
        .expect("heloflow runs");
    let record = Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .args([
            "record",
            "--type",
            "EEG",
            "--name",
            "SendDataC",
            "--duration",
            "4",
        ])
        .args(["--timeout", "30", "--out", "looped.xdf"])
        .current_dir(dir.path())
        .env("LSLAPICFG", common::lsl_config())
        .output()
        .expect("heloflow runs");
    let _ = Command::new("kill")
        .args(["-INT", &replay.id().to_string()])
        .status();
    let ended = replay.wait().expect("replay ends");
    assert!(
        record.status.success(),
        "record failed: {}",
        String::from_utf8_lossy(&record.stderr)
    );
    assert!(ended.success(), "replay did not stop cleanly on Ctrl-C");

    let original =
        heloflow::xdf::reader::read(&example, &heloflow::xdf::reader::ReadOptions::raw())
            .expect("the example reads");
    let eeg = original
        .streams
        .iter()
        .find(|s| s.info.name == "SendDataC")
        .unwrap();
    let heloflow::xdf::reader::Samples::Int16(pass) = &eeg.samples else {
        panic!("int16 EEG");
    };
    let looped = heloflow::xdf::reader::read(
        &dir.path().join("looped.xdf"),
        &heloflow::xdf::reader::ReadOptions::raw(),
    )
    .expect("the recording reads");
    assert_eq!(looped.streams.len(), 1);
    let recorded = &looped.streams[0];
    assert_eq!(recorded.info.name, "SendDataC");
    assert_eq!(recorded.info.channel_format, eeg.info.channel_format);
    let heloflow::xdf::reader::Samples::Int16(values) = &recorded.samples else {
        panic!("int16 recorded");
    };
    let samples = values.len() / 3;
    // 4 s at 2x over a 1 s recording: about eight passes of nine samples.
    assert!(samples >= 2 * 9, "only {samples} samples recorded");
    let first = (0..9)
        .find(|&k| values[..3] == pass[k * 3..k * 3 + 3])
        .expect("the first recorded sample is one of the recording's");
    for i in 0..samples {
        let k = (first + i) % 9;
        assert_eq!(
            values[i * 3..i * 3 + 3],
            pass[k * 3..k * 3 + 3],
            "sample {i}"
        );
    }
    assert!(recorded.time_stamps.windows(2).all(|w| w[1] > w[0]));
}
