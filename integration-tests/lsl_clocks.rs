//! Senders' clocks that break event time, end to end: a real pylsl outlet stamps a burst of samples
//! 11 days ahead, then steps its clock back 60 s and stays there; the `lsl` source must keep the
//! real data flowing on the local clock and count what it dropped. Also the configuration problems
//! that must stop a run before it starts: a missing `LSLAPICFG` file, a malformed predicate.
//!
//! Needs `python3` with pylsl on PATH; loopback-only liblsl configuration (fixtures/lsl/lsl_api.cfg).

mod common;

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::parse_jsonl;

/// Starts `heloflow args...` in `dir` with its output going to files there.
fn spawn_heloflow(dir: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .args(args)
        .current_dir(dir)
        .env("LSLAPICFG", common::lsl_config())
        .stdout(File::create(dir.join("run.stdout")).unwrap())
        .stderr(File::create(dir.join("run.stderr")).unwrap())
        .spawn()
        .expect("the heloflow binary starts")
}

/// Sends SIGINT and waits at most `limit`; returns (success, stderr).
fn interrupt_and_finish(mut child: Child, dir: &Path, limit: Duration) -> (bool, String) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("heloflow did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(dir.join("run.stderr")).unwrap_or_default();
    (status.success(), stderr)
}

const CLOCK: &str = r#"
[pipeline]
name = "clocks"

[sources.wrist]
kind = "lsl"
source_id = "heloflow-test-clock"
type = "GSR"
channels = ["EDA"]
rate = 100
timeout_s = 30

[operators.eda_mean]
kind = "window_stats"
inputs = ["wrist.eda"]
window_s = 1.0
hop_s = 1.0
stats = ["mean", "count"]

[sinks.out]
kind = "jsonl"
inputs = ["wrist.eda", "wrist.events", "eda_mean"]
path = "out.jsonl"

[sinks.session]
kind = "xdf"
inputs = ["wrist.eda"]
path = "session.xdf"
"#;

/// The `wrist.eda` stream of `session.xdf` as real pyxdf loads it (no clock synchronisation):
/// (timestamp, value) pairs.
fn recorded(dir: &Path) -> Vec<(f64, f64)> {
    let output = common::python("pyxdf, numpy", &common::lsl_config())
        .arg(common::root().join("integration-tests/xdf/load.py"))
        .arg(dir.join("session.xdf"))
        .output()
        .expect("the pyxdf loader runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let loaded: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let stream = &loaded["streams"][0];
    let number = |v: &serde_json::Value| {
        v.as_str()
            .map_or_else(|| v.as_f64().unwrap(), |s| s.parse().unwrap())
    };
    stream["time_stamps"]
        .as_array()
        .unwrap()
        .iter()
        .zip(stream["time_series"].as_array().unwrap())
        .map(|(t, row)| (number(t), number(&row[0])))
        .collect()
}

#[test]
fn a_future_burst_and_a_backward_clock_step_keep_real_data_flowing_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), CLOCK).unwrap();
    let heloflow = spawn_heloflow(dir.path(), &["run", "p.toml", "--status", "plain"]);
    let peer = common::python("pylsl", &common::lsl_config())
        .arg(common::root().join("integration-tests/lsl/clock_peer.py"))
        .output()
        .expect("the pylsl peer runs");
    let read_stderr = || std::fs::read_to_string(dir.path().join("run.stderr")).unwrap_or_default();
    assert!(
        peer.status.success(),
        "pylsl peer failed: {}\nheloflow stderr:\n{}",
        String::from_utf8_lossy(&peer.stderr),
        read_stderr()
    );
    let phases: serde_json::Value = serde_json::from_slice(&peer.stdout).unwrap();
    // The outlet is gone: let the stall timeout (2 s) pass, so the stream ends lost.
    std::thread::sleep(Duration::from_secs(3));
    let (ok, stderr) = interrupt_and_finish(heloflow, dir.path(), Duration::from_secs(20));
    assert!(ok, "heloflow failed: {stderr}");
    let rows = parse_jsonl(&std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap());
    let span = |phase: &str| {
        let p = &phases[phase];
        (p[0].as_f64().unwrap(), p[1].as_f64().unwrap())
    };

    let data: Vec<_> = rows.iter().filter(|r| r.stream == "wrist.eda").collect();
    let count = |value: f64| data.iter().filter(|r| r.values["EDA"] == value).count();
    assert_eq!(count(9.0), 0, "no sample of the future burst was placed");
    assert_eq!((count(1.0), count(2.0)), (200, 200), "{stderr}");
    assert_eq!(
        count(3.0),
        400,
        "every sample after the step arrived: {stderr}"
    );
    // Event time stayed on the local clock: the stepped samples sit where they arrived.
    let (step_start, step_end) = span("stepped_back");
    for row in data.iter().filter(|r| r.values["EDA"] == 3.0) {
        assert!(
            row.time > step_start - 0.1 && row.time < step_end + 0.1,
            "{} outside [{step_start}, {step_end}]",
            row.time
        );
    }
    let latest = rows.iter().map(|r| r.time).fold(f64::MIN, f64::max);
    assert!(latest < step_end + 10.0, "event time ran ahead to {latest}");
    let times: Vec<f64> = data.iter().map(|r| r.time).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "data in time order");

    // Windows were not flooded by the burst (about 11 s of data: a dozen windows, not a million).
    let windows = rows.iter().filter(|r| r.stream == "eda_mean").count();
    assert!((8..40).contains(&windows), "{windows} windows");

    let events: Vec<_> = rows.iter().filter(|r| r.stream == "wrist.events").collect();
    let step = events
        .iter()
        .find(|e| e.values["event"] == "clock_step")
        .unwrap_or_else(|| panic!("a clock_step event: {stderr}"));
    let shift: f64 = step.values["seconds"].as_str().unwrap().parse().unwrap();
    assert!((shift - 60.0).abs() < 0.1, "shift {shift}");
    assert!(
        !events
            .iter()
            .any(|e| e.values["event"] == "lost" && e.time < step_end - 0.1),
        "the stream was never declared lost while it delivered: {stderr}"
    );

    // The XDF file keeps the sender's own timestamps (as LabRecorder would): the stepped samples
    // 60 s back, the others where they were stamped.
    let stamps = recorded(dir.path());
    assert_eq!(stamps.len(), data.len());
    let (right_start, right_end) = span("right");
    for (stamp, value) in &stamps {
        let (from, to) = match *value as i64 {
            3 => (step_start - 60.0, step_end - 60.0),
            _ => (right_start, span("right_again").1),
        };
        assert!(
            *stamp >= from - 1e-3 && *stamp <= to + 1e-3,
            "value {value} stamped {stamp}, sent within [{from}, {to}] ({right_end})"
        );
    }

    // The summaries count what was dropped, by reason; the stream lost at the end is an open gap.
    assert!(stderr.contains("1 clock step(s)"), "{stderr}");
    assert!(
        stderr.contains("50 dropped (0 late, 50 ahead of the clock"),
        "{stderr}"
    );
    assert!(
        stderr.contains("50 samples dropped (50 ahead of the clock)"),
        "{stderr}"
    );
    assert!(stderr.contains("the last still open"), "{stderr}");
    assert!(!stderr.contains(" 0 gap(s)"), "{stderr}");
}

