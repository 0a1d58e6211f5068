//! The hostile inputs of issue 12 (classes 1, 2, 6 and 7), through the real binary: each now ends
//! in a located error at `validate` or a clear message and a non-zero exit, never a panic or a
//! run that ignores Ctrl-C. (A panic in a real timely worker or source thread failing the run is
//! proven in the library's unit tests `a_panicking_worker_stops_the_others_and_fails_the_run` and
//! `a_panicking_source_thread_fails_the_pipeline`.)

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::heloflow;

/// Writes `text` as `name` in `dir` and runs `heloflow validate` on it; returns (success, stderr).
fn validate(dir: &Path, name: &str, text: &str) -> (bool, String) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let output = heloflow(dir, &["validate", path.to_str().unwrap()]);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

/// Asserts that `text` is refused with `fragment` at `line:column` of the file, without a panic.
fn refused_at(dir: &Path, text: &str, location: &str, fragment: &str) {
    let (ok, stderr) = validate(dir, "case.toml", text);
    assert!(!ok, "validate accepted:\n{text}");
    assert!(
        !stderr.contains("internal error") && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("case.toml:{location}\n")),
        "not at {location}:\n{stderr}"
    );
    assert!(stderr.contains(fragment), "no \"{fragment}\":\n{stderr}");
}

const SIM: &str = "[sources.sim]\nkind = \"simulator\"\nstreams = [\"eeg\"]\nduration_s = 1\n";
const OUT: &str = "\n[sinks.out]\nkind = \"jsonl\"\ninputs = [\"sim.eeg\"]\npath = \"out.jsonl\"\n";

#[test]
fn class1_durations_that_cannot_be_represented_are_refused_at_validate() {
    let dir = tempfile::tempdir().unwrap();
    let lsl_sink =
        format!("{SIM}\n[sinks.live]\nkind = \"lsl\"\ninputs = [\"sim.eeg\"]\nlinger_s = 1e300\n");
    refused_at(
        dir.path(),
        &lsl_sink,
        "9:12",
        "`sinks.live.linger_s` must be between 0 and 2",
    );
    for (option, fragment) in [
        (
            "timeout_s",
            "`sources.amp.timeout_s` must be between 0.1 and 86400",
        ),
        (
            "stall_timeout_s",
            "`sources.amp.stall_timeout_s` must be between 0.05 and 3600",
        ),
        ("lateness_s", "`sources.amp.lateness_s` must be between"),
        (
            "clock_refresh_s",
            "`sources.amp.clock_refresh_s` must be between",
        ),
    ] {
        let text = format!("[sources.amp]\nkind = \"lsl\"\ntype = \"EEG\"\nchannels = 2\nrate = 256\n{option} = 1e300\n\n[sinks.out]\nkind = \"jsonl\"\ninputs = [\"amp.eeg\"]\npath = \"out.jsonl\"\n");
        refused_at(
            dir.path(),
            &text,
            &format!("6:{}", option.len() + 4),
            fragment,
        );
    }
}

#[test]
fn class2_options_that_cannot_run_are_refused_at_validate() {
    let dir = tempfile::tempdir().unwrap();
    let bands = |options: &str| {
        format!("{SIM}\n[operators.bands]\nkind = \"band_power\"\ninputs = [\"sim.eeg\"]\n{options}\n\n[sinks.out]\nkind = \"jsonl\"\ninputs = [\"bands\"]\npath = \"out.jsonl\"\n")
    };
    refused_at(dir.path(), &bands("hop_s = 1e-9"), "9:9", "hop_s");
    refused_at(dir.path(), &bands("window_s = 1e300"), "9:12", "window_s");
    refused_at(
        dir.path(),
        &bands("window_s = 86400\nhop_s = 3600"),
        "9:12",
        "MiB per subject",
    );
    refused_at(
        dir.path(),
        &bands("window_s = 60\nhop_s = 0.001"),
        "10:9",
        "more than 1000 windows",
    );
    let sim = |option: &str| format!("{SIM}{option}\n{OUT}");
    refused_at(dir.path(), &sim("chunk_s = 1e-9"), "5:11", "chunk_s");
    refused_at(
        dir.path(),
        &sim("start_s = 1e19"),
        "5:11",
        "event time is i64 nanoseconds",
    );
    refused_at(dir.path(), &sim("start_s = -9.3e9"), "5:11", "start_s");
    let lsl = "[sources.amp]\nkind = \"lsl\"\ntype = \"EEG\"\nchannels = 2\nrate = 256\nstall_timeout_s = 1e-9\n\n[sinks.out]\nkind = \"jsonl\"\ninputs = [\"amp.eeg\"]\npath = \"out.jsonl\"\n";
    refused_at(dir.path(), lsl, "6:19", "stall_timeout_s");
    let slow = lsl.replace("1e-9", "0.005");
    refused_at(dir.path(), &slow, "6:19", "stall_timeout_s");
}

