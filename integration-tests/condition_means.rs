//! `condition_means` end to end through the real binary: every row it writes equals a batch
//! recomputation (in this file) over the rows of its input streams that a jsonl sink wrote in the
//! same run, and the output is byte-identical for any worker count.
//!
//! - Simulated subjects through the demo's features and HeLo, averaged over the simulator's clips
//!   (start/end markers), HeLo's and the ground truth's mean emotion distributions side by side.
//! - A csv recording whose marker column carries late (`1@18.5`) and corrected (`retract:...`,
//!   re-inserted) markers, with onset epochs.
//! - systole 0.3.1's Task1 recording (real data, GPL-3.0, fetched from PyPI at test time into
//!   `target/recordings`) through `pipelines/systole-task1.toml`: heart rate, SCR and respiration
//!   per picture condition, 36 onsets each.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use common::{heloflow_ok, parse_jsonl, pipeline, root};
use serde_json::Value;

/// Event time in nanoseconds, from the jsonl sink's seconds (written with nine decimals).
type Nanos = i64;

fn nanos(seconds: f64) -> Nanos {
    (seconds * 1e9).round() as Nanos
}

/// How a `condition_means` operator in a test pipeline is configured, as the batch side needs it.
struct Spec {
    /// Condition name, start marker, end marker (start/end rule).
    conditions: Vec<(String, String, Option<String>)>,
    /// `epoch_s` in nanoseconds, for the epoch rule.
    epoch: Option<(Nanos, Nanos)>,
}

/// A stream's rows of one subject: time and values by channel label (NaN for null).
type StreamRows = Vec<(Nanos, BTreeMap<String, f64>)>;

/// Every row of a jsonl file, by stream and subject, in file order; string values (markers) are
/// kept as text.
struct Written {
    numeric: BTreeMap<(String, String), StreamRows>,
    markers: BTreeMap<(String, String), Vec<(Nanos, String)>>,
}

fn read_jsonl(path: &Path) -> Written {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut written = Written {
        numeric: BTreeMap::new(),
        markers: BTreeMap::new(),
    };
    for (row, line) in parse_jsonl(&text).into_iter().zip(text.lines()) {
        let key = (row.stream.clone(), row.subject.clone());
        let values = row.values.as_object().expect("keyed values");
        if let Some(Value::String(marker)) = values.values().next() {
            written
                .markers
                .entry(key)
                .or_default()
                .push((nanos(row.time), marker.clone()));
            continue;
        }
        let exact = exact_numbers(line);
        assert_eq!(exact.len(), values.len(), "{line}");
        written
            .numeric
            .entry(key)
            .or_default()
            .push((nanos(row.time), exact));
    }
    written
}

/// The numbers of a jsonl row's `values` object, parsed from the text by Rust's correctly rounded
/// `f64` parser (serde_json's default parser may be one unit in the last place off), null as NaN.
fn exact_numbers(line: &str) -> BTreeMap<String, f64> {
    let object = line
        .split_once("\"values\":{")
        .and_then(|(_, rest)| rest.strip_suffix("}}"))
        .unwrap_or_else(|| panic!("no values object in {line}"));
    let mut values = BTreeMap::new();
    for entry in object.split(",\"") {
        let (label, number) = entry
            .trim_start_matches('"')
            .split_once("\":")
            .unwrap_or_else(|| panic!("bad entry {entry:?}"));
        let number = if number == "null" {
            f64::NAN
        } else {
            number
                .parse()
                .unwrap_or_else(|_| panic!("bad number {number:?}"))
        };
        values.insert(label.to_string(), number);
    }
    values
}

/// The marker convention, written out again: `retract:` withdraws, `@<seconds>` states the time.
fn marker(raw: &str, arrival: Nanos) -> (String, Nanos, i64) {
    let (diff, rest) = match raw.strip_prefix("retract:") {
        Some(rest) => (-1, rest),
        None => (1, raw),
    };
    if let Some((text, seconds)) = rest.rsplit_once('@') {
        if let Ok(seconds) = seconds.parse::<f64>() {
            if seconds.is_finite() && seconds.abs() <= 9e9 {
                return (text.to_string(), nanos(seconds), diff);
            }
        }
    }
    (rest.to_string(), arrival, diff)
}

