//! When live outputs leave, end to end over real LSL (loopback configuration): a regular stream's
//! window closes once its last sample has arrived, without waiting for the next sample, and a
//! marker stream whose event time trails the clock does not hold back an outlet of the same sink
//! that does not carry it. The pylsl peer (integration-tests/lsl/release_peer.py) withholds the
//! sample after a window's end and reports which windows heloflow published meanwhile; nothing
//! here depends on how fast they came.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

fn pipeline(tag: &str, expected_next: bool) -> String {
    format!(
        r#"
[pipeline]
name = "release"

[sources.wrist]
kind = "lsl"
source_id = "heloflow-test-release-wrist-{tag}"
modality = "eda"
channels = ["EDA"]
unit = "uS"
rate = 4
subjects = {{ "heloflow-test-release-wrist-{tag}" = "P01" }}
timeout_s = 60
stall_timeout_s = 600
on_stall = "hold"
expected_next = {expected_next}

[sources.stim]
kind = "lsl"
source_id = "heloflow-test-release-stim-{tag}"
type = "Markers"
subjects = {{ "heloflow-test-release-stim-{tag}" = "P01" }}
timeout_s = 60
lateness_s = 600

[operators.win]
kind = "window_stats"
inputs = ["wrist.eda"]
window_s = 1.0
hop_s = 1.0
stats = ["mean"]

[sinks.live]
kind = "lsl"
inputs = ["win", "stim.markers"]
source_id = "heloflow-test-release:{{stream}}:{{subject}}:{tag}"
linger_s = 0
"#
    )
}

/// Runs the pipeline against the peer; returns the peer's report and heloflow's stderr.
fn run(dir: &Path, tag: &str, expected_next: bool) -> (Value, String) {
    std::fs::write(dir.join("p.toml"), pipeline(tag, expected_next)).unwrap();
    let heloflow = common::Running(
        Command::new(env!("CARGO_BIN_EXE_heloflow"))
            .args(["run", "p.toml", "--status", "off"])
            .current_dir(dir)
            .env("LSLAPICFG", common::lsl_config())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
            .spawn()
            .expect("the heloflow binary starts"),
    );
    let output = common::python("pylsl", &common::lsl_config())
        .arg(common::root().join("integration-tests/lsl/release_peer.py"))
        .args([tag, if expected_next { "1" } else { "0" }])
        .output()
        .expect("the pylsl peer runs");
    drop(heloflow);
    let stderr = std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
    assert!(
        output.status.success(),
        "peer failed: {}\nheloflow stderr:\n{stderr}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = serde_json::from_slice(&output.stdout).expect("the peer prints JSON");
    (report, stderr)
}

fn ends(report: &Value, key: &str) -> Vec<f64> {
    report[key]
        .as_array()
        .expect("a list of window ends")
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[test]
fn a_window_closes_on_its_last_sample_and_markers_do_not_hold_its_outlet() {
    let dir = tempfile::tempdir().unwrap();
    let (report, stderr) = run(dir.path(), "expected", true);
    // Samples up to T0 + 4.85 s, the next (T0 + 5.1 s) withheld: the window ending at T0 + 5 is
    // complete and leaves, although the marker stream in the same sink trails by 600 s.
    assert_eq!(
        ends(&report, "withheld"),
        [2.0, 3.0, 4.0, 5.0],
        "heloflow stderr:\n{stderr}"
    );
    assert_eq!(ends(&report, "after"), Vec::<f64>::new());
}

#[test]
fn without_expected_next_a_window_waits_for_the_sample_after_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let (report, stderr) = run(dir.path(), "next", false);
    assert_eq!(
        ends(&report, "withheld"),
        [2.0, 3.0, 4.0],
        "heloflow stderr:\n{stderr}"
    );
    assert_eq!(ends(&report, "after"), [5.0], "heloflow stderr:\n{stderr}");
}
