//! The JSON manifest that ships beside every model (written by `plugins/helo/helo/export.py`).
//!
//! Reading a manifest checks it against itself (shapes, channel labels, output labels) and against
//! the model file it names (which must exist and have the manifest's SHA-256), so a pipeline whose
//! model and manifest disagree is refused at validation. What only the model's graph knows (input
//! and output shapes) is checked when the session opens, before the dataflow starts
//! ([`super::onnx::ModelSession::open`]).
//!
//! ```no_run
//! use heloflow::model::manifest::LoadedManifest;
//! let loaded = LoadedManifest::read("plugins/helo/model/helo-sim.json".as_ref()).unwrap();
//! assert_eq!(loaded.manifest.labels.len(), 10);
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// One model input, in the order the model takes them.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ManifestInput {
    /// Input name in the ONNX graph.
    pub name: String,
    /// Name of the heloflow stream that produces it in the reference pipeline.
    pub stream: String,
    /// Tensor shape; -1 marks the batch dimension.
    pub shape: Vec<i64>,
    /// Feature definition the values must follow.
    pub features: String,
    /// Channel labels, in order, taken from the upstream stream.
    pub channels: Vec<String>,
}

impl ManifestInput {
    /// Number of features per window.
    pub fn width(&self) -> usize {
        self.shape.last().copied().unwrap_or(0).max(0) as usize
    }
}

/// The model's output as the manifest describes it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ManifestOutput {
    /// Output name in the ONNX graph.
    pub name: String,
    /// Tensor shape; -1 marks the batch dimension, the last is the number of labels.
    pub shape: Vec<i64>,
}

/// A model's manifest.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Manifest {
    /// Model name (outlet metadata, logs).
    pub name: String,
    /// Model version.
    pub version: String,
    /// ONNX file, relative to the manifest.
    pub file: String,
    /// SHA-256 of the ONNX file.
    pub sha256: String,
    /// ONNX opset.
    pub opset: u32,
    /// Architecture description ("HeLo ...").
    pub architecture: String,
    /// Output labels (emotion names), in output order.
    pub labels: Vec<String>,
    /// Window length the features were computed over, seconds.
    pub window_s: f64,
    /// Hop between windows, seconds.
    pub hop_s: f64,
    /// Inputs, in the model's order.
    pub inputs: Vec<ManifestInput>,
    /// The output (older manifests leave it out: the labels then say its width).
    #[serde(default)]
    pub output: Option<ManifestOutput>,
    /// Training provenance and held-out scores, kept as written.
    #[serde(default)]
    pub trained_on: serde_json::Value,
    /// Held-out metrics, kept as written.
    #[serde(default)]
    pub metrics: serde_json::Value,
    /// Mean training-set distribution (the "training mean" baseline).
    #[serde(default)]
    pub training_mean: Vec<f64>,
    /// Baseline models exported beside this one (name -> ONNX file with the same inputs).
    #[serde(default)]
    pub baselines: std::collections::BTreeMap<String, String>,
}

/// A manifest with the path it was read from.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedManifest {
    /// Path of the manifest file.
    pub path: PathBuf,
    /// Its contents.
    pub manifest: Manifest,
}

/// Where a relative model path is looked for: the working directory, then the repository the
/// running binary was built in (so `heloflow demo` finds the shipped model from anywhere).
pub fn resolve_model_path(path: &Path) -> PathBuf {
    if path.is_absolute() || path.exists() {
        return path.to_path_buf();
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(root) = exe.ancestors().nth(3) {
            roots.push(root.to_path_buf());
        }
    }
    roots.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    roots
        .into_iter()
        .map(|root| root.join(path))
        .find(|candidate| candidate.exists())
        .unwrap_or_else(|| path.to_path_buf())
}

impl LoadedManifest {
    /// Reads and checks a manifest (a relative path as [`resolve_model_path`] finds it) and the
    /// model file it names; errors say which file and what is wrong.
    pub fn read(path: &Path) -> Result<LoadedManifest, String> {
        let resolved = resolve_model_path(path);
        let text = std::fs::read_to_string(&resolved)
            .map_err(|e| format!("cannot read model manifest {}: {e}", path.display()))?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| format!("model manifest {} is invalid: {e}", path.display()))?;
        check_consistent(&manifest)
            .map_err(|e| format!("model manifest {}: {e}", path.display()))?;
        let loaded = LoadedManifest {
            path: resolved,
            manifest,
        };
        loaded.check_model_file()?;
        Ok(loaded)
    }

    /// Path of the ONNX file.
    pub fn model_path(&self) -> PathBuf {
        self.path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(&self.manifest.file)
    }

    /// The model file exists and its SHA-256 is the manifest's.
    fn check_model_file(&self) -> Result<(), String> {
        let model = self.model_path();
        if !model.is_file() {
            return Err(format!(
                "model file {} (named by {}) does not exist",
                model.display(),
                self.path.display()
            ));
        }
        let actual = sha256_hex(&model)
            .map_err(|e| format!("cannot read model file {}: {e}", model.display()))?;
        let expected = self.manifest.sha256.trim().to_ascii_lowercase();
        if actual != expected {
            return Err(format!(
                "model file {} has SHA-256 {actual}, but its manifest {} says {}: the file is not the model the manifest describes",
                model.display(),
                self.path.display(),
                self.manifest.sha256
            ));
        }
        Ok(())
    }
}

/// The manifest agrees with itself: labels, inputs' shapes and channels, the output's shape and
/// the training mean.
fn check_consistent(manifest: &Manifest) -> Result<(), String> {
    if manifest.labels.is_empty() || manifest.inputs.is_empty() {
        return Err("it lists no labels or no inputs".to_string());
    }
    if let Some(label) = manifest.labels.iter().find(|l| l.trim().is_empty()) {
        return Err(format!("label {label:?} is empty"));
    }
    for (index, label) in manifest.labels.iter().enumerate() {
        if manifest.labels[..index].contains(label) {
            return Err(format!("label `{label}` is listed twice"));
        }
    }
    for input in &manifest.inputs {
        let shape_ok = input.shape.len() == 2 && input.shape[0] == -1 && input.shape[1] > 0;
        if !shape_ok {
            return Err(format!(
                "input `{}` has shape {:?}; a model input is [-1, features] (-1: the batch)",
                input.name, input.shape
            ));
        }
        if input.channels.len() != input.width() {
            return Err(format!(
                "input `{}` has shape {:?} but {} channel labels",
                input.name,
                input.shape,
                input.channels.len()
            ));
        }
    }
    if let Some(output) = &manifest.output {
        if output.shape.len() != 2 || output.shape[1] != manifest.labels.len() as i64 {
            return Err(format!(
                "output `{}` has shape {:?} but {} labels are listed",
                output.name,
                output.shape,
                manifest.labels.len()
            ));
        }
    }
    if !manifest.training_mean.is_empty() && manifest.training_mean.len() != manifest.labels.len() {
        return Err(format!(
            "`training_mean` has {} values but {} labels are listed",
            manifest.training_mean.len(),
            manifest.labels.len()
        ));
    }
    Ok(())
}

/// The SHA-256 of a file, as lowercase hex (what `sha256sum` prints).
pub fn sha256_hex(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}
