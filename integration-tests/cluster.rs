//! Cluster mode end to end: a multi-subject pipeline with HeLo writes the same bytes with 1, 2 or
//! 4 workers and over two processes on localhost; processes given different runs refuse to start;
//! a process that goes away fails the run with one clear message.

mod common;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{heloflow_ok, parse_jsonl, root};

/// The demo pipeline (simulator -> features -> HeLo) for `subjects` subjects, every row in files
/// under `out/`, as fast as possible unless `realtime`.
fn helo_pipeline(dir: &Path, subjects: usize, realtime: bool) -> PathBuf {
    let model = root().join("plugins/helo/model/helo-sim.json");
    let text = fs::read_to_string(root().join("pipelines/demo.toml")).unwrap();
    let changed = text
        .replace("subjects = 1\n", &format!("subjects = {subjects}\n"))
        .replace("realtime = true", &format!("realtime = {realtime}"))
        .replace("path = \"-\"", "path = \"out/live.jsonl\"")
        .replace(
            "model = \"plugins/helo/model/helo-sim.json\"",
            &format!("model = {:?}", model.to_str().unwrap()),
        );
    for expected in [
        format!("subjects = {subjects}\n"),
        "out/live.jsonl".to_string(),
        "helo-sim.json\"".to_string(),
    ] {
        assert!(changed.contains(&expected), "demo.toml changed shape");
    }
    let path = dir.join("helo.toml");
    fs::write(&path, changed).unwrap();
    path
}

/// A hostfile for `count` processes on free loopback ports.
fn hostfile(dir: &Path, count: usize) -> PathBuf {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let lines: String = listeners
        .iter()
        .map(|l| format!("127.0.0.1:{}\n", l.local_addr().unwrap().port()))
        .collect();
    let path = dir.join("hosts");
    fs::write(&path, lines).unwrap();
    path
}

/// `heloflow run` for process `process` of a two-process cluster with two workers each, started
/// in `dir`.
fn cluster_process(dir: &Path, pipeline: &Path, hosts: &Path, process: usize) -> Command {
    cluster_process_with(dir, pipeline, hosts, process, 2)
}

