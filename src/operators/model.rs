//! `onnx` and `helo`: run a model with a manifest on ONNX Runtime, as a dataflow operator.
//!
//! The operator takes one input stream per model input, in manifest order, each a windowed feature
//! stream whose window ends fall on the model's hop. Once event time passes a window end, the
//! feature vectors of every subject for that window are stacked into one batch and run together;
//! the output is one distribution per subject and window, timestamped with the window end.
//!
//! ```toml
//! [operators.emotion]
//! kind = "helo"                                   # `onnx` for any model with a manifest
//! inputs = ["eeg_de", "gsr", "ppg", "face"]       # in the manifest's input order
//! model = "plugins/helo/model/helo-sim.json"      # the manifest (default for `helo`)
//! execution_provider = "cpu"                      # or "cuda"
//! fallback = "cpu"                                # when CUDA is unavailable: "cpu" (warn) or "error"
//! threads = 1
//! ```
//!
//! Windows where an input is missing or holds NaN/Inf are not scored; they are counted and reported
//! at the end of the run, so a gap in the output stream shows where data was bad.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{Inference, Operator, OperatorLogic, PortError, PortSite, Routing};
use crate::config::options::Options;
use crate::model::manifest::LoadedManifest;
use crate::model::onnx::{load_runtime, Fallback, ModelSession, Provider, SessionOptions};
use crate::stream::{Batch, Channel, ChannelFormat, Modality, Nanos, Rate, StreamSchema, Values};

/// Manifest of the shipped HeLo model, the default of `kind = "helo"`.
pub const DEFAULT_HELO_MANIFEST: &str = "plugins/helo/model/helo-sim.json";

/// The model session opened before the dataflow starts: the first worker's logic takes it, and
/// each further worker's logic opens its own (ONNX Runtime runs one inference per session at a
/// time, so workers sharing one would take turns).
#[derive(Clone, Default)]
pub struct PreparedSession(Option<Arc<Mutex<ModelSession>>>, Arc<WorkerLogics>);

/// What the operator's per-worker logics share: whether the prepared session was handed out, and
/// the windows they left unscored, reported once when the last of them ends.
#[derive(Debug, Default)]
pub struct WorkerLogics {
    session_taken: AtomicBool,
    running: AtomicUsize,
    skipped: AtomicU64,
}

impl fmt::Debug for PreparedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "PreparedSession(open)"
        } else {
            "PreparedSession(closed)"
        })
    }
}

impl PartialEq for PreparedSession {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

/// Options of an `onnx` or `helo` operator.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// The model's manifest.
    pub manifest: LoadedManifest,
    /// How to open the session.
    pub session: SessionOptions,
    /// The open session, once [`ModelConfig::prepare`] ran.
    pub prepared: PreparedSession,
    /// Name of the operator (for messages), set by [`ModelConfig::prepare`].
    pub operator: String,
}

