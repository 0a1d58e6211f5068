//! Command-line inputs that used to slip through or confuse: `simulate` errors name the flag, not
//! the pipeline text it builds; `streams --timeout` takes only a sensible wait; `streams = []`
//! says what to write; names holding control characters (from pipeline files or LSL outlets on
//! the network) are printed escaped, never raw.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::heloflow;

/// Sends signal `name` (`INT`, `TERM`) to process `pid` with the system's `kill`.
fn send_signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Whether `text` holds a character a terminal acts on, other than newline and tab.
fn has_raw_controls(text: &str) -> bool {
    text.chars()
        .any(|c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{202e}')
}

#[test]
fn simulate_errors_name_the_flag_not_an_internal_file() {
    let dir = tempfile::tempdir().unwrap();
    for (args, flag) in [
        (vec!["--out", ""], "--out"),
        (vec!["--subjects", "100000"], "--subjects"),
        (vec!["--duration", "inf"], "--duration"),
        (vec!["--duration", "nan"], "--duration"),
        (vec!["--streams", "eeg,nope"], "nope"),
        // --lsl writes no file: a format or output it would ignore is refused, not dropped.
        (vec!["--lsl", "--format", "csv"], "--format"),
        (vec!["--lsl", "--out", "x.jsonl"], "--out"),
    ] {
        let mut all = vec!["simulate"];
        all.extend(&args);
        let output = heloflow(dir.path(), &all);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}: {stderr}");
        assert!(!stderr.contains("--> simulate"), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let output = heloflow(dir.path(), &["simulate", "--out", ""]);
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("error: heloflow simulate --out: `--out` is empty"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn streams_refuses_a_wait_that_is_not_a_sensible_number_of_seconds() {
    let dir = tempfile::tempdir().unwrap();
    for timeout in ["nan", "NaN", "-1", "inf", "-inf", "1e300", "3601", "soon"] {
        let output = Command::new(env!("CARGO_BIN_EXE_heloflow"))
            .args(["streams", "--timeout", timeout])
            .env("LSLAPICFG", common::lsl_config())
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "--timeout {timeout}: {stderr}");
        assert!(
            stderr.contains("--timeout") && stderr.contains(timeout),
            "--timeout {timeout}: {stderr}"
        );
        assert!(
            stderr.contains("from 0 to 3600 seconds") || stderr.contains("not a number"),
            "--timeout {timeout}: {stderr}"
        );
    }
}

/// A publisher that stalls after it was resolved (here: stopped with SIGSTOP, so its sockets
/// accept but never answer) used to hold `streams` for 2 s per stream, once past 10 minutes;
/// now the listing takes at most `--timeout` plus 2 s and names the streams whose metadata is
/// missing.
#[test]
fn streams_stays_bounded_when_a_publisher_stalls() {
    let name = format!("stalled-{}", std::process::id());
    let mut publisher = common::Running(
        common::python("pylsl", &common::lsl_config())
            .args([
                "-c",
                &format!(
                    "import pylsl, time\nos = [pylsl.StreamOutlet(pylsl.StreamInfo('{name}', 'EEG', 2, 100, 'float32', '{name}-%d' % k)) for k in range(8)]\nprint('ready', flush=True)\ntime.sleep(600)"
                ),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut ready = String::new();
    BufReader::new(publisher.0.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    let listing = Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .args(["streams", "--timeout", "2"])
        .env("LSLAPICFG", common::lsl_config())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Stop the publisher once the resolve has seen it, before the metadata is read (from 2 s).
    std::thread::sleep(std::time::Duration::from_millis(1500));
    send_signal(publisher.id(), "STOP");
    let started = std::time::Instant::now();
    let output = listing.wait_with_output().unwrap();
    let waited = started.elapsed().as_secs_f64();
    send_signal(publisher.id(), "CONT");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        stdout.matches(&format!("\"{name}\"")).count(),
        8,
        "{stdout}"
    );
    assert!(
        stderr.contains("did not send their full metadata within 2 s"),
        "{stderr}"
    );
    assert!(stderr.contains(&name), "{stderr}");
    // 0.5 s of resolving and 2 s of metadata were left; serially the 8 stalled streams would
    // take 16 s more.
    assert!(
        waited < 5.0,
        "streams took {waited:.1} s after the stall: {stderr}"
    );
}

#[test]
fn an_empty_simulator_stream_list_says_what_to_write() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("p.toml"),
        "[pipeline]\nname = \"x\"\n\n[sources.sim]\nkind = \"simulator\"\nstreams = []\n\n[sinks.out]\nkind = \"jsonl\"\ninputs = [\"sim.eeg\"]\n",
    )
    .unwrap();
    let output = heloflow(dir.path(), &["validate", "p.toml"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("`streams` is empty"), "{stderr}");
    assert!(stderr.contains("--> p.toml:6:11"), "{stderr}");
    assert!(
        stderr.contains("valid: eeg, ")
            && stderr.contains("or leave `streams` out for all of them"),
        "{stderr}"
    );
    // One error, not a second one about the input it then cannot find.
    assert!(!stderr.contains("unknown input"), "{stderr}");
}

#[test]
fn control_characters_in_pipeline_names_are_printed_escaped() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("p.toml"),
        "[pipeline]\nname = \"demo\\u001b[2J\\u0007\\r\"\n\n[sources.sim]\nkind = \"simulator\"\nstreams = [\"eda\"]\nduration_s = 1\n\n[sinks.out]\nkind = \"jsonl\"\ninputs = [\"sim.eda\"]\npath = \"out.jsonl\"\n",
    )
    .unwrap();
    let output = heloflow(dir.path(), &["run", "p.toml", "--status", "plain"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("demo\\u{1b}[2J\\u{7}\\r: done"), "{stderr}");
    assert!(!has_raw_controls(&stderr), "{stderr:?}");

    // A component name with control characters is refused, and the refusal shows it escaped.
    fs::write(
        dir.path().join("q.toml"),
        "[pipeline]\nname = \"x\"\n\n[sources.sim]\nkind = \"simulator\"\nstreams = [\"eda\"]\n\n[sinks.\"out\\u001b[31m\\n\"]\nkind = \"jsonl\"\ninputs = [\"sim.eda\"]\n",
    )
    .unwrap();
    let output = heloflow(dir.path(), &["validate", "q.toml"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("out\\u{1b}[31m\\n"), "{stderr}");
    assert!(!has_raw_controls(&stderr), "{stderr:?}");
}

#[test]
fn control_characters_in_lsl_names_are_printed_escaped() {
    // A real pylsl outlet (loopback only) whose name, type, source_id and channel label carry
    // terminal escapes, a bell and a right-to-left override.
    let mut outlet = common::python("pylsl", &common::lsl_config())
        .args([
            "-c",
            "import pylsl, sys, time\n\
             info = pylsl.StreamInfo('EEG\\x1b[2J\\x07x', 'EEG\\u202e', 1, 100, 'float32', 'heloflow-test-ctl\\x1b]0;t\\x07')\n\
             info.desc().append_child('channels').append_child('channel').append_child_value('label', 'Fp1\\x1b[31m')\n\
             outlet = pylsl.StreamOutlet(info)\n\
             print('ready', flush=True)\n\
             time.sleep(30)\n",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(outlet.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    let output = Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .args(["streams", "--timeout", "3"])
        .env("LSLAPICFG", common::lsl_config())
        .output()
        .unwrap();
    // A pipeline that takes its subject from that source_id: every notice the lsl source prints
    // about the stream (joined, silent, summary) shows the names escaped.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        "[sources.amp]\nkind = \"lsl\"\ntype = \"EEG\\u202e\"\nchannels = [\"Fp1\\u001b[31m\"]\nmodality = \"eeg\"\nrate = 100\nsubject_from = \"source_id\"\ntimeout_s = 3\nstall_timeout_s = 0.5\non_stall = \"advance\"\n\n[sinks.out]\nkind = \"jsonl\"\ninputs = [\"amp.eeg\"]\npath = \"out.jsonl\"\n",
    )
    .unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .args(["run", "p.toml", "--status", "off"])
        .current_dir(dir.path())
        .env("LSLAPICFG", common::lsl_config())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(4));
    send_signal(run.id(), "INT");
    let run = run.wait_with_output().unwrap();
    let _ = outlet.kill();
    let _ = outlet.wait();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("subject heloflow-test-ctl\\u{1b}]0;t\\u{7}"),
        "{stderr}"
    );
    assert!(!has_raw_controls(&stderr), "{stderr:?}");

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    let line = stdout
        .lines()
        .find(|l| l.contains("heloflow-test-ctl"))
        .unwrap_or_else(|| panic!("the outlet is listed: {stdout:?}"));
    assert!(line.contains("\"EEG\\u{1b}[2J\\u{7}x\""), "{line}");
    assert!(line.contains("type=EEG\\u{202e}"), "{line}");
    assert!(
        line.contains("heloflow-test-ctl\\u{1b}]0;t\\u{7}"),
        "{line}"
    );
    assert!(stdout.contains("channels: Fp1\\u{1b}[31m"), "{stdout}");
    assert!(!has_raw_controls(&stdout), "{stdout:?}");
}
