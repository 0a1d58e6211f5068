//! Every numeric option of every source, operator and sink kind, drawn from extremes (0, negative,
//! NaN, infinities, 1e-12, 1e300, integer limits) and ordinary values: each drawn pipeline is
//! either refused by validation with an error located in the component, or runs a short simulated
//! input to completion (stopped like Ctrl-C when it would run longer) without a panic.
//!
//! The options come from [`NUMERIC`]; `the_option_table_covers_every_registered_kind` proves it
//! complete against the kinds the registries declare, by asking each kind which options it reads.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use heloflow::operators::OPERATOR_KINDS;
use heloflow::pipeline;
use heloflow::runtime::status::StatusMode;
use heloflow::runtime::{self, RunOptions};
use heloflow::sinks::{SinkConfig, SINK_KINDS};
use heloflow::sources::{SourceConfig, SOURCE_KINDS};
use proptest::prelude::*;

/// Drawn pipelines refused by validation and accepted ones run, so far (to prove both happen).
static REFUSALS: AtomicUsize = AtomicUsize::new(0);
static RUNS: AtomicUsize = AtomicUsize::new(0);

/// A numeric option: section, kind, key, and the line that sets it (`{}` is the value).
struct NumericOption {
    section: &'static str,
    kind: &'static str,
    key: &'static str,
    line: &'static str,
}

const fn numeric(
    section: &'static str,
    kind: &'static str,
    key: &'static str,
    line: &'static str,
) -> NumericOption {
    NumericOption {
        section,
        kind,
        key,
        line,
    }
}

/// Every numeric option (a number, an integer, or a number inside a list or table).
const NUMERIC: &[NumericOption] = &[
    numeric("sources", "simulator", "seed", "seed = {}"),
    numeric("sources", "simulator", "subjects", "subjects = {}"),
    numeric("sources", "simulator", "start_s", "start_s = {}"),
    numeric("sources", "simulator", "duration_s", "duration_s = {}"),
    numeric("sources", "simulator", "chunk_s", "chunk_s = {}"),
    numeric(
        "sources",
        "simulator",
        "queue",
        "queue = {{ capacity = {} }}",
    ),
    numeric("sources", "csv", "time_scale", "time_scale = {}"),
    numeric("sources", "csv", "start_s", "start_s = {}"),
    numeric("sources", "csv", "rate", "rate = {}"),
    numeric("sources", "csv", "chunk_s", "chunk_s = {}"),
    numeric("sources", "csv", "speed", "speed = {}"),
    numeric("sources", "csv", "queue", "queue = {{ capacity = {} }}"),
    numeric("sources", "xdf", "chunk_s", "chunk_s = {}"),
    numeric("sources", "xdf", "speed", "speed = {}"),
    numeric("sources", "xdf", "rate", "rate = {}"),
    numeric("sources", "xdf", "channels", "channels = {}"),
    numeric("sources", "xdf", "queue", "queue = {{ capacity = {} }}"),
    numeric("sources", "lsl", "rate", "rate = {}"),
    numeric("sources", "lsl", "channels", "channels = {}"),
    numeric("sources", "lsl", "min_streams", "min_streams = {}"),
    numeric("sources", "lsl", "timeout_s", "timeout_s = {}"),
    numeric("sources", "lsl", "stall_timeout_s", "stall_timeout_s = {}"),
    numeric("sources", "lsl", "lateness_s", "lateness_s = {}"),
    numeric("sources", "lsl", "clock_refresh_s", "clock_refresh_s = {}"),
    numeric("sources", "lsl", "queue", "queue = {{ capacity = {} }}"),
    numeric(
        "operators",
        "band_power",
        "bands",
        "bands = {{ alpha = [{}, 14] }}",
    ),
    numeric(
        "operators",
        "band_power",
        "nperseg",
        "method = \"welch\"\nnperseg = {}",
    ),
    numeric(
        "operators",
        "band_power",
        "noverlap",
        "method = \"welch\"\nnperseg = 100\nnoverlap = {}",
    ),
    numeric(
        "operators",
        "condition_means",
        "epoch_s",
        "epoch_s = [{}, 6]",
    ),
    numeric(
        "operators",
        "condition_means",
        "epoch_s",
        "epoch_s = [-2, {}]",
    ),
    numeric("operators", "filter", "order", "order = {}"),
    numeric("operators", "filter", "cutoff_hz", "cutoff_hz = {}"),
    numeric("operators", "filter", "q", "q = {}"),
    numeric(
        "operators",
        "face_features",
        "min_confidence",
        "min_confidence = {}",
    ),
    numeric("operators", "helo", "threads", "threads = {}"),
    numeric("operators", "onnx", "threads", "threads = {}"),
    numeric("operators", "normalize", "warmup_s", "warmup_s = {}"),
    numeric("operators", "resample", "rate_hz", "rate_hz = {}"),
    numeric("operators", "resample", "order", "order = {}"),
    numeric("operators", "resample", "cutoff_ratio", "cutoff_ratio = {}"),
    numeric("sinks", "lsl", "linger_s", "linger_s = {}"),
    numeric(
        "sinks",
        "lsl",
        "event_codes",
        "event_codes = {{ \"stimulus_start:*\" = {} }}",
    ),
];