impl ModelConfig {
    /// Reads the options; `helo` requires a HeLo manifest and defaults to the shipped model.
    pub fn parse(options: &mut Options, helo: bool) -> Option<Self> {
        let model = options.string("model");
        let path = match (&model, helo) {
            (Some(path), _) => path.get_ref().clone(),
            (None, true) => DEFAULT_HELO_MANIFEST.to_string(),
            (None, false) => {
                options.error_at(
                    "model",
                    "`onnx` needs `model`, the path of the model's manifest (JSON)",
                    "for example model = \"plugins/helo/model/helo-sim.json\"",
                );
                return None;
            }
        };
        let provider = match options.choice("execution_provider", "cpu", &["cpu", "cuda"]) {
            "cuda" => Provider::Cuda,
            _ => Provider::Cpu,
        };
        let fallback = match options.choice("fallback", "cpu", &["cpu", "error"]) {
            "error" => Fallback::Error,
            _ => Fallback::Cpu,
        };
        let threads = options.integer("threads", 1, 1..257) as usize;
        let library = options
            .string("library")
            .map(|l| PathBuf::from(l.into_inner()));
        let profile = options
            .string("profile")
            .map(|p| PathBuf::from(p.into_inner()));
        let manifest = match LoadedManifest::read(std::path::Path::new(&path)) {
            Ok(manifest) => manifest,
            Err(message) => {
                options.error_at(
                    "model",
                    message,
                    "point `model` at a manifest written by plugins/helo/helo/export.py (paths are relative to the working directory)",
                );
                return None;
            }
        };
        if let Err(message) = load_runtime(library.as_deref()) {
            let at = if library.is_some() {
                "library"
            } else {
                "model"
            };
            options.error_at(
                at,
                message,
                "install the onnxruntime wheel (./scripts/test does) or set `library`",
            );
            return None;
        }
        let session = SessionOptions {
            provider,
            fallback,
            threads,
            library,
            profile,
            ..SessionOptions::default()
        };
        // On the CPU the session that checks the model against its manifest is the one the run
        // uses, so the model (about 0.5 s for HeLo) is loaded once; other providers are checked
        // on the CPU and opened at `prepare`.
        let checked = if provider == Provider::Cpu && session.profile.is_none() {
            ModelSession::open(&manifest, &session).map(Some)
        } else {
            ModelSession::check(&manifest, session.library.as_deref()).map(|()| None)
        };
        let prepared = match checked {
            Ok(opened) => PreparedSession(opened.map(|s| Arc::new(Mutex::new(s))), Arc::default()),
            Err(message) => {
                options.error_at(
                    "model",
                    message,
                    "re-export the model and its manifest together (plugins/helo/helo/export.py)",
                );
                return None;
            }
        };
        if helo && !manifest.manifest.architecture.starts_with("HeLo") {
            options.error_at(
                "model",
                format!(
                    "{} describes a `{}` model, not HeLo",
                    path, manifest.manifest.architecture
                ),
                "use kind = \"onnx\" for other models",
            );
            return None;
        }
        Some(ModelConfig {
            manifest,
            session,
            prepared,
            operator: String::new(),
        })
    }

    /// Per input, the positions of the manifest's channels in the input stream.
    fn channel_picks(&self, inputs: &[&StreamSchema]) -> Result<Vec<Vec<usize>>, PortError> {
        let expected = &self.manifest.manifest.inputs;
        if inputs.len() != expected.len() {
            let names: Vec<_> = expected
                .iter()
                .map(|i| format!("{} ({})", i.name, i.stream))
                .collect();
            return Err(PortError {
                site: PortSite::Inputs,
                message: format!(
                    "the model takes {} inputs, found {}",
                    expected.len(),
                    inputs.len()
                ),
                help: format!("connect, in order: {}", names.join(", ")),
            });
        }
        let hop = self.manifest.manifest.hop_s;
        let mut picks = Vec::new();
        for (index, (schema, input)) in inputs.iter().zip(expected).enumerate() {
            let missing: Vec<&str> = input
                .channels
                .iter()
                .filter(|label| !schema.channels.iter().any(|c| &&c.label == label))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                let shown: Vec<_> = missing.iter().take(4).copied().collect();
                return Err(PortError::input(
                    index,
                    format!(
                        "`{}` lacks {} of the {} channels the model's input `{}` needs (e.g. {})",
                        schema.name,
                        missing.len(),
                        input.width(),
                        input.name,
                        shown.join(", ")
                    ),
                    format!("connect the stream computed as: {}", input.features),
                ));
            }
            let period_ok =
                matches!(schema.rate, Rate::Regular(hz) if (1.0 / hz - hop).abs() < 1e-6);
            if !period_ok {
                return Err(PortError::input(
                    index,
                    format!(
                        "`{}` has rate {}, but the model was trained on one window every {hop} s",
                        schema.name, schema.rate
                    ),
                    format!("compute its windows with hop_s = {hop}"),
                ));
            }
            picks.push(
                input
                    .channels
                    .iter()
                    .map(|label| {
                        schema
                            .channels
                            .iter()
                            .position(|c| &c.label == label)
                            .unwrap_or(0)
                    })
                    .collect(),
            );
        }
        Ok(picks)
    }

    /// Opens the model (once, before the dataflow starts) and reports the provider that runs it.
    pub fn prepare(&mut self, operator: &str) -> Result<(), String> {
        let session = match self.prepared.0.take() {
            Some(opened) => opened,
            None => Arc::new(Mutex::new(
                ModelSession::open(&self.manifest, &self.session)
                    .map_err(|e| format!("operator `{operator}`: {e}"))?,
            )),
        };
        let guard = session
            .lock()
            .map_err(|_| format!("operator `{operator}`: the model session is unusable"))?;
        let m = &self.manifest.manifest;
        if let Some(warning) = guard.fallback_warning(&format!("{} {}", m.name, m.version)) {
            crate::notice!("heloflow: WARNING: operator `{operator}`: {warning}");
        }
        crate::notice!(
            "heloflow: operator `{operator}`: model {} {} runs on {}",
            m.name,
            m.version,
            guard.provider
        );
        drop(guard);
        self.prepared = PreparedSession(Some(session), Arc::default());
        self.operator = operator.to_string();
        Ok(())
    }

    /// The logic serving one worker's subjects: the prepared session for the first, a session of
    /// its own for each other (the prepared one, shared, if that cannot be opened).
    pub fn instantiate(&self, inputs: &[&StreamSchema], output_id: u32) -> ModelLogic {
        let shared = Arc::clone(&self.prepared.1);
        shared.running.fetch_add(1, Ordering::SeqCst);
        let first = !shared.session_taken.swap(true, Ordering::SeqCst);
        let session = match &self.prepared.0 {
            Some(prepared) if !first => match ModelSession::open(&self.manifest, &self.session) {
                Ok(own) => Some(Arc::new(Mutex::new(own))),
                Err(e) => {
                    crate::notice!(
                        "heloflow: operator `{}`: a worker shares the first session ({e})",
                        self.operator
                    );
                    Some(Arc::clone(prepared))
                }
            },
            other => other.clone(),
        };
        ModelLogic {
            session,
            picks: self.channel_picks(inputs).unwrap_or_default(),
            pending: BTreeMap::new(),
            first_rows: BTreeMap::new(),
            output_id,
            operator: self.operator.clone(),
            skipped: 0,
            shared,
            ended: false,
            inference: None,
        }
    }

    /// The execution provider running the model (`CPUExecutionProvider`, ...), once
    /// [`ModelConfig::prepare`] opened it.
    pub fn provider(&self) -> Option<&'static str> {
        let session = self.prepared.0.as_ref()?;
        session.lock().ok().map(|s| s.provider)
    }
}

