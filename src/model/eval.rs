//! `heloflow eval`: scores a model on a recording with ground truth, beside baselines.
//!
//! The recording is JSON Lines as the `jsonl` sink writes them (e.g. from
//! `pipelines/helo-training.toml`): the model's input streams and a ground-truth emotion stream,
//! joined per (subject, window end). Baselines: the uniform distribution, the training-set mean
//! distribution (from the manifest) and every baseline model exported beside it (the manifest's
//! `baselines`: name -> ONNX file with the same inputs).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use super::ldl::{Metric, Scores};
use super::manifest::{LoadedManifest, Manifest};
use super::onnx::{ModelSession, SessionOptions};
use crate::stream::{secs_to_nanos, Nanos};

/// One complete window of the recording.
struct Window {
    subject: String,
    inputs: Vec<Vec<f32>>,
    truth: Vec<f64>,
}

/// Scores of the model and each baseline, in report order.
pub struct Evaluation {
    /// (name, scores) rows: the model first, then the baselines.
    pub rows: Vec<(String, Scores)>,
    /// Subjects scored.
    pub subjects: Vec<String>,
    /// The execution provider that ran the model (and the baseline models).
    pub provider: &'static str,
    /// Windows scored (after the subject selection).
    pub windows: usize,
    /// Windows that lack one of the model's inputs or the truth at their (subject, event time),
    /// such as the first seconds before every feature has a full window; skipped and counted (for
    /// the selected subjects only).
    pub incomplete: u64,
    /// What was skipped or changed, for the user: lines without event time, empty truths, a
    /// provider fallback.
    pub warnings: Vec<String>,
}

impl Evaluation {
    /// A Markdown table of every row and metric.
    pub fn table(&self) -> String {
        let mut text = String::from("| model |");
        for metric in Metric::ALL {
            let arrow = if metric.higher_is_better() {
                "↑"
            } else {
                "↓"
            };
            text.push_str(&format!(" {} {arrow} |", metric.name()));
        }
        text.push_str("\n|---|---|---|---|---|---|---|\n");
        for (name, scores) in &self.rows {
            text.push_str(&format!("| {name} |"));
            for metric in Metric::ALL {
                text.push_str(&format!(" {:.4} |", scores.mean(metric)));
            }
            text.push('\n');
        }
        text
    }
}

/// What [`read_windows`] found besides the windows, counted for warnings.
#[derive(Default)]
struct Skipped {
    /// Lines of the model's streams or the truth without a finite `t`.
    without_time: u64,
    /// Truth rows whose probabilities are all zero (nothing to score against).
    zero_truth: u64,
    /// Truth rows whose probabilities do not sum to 1 (renormalised before scoring).
    unnormalised_truth: u64,
    /// Windows that lack one of the model's inputs or the truth (nothing to pair them with), per
    /// subject, so a `--subjects` selection reports only its own.
    incomplete: BTreeMap<String, u64>,
}

impl Skipped {
    fn warnings(&self, recording: &Path, truth_stream: &str) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.without_time > 0 {
            warnings.push(format!(
                "{}: {} line(s) without a finite `t` (event time) skipped",
                recording.display(),
                self.without_time
            ));
        }
        if self.zero_truth > 0 {
            warnings.push(format!(
                "{}: {} `{truth_stream}` row(s) with every probability zero skipped (nothing to score against)",
                recording.display(),
                self.zero_truth
            ));
        }
        if self.unnormalised_truth > 0 {
            warnings.push(format!(
                "{}: {} `{truth_stream}` row(s) do not sum to 1 (within 0.01); renormalised to sum to 1",
                recording.display(),
                self.unnormalised_truth
            ));
        }
        warnings
    }
}

/// How far a truth distribution's sum may be from 1 before it is reported.
const SUM_TOLERANCE: f64 = 0.01;

/// The join key of a row: its event time `t` (seconds) as whole nanoseconds, so `5`, `5.0` and
/// `5.000000000` name the same window while the JSON text of each would not. `None` for a time
/// that is not finite or lies outside the nanosecond range (about ±292 years).
fn event_time_nanos(t: f64) -> Option<Nanos> {
    (t.is_finite() && (t * 1e9).abs() < 9.2e18).then(|| secs_to_nanos(t))
}

