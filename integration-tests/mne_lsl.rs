//! MNE-LSL as a lab uses it, against the heloflow binary, on the loopback-only liblsl configuration
//! (fixtures/lsl/lsl_api.cfg): `StreamLSL` connects to every numeric output and finds MNE's channel
//! types, units and rates; MNE-LSL's `PlayerLSL` (an `eeg` stream in volts) is refused when declared
//! in microvolts and converted on request; heloflow's event codes drive `EpochsStream`.
//!
//! Needs `python3` with MNE-LSL on PATH (`./scripts/test` installs requirements-dev.txt into .venv
//! and puts it first); a missing MNE-LSL fails these tests with a message saying so.

mod common;

use std::fs::File;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::Running;
use serde_json::Value;

/// One test at a time: every outlet and inlet on this machine shares liblsl's port range, and an
/// outlet outside it cannot be discovered.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A source_id prefix of this test process: concurrent test runs on one machine (other checkouts)
/// must not subscribe to each other's outlets.
fn prefix(test: &str) -> String {
    format!("heloflow-mne-{}-{test}", std::process::id())
}

/// `python3 integration-tests/lsl/mne_client.py args...`, with the loopback configuration.
fn mne_client(args: &[&str]) -> Command {
    let mut command = common::python("mne_lsl", &common::lsl_config());
    command
        .arg(common::root().join("integration-tests/lsl/mne_client.py"))
        .args(args);
    command
}

/// Starts `heloflow run p.toml` in `dir` (the pipeline written there first), output in files.
fn run_heloflow(dir: &Path, pipeline: &str, tag: &str) -> Running {
    std::fs::write(dir.join(format!("{tag}.toml")), pipeline).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_heloflow"))
        .args(["run", &format!("{tag}.toml"), "--status", "off"])
        .current_dir(dir)
        .env("LSLAPICFG", common::lsl_config())
        .stdout(File::create(dir.join(format!("{tag}.stdout"))).unwrap())
        .stderr(File::create(dir.join(format!("{tag}.stderr"))).unwrap())
        .spawn()
        .expect("the heloflow binary starts");
    Running(child)
}

fn stderr_of(dir: &Path, tag: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{tag}.stderr"))).unwrap_or_default()
}

