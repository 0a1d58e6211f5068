//! A lab on one machine: 10 subjects x 4 device streams -> heloflow (`pipelines/lsl-lab.toml`) ->
//! 10 emotion outlets, and every one of the 50 streams found by real pylsl and real MNE-LSL
//! clients, on the shipped loopback configuration and on liblsl's defaults over multicast.
//!
//! Each scenario runs in its own network namespace (`common::in_network_namespace`), so its
//! traffic cannot leave the machine and its 50 outlets do not crowd other tests' port range.
//! Needs `unshare` and `ip` (root or user namespaces) and python3 with pylsl and mne_lsl.

mod common;

use std::path::Path;

use common::Loopback;
use serde_json::Value;

const SUBJECTS: usize = 10;

/// Runs integration-tests/lsl/lab_network.py in a fresh namespace; its JSON report and the
/// stderr of the device publisher and of the heloflow run.
fn lab_session(loopback: Loopback, lsl_config: Option<&Path>) -> (Value, String, String) {
    common::python("pylsl, mne_lsl", &common::lsl_config());
    let dir = tempfile::tempdir().unwrap();
    let python = String::from_utf8(
        std::process::Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 runs")
            .stdout,
    )
    .unwrap();
    let script = common::root().join("integration-tests/lsl/lab_network.py");
    let pipeline = common::pipeline("lsl-lab.toml");
    let subjects = SUBJECTS.to_string();
    let mut command = common::in_network_namespace(
        loopback,
        Path::new(python.trim()),
        &[
            script.to_str().unwrap(),
            env!("CARGO_BIN_EXE_heloflow"),
            pipeline.to_str().unwrap(),
            &subjects,
            dir.path().to_str().unwrap(),
        ],
    );
    command.current_dir(dir.path());
    match lsl_config {
        Some(path) => command.env("LSLAPICFG", path),
        // liblsl's defaults: no LSLAPICFG, and no lsl_api.cfg in the working directory or HOME.
        None => command.env_remove("LSLAPICFG").env("HOME", dir.path()),
    };
    let output = command.output().expect("unshare runs");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(
        output.status.success(),
        "the lab session failed (it needs `unshare -n`: root or user namespaces): {stderr}"
    );
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)));
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    (report, read("simulate.err"), read("run.err"))
}

/// Every outlet resolved by pylsl, every emotion outlet (and each device stream of S01)
/// connected by MNE-LSL with the rate and channel types a subscriber expects.
fn check_every_stream_found(report: &Value) {
    assert_eq!(report["expected"], 5 * SUBJECTS);
    assert_eq!(report["pylsl_missing"], Value::Array(vec![]), "{report}");
    assert_eq!(report["run_exit"], 0, "{report}");
    assert_eq!(report["simulate_exit"], 0, "{report}");
    let mne = report["mne"].as_object().unwrap();
    assert_eq!(mne.len(), SUBJECTS + 4, "{report}");
    for (name, stream) in mne {
        assert!(
            stream.get("error").is_none(),
            "MNE-LSL could not connect to {name}: {stream}"
        );
        let (rate, kinds, channels) = match name.as_str() {
            n if n.starts_with("emotion-") => (1.0, "misc", 10),
            "sim.eeg-S01" => (300.0, "eeg", 18),
            "sim.eda-S01" => (4.0, "gsr", 1),
            "sim.ppg-S01" => (100.0, "misc", 1),
            "sim.face-S01" => (30.0, "misc", 19),
            other => panic!("unexpected stream {other}"),
        };
        assert_eq!(stream["sfreq"], rate, "{name}: {stream}");
        assert_eq!(
            stream["ch_types"],
            serde_json::json!([kinds]),
            "{name}: {stream}"
        );
        assert_eq!(stream["n_channels"], channels, "{name}: {stream}");
    }
    // heloflow's EEG is in microvolts, which MNE reads as volts scaled by 1e-6.
    assert_eq!(
        mne["sim.eeg-S01"]["unit_mul"],
        serde_json::json!([-6]),
        "{report}"
    );
}

#[test]
fn on_the_shipped_loopback_configuration_one_resolve_finds_all_50_streams() {
    let (report, simulate, run) = lab_session(Loopback::Unicast, Some(&common::lsl_config()));
    check_every_stream_found(&report);
    // Unicast over a 1024-port range: a single two-second resolve sees every outlet.
    assert_eq!(report["largest_single_resolve"], 5 * SUBJECTS, "{report}");
    for stderr in [&simulate, &run] {
        assert!(!stderr.contains("port range"), "no port warning: {stderr}");
    }
}

#[test]
fn on_liblsls_defaults_with_multicast_every_stream_is_found_and_the_full_range_is_named() {
    let (report, simulate, run) = lab_session(Loopback::Multicast, None);
    check_every_stream_found(&report);
    // 40 device outlets exhaust the default range of 32: heloflow says so at start and names
    // the outlets that landed outside it; multicast clients find them all the same.
    assert!(
        simulate.contains("this run needs 40 of liblsl's ports")
            && simulate.contains("PortRange = 64"),
        "{simulate}"
    );
    assert!(
        simulate.contains("outside liblsl's port range 16572-16603"),
        "{simulate}"
    );
    assert!(
        run.contains("liblsl's defaults (no lsl_api.cfg found)"),
        "{run}"
    );
}
