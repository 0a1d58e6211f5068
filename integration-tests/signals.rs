//! SIGTERM and SIGHUP (what systemd, Docker and `kill` send) do exactly what Ctrl-C does: `run`,
//! `demo`, `record` and `replay` drain, flush every sink and print their summary. SIGKILL leaves
//! the JSON Lines and CSV files readable up to their last complete row (the xdf sink's kill
//! safety is covered by xdf_record.rs). The real binary, real pyxdf, loopback-only liblsl.

mod common;

use std::fs::File;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use common::parse_jsonl;
use common::Running;

/// Starts `heloflow args...` in `dir`, its output going to `<tag>.stdout` and `<tag>.stderr`.
fn spawn(dir: &Path, args: &[&str], tag: &str) -> Running {
    Running(
        Command::new(env!("CARGO_BIN_EXE_heloflow"))
            .args(args)
            .current_dir(dir)
            .env("LSLAPICFG", common::lsl_config())
            .stdout(File::create(dir.join(format!("{tag}.stdout"))).unwrap())
            .stderr(File::create(dir.join(format!("{tag}.stderr"))).unwrap())
            .spawn()
            .expect("the heloflow binary starts"),
    )
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

fn signal(child: &Running, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} failed");
}

/// Waits until `condition` holds, at most `limit`; fails with `what` and the child's stderr.
fn wait_until(dir: &Path, tag: &str, what: &str, limit: Duration, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "{tag}: {what} did not happen within {limit:?}; stderr:\n{}",
            read(dir, &format!("{tag}.stderr"))
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `name`, then waits for the exit (at most 30 s); returns the status and stderr.
fn stop_with(mut child: Running, dir: &Path, tag: &str, name: &str) -> (ExitStatus, String) {
    signal(&child, name);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "{tag} did not stop within 30 s of SIG{name}; stderr:\n{}",
            read(dir, &format!("{tag}.stderr"))
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    (status, read(dir, &format!("{tag}.stderr")))
}

/// Every line of a JSON Lines file is a complete row and the file ends with its newline; returns
/// the rows.
fn complete_jsonl(path: &Path) -> Vec<common::JsonRow> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.ends_with('\n'),
        "{}: last row incomplete",
        path.display()
    );
    parse_jsonl(&text)
}

/// Every row of a CSV file has the header's field count and the file ends with its newline;
/// returns the number of data rows.
fn complete_csv(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.ends_with('\n'),
        "{}: last row incomplete",
        path.display()
    );
    let mut lines = text.lines();
    let fields = lines.next().expect("a header").split(',').count();
    let mut rows = 0;
    for line in lines {
        assert_eq!(line.split(',').count(), fields, "{line:?}");
        rows += 1;
    }
    rows
}