fn read_windows(
    recording: &Path,
    manifest: &Manifest,
    truth_stream: &str,
) -> Result<(Vec<Window>, Skipped), String> {
    let file = std::fs::File::open(recording)
        .map_err(|e| format!("cannot read recording {}: {e}", recording.display()))?;
    type Partial = (Vec<Option<Vec<f32>>>, Option<Vec<f64>>);
    let mut partial: BTreeMap<(String, Nanos), Partial> = BTreeMap::new();
    let mut skipped = Skipped::default();
    let roles: BTreeMap<&str, usize> = manifest
        .inputs
        .iter()
        .enumerate()
        .map(|(i, input)| (input.stream.as_str(), i))
        .collect();
    for (number, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", recording.display()))?;
        let row: serde_json::Value = serde_json::from_str(&line).map_err(|e| {
            format!(
                "{}:{}: not a JSON object: {e}",
                recording.display(),
                number + 1
            )
        })?;
        let stream = row["stream"].as_str().unwrap_or("");
        let role = roles.get(stream).copied();
        if stream != truth_stream && role.is_none() {
            continue;
        }
        let Some(time) = row["t"].as_f64().and_then(event_time_nanos) else {
            skipped.without_time += 1;
            continue;
        };
        let subject = row["subject"].as_str().unwrap_or("").to_string();
        let values = &row["values"];
        let number_of = |label: &str| values.get(label).and_then(serde_json::Value::as_f64);
        let entry = partial
            .entry((subject, time))
            .or_insert_with(|| (vec![None; manifest.inputs.len()], None));
        match role {
            None => {
                let mut truth: Option<Vec<f64>> =
                    manifest.labels.iter().map(|l| number_of(l)).collect();
                if let Some(truth) = &mut truth {
                    if let Some((label, value)) = manifest
                        .labels
                        .iter()
                        .zip(truth.iter())
                        .find(|(_, v)| !(**v >= 0.0 && v.is_finite()))
                    {
                        return Err(format!(
                            "{}:{}: `{truth_stream}` gives `{label}` the probability {value}; probabilities must be finite and not negative",
                            recording.display(),
                            number + 1
                        ));
                    }
                    let total: f64 = truth.iter().sum();
                    if total == 0.0 {
                        skipped.zero_truth += 1;
                        continue;
                    }
                    if (total - 1.0).abs() > SUM_TOLERANCE {
                        skipped.unnormalised_truth += 1;
                    }
                    truth.iter_mut().for_each(|p| *p /= total);
                }
                entry.1 = truth;
            }
            Some(role) => {
                let input = &manifest.inputs[role];
                entry.0[role] = input
                    .channels
                    .iter()
                    .map(|label| number_of(label).map(|v| v as f32))
                    .collect();
            }
        }
    }
    let mut windows = Vec::with_capacity(partial.len());
    for ((subject, _), (inputs, truth)) in partial {
        let inputs: Option<Vec<Vec<f32>>> = inputs.into_iter().collect();
        match (inputs, truth) {
            (Some(inputs), Some(truth)) => windows.push(Window {
                subject,
                inputs,
                truth,
            }),
            _ => *skipped.incomplete.entry(subject).or_default() += 1,
        }
    }
    if windows.is_empty() {
        let streams: Vec<&str> = manifest.inputs.iter().map(|i| i.stream.as_str()).collect();
        return Err(format!(
            "{} has no window with all of {} and `{truth_stream}` (with the manifest's channel labels)",
            recording.display(),
            streams.join(", ")
        ));
    }
    Ok((windows, skipped))
}

fn run_model(session: &mut ModelSession, windows: &[&Window]) -> Result<Vec<Vec<f64>>, String> {
    let mut predictions = Vec::with_capacity(windows.len());
    for chunk in windows.chunks(256) {
        let inputs = chunk.first().map_or(0, |w| w.inputs.len());
        let stacked: Vec<Vec<f32>> = (0..inputs)
            .map(|i| {
                chunk
                    .iter()
                    .flat_map(|w| w.inputs[i].iter().copied())
                    .collect()
            })
            .collect();
        let output = session.run(chunk.len(), &stacked)?;
        let labels = output.len() / chunk.len();
        predictions.extend(
            output
                .chunks(labels)
                .map(|row| row.iter().map(|&p| f64::from(p)).collect()),
        );
    }
    Ok(predictions)
}

/// Scores the model of `manifest_path` on `recording`, for `subjects` (all when empty).
pub fn evaluate(
    manifest_path: &Path,
    recording: &Path,
    truth_stream: &str,
    subjects: &[String],
    options: &SessionOptions,
) -> Result<Evaluation, String> {
    let loaded = LoadedManifest::read(manifest_path)?;
    let manifest = &loaded.manifest;
    // The model is opened (and its graph checked against the manifest) before anything is read.
    let mut session = ModelSession::open(&loaded, options)?;
    let (windows, skipped) = read_windows(recording, manifest, truth_stream)?;
    let mut warnings = skipped.warnings(recording, truth_stream);
    let selected: Vec<&Window> = windows
        .iter()
        .filter(|w| subjects.is_empty() || subjects.contains(&w.subject))
        .collect();
    if selected.is_empty() {
        return Err(format!(
            "{} has no windows of subjects {}",
            recording.display(),
            subjects.join(", ")
        ));
    }
    let mut scored_subjects: Vec<String> = selected.iter().map(|w| w.subject.clone()).collect();
    scored_subjects.dedup();
    scored_subjects.sort();
    scored_subjects.dedup();

    let mut rows = Vec::new();
    warnings.extend(session.fallback_warning(&format!("{} {}", manifest.name, manifest.version)));
    let predictions = run_model(&mut session, &selected)?;
    rows.push((
        format!("{} {}", manifest.name, manifest.version),
        score(&selected, &predictions),
    ));

    let labels = manifest.labels.len();
    let uniform = vec![vec![1.0 / labels as f64; labels]; selected.len()];
    rows.push(("uniform".to_string(), score(&selected, &uniform)));
    if manifest.training_mean.len() == labels {
        let mean = vec![manifest.training_mean.clone(); selected.len()];
        rows.push(("training mean".to_string(), score(&selected, &mean)));
    }
    for (name, file) in &manifest.baselines {
        let baseline = LoadedManifest {
            path: loaded.path.clone(),
            manifest: Manifest {
                file: file.clone(),
                ..manifest.clone()
            },
        };
        let mut baseline_session = ModelSession::open(&baseline, options)?;
        let predictions = run_model(&mut baseline_session, &selected)?;
        rows.push((name.clone(), score(&selected, &predictions)));
    }
    Ok(Evaluation {
        rows,
        subjects: scored_subjects,
        windows: selected.len(),
        incomplete: skipped
            .incomplete
            .iter()
            .filter(|(subject, _)| subjects.is_empty() || subjects.contains(subject))
            .map(|(_, count)| count)
            .sum(),
        provider: session.provider,
        warnings,
    })
}

fn score(windows: &[&Window], predictions: &[Vec<f64>]) -> Scores {
    let mut scores = Scores::default();
    for (window, predicted) in windows.iter().zip(predictions) {
        scores.add(&window.truth, predicted);
    }
    scores
}