/// Windowed operators read `window_s` and `hop_s`; physiological ones also `max_invalid`, `flat_s`.
const WINDOWED: &[&str] = &[
    "activity",
    "band_power",
    "eda_components",
    "eeg_de",
    "face_features",
    "gsr_features",
    "heart_rate_variability",
    "ppg_features",
    "pulse",
    "respiration",
    "temperature_slope",
    "window_stats",
];

/// Physiological feature operators (the extra options of `PhysioConfig`).
const PHYSIO: &[&str] = &[
    "activity",
    "eda_components",
    "heart_rate_variability",
    "pulse",
    "respiration",
    "temperature_slope",
];

/// Every numeric option, the window options of windowed operators included.
fn all_numeric() -> Vec<NumericOption> {
    let mut all: Vec<NumericOption> = NUMERIC
        .iter()
        .map(|o| numeric(o.section, o.kind, o.key, o.line))
        .collect();
    for kind in WINDOWED {
        all.push(numeric("operators", kind, "window_s", "window_s = {}"));
        all.push(numeric("operators", kind, "hop_s", "hop_s = {}"));
    }
    for kind in PHYSIO {
        all.push(numeric(
            "operators",
            kind,
            "max_invalid",
            "max_invalid = {}",
        ));
        all.push(numeric("operators", kind, "flat_s", "flat_s = {}"));
    }
    all
}

/// Options of each kind that hold no number (names, paths, choices, flags, labels).
const NOT_NUMERIC: &[(&str, &str, &[&str])] = &[
    ("sources", "simulator", &["streams", "realtime"]),
    (
        "sources",
        "csv",
        &[
            "path",
            "modality",
            "unit",
            "time_column",
            "channels",
            "subject",
            "subject_column",
            "markers",
            "delimiter",
        ],
    ),
    (
        "sources",
        "xdf",
        &[
            "path",
            "predicate",
            "name",
            "type",
            "source_id",
            "hostname",
            "subject_from",
            "subjects",
            "streams",
            "modality",
            "unit",
            "format",
            "dejitter",
            "handle_clock_resets",
            "synchronize_clocks",
        ],
    ),
    (
        "sources",
        "lsl",
        &[
            "predicate",
            "name",
            "type",
            "source_id",
            "hostname",
            "subject_from",
            "subjects",
            "modality",
            "unit",
            "format",
            "on_stall",
            "on_unit_mismatch",
            "dejitter",
            "expected_next",
        ],
    ),
    ("operators", "band_power", &["log", "method", "detrend"]),
    (
        "operators",
        "condition_means",
        &["conditions", "start", "end"],
    ),
    ("operators", "eeg_de", &["quality"]),
    ("operators", "face_features", &["quality"]),
    (
        "operators",
        "filter",
        &["type", "zero_phase", "after_gap", "initial"],
    ),
    ("operators", "gsr_features", &["quality"]),
    ("operators", "ppg_features", &["quality", "bandpass"]),
    (
        "operators",
        "helo",
        &[
            "model",
            "execution_provider",
            "fallback",
            "library",
            "profile",
        ],
    ),
    (
        "operators",
        "onnx",
        &[
            "model",
            "execution_provider",
            "fallback",
            "library",
            "profile",
        ],
    ),
    ("operators", "join", &["missing", "coverage", "prefix"]),
    ("operators", "rereference", &["channels"]),
    ("operators", "select", &["channels"]),
    ("operators", "window_stats", &["stats", "empty"]),
    ("sinks", "csv", &["path"]),
    ("sinks", "jsonl", &["path", "layout"]),
    ("sinks", "xdf", &["path", "bids", "overwrite"]),
    (
        "sinks",
        "lsl",
        &["layout", "name", "type", "source_id", "model", "subjects"],
    ),
];

