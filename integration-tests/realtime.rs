//! A realtime source that cannot keep up with the wall clock says so: in the status line while it
//! lags, and in a warning at the end. The real binary, blocked by a reader that does not read.

mod common;

use std::fs::File;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BLOCKED: &str = r#"
[pipeline]
name = "lagging"

[sources.sim]
kind = "simulator"
streams = ["eeg"]
duration_s = 8
realtime = true
queue = { capacity = 1 }

[sinks.out]
kind = "jsonl"
inputs = ["sim.eeg"]
path = "-"
"#;

#[test]
fn a_realtime_source_that_falls_behind_says_so_and_warns_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), BLOCKED).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .args(["run", "p.toml", "--status", "plain"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(File::create(dir.path().join("run.stderr")).unwrap())
        .spawn()
        .expect("the heloflow binary starts");
    let stderr = || std::fs::read_to_string(dir.path().join("run.stderr")).unwrap_or_default();
    // Nobody reads standard output yet: the sink blocks, the queue fills, the source lags.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !stderr().contains("s behind real time") {
        assert!(Instant::now() < deadline, "no lag reported: {}", stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut rows = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut rows)
        .unwrap();
    let status = child.wait().unwrap();
    let stderr = stderr();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("lagging: warning: a realtime source fell behind real time by up to"),
        "{stderr}"
    );
    assert_eq!(
        rows.lines().count(),
        8 * 300,
        "every sample written after all"
    );
}

/// A source that keeps up is not reported.
#[test]
fn a_realtime_source_that_keeps_up_is_not_reported() {
    let dir = tempfile::tempdir().unwrap();
    let easy = BLOCKED
        .replace("duration_s = 8", "duration_s = 2")
        .replace("queue = { capacity = 1 }", "")
        .replace("path = \"-\"", "path = \"out.jsonl\"");
    std::fs::write(dir.path().join("p.toml"), easy).unwrap();
    let output = common::heloflow(dir.path(), &["run", "p.toml", "--status", "plain"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("behind real time"), "{stderr}");
}