/// `LSLAPICFG` naming a file that is not there: liblsl would only print a notice and use its
/// network-wide default, so every command that uses LSL refuses to start.
#[test]
fn a_missing_lslapicfg_file_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), CLOCK).unwrap();
    let missing = dir.path().join("no-such-lsl_api.cfg");
    for args in [
        &["run", "p.toml"][..],
        &["streams", "--timeout", "0.5"],
        &[
            "record",
            "--type",
            "EEG",
            "--out",
            "x.xdf",
            "--timeout",
            "1",
        ],
        &["simulate", "--lsl", "--duration", "1"],
        &["replay", "nothing.xdf"],
    ] {
        let started = Instant::now();
        let output = Command::new(env!("CARGO_BIN_EXE_heloflow"))
            .args(args)
            .current_dir(dir.path())
            .env("LSLAPICFG", &missing)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}: {stderr}");
        assert!(
            stderr.contains("LSLAPICFG names the liblsl configuration")
                && stderr.contains("no-such-lsl_api.cfg")
                && stderr.contains("cannot be opened"),
            "{args:?}: {stderr}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{args:?} waited"
        );
        assert!(!dir.path().join("x.xdf").exists());
    }
    // A pipeline without LSL does not care.
    let output = Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .args(["simulate", "--duration", "0.1", "--out", "sim.jsonl"])
        .current_dir(dir.path())
        .env("LSLAPICFG", &missing)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
}

/// A configuration that sets a key twice (as a copy with an extra `PortRange` line does): liblsl
/// rejects the whole file and goes network-wide on its defaults, so heloflow refuses it first.
#[test]
fn an_lslapicfg_with_a_duplicate_key_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(common::lsl_config()).unwrap();
    let doubled = dir.path().join("lsl_api.cfg");
    std::fs::write(
        &doubled,
        shipped.replace("[ports]\n", "[ports]\nPortRange = 256\n"),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .args(["streams", "--timeout", "0.5"])
        .current_dir(dir.path())
        .env("LSLAPICFG", &doubled)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("sets `ports.PortRange` a second time"),
        "{stderr}"
    );
}

/// A malformed predicate is a located error, in a pipeline and on the command line, instead of
/// "found 0 streams" after the timeout.
#[test]
fn a_malformed_predicate_is_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = CLOCK.replace(
        "source_id = \"heloflow-test-clock\"",
        "predicate = \"starts-with(name, 'Muse'\"",
    );
    std::fs::write(dir.path().join("p.toml"), pipeline).unwrap();
    let output = common::heloflow(dir.path(), &["validate", "p.toml"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("not a valid LSL predicate") && stderr.contains("expected `,` or `)`"),
        "{stderr}"
    );
    assert!(stderr.contains("p.toml:"), "located in the file: {stderr}");
    for command in ["record", "replay"] {
        let mut args = vec![command, "--predicate", "type='EEG' and"];
        args.extend(if command == "record" {
            ["--out", "x.xdf"]
        } else {
            ["rec.xdf", "--loop"]
        });
        let started = Instant::now();
        let output = Command::new(env!("CARGO_BIN_EXE_heloflow"))
            .args(&args)
            .current_dir(dir.path())
            .env("LSLAPICFG", common::lsl_config())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{command}: {stderr}");
        assert!(
            stderr
                .contains("--predicate is not a valid LSL predicate (XPath 1.0): at character 15"),
            "{command}: {stderr}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{command} waited"
        );
    }
}