/// Each condition's intervals from the markers that arrived by `now`.
fn intervals(spec: &Spec, markers: &[(Nanos, String)], now: Nanos) -> Vec<Vec<(Nanos, Nanos)>> {
    let mut counts: BTreeMap<(String, Nanos), i64> = BTreeMap::new();
    for (arrival, raw) in markers.iter().filter(|m| m.0 <= now) {
        let (text, time, diff) = marker(raw, *arrival);
        *counts.entry((text, time)).or_default() += diff;
    }
    let present: Vec<&(String, Nanos)> = counts
        .iter()
        .filter(|(_, &n)| n > 0)
        .map(|(k, _)| k)
        .collect();
    spec.conditions
        .iter()
        .map(|(_, start, end)| {
            let mut edges: Vec<(Nanos, bool)> = present
                .iter()
                .filter_map(|(text, time)| {
                    if text == start {
                        Some((*time, true))
                    } else if spec.epoch.is_none() && Some(text) == end.as_ref() {
                        Some((*time, false))
                    } else {
                        None
                    }
                })
                .collect();
            // Ends before starts at one instant.
            edges.sort();
            let mut spans = Vec::new();
            match spec.epoch {
                Some((from, to)) => spans.extend(edges.iter().map(|(t, _)| (t + from, t + to))),
                None => {
                    let mut open = None;
                    for (time, is_start) in edges {
                        match (is_start, open) {
                            (true, None) => open = Some(time),
                            (false, Some(begin)) => {
                                if begin < time {
                                    spans.push((begin, time));
                                }
                                open = None;
                            }
                            _ => {}
                        }
                    }
                    spans.extend(open.map(|begin| (begin, Nanos::MAX)));
                }
            }
            spans
        })
        .collect()
}

/// The output row of one subject from everything that arrived by `now`, by label.
fn state_at(
    spec: &Spec,
    inputs: &[(&str, &StreamRows)],
    markers: &[(Nanos, String)],
    now: Nanos,
) -> BTreeMap<String, f64> {
    let spans = intervals(spec, markers, now);
    let mut row = BTreeMap::new();
    for ((condition, _, _), spans) in spec.conditions.iter().zip(&spans) {
        for (name, rows) in inputs {
            let prefix = if inputs.len() > 1 {
                format!("{condition}/{name}.")
            } else {
                format!("{condition}/")
            };
            let mut members: Vec<&(Nanos, BTreeMap<String, f64>)> = rows
                .iter()
                .filter(|(t, _)| *t <= now && spans.iter().any(|&(a, b)| a <= *t && *t < b))
                .collect();
            members.sort_by_key(|(t, _)| *t);
            row.insert(format!("{prefix}windows"), members.len() as f64);
            let labels = rows
                .first()
                .map(|r| r.1.keys().cloned().collect::<Vec<_>>());
            for label in labels.unwrap_or_default() {
                let finite: Vec<f64> = members
                    .iter()
                    .map(|(_, v)| v[&label])
                    .filter(|v| v.is_finite())
                    .collect();
                let mean = if finite.is_empty() {
                    f64::NAN
                } else {
                    finite.iter().fold(0.0, |s, v| s + v) / finite.len() as f64
                };
                row.insert(format!("{prefix}{label}"), mean);
            }
        }
    }
    row
}

fn same(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka == kb && va.to_bits() == vb.to_bits())
}

/// Every row the operator should have written for `subject`: one at each time something arrived
/// that changed the aggregates (the first when its first input row arrived).
fn batch_recomputation(
    spec: &Spec,
    inputs: &[(&str, &StreamRows)],
    markers: &[(Nanos, String)],
) -> StreamRows {
    let mut times: Vec<Nanos> = inputs
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|r| r.0))
        .chain(markers.iter().map(|m| m.0))
        .collect();
    times.sort_unstable();
    times.dedup();
    let mut out: StreamRows = Vec::new();
    for now in times {
        let row = state_at(spec, inputs, markers, now);
        if out.last().is_none_or(|(_, last)| !same(last, &row)) {
            out.push((now, row));
        }
    }
    out
}