/// The directory the runs write into, made once per test process.
fn workdir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        std::env::set_var(
            "LSLAPICFG",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/lsl/lsl_api.cfg"),
        );
        let dir = tempfile::tempdir().unwrap();
        let csv: String = (0..8).map(|i| format!("{},{}\n", i as f64 * 0.25, i)).collect();
        std::fs::write(dir.path().join("in.csv"), format!("timestamp,EDA\n{csv}")).unwrap();
        let xdf = dir.path().join("in.xdf");
        let text = format!(
            "[sources.sim]\nkind = \"simulator\"\nstreams = [\"temp\"]\nduration_s = 2\n\n[sinks.rec]\nkind = \"xdf\"\ninputs = [\"sim.temp\"]\npath = {:?}\n",
            xdf.display().to_string()
        );
        let recording = pipeline::parse("record.toml", &text).unwrap();
        run_briefly(&recording).unwrap();
        dir
    })
    .path()
}

/// A fresh output path for one run.
fn out_path(extension: &str) -> String {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    workdir()
        .join(format!("out-{n}.{extension}"))
        .display()
        .to_string()
}

fn model_manifest() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(heloflow::operators::DEFAULT_HELO_MANIFEST)
        .display()
        .to_string()
}

/// The simulator stream an operator of `kind` reads, and the options it needs.
fn operator_input(kind: &str) -> (&'static str, String) {
    match kind {
        "activity" => ("accel", String::new()),
        "band_power" | "eeg_de" | "rereference" => ("eeg", String::new()),
        "filter" => ("eeg", "type = \"lowpass\"\ncutoff_hz = 10\n".into()),
        "resample" => ("eeg", "rate_hz = 100\n".into()),
        "select" => ("eeg", "channels = [\"Fp1\"]\n".into()),
        "eda_components" | "gsr_features" | "normalize" => ("eda", String::new()),
        "face_features" => ("face", String::new()),
        "heart_rate_variability" => ("ecg", String::new()),
        "ppg_features" | "pulse" => ("ppg", String::new()),
        "respiration" => ("resp", String::new()),
        "temperature_slope" => ("temp", String::new()),
        "window_stats" => ("emotion", "stats = [\"mean\"]\n".into()),
        "condition_means" => (
            "emotion",
            "conditions = [\"clip_01\", \"clip_02\"]\nstart = \"stimulus_start:{condition}\"\nepoch_s = [0, 6]\n".into(),
        ),
        other => panic!("no input for operator kind {other}"),
    }
}

/// Four HeLo input feature operators, as in the demo pipeline.
const HELO_INPUTS: &str = "[operators.eeg_de]\nkind = \"eeg_de\"\ninputs = [\"sim.eeg\"]\n\n[operators.gsr]\nkind = \"gsr_features\"\ninputs = [\"sim.eda\"]\n\n[operators.ppg]\nkind = \"ppg_features\"\ninputs = [\"sim.ppg\"]\n\n[operators.face]\nkind = \"face_features\"\ninputs = [\"sim.face\"]\n\n";