/// Ctrl-C, then waits (at most 20 s) for the run to drain and exit; its stderr.
fn stop(mut run: Running, dir: &Path, tag: &str) -> String {
    let status = Command::new("kill")
        .args(["-INT", &run.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while run.0.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "heloflow ({tag}) did not stop; stderr:\n{}",
            stderr_of(dir, tag)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    stderr_of(dir, tag)
}

/// The client's JSON, or a failure with both sides' stderr.
fn client_json(output: &Output, heloflow_stderr: &str) -> Value {
    assert!(
        output.status.success(),
        "MNE-LSL client failed: {}\nheloflow stderr:\n{heloflow_stderr}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the client prints JSON")
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_str().expect("a string").to_string())
        .collect()
}

/// One simulated subject in real time with every signal kind, the DMER features, HeLo and the
/// ground truth; the `lsl` sink publishes `{inputs}`. Two runs split the outlets: written while
/// the shipped configuration's 32-port range let only about eight outlets per process be found;
/// its 1024 ports (issue 13, part 1) would hold them in one run.
const OUTLETS: &str = r#"
[pipeline]
name = "mne-outlets"

[sources.sim]
kind = "simulator"
seed = 7
subjects = 1
realtime = true
start_s = "now"
duration_s = 120
chunk_s = 0.05
streams = ["eeg", "ecg", "eda", "ppg", "resp", "temp", "face", "emotion", "markers"]

[operators.bands]
kind = "band_power"
inputs = ["sim.eeg"]
window_s = 1.0
hop_s = 0.5
log = true

[operators.eeg_de]
kind = "eeg_de"
inputs = ["sim.eeg"]

[operators.gsr]
kind = "gsr_features"
inputs = ["sim.eda"]

[operators.ppg]
kind = "ppg_features"
inputs = ["sim.ppg"]

[operators.face]
kind = "face_features"
inputs = ["sim.face"]

[operators.emotion]
kind = "helo"
inputs = ["eeg_de", "gsr", "ppg", "face"]

[operators.truth]
kind = "window_stats"
inputs = ["sim.emotion"]
stats = ["mean"]

[sinks.live]
kind = "lsl"
inputs = [{inputs}]
source_id = "{prefix}:{stream}:{subject}"
{extra}
"#;

/// Runs OUTLETS publishing `streams` and returns what MNE-LSL made of each outlet (by stream).
fn through_mne(dir: &Path, streams: &[&str], extra: &str, tag: &str) -> (Value, String) {
    let inputs: Vec<String> = streams.iter().map(|s| format!("\"{s}\"")).collect();
    let prefix = prefix("outlets");
    let pipeline = OUTLETS
        .replace("{inputs}", &inputs.join(", "))
        .replace("{extra}", extra)
        .replace("{prefix}", &prefix);
    let run = run_heloflow(dir, &pipeline, tag);
    let ids: Vec<String> = streams
        .iter()
        .map(|s| format!("{prefix}:{s}:S01"))
        .collect();
    let mut args = vec!["outlets"];
    args.extend(ids.iter().map(String::as_str));
    let output = mne_client(&args).output().expect("the client runs");
    let stderr = stop(run, dir, tag);
    let json = client_json(&output, &stderr);
    let by_stream = streams
        .iter()
        .zip(&ids)
        .map(|(s, id)| (s.to_string(), json[id].clone()))
        .collect();
    (Value::Object(by_stream), stderr)
}

#[test]
fn mne_lsl_reads_every_numeric_output_with_mne_types_units_and_rates() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let signals = [
        "sim.eeg",
        "sim.ecg",
        "sim.eda",
        "sim.ppg",
        "sim.resp",
        "sim.temp",
        "sim.markers",
    ];
    let codes = "event_codes = { \"stimulus_start:*\" = 1, \"stimulus_end:*\" = 2 }";
    let (got, stderr) = through_mne(dir.path(), &signals, codes, "signals");
    // Stream -> (MNE channel type, (FIFF unit, multiplier), rate, dtype). FIFF units: 107 V,
    // 110 S, 114 °C, -1 none. MNE-LSL parses voltage unit names only: EDA in microsiemens reads
    // as siemens (multiplier 0), as the README says.
    let want = [
        ("sim.eeg", "eeg", (107, -6), 300.0, "float32"),
        ("sim.ecg", "ecg", (107, -3), 700.0, "float32"),
        ("sim.eda", "gsr", (110, 0), 4.0, "float32"),
        ("sim.ppg", "misc", (-1, 0), 100.0, "float32"),
        ("sim.resp", "resp", (107, 0), 50.0, "float32"),
        ("sim.temp", "temperature", (114, 0), 4.0, "float32"),
        ("sim.markers", "stim", (107, 0), 0.0, "int32"),
    ];
    for (stream, kind, unit, rate, dtype) in want {
        let outlet = &got[stream];
        let types = strings(&outlet["ch_types"]);
        assert!(!types.is_empty(), "{stream}: {outlet}");
        assert!(types.iter().all(|t| t == kind), "{stream}: {types:?}");
        let units: Vec<(i64, i64)> = outlet["units"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| (u[0].as_i64().unwrap(), u[1].as_i64().unwrap()))
            .collect();
        assert!(units.iter().all(|u| *u == unit), "{stream}: {units:?}");
        assert_eq!(outlet["sfreq"].as_f64(), Some(rate), "{stream}");
        assert_eq!(outlet["dtype"], dtype, "{stream}");
        assert_eq!(outlet["model"], Value::Null, "{stream} is no model output");
        if rate > 0.0 {
            assert!(
                outlet["samples"].as_i64().unwrap() > 0,
                "{stream}: {outlet}"
            );
        }
    }
    assert_eq!(strings(&got["sim.eeg"]["ch_names"]).len(), 18);
    let events = &got["sim.markers"]["events"];
    assert_eq!(
        events,
        &serde_json::json!([
            {"code": "1", "name": "stimulus_start:*"},
            {"code": "2", "name": "stimulus_end:*"}
        ])
    );
    assert!(!stderr.contains("error"), "{stderr}");

    let derived = ["bands", "eeg_de", "gsr", "emotion", "truth"];
    let (got, stderr) = through_mne(dir.path(), &derived, "", "derived");
    for stream in derived {
        let outlet = &got[stream];
        let types = strings(&outlet["ch_types"]);
        assert!(
            !types.is_empty() && types.iter().all(|t| t == "misc"),
            "{stream}: derived channels must not read as signals: {types:?}"
        );
        assert!(
            outlet["samples"].as_i64().unwrap() > 0,
            "{stream}: {outlet}"
        );
    }
    assert_eq!(got["bands"]["sfreq"].as_f64(), Some(2.0));
    assert_eq!(strings(&got["bands"]["ch_names"]).len(), 18 * 5 + 1);
    assert_eq!(got["eeg_de"]["sfreq"].as_f64(), Some(1.0));
    // Only the model's output says which model made it, with what a subscriber needs.
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(common::root().join(heloflow::operators::DEFAULT_HELO_MANIFEST))
            .unwrap(),
    )
    .unwrap();
    let model = &got["emotion"]["model"];
    assert_eq!(model["name"], manifest["name"]);
    assert_eq!(model["version"], manifest["version"]);
    assert_eq!(model["sha256"], manifest["sha256"]);
    assert_eq!(model["labels"], manifest["labels"]);
    assert_eq!(
        strings(&got["emotion"]["ch_names"]),
        strings(&manifest["labels"])
    );
    let seconds = |v: &Value| v.as_str().and_then(|s| s.parse::<f64>().ok());
    assert_eq!(seconds(&model["window_s"]), manifest["window_s"].as_f64());
    assert_eq!(seconds(&model["hop_s"]), manifest["hop_s"].as_f64());
    for stream in ["bands", "eeg_de", "gsr", "truth"] {
        assert_eq!(got[stream]["model"], Value::Null, "{stream} has desc/model");
    }
    assert!(!stderr.contains("error"), "{stderr}");
}