/// Checks the operator's rows of every subject against the batch recomputation, each value to
/// within `tolerance` relative to its magnitude (at least 1); returns how many rows were compared.
fn check_against_batch(
    written: &Written,
    output: &str,
    inputs: &[&str],
    markers: &str,
    spec: &Spec,
    tolerance: f64,
) -> usize {
    let subjects: Vec<String> = written
        .numeric
        .keys()
        .filter(|(stream, _)| stream == output)
        .map(|(_, subject)| subject.clone())
        .collect();
    assert!(!subjects.is_empty(), "no `{output}` rows");
    let empty = Vec::new();
    let no_markers = Vec::new();
    let mut compared = 0;
    for subject in &subjects {
        let rows: Vec<(&str, &StreamRows)> = inputs
            .iter()
            .map(|&name| {
                let rows = written.numeric.get(&(name.to_string(), subject.clone()));
                (name, rows.unwrap_or(&empty))
            })
            .collect();
        let subject_markers = written
            .markers
            .get(&(markers.to_string(), subject.clone()))
            .unwrap_or(&no_markers);
        let expected = batch_recomputation(spec, &rows, subject_markers);
        let actual = &written.numeric[&(output.to_string(), subject.clone())];
        let times = |rows: &StreamRows| rows.iter().map(|r| r.0).collect::<Vec<_>>();
        assert_eq!(times(actual), times(&expected), "row times of {subject}");
        for ((time, got), (_, want)) in actual.iter().zip(&expected) {
            assert_eq!(
                got.keys().collect::<Vec<_>>(),
                want.keys().collect::<Vec<_>>(),
                "labels at {time}"
            );
            for (label, value) in got {
                let expected = want[label];
                let close = (value.is_nan() && expected.is_nan())
                    || (value - expected).abs() <= tolerance * expected.abs().max(1.0);
                assert!(
                    close,
                    "{subject} at {time} ns, `{label}`: {value} against the batch's {expected}"
                );
            }
            compared += 1;
        }
    }
    compared
}

/// Runs `pipeline` in `dir` with `-w workers` and returns what the sink wrote to `output`.
fn run(dir: &Path, pipeline: &Path, workers: usize, output: &str) -> Vec<u8> {
    let _ = fs::remove_dir_all(dir.join("out"));
    heloflow_ok(
        dir,
        &[
            "run",
            pipeline.to_str().unwrap(),
            "-w",
            &workers.to_string(),
            "--status",
            "off",
        ],
    );
    fs::read(dir.join(output)).unwrap()
}

fn clip_spec(clips: usize) -> Spec {
    Spec {
        conditions: (1..=clips)
            .map(|n| {
                let name = format!("clip_{n:02}");
                (
                    name.clone(),
                    format!("stimulus_start:{name}"),
                    Some(format!("stimulus_end:{name}")),
                )
            })
            .collect(),
        epoch: None,
    }
}

#[test]
fn simulated_clips_through_helo_match_a_batch_recomputation_for_any_worker_count() {
    let dir = tempfile::tempdir().unwrap();
    let clips: Vec<String> = (1..=30).map(|n| format!("\"clip_{n:02}\"")).collect();
    let text = format!(
        r#"[sources.sim]
kind = "simulator"
seed = 11
subjects = 3
streams = ["eeg", "eda", "ppg", "face", "emotion", "markers"]
duration_s = 150

[operators.eeg_de]
kind = "eeg_de"
inputs = ["sim.eeg"]

[operators.gsr_features]
kind = "gsr_features"
inputs = ["sim.eda"]

[operators.ppg_features]
kind = "ppg_features"
inputs = ["sim.ppg"]

[operators.face_features]
kind = "face_features"
inputs = ["sim.face"]

[operators.helo]
kind = "helo"
inputs = ["eeg_de", "gsr_features", "ppg_features", "face_features"]
model = {model:?}

[operators.truth]
kind = "window_stats"
inputs = ["sim.emotion"]
stats = ["mean"]

[operators.by_clip]
kind = "condition_means"
inputs = ["helo", "truth", "sim.markers"]
conditions = [{clips}]
start = "stimulus_start:{{condition}}"
end = "stimulus_end:{{condition}}"

[sinks.rows]
kind = "jsonl"
inputs = ["helo", "truth", "sim.markers", "by_clip"]
path = "out/rows.jsonl"
"#,
        model = root()
            .join("plugins/helo/model/helo-sim.json")
            .display()
            .to_string(),
        clips = clips.join(", "),
    );
    let file = dir.path().join("clips.toml");
    fs::write(&file, text).unwrap();
    let one = run(dir.path(), &file, 1, "out/rows.jsonl");
    for workers in [2, 4] {
        let other = run(dir.path(), &file, workers, "out/rows.jsonl");
        assert!(one == other, "-w 1 and -w {workers} wrote different rows");
    }
    let written = read_jsonl(&dir.path().join("out/rows.jsonl"));
    // HeLo's and the truth's values are float32: the jsonl sink rounds them, the operator does not.
    let compared = check_against_batch(
        &written,
        "by_clip",
        &["helo", "truth"],
        "sim.markers",
        &clip_spec(30),
        1e-6,
    );
    // Each subject saw several clips, and their means are distributions.
    let mut clips_seen = 0;
    for ((stream, subject), rows) in &written.numeric {
        if stream != "by_clip" {
            continue;
        }
        let last = &rows.last().unwrap().1;
        for n in 1..=30 {
            let windows = last[&format!("clip_{n:02}/helo.windows")];
            if windows > 0.0 {
                clips_seen += 1;
                let total: f64 = last
                    .iter()
                    .filter(|(k, _)| {
                        k.starts_with(&format!("clip_{n:02}/truth.")) && !k.ends_with("windows")
                    })
                    .map(|(_, v)| v)
                    .sum();
                assert!((total - 1.0).abs() < 1e-4, "{subject} clip {n}: {total}");
            }
        }
    }
    assert!(clips_seen >= 6, "only {clips_seen} clips with windows");
    assert!(compared > 3 * 60, "only {compared} rows");
}