/// Samples per stream of an XDF file as real pyxdf loads it (the file must have every footer).
fn xdf_counts(path: &Path) -> Vec<(String, u64)> {
    let helpers = common::root().join("integration-tests/xdf");
    let output = common::python("pyxdf, numpy", &common::lsl_config())
        .arg(helpers.join("load.py"))
        .arg(path)
        .arg("--digest")
        .output()
        .expect("the pyxdf loader runs");
    assert!(
        output.status.success(),
        "pyxdf could not load {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let loaded: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    loaded["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert!(!s["footer"].is_null(), "every stream has its footer: {s}");
            (
                s["info"]["name"][0]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                s["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

const LIVE: &str = r#"
[pipeline]
name = "signals"

[sources.sim]
kind = "simulator"
subjects = 2
streams = ["eeg", "eda", "emotion", "markers"]
realtime = true

[sinks.raw]
kind = "jsonl"
inputs = ["sim.eeg", "sim.eda", "sim.markers"]
path = "raw.jsonl"

[sinks.emotion]
kind = "csv"
inputs = ["sim.emotion"]
path = "emotion.csv"

[sinks.session]
kind = "xdf"
inputs = ["sim.eeg", "sim.eda", "sim.markers"]
path = "session.xdf"
"#;

/// The `rows written` figure of a run summary.
fn rows_written(stderr: &str) -> u64 {
    let before = stderr
        .split(" rows written")
        .next()
        .filter(|_| stderr.contains(" rows written"))
        .unwrap_or_else(|| panic!("no summary: {stderr}"));
    before
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{stderr}"))
}

/// Runs LIVE until rows are flowing, stops it with `name`, and checks every sink is complete:
/// the JSON Lines and XDF files hold the same samples, and the summary counts every row.
fn run_stopped_by(name: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), LIVE).unwrap();
    let run = spawn(dir.path(), &["run", "p.toml", "--status", "plain"], "run");
    wait_until(dir.path(), "run", "rows", Duration::from_secs(30), || {
        read(dir.path(), "emotion.csv").lines().count() > 3
    });
    std::thread::sleep(Duration::from_millis(1500));
    let (status, stderr) = stop_with(run, dir.path(), "run", name);
    assert!(status.success(), "SIG{name}: {status}: {stderr}");
    assert!(stderr.contains("stopping: draining"), "{stderr}");
    assert!(
        stderr.contains("signals: stopped and drained after"),
        "{stderr}"
    );
    let rows = complete_jsonl(&dir.path().join("raw.jsonl"));
    let csv_rows = complete_csv(&dir.path().join("emotion.csv"));
    let xdf = xdf_counts(&dir.path().join("session.xdf"));
    let xdf_total: u64 = xdf.iter().map(|(_, n)| n).sum();
    assert_eq!(
        xdf_total,
        rows.len() as u64,
        "xdf and jsonl hold the same samples: {xdf:?}"
    );
    assert!(rows.iter().any(|r| r.stream == "sim.eeg"));
    assert_eq!(
        rows_written(&stderr),
        2 * rows.len() as u64 + csv_rows as u64,
        "{stderr}"
    );
}

#[test]
fn sigterm_drains_and_flushes_every_sink_of_a_run() {
    run_stopped_by("TERM");
}

#[test]
fn sighup_drains_and_flushes_every_sink_of_a_run() {
    run_stopped_by("HUP");
}

#[test]
fn sigterm_and_sighup_stop_the_demo_like_ctrl_c() {
    for name in ["TERM", "HUP"] {
        let dir = tempfile::tempdir().unwrap();
        let demo = spawn(
            dir.path(),
            &["demo", "--duration", "0", "--status", "plain"],
            "demo",
        );
        wait_until(
            dir.path(),
            "demo",
            "windows",
            Duration::from_secs(30),
            || read(dir.path(), "demo.stdout").lines().count() > 2,
        );
        let (status, stderr) = stop_with(demo, dir.path(), "demo", name);
        assert!(status.success(), "SIG{name}: {status}: {stderr}");
        assert!(
            stderr.contains("demo: stopped and drained after"),
            "{stderr}"
        );
        assert!(!complete_jsonl(&dir.path().join("demo.stdout")).is_empty());
        complete_csv(&dir.path().join("out/demo-eeg-de.csv"));
    }
}

#[test]
fn sigterm_stops_record_and_replay_like_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let seed = (std::process::id() % 1_000_000).to_string();
    let outlets = spawn(
        dir.path(),
        &[
            "simulate",
            "--lsl",
            "--seed",
            &seed,
            "--streams",
            "eda",
            "--duration",
            "0",
            "--status",
            "off",
        ],
        "outlets",
    );
    let predicate = format!("starts-with(source_id, 'heloflow-sim:seed{seed}:')");
    let record = spawn(
        dir.path(),
        &[
            "record",
            "--predicate",
            &predicate,
            "--timeout",
            "30",
            "--out",
            "rec.xdf",
        ],
        "record",
    );
    wait_until(
        dir.path(),
        "record",
        "recording",
        Duration::from_secs(40),
        || std::fs::metadata(dir.path().join("rec.xdf")).is_ok_and(|m| m.len() > 4096),
    );
    std::thread::sleep(Duration::from_secs(1));
    let (status, stderr) = stop_with(record, dir.path(), "record", "TERM");
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains("stopping: pulling what is left"),
        "{stderr}"
    );
    let recorded = xdf_counts(&dir.path().join("rec.xdf"));
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert!(recorded[0].1 > 0, "{recorded:?}");
    drop(outlets);

    let replay = spawn(
        dir.path(),
        &[
            "replay",
            "rec.xdf",
            "--source-id-suffix",
            &format!(":r{seed}"),
        ],
        "replay",
    );
    wait_until(
        dir.path(),
        "replay",
        "publishing",
        Duration::from_secs(30),
        || read(dir.path(), "replay.stderr").contains("heloflow replay"),
    );
    std::thread::sleep(Duration::from_secs(1));
    let (status, stderr) = stop_with(replay, dir.path(), "replay", "TERM");
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("stopping: closing the outlets"), "{stderr}");
    assert!(stderr.contains("samples published"), "{stderr}");
}

#[test]
fn sigkill_leaves_jsonl_and_csv_readable_up_to_their_last_complete_row() {
    let dir = tempfile::tempdir().unwrap();
    let fast = LIVE
        .replace("realtime = true", "realtime = false\nduration_s = 100000")
        .replace(
            "[sinks.session]\nkind = \"xdf\"\ninputs = [\"sim.eeg\", \"sim.eda\", \"sim.markers\"]\npath = \"session.xdf\"\n",
            "",
        );
    std::fs::write(dir.path().join("p.toml"), fast).unwrap();
    let mut run = spawn(dir.path(), &["run", "p.toml", "--status", "off"], "run");
    wait_until(dir.path(), "run", "rows", Duration::from_secs(30), || {
        std::fs::metadata(dir.path().join("raw.jsonl")).is_ok_and(|m| m.len() > 2_000_000)
    });
    run.0.kill().unwrap();
    run.0.wait().unwrap();
    for (file, complete) in [
        (
            "raw.jsonl",
            &(|line: &str| serde_json::from_str::<serde_json::Value>(line).is_ok())
                as &dyn Fn(&str) -> bool,
        ),
        ("emotion.csv", &|line: &str| !line.is_empty()),
    ] {
        let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
        let (whole, _partial) = text.rsplit_once('\n').unwrap_or(("", &text));
        assert!(!whole.is_empty(), "{file} has complete rows");
        for line in whole.lines() {
            assert!(complete(line), "{file}: {line:?}");
        }
    }
    let text = std::fs::read_to_string(dir.path().join("emotion.csv")).unwrap();
    let (whole, _) = text.rsplit_once('\n').unwrap();
    let fields = whole.lines().next().unwrap().split(',').count();
    assert!(whole.lines().all(|l| l.split(',').count() == fields));
}