/// Starts `heloflow run` on `text`, sends SIGINT after `after`, and returns how long it took to
/// exit after the signal, its exit status and its stderr.
fn interrupt(text: &str, after: Duration) -> (Duration, std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.toml");
    std::fs::write(&path, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .args(["run", path.to_str().unwrap(), "--status", "plain"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    // SAFETY: kill only sends a signal to the child we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let signalled = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if signalled.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = signalled.elapsed();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (took, status, stderr)
}

#[test]
fn class2_ctrl_c_stops_runs_within_two_seconds() {
    let endless = |extra: &str| {
        format!("[sources.sim]\nkind = \"simulator\"\nstreams = [\"eeg\", \"eda\"]\nrealtime = true\n{extra}\n[operators.bands]\nkind = \"band_power\"\ninputs = [\"sim.eeg\"]\nwindow_s = 60\nhop_s = 0.06\n\n[sinks.out]\nkind = \"jsonl\"\ninputs = [\"bands\", \"sim.eda\"]\npath = \"out.jsonl\"\n")
    };
    for (extra, after) in [
        ("", Duration::from_millis(1500)),
        ("chunk_s = 1\n", Duration::from_millis(1200)),
        ("subjects = 20\n", Duration::from_millis(1500)),
    ] {
        let (took, status, stderr) = interrupt(&endless(extra), after);
        assert!(
            took < Duration::from_secs(2),
            "`{extra}` took {took:?} to stop:\n{stderr}"
        );
        assert!(status.success(), "`{extra}`: {status}:\n{stderr}");
        assert!(
            stderr.contains("stopped and drained"),
            "`{extra}`:\n{stderr}"
        );
    }
}

#[test]
fn class6_a_subject_or_channel_named_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let twice = SIM.replace(
        "duration_s = 1",
        "duration_s = 1\nsubjects = [\"A\", \"A\"]",
    );
    refused_at(
        dir.path(),
        &format!("{twice}{OUT}"),
        "5:18",
        "subject \"A\" is listed twice",
    );
    let select = format!("{SIM}\n[operators.pick]\nkind = \"select\"\ninputs = [\"sim.eeg\"]\nchannels = [\"Fp1\", \"Fp2\", \"Fp1\"]\n\n[sinks.out]\nkind = \"jsonl\"\ninputs = [\"pick\"]\npath = \"out.jsonl\"\n");
    refused_at(
        dir.path(),
        &select,
        "9:27",
        "channel \"Fp1\" is listed twice",
    );
    let table = "[sources.amp]\nkind = \"lsl\"\ntype = \"EEG\"\nchannels = 2\nrate = 256\nsubjects = { \"dev-1\" = \"P01\", \"dev-2\" = \"P01\" }\n\n[sinks.out]\nkind = \"jsonl\"\ninputs = [\"amp.eeg\"]\npath = \"out.jsonl\"\n";
    refused_at(
        dir.path(),
        table,
        "6:41",
        "subject \"P01\" is named by both",
    );
    let declared = "[sources.amp]\nkind = \"lsl\"\ntype = \"EEG\"\nchannels = [\"C3\", \"C3\"]\nrate = 256\n\n[sinks.out]\nkind = \"jsonl\"\ninputs = [\"amp.eeg\"]\npath = \"out.jsonl\"\n";
    refused_at(
        dir.path(),
        declared,
        "4:19",
        "channel \"C3\" is declared twice",
    );
    let sink = format!("{SIM}\n[sinks.live]\nkind = \"lsl\"\ninputs = [\"sim.eeg\"]\nlayout = \"subject_channel\"\nsubjects = [\"S1\", \"S1\"]\n");
    refused_at(dir.path(), &sink, "10:19", "subject \"S1\" is listed twice");
}

#[test]
fn class7_multipliers_are_capped_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["demo", "--subjects", "100000", "--fast"],
            "--subjects must be 1 to 10000, found 100000",
        ),
        (
            &["simulate", "--subjects", "100000", "--duration", "1"],
            "--subjects must be 1 to 10000, found 100000",
        ),
        (
            &["simulate", "--lsl", "--subjects", "100000"],
            "--subjects must be 1 to 10000, found 100000",
        ),
        (
            &["demo", "--fast", "--duration", "1", "-w", "100000"],
            "the number of workers must be 1 to 256, found 100000",
        ),
    ];
    for (args, message) in cases {
        let started = Instant::now();
        let output = heloflow(dir.path(), args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(message), "{args:?}:\n{stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{args:?} took long"
        );
    }
    let many = SIM.replace("duration_s = 1", "duration_s = 1\nsubjects = 100000");
    refused_at(dir.path(), &format!("{many}{OUT}"), "5:12", "1 to 10000");
    let durations = heloflow(dir.path(), &["demo", "--fast", "--duration", "1e300"]);
    assert!(!durations.status.success());
    assert!(String::from_utf8_lossy(&durations.stderr).contains("--duration must be"));
}