impl Operator for ModelConfig {
    /// The output: an emotion distribution, one channel per label, one sample per window.
    fn output_schema(
        &self,
        name: &str,
        inputs: &[&StreamSchema],
    ) -> Result<StreamSchema, PortError> {
        self.channel_picks(inputs)?;
        let manifest = &self.manifest.manifest;
        let mut subjects: Vec<String> = inputs.iter().flat_map(|s| s.subjects.clone()).collect();
        subjects.sort();
        subjects.dedup();
        Ok(StreamSchema {
            name: name.to_string(),
            modality: Modality::Emotion,
            channels: manifest
                .labels
                .iter()
                .map(|l| Channel::new(l.clone(), "probability", "Emotion"))
                .collect(),
            format: ChannelFormat::Float32,
            rate: Rate::Regular(1.0 / manifest.hop_s),
            subjects,
        })
    }

    fn logic(
        &self,
        inputs: &[&StreamSchema],
        output_id: u32,
        _output: &StreamSchema,
        _subject: &str,
    ) -> Box<dyn OperatorLogic> {
        Box::new(self.instantiate(inputs, output_id))
    }

    /// One logic for all subjects, so every subject's window is scored in one batch.
    fn routing(&self) -> Routing {
        Routing::PerWorker
    }

    /// Inference takes milliseconds: rows completed at the same frontier leave first.
    fn yields_first(&self) -> bool {
        true
    }

    fn prepare(&mut self, operator: &str) -> Result<(), String> {
        ModelConfig::prepare(self, operator)
    }
}

/// The feature vectors of one subject's window, per input.
type WindowInputs = Vec<Option<Vec<f32>>>;

/// Buffers windows of all subjects and runs them in batches as event time passes.
pub struct ModelLogic {
    session: Option<Arc<Mutex<ModelSession>>>,
    picks: Vec<Vec<usize>>,
    pending: BTreeMap<(Nanos, String), WindowInputs>,
    /// Per subject, the first window end seen on each input: earlier windows are warm-up (some
    /// features need longer windows than others), not missing data.
    first_rows: BTreeMap<String, Vec<Option<Nanos>>>,
    output_id: u32,
    operator: String,
    skipped: u64,
    /// Shared with the operator's logics on the other workers.
    shared: Arc<WorkerLogics>,
    /// Whether the end of input has been seen (and the skipped windows handed to `shared`).
    ended: bool,
    /// The inference the last frontier ran, until taken.
    inference: Option<Inference>,
}