/// A small valid pipeline around one component of `section`/`kind`, whose table holds `extra`
/// (option lines) last; returns the text and the component's header.
fn pipeline_with(section: &str, kind: &str, extra: &str) -> (String, String) {
    let jsonl = |inputs: &str| {
        format!(
            "[sinks.out]\nkind = \"jsonl\"\ninputs = [{inputs}]\npath = {:?}\n",
            out_path("jsonl")
        )
    };
    let sim = |streams: &str| {
        format!("[sources.sim]\nkind = \"simulator\"\nstreams = [{streams}]\nduration_s = 1\n\n")
    };
    match section {
        "sources" => {
            let header = "[sources.src]".to_string();
            let (options, output) = match kind {
                "simulator" => (
                    "streams = [\"temp\"]\nduration_s = 1\n".to_string(),
                    "src.temp",
                ),
                "csv" => (
                    format!(
                        "path = {:?}\nmodality = \"eda\"\n",
                        workdir().join("in.csv").display().to_string()
                    ),
                    "src.eda",
                ),
                "xdf" => (
                    format!(
                        "path = {:?}\n",
                        workdir().join("in.xdf").display().to_string()
                    ),
                    "src.temp",
                ),
                "lsl" => (
                    "type = \"EEG\"\nchannels = [\"C3\", \"C4\"]\nrate = 256\ntimeout_s = 0.1\n"
                        .to_string(),
                    "src.eeg",
                ),
                other => panic!("no pipeline for source kind {other}"),
            };
            let text = format!(
                "{header}\nkind = \"{kind}\"\n{}{extra}\n{}",
                without_keys(&options, extra),
                jsonl(&format!("\"{output}\""))
            );
            (text, header)
        }
        "operators" => {
            let header = "[operators.op]".to_string();
            let text = match kind {
                "helo" | "onnx" => format!(
                    "{}{HELO_INPUTS}{header}\nkind = \"{kind}\"\ninputs = [\"eeg_de\", \"gsr\", \"ppg\", \"face\"]\nmodel = {:?}\n{extra}\n{}",
                    sim("\"eeg\", \"eda\", \"ppg\", \"face\""),
                    model_manifest(),
                    jsonl("\"op\"")
                ),
                "join" => format!(
                    "{}[operators.a]\nkind = \"window_stats\"\ninputs = [\"sim.temp\"]\nstats = [\"mean\"]\n\n[operators.b]\nkind = \"window_stats\"\ninputs = [\"sim.eda\"]\nstats = [\"mean\"]\n\n{header}\nkind = \"join\"\ninputs = [\"a\", \"b\"]\nprefix = true\n{extra}\n{}",
                    sim("\"temp\", \"eda\""),
                    jsonl("\"op\"")
                ),
                "condition_means" => {
                    let (stream, options) = operator_input(kind);
                    format!(
                        "{}{header}\nkind = \"{kind}\"\ninputs = [\"sim.{stream}\", \"sim.markers\"]\n{}{extra}\n{}",
                        sim(&format!("\"{stream}\", \"markers\"")),
                        without_keys(&options, extra),
                        jsonl("\"op\"")
                    )
                }
                _ => {
                    let (stream, options) = operator_input(kind);
                    format!(
                        "{}{header}\nkind = \"{kind}\"\ninputs = [\"sim.{stream}\"]\n{}{extra}\n{}",
                        sim(&format!("\"{stream}\"")),
                        without_keys(&options, extra),
                        jsonl("\"op\"")
                    )
                }
            };
            (text, header)
        }
        "sinks" => {
            let header = "[sinks.snk]".to_string();
            let (options, inputs) = match kind {
                "csv" | "jsonl" | "xdf" => {
                    (format!("path = {:?}\n", out_path(kind)), "\"sim.temp\"")
                }
                // Markers too, for `event_codes`.
                "lsl" => (
                    "name = \"option-ranges-{stream}-{subject}\"\n".to_string(),
                    "\"sim.temp\", \"sim.markers\"",
                ),
                other => panic!("no pipeline for sink kind {other}"),
            };
            let text = format!(
                "{}{header}\nkind = \"{kind}\"\ninputs = [{inputs}]\n{options}{extra}\n",
                sim("\"temp\", \"markers\"")
            );
            (text, header)
        }
        other => panic!("no section {other}"),
    }
}