/// A 4 Hz signal for two subjects whose marker column says things late and corrects them.
fn late_marker_csv() -> String {
    let events: BTreeMap<(&str, u32), &str> = [
        (("S01", 40), "1"),               // neutral onset at 10 s
        (("S01", 100), "2"),              // disgust onset at 25 s
        (("S01", 160), "1@18.5"),         // at 40 s: a neutral onset happened at 18.5 s
        (("S01", 220), "retract:2@25"),   // at 55 s: the onset at 25 s was wrong...
        (("S01", 240), "2@27"),           // ...at 60 s: it was at 27 s
        (("S01", 280), "retract:1@18.5"), // retracted at 70 s, re-inserted at 75 s
        (("S01", 300), "1@18.5"),
        (("S01", 320), "stimulus_start:x@3"), // unrelated
        (("S01", 340), "retract:2@90"),       // a retraction before its marker cancels it
        (("S01", 360), "2"),
        (("S02", 20), "2"),
        (("S02", 120), "1@12"),
        (("S02", 200), "retract:1@12"),
    ]
    .into_iter()
    .collect();
    let mut text = String::from("timestamp,subject,EDA,event\n");
    for i in 0..400u32 {
        for subject in ["S01", "S02"] {
            let value = 5.0 + (i as f64 * 0.37).sin() + if subject == "S02" { 2.0 } else { 0.0 };
            let event = events.get(&(subject, i)).copied().unwrap_or("");
            text.push_str(&format!("{},{subject},{value},{event}\n", i as f64 / 4.0));
        }
    }
    text
}