impl OperatorLogic for ModelLogic {
    fn on_batch(&mut self, input: usize, batch: &Batch, _out: &mut Vec<Batch>) {
        let (Values::Numeric(values), Some(pick)) = (&batch.values, self.picks.get(input)) else {
            return;
        };
        let width = batch.channel_count();
        let inputs = self.picks.len();
        if let Some(&first) = batch.timestamps.first() {
            let starts = self
                .first_rows
                .entry(batch.subject.clone())
                .or_insert_with(|| vec![None; inputs]);
            starts[input].get_or_insert(first);
        }
        for (row, &time) in batch.timestamps.iter().enumerate() {
            let sample = &values[row * width..(row + 1) * width];
            let vector: Vec<f32> = pick.iter().map(|&i| sample[i] as f32).collect();
            let finite = vector.iter().all(|v| v.is_finite());
            let slot = self
                .pending
                .entry((time, batch.subject.clone()))
                .or_insert_with(|| vec![None; inputs]);
            slot[input] = finite.then_some(vector);
        }
    }

    fn on_frontier(&mut self, frontier: Nanos, out: &mut Vec<Batch>) {
        let ready: Vec<(Nanos, String)> = self
            .pending
            .range(..(frontier, String::new()))
            .map(|(key, _)| key.clone())
            .collect();
        if ready.is_empty() {
            return;
        }
        let mut keys = Vec::new();
        let mut stacked: Vec<Vec<f32>> = vec![Vec::new(); self.picks.len()];
        for key in ready {
            let Some(window) = self.pending.remove(&key) else {
                continue;
            };
            if window.iter().any(Option::is_none) {
                let warm_up = self.first_rows.get(&key.1).is_none_or(|starts| {
                    starts.iter().any(|s| s.is_none_or(|first| key.0 < first))
                });
                if !warm_up {
                    self.skipped += 1;
                }
                continue;
            }
            for (column, vector) in stacked.iter_mut().zip(window.into_iter().flatten()) {
                column.extend(vector);
            }
            keys.push(key);
        }
        if frontier == Nanos::MAX && !std::mem::replace(&mut self.ended, true) {
            let shared = &self.shared;
            let skipped = shared.skipped.fetch_add(self.skipped, Ordering::SeqCst) + self.skipped;
            let last = shared.running.fetch_sub(1, Ordering::SeqCst) == 1;
            if last && skipped > 0 {
                crate::notice!(
                    "heloflow: operator `{}`: {skipped} windows not scored (an input missing or not finite)",
                    self.operator
                );
            }
        }
        let Some(session) = &self.session else {
            return;
        };
        if keys.is_empty() {
            return;
        }
        let result = session
            .lock()
            .map_err(|_| "model session poisoned".to_string())
            .and_then(|mut s| {
                let started = Instant::now();
                let result = s.run(keys.len(), &stacked);
                self.inference = Some(Inference {
                    rows: keys.len(),
                    elapsed: started.elapsed(),
                });
                result
            });
        let probabilities = match result {
            Ok(p) => p,
            Err(message) => {
                crate::notice!("heloflow: operator `{}`: {message}", self.operator);
                return;
            }
        };
        let labels = probabilities.len() / keys.len();
        let mut by_subject: BTreeMap<&str, (Vec<Nanos>, Vec<f64>)> = BTreeMap::new();
        for (row, (time, subject)) in keys.iter().enumerate() {
            let entry = by_subject.entry(subject).or_default();
            entry.0.push(*time);
            entry.1.extend(
                probabilities[row * labels..(row + 1) * labels]
                    .iter()
                    .map(|&p| f64::from(p)),
            );
        }
        for (subject, (timestamps, values)) in by_subject {
            out.push(Batch {
                stream: self.output_id,
                subject: subject.to_string(),
                timestamps,
                values: Values::Numeric(values),
            });
        }
    }

    fn take_inference(&mut self) -> Option<Inference> {
        self.inference.take()
    }
}