/// The same with `workers` workers.
fn cluster_process_with(
    dir: &Path,
    pipeline: &Path,
    hosts: &Path,
    process: usize,
    workers: usize,
) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_heloflow"));
    command
        .args(["run", pipeline.to_str().unwrap(), "-n", "2"])
        .args(["-w", &workers.to_string()])
        .args([
            "-p",
            &process.to_string(),
            "--hostfile",
            hosts.to_str().unwrap(),
        ])
        .args(["--status", "plain"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn subdir(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// What a run wrote: the JSON Lines of HeLo, truth and markers, and the features CSV.
fn outputs(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    (
        fs::read(dir.join("out/live.jsonl")).unwrap(),
        fs::read(dir.join("out/demo-eeg-de.csv")).unwrap(),
    )
}

#[test]
fn one_to_four_workers_and_two_processes_write_the_same_bytes_with_helo() {
    let dir = tempfile::tempdir().unwrap();
    let subjects = 6;
    let pipeline = helo_pipeline(dir.path(), subjects, false);
    let run = |name: &str, workers: &str| {
        let at = subdir(dir.path(), name);
        let args = ["run", pipeline.to_str().unwrap(), "-w", workers];
        let ran = heloflow_ok(&at, &[&args[..], &["--status", "plain"]].concat());
        (
            outputs(&at),
            String::from_utf8_lossy(&ran.stderr).into_owned(),
        )
    };
    let (one, one_err) = run("w1", "1");
    let rows = parse_jsonl(&String::from_utf8(one.0.clone()).unwrap());
    let emotions: Vec<_> = rows.iter().filter(|r| r.stream == "helo").collect();
    let served: std::collections::BTreeSet<_> = emotions.iter().map(|r| &r.subject).collect();
    assert_eq!(served.len(), subjects, "every subject gets distributions");
    assert!(
        emotions.len() >= subjects * 15,
        "{} distributions",
        emotions.len()
    );
    for workers in ["2", "4"] {
        assert!(
            run(&format!("w{workers}"), workers).0 == one,
            "-w 1 and -w {workers} differ"
        );
    }

    let lead = subdir(dir.path(), "lead");
    let follow = subdir(dir.path(), "follow");
    let hosts = hostfile(dir.path(), 2);
    let follower = cluster_process(&follow, &pipeline, &hosts, 1)
        .spawn()
        .unwrap();
    let leader = cluster_process(&lead, &pipeline, &hosts, 0)
        .output()
        .unwrap();
    let follower = follower.wait_with_output().unwrap();
    let (lead_err, follow_err) = (
        String::from_utf8_lossy(&leader.stderr),
        String::from_utf8_lossy(&follower.stderr),
    );
    assert!(leader.status.success(), "process 0 failed: {lead_err}");
    assert!(follower.status.success(), "process 1 failed: {follow_err}");
    assert!(leader.stdout.is_empty() && follower.stdout.is_empty());
    assert!(
        outputs(&lead) == one,
        "two processes and one process differ"
    );
    assert!(!follow.join("out").exists(), "process 1 opened sinks");
    // Process 1 did its share: its operators computed rows for its subjects.
    let computed = follow_err
        .split("its operators computed ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no summary from process 1: {follow_err}"));
    assert!(computed > 0, "{follow_err}");
    // Process 0's summary counts the whole run: process 1 simulated its own subjects and sent
    // its counts, so the samples in are those of one process.
    let samples_in = |stderr: &str| {
        stderr
            .lines()
            .find_map(|line| line.split(" done: ").nth(1))
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no summary: {stderr}"))
    };
    assert_eq!(samples_in(&lead_err), samples_in(&one_err), "{lead_err}");
    assert!(!lead_err.contains("did not arrive"), "{lead_err}");
}

/// Starts `follower` (process 1), then `leader` (process 0), and checks that both refuse the run
/// with `message`, without an internal error, and that process 0 (in `lead`) opened no sink.
fn both_refuse(lead: &Path, mut leader: Command, mut follower: Command, message: &str) {
    let follower = follower.spawn().unwrap();
    let leader = leader.output().unwrap();
    let follower = follower.wait_with_output().unwrap();
    for (process, output) in [(0, &leader), (1, &follower)] {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "process {process} ran: {stderr}");
        assert!(stderr.contains(message), "process {process}: {stderr}");
        assert!(
            !stderr.contains("internal error") && !stderr.contains("panicked"),
            "process {process}: {stderr}"
        );
    }
    assert!(!lead.join("out").exists(), "a refused run opened its sinks");
}

#[test]
fn processes_given_different_runs_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let lead = subdir(dir.path(), "lead");
    let follow = subdir(dir.path(), "follow");
    let hosts = hostfile(dir.path(), 2);
    both_refuse(
        &lead,
        cluster_process(&lead, &helo_pipeline(&lead, 2, false), &hosts, 0),
        cluster_process(&follow, &helo_pipeline(&follow, 3, false), &hosts, 1),
        "were not given the same run: every process needs the same pipeline file",
    );
}

#[test]
fn processes_started_with_different_worker_counts_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let lead = subdir(dir.path(), "lead");
    let follow = subdir(dir.path(), "follow");
    let hosts = hostfile(dir.path(), 2);
    let pipeline = helo_pipeline(dir.path(), 2, false);
    both_refuse(
        &lead,
        cluster_process_with(&lead, &pipeline, &hosts, 0, 2),
        cluster_process_with(&follow, &pipeline, &hosts, 1, 1),
        "heloflow: error: the processes were started with different worker counts: process 0 has -w 2, process 1 has -w 1; start every process with the same -w",
    );
}

#[test]
fn a_process_that_goes_away_fails_the_run_with_one_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let lead = subdir(dir.path(), "lead");
    let follow = subdir(dir.path(), "follow");
    let pipeline = helo_pipeline(dir.path(), 4, true);
    let hosts = hostfile(dir.path(), 2);
    let mut follower = cluster_process(&follow, &pipeline, &hosts, 1)
        .spawn()
        .unwrap();
    let leader = cluster_process(&lead, &pipeline, &hosts, 0)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    follower.kill().unwrap();
    let _ = follower.wait();
    let started = Instant::now();
    let leader = leader.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&leader.stderr);
    assert!(!leader.status.success(), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "process 0 took {:?} to notice",
        started.elapsed()
    );
    assert!(
        stderr.contains("another process of the cluster went away"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the connection to another process of the cluster was lost"),
        "{stderr}"
    );
    assert!(!stderr.contains("This is a bug"), "{stderr}");
    // What process 0 wrote before the loss stays.
    let kept = fs::read_to_string(lead.join("out/live.jsonl")).unwrap_or_default();
    assert!(!parse_jsonl(&kept).is_empty(), "nothing kept: {stderr}");
}