/// `options` without the lines setting a key that `extra` sets.
fn without_keys(options: &str, extra: &str) -> String {
    let key = |line: &str| line.split('=').next().unwrap_or("").trim().to_string();
    let set: Vec<String> = extra.lines().map(key).collect();
    options
        .lines()
        .filter(|line| !set.contains(&key(line)))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Runs `pipeline` in-process; asks it to stop (like Ctrl-C) after 3 s and fails when it has not
/// ended 5 s after that, or ended with an error.
fn run_briefly(pipeline: &pipeline::Pipeline) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    let (done, finished) = crossbeam_channel::bounded(1);
    let running = pipeline.clone();
    let run_stop = stop.clone();
    std::thread::spawn(move || {
        let options = RunOptions {
            workers: 1,
            status: StatusMode::Off,
            ..RunOptions::default()
        };
        let _ = done.send(runtime::run(&running, &options, run_stop).map(|_| ()));
    });
    match finished.recv_timeout(Duration::from_secs(3)) {
        Ok(result) => return result,
        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
            return Err("the run panicked".to_string())
        }
        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
    }
    stop.store(true, Ordering::SeqCst);
    match finished.recv_timeout(Duration::from_secs(5)) {
        Ok(result) => result,
        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
            Err("the run panicked".to_string())
        }
        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
            Err("the run did not stop within 5 s of the stop request".to_string())
        }
    }
}

/// The lines of `text` holding the table that starts at `header` (1-based, inclusive).
fn table_lines(text: &str, header: &str) -> (usize, usize) {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| *l == header).unwrap();
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.starts_with('['))
        .map_or(lines.len(), |offset| start + 1 + offset);
    (start + 1, end)
}

/// A drawn value, as written in TOML.
fn value_strategy() -> impl Strategy<Value = String> {
    let extremes = prop::sample::select(vec![
        "0",
        "0.0",
        "-0.0",
        "-1",
        "1",
        "nan",
        "-nan",
        "inf",
        "-inf",
        "1e-12",
        "-1e-12",
        "1e-9",
        "1e300",
        "-1e300",
        "1e15",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551615",
        "4294967296",
        "65537",
        "10001",
        "0.5",
        "2",
        "3.5",
        "10",
        "100",
    ])
    .prop_map(str::to_string);
    prop_oneof![
        3 => extremes,
        1 => (-1e4f64..1e4).prop_map(|v| format!("{v:?}")),
        1 => (-20i32..20).prop_map(|e| format!("{:?}", 10f64.powi(e))),
        1 => (-1000i64..100_000).prop_map(|v| v.to_string()),
    ]
}

/// Checks one option at one value: refused with a located error in its component, or runs.
fn check(option: &NumericOption, value: &str) -> Result<(), String> {
    let line = option.line.replace("{}", value);
    let (text, header) = pipeline_with(option.section, option.kind, &format!("{line}\n"));
    let case = format!("{} {} `{line}`", option.section, option.kind);
    match pipeline::parse("case.toml", &text) {
        Err(diagnostics) => {
            REFUSALS.fetch_add(1, Ordering::Relaxed);
            let (first, last) = table_lines(&text, &header);
            if diagnostics.0.is_empty() {
                return Err(format!("{case}: refused without a diagnostic"));
            }
            let located = diagnostics
                .0
                .iter()
                .any(|d| (first..=last).contains(&d.line) && d.column >= 1);
            if located {
                Ok(())
            } else {
                Err(format!(
                    "{case}: refused, but not at lines {first}..={last}:\n{diagnostics}\n{text}"
                ))
            }
        }
        Ok(pipeline) => {
            if let Some(SourceConfig::Lsl(config)) = pipeline.sources.first().map(|s| &s.config) {
                // Without an outlet to read the run only waits: prove its times convert instead.
                let timing = config.timing();
                assert!(timing.stall_ns > 0 && timing.lateness_ns > 0, "{case}");
                return Ok(());
            }
            if let Some(SinkConfig::Lsl(config)) = pipeline.sinks.last().map(|s| &s.config) {
                // Outlets linger only for consumers, which a test run has none of.
                assert!(config.linger() <= Duration::from_secs(3600), "{case}");
            }
            RUNS.fetch_add(1, Ordering::Relaxed);
            run_briefly(&pipeline).map_err(|e| format!("{case}: accepted, but the run failed: {e}"))
        }
    }
}