#[test]
fn late_and_corrected_markers_in_a_recording_match_a_batch_recomputation() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("session.csv"), late_marker_csv()).unwrap();
    let file = dir.path().join("late.toml");
    fs::write(
        &file,
        r#"[sources.rec]
kind = "csv"
path = "session.csv"
modality = "eda"
unit = "uS"
channels = ["EDA"]
markers = "event"
chunk_s = 0.5

[operators.stats]
kind = "window_stats"
inputs = ["rec.eda"]
window_s = 2
hop_s = 1
stats = ["mean", "max"]

[operators.pictures]
kind = "condition_means"
inputs = ["rec.markers", "stats"]
conditions = { neutral = "1", disgust = "2" }
epoch_s = [0, 8]

[sinks.rows]
kind = "jsonl"
inputs = ["stats", "rec.markers", "pictures"]
path = "out/rows.jsonl"
"#,
    )
    .unwrap();
    let one = run(dir.path(), &file, 1, "out/rows.jsonl");
    for workers in [2, 4] {
        let other = run(dir.path(), &file, workers, "out/rows.jsonl");
        assert!(one == other, "-w 1 and -w {workers} wrote different rows");
    }
    let written = read_jsonl(&dir.path().join("out/rows.jsonl"));
    let spec = Spec {
        conditions: vec![
            ("neutral".into(), "1".into(), None),
            ("disgust".into(), "2".into(), None),
        ],
        epoch: Some((0, nanos(8.0))),
    };
    let compared = check_against_batch(&written, "pictures", &["stats"], "rec.markers", &spec, 0.0);
    assert!(compared > 8, "only {compared} rows");

    // What the corrections did: S01's neutral onsets at 10 and 18.5 s (8 windows each), its
    // disgust onset moved from 25 to 27 s, and the onset at 90 s cancelled by the retraction
    // before it.
    let s01 = &written.numeric[&("pictures".to_string(), "S01".to_string())];
    let at = |time: f64| &s01.iter().rev().find(|(t, _)| *t <= nanos(time)).unwrap().1;
    assert_eq!(at(39.0)["neutral/windows"], 8.0);
    assert_eq!(
        at(40.0)["neutral/windows"],
        16.0,
        "the late marker claims earlier windows"
    );
    assert_eq!(at(54.0)["disgust/windows"], 8.0);
    assert_eq!(at(55.0)["disgust/windows"], 0.0, "retracted");
    assert!(at(55.0)["disgust/EDA_mean"].is_nan());
    assert_eq!(at(60.0)["disgust/windows"], 8.0, "re-inserted at 27 s");
    assert_eq!(at(70.0)["neutral/windows"], 8.0);
    assert_eq!(at(100.0)["neutral/windows"], 16.0);
    assert_eq!(
        at(100.0)["disgust/windows"],
        8.0,
        "the onset at 90 s is cancelled"
    );
    let s02 = &written.numeric[&("pictures".to_string(), "S02".to_string())];
    let last = &s02.last().unwrap().1;
    assert_eq!(
        (last["neutral/windows"], last["disgust/windows"]),
        (0.0, 8.0)
    );
}

#[test]
fn systole_task1_condition_means_match_a_batch_computation_over_36_onsets_each() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("target/recordings/systole-task1.csv");
    let convert = Command::new("python3")
        .arg(root().join("fixtures/physio/systole_task1_csv.py"))
        .arg(&csv)
        .arg("--cache")
        .arg(root().join("target/recordings"))
        .output()
        .expect("python3 runs (./scripts/test puts .venv/bin first on PATH)");
    assert!(
        convert.status.success(),
        "systole_task1_csv.py failed (it needs PyPI once to fetch systole 0.3.1 into \
         target/recordings, and numpy): {}",
        String::from_utf8_lossy(&convert.stderr)
    );
    let file = pipeline("systole-task1.toml");
    run(dir.path(), &file, 1, "out/systole-task1-means.jsonl");
    let mut written = read_jsonl(&dir.path().join("out/systole-task1-features.jsonl"));
    let means = read_jsonl(&dir.path().join("out/systole-task1-means.jsonl"));
    written.numeric.extend(means.numeric);

    let markers = &written.markers[&("ecg.markers".to_string(), "task1".to_string())];
    let onsets = |code: &str| markers.iter().filter(|(_, m)| m == code).count();
    assert_eq!((onsets("1"), onsets("2")), (36, 36), "onsets per condition");
    assert_eq!(markers.len(), 72);

    let spec = Spec {
        conditions: vec![
            ("neutral".into(), "1".into(), None),
            ("disgust".into(), "2".into(), None),
        ],
        epoch: Some((nanos(10.0), nanos(10.5))),
    };
    let inputs = ["heart", "scr", "breathing"];
    check_against_batch(&written, "pictures", &inputs, "ecg.markers", &spec, 0.0);

    let rows = &written.numeric[&("pictures".to_string(), "task1".to_string())];
    let last = &rows.last().unwrap().1;
    for condition in ["neutral", "disgust"] {
        for input in inputs {
            assert_eq!(last[&format!("{condition}/{input}.windows")], 36.0);
        }
        let value = |label: &str| last[&format!("{condition}/{label}")];
        let heart_rate = value("heart.heart_rate");
        assert!(
            (50.0..110.0).contains(&heart_rate),
            "{condition}: {heart_rate} bpm"
        );
        assert!(value("scr.scr_count") > 0.0, "{condition}: no SCRs");
        let breathing = value("breathing.respiration_rate");
        assert!(
            (5.0..40.0).contains(&breathing),
            "{condition}: {breathing}/min"
        );
    }
}