/// MNE-LSL's player publishes `eeg` in volts; the pipeline asks for `EEG` in microvolts.
const PLAYER: &str = r#"
[pipeline]
name = "mne-player"

[sources.amp]
kind = "lsl"
type = "EEG"
source_id = "{prefix}-player"
channels = ["C3", "C4", "Cz"]
unit = "microvolts"
{convert}
rate = 100
format = "double64"
subjects = { "{prefix}-player" = "P01" }
timeout_s = 30

[sources.stim]
kind = "lsl"
type = "Markers"
source_id = "{prefix}-markers"
subjects = { "{prefix}-markers" = "P01" }
timeout_s = 30

[sinks.eeg]
kind = "lsl"
inputs = ["amp.eeg"]
source_id = "{prefix}:eeg:{subject}"

[sinks.events]
kind = "lsl"
inputs = ["stim.markers"]
source_id = "{prefix}:markers:{subject}"
event_codes = { "stimulus_start:*" = 1, "stimulus_end:*" = 2, "warmup" = 9 }
"#;

/// Runs a pipeline that must stop with an error within 40 s; its stderr.
fn refused_run(dir: &Path, pipeline: &str, tag: &str) -> String {
    let mut run = run_heloflow(dir, pipeline, tag);
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(status) = run.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "{tag}: the run must stop with an error; stderr:\n{}",
            stderr_of(dir, tag)
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = stderr_of(dir, tag);
    assert!(!status.success(), "{tag}: {stderr}");
    stderr
}