/// The options a kind reads, from the list an unknown option's error gives.
fn options_read(section: &str, kind: &str) -> Vec<String> {
    let (text, header) = pipeline_with(section, kind, "zzzzzzzzzzzzzzzzzzzzzzzz = 1\n");
    let diagnostics = pipeline::parse("case.toml", &text).unwrap_err();
    let (first, last) = table_lines(&text, &header);
    let help = diagnostics
        .0
        .iter()
        .filter(|d| (first..=last).contains(&d.line))
        .find(|d| d.message.contains("unknown option `zzzz"))
        .and_then(|d| d.help.clone())
        .unwrap_or_else(|| panic!("{section} {kind}: no unknown-option error:\n{diagnostics}"));
    let listing = help.split("valid: ").nth(1).unwrap_or("");
    listing
        .split(", ")
        .map(|k| k.trim_matches('`').to_string())
        .filter(|k| !k.is_empty() && k != "kind" && k != "inputs")
        .collect()
}

#[test]
fn the_option_table_covers_every_registered_kind() {
    let sections = [
        ("sources", SOURCE_KINDS),
        ("operators", OPERATOR_KINDS),
        ("sinks", SINK_KINDS),
    ];
    let numeric_options = all_numeric();
    let mut problems = Vec::new();
    for (section, kinds) in sections {
        for kind in kinds {
            let read = options_read(section, kind);
            let listed: Vec<&str> = numeric_options
                .iter()
                .filter(|o| o.section == section && o.kind == *kind)
                .map(|o| o.key)
                .chain(
                    NOT_NUMERIC
                        .iter()
                        .filter(|(s, k, _)| *s == section && k == kind)
                        .flat_map(|(_, _, keys)| keys.iter().copied()),
                )
                .collect();
            let windowed = section == "operators" && WINDOWED.contains(kind);
            for key in &read {
                if windowed && key == "align" {
                    continue;
                }
                if !listed.contains(&key.as_str()) {
                    problems.push(format!("{section} {kind}: option `{key}` is in no table"));
                }
            }
            for key in &listed {
                if !read.iter().any(|r| r == key) {
                    problems.push(format!(
                        "{section} {kind}: `{key}` is not an option it reads"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn every_component_template_is_valid_and_runs() {
    let sections = [
        ("sources", SOURCE_KINDS),
        ("operators", OPERATOR_KINDS),
        ("sinks", SINK_KINDS),
    ];
    let mut failures = Vec::new();
    for (section, kinds) in sections {
        for kind in kinds {
            let (text, _) = pipeline_with(section, kind, "");
            match pipeline::parse("case.toml", &text) {
                Err(diagnostics) => failures.push(format!("{section} {kind}:\n{diagnostics}")),
                Ok(_) if section == "sources" && *kind == "lsl" => {}
                Ok(pipeline) => {
                    if let Err(e) = run_briefly(&pipeline) {
                        failures.push(format!("{section} {kind}: {e}"));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

#[test]
fn every_numeric_option_at_its_extremes_is_refused_or_runs() {
    let extremes = [
        "0",
        "-1",
        "nan",
        "inf",
        "-inf",
        "1e-12",
        "1e300",
        "-1e300",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551615",
    ];
    let mut failures = Vec::new();
    let (refused, ran) = (
        REFUSALS.load(Ordering::Relaxed),
        RUNS.load(Ordering::Relaxed),
    );
    for option in all_numeric() {
        for value in extremes {
            if let Err(failure) = check(&option, value) {
                failures.push(failure);
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
    let refused = REFUSALS.load(Ordering::Relaxed) - refused;
    let ran = RUNS.load(Ordering::Relaxed) - ran;
    assert!(refused > 300 && ran > 15, "refused {refused}, ran {ran}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn drawn_option_values_are_refused_or_run(
        index in 0..all_numeric().len(),
        value in value_strategy(),
    ) {
        let options = all_numeric();
        if let Err(failure) = check(&options[index], &value) {
            return Err(TestCaseError::fail(failure));
        }
    }
}