#[test]
fn a_volts_player_of_type_eeg_is_refused_as_microvolts_converted_on_request_and_epoched_on_event_codes(
) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let prefix = prefix("player");
    let player = PLAYER.replace("{prefix}", &prefix);
    // The refused runs open their outlets before their sources fail: under other source_ids, so
    // the client subscribes to the run that republishes.
    let refused_pipeline = player.replace(
        &format!("source_id = \"{prefix}:"),
        &format!("source_id = \"{prefix}-refused:"),
    );
    let client = Running(
        mne_client(&["player", &prefix, "30"])
            .stdout(Stdio::piped())
            .stderr(File::create(dir.path().join("client.stderr")).unwrap())
            .spawn()
            .expect("the client starts"),
    );
    let ready = Instant::now() + Duration::from_secs(120);
    while !std::fs::read_to_string(dir.path().join("client.stderr"))
        .unwrap_or_default()
        .contains("ready")
    {
        assert!(
            Instant::now() < ready,
            "the MNE-LSL player did not start within 120 s: {}",
            std::fs::read_to_string(dir.path().join("client.stderr")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // `type` matches any case; a type compared in `predicate` is exact, and the error says so.
    let exact = refused_pipeline
        .replace(
            "type = \"EEG\"\nsource_id",
            "predicate = \"type='EEG'\"\nmodality = \"eeg\"\nsource_id",
        )
        .replace("{convert}", "")
        .replacen("timeout_s = 30", "timeout_s = 3", 1);
    let stderr = refused_run(dir.path(), &exact, "exact");
    for needle in [
        format!("found 0 of 1 stream(s) matching [source_id='{prefix}-player' and (type='EEG')]"),
        format!("\"mne-player-eeg\" type=eeg source_id={prefix}-player"),
        "comparisons inside `predicate` are exact".to_string(),
        "the `type` option matches any case".to_string(),
    ] {
        assert!(stderr.contains(&needle), "missing {needle:?} in:\n{stderr}");
    }

    // Declared in microvolts without conversion: the run stops, saying why and what to do.
    let stderr = refused_run(
        dir.path(),
        &refused_pipeline.replace("{convert}", ""),
        "refused",
    );
    for needle in [
        "lsl source `amp`",
        "type=eeg",
        "its channel \"C3\" is in volts",
        "MNE-LSL's multiplier for volts",
        "unit = \"microvolts\"",
        "declare unit = \"volts\"",
        "on_unit_mismatch = \"convert\"",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }

    // With conversion: the lower-case `eeg` stream is matched by type = "EEG", republished in
    // microvolts, and the markers go out as codes MNE-LSL epochs on.
    let run = run_heloflow(
        dir.path(),
        &player.replace("{convert}", "on_unit_mismatch = \"convert\""),
        "converted",
    );
    let mut client = client;
    let deadline = Instant::now() + Duration::from_secs(120);
    while client.0.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the MNE-LSL client did not finish; heloflow stderr:\n{}\nclient stderr:\n{}",
            stderr_of(dir.path(), "converted"),
            stderr_of(dir.path(), "client")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let stderr = stop(run, dir.path(), "converted");
    let output = std::mem::replace(&mut client.0, Command::new("true").spawn().unwrap())
        .wait_with_output()
        .unwrap();
    let got = client_json(&output, &stderr);

    // What MNE-LSL's player published: type eeg, units as MNE's multipliers (volts).
    assert_eq!(got["player_stype"], "eeg");
    assert_eq!(strings(&got["player_units"]), ["0", "0", "0"]);
    assert!(
        stderr.contains(
            "its values are converted into microvolts (factors per channel: 1e6, 1e6, 1e6)"
        ),
        "{stderr}"
    );

    // heloflow's outlets as MNE reads them: EEG in microvolts; markers as stim codes.
    let eeg = &got["eeg"];
    assert_eq!(strings(&eeg["ch_types"]), ["eeg", "eeg", "eeg"]);
    assert_eq!(
        eeg["units"],
        serde_json::json!([[107, -6], [107, -6], [107, -6]])
    );
    assert_eq!(eeg["sfreq"].as_f64(), Some(100.0));
    let markers = &got["markers"];
    assert_eq!(strings(&markers["ch_types"]), ["stim"]);
    assert_eq!(markers["dtype"], "int32");
    assert_eq!(markers["sfreq"].as_f64(), Some(0.0));

    // Four coded markers (the uncoded "calibration" is counted, not published) reach MNE-LSL
    // with the sender's timestamps, and give four epochs.
    let sent: Vec<(f64, String)> = got["sent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s[0].as_f64().unwrap(), s[1].as_str().unwrap().to_string()))
        .filter(|(_, name)| name != "calibration")
        .collect();
    let received = got["received"].as_array().unwrap();
    assert_eq!(received.len(), 4, "{got}\nheloflow stderr:\n{stderr}");
    for ((t, name), got) in sent.iter().zip(received) {
        let code = if name.starts_with("stimulus_start") {
            1
        } else {
            2
        };
        assert_eq!(got[1].as_i64(), Some(code), "{name}");
        assert!(
            (got[0].as_f64().unwrap() - t).abs() < 1e-3,
            "{name}: {got} vs {t}"
        );
    }
    assert_eq!(
        got["n_epochs"].as_i64(),
        Some(4),
        "{got}\nheloflow stderr:\n{stderr}"
    );
    assert_eq!(got["epoch_events"], serde_json::json!([1, 2, 1, 2]));
    assert!(
        stderr.contains("1 marker(s) matched no name in `event_codes` and were not published: \"calibration\" x1"),
        "{stderr}"
    );
    // Each epoch is the player's ramp in microvolts: channel c holds 1000 c + sample index, one
    // microvolt per sample (a factor of 1e6 from volts); epochs start as far apart as their
    // markers were sent, to the sample.
    let epochs = got["epochs"].as_array().unwrap();
    let times = got["epoch_times"].as_array().unwrap();
    assert_eq!(epochs.len(), 4);
    let mut starts = Vec::new();
    for epoch in epochs {
        let channels: Vec<Vec<f64>> = epoch
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                c.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect()
            })
            .collect();
        assert_eq!(channels.len(), 3);
        for (c, values) in channels.iter().enumerate() {
            assert_eq!(values.len(), times.len());
            for (k, value) in values.iter().enumerate() {
                let want = channels[0][0] + 1000.0 * c as f64 + k as f64;
                assert!(
                    (value - want).abs() < 1e-6,
                    "channel {c} sample {k}: {value} vs {want}"
                );
            }
        }
        starts.push(channels[0][0]);
    }
    for k in 1..4 {
        let samples = (sent[k].0 - sent[0].0) * 100.0;
        assert!(
            (starts[k] - starts[0] - samples).abs() <= 1.0,
            "epoch {k} starts {} samples after the first, its marker {samples:.2} samples after",
            starts[k] - starts[0]
        );
    }
}
