//! The JSON manifest that ships beside every model (written by `plugins/helo/helo/export.py`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

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
    /// Reads and checks a manifest (a relative path as [`resolve_model_path`] finds it); errors say
    /// which file and what is wrong.
    pub fn read(path: &Path) -> Result<LoadedManifest, String> {
        let resolved = resolve_model_path(path);
        let text = std::fs::read_to_string(&resolved)
            .map_err(|e| format!("cannot read model manifest {}: {e}", path.display()))?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| format!("model manifest {} is invalid: {e}", path.display()))?;
        if manifest.labels.is_empty() || manifest.inputs.is_empty() {
            return Err(format!(
                "model manifest {} lists no labels or no inputs",
                path.display()
            ));
        }
        for input in &manifest.inputs {
            if input.channels.len() != input.width() {
                return Err(format!(
                    "model manifest {}: input `{}` has shape {:?} but {} channel labels",
                    path.display(),
                    input.name,
                    input.shape,
                    input.channels.len()
                ));
            }
        }
        Ok(LoadedManifest {
            path: resolved,
            manifest,
        })
    }

    /// Path of the ONNX file.
    pub fn model_path(&self) -> PathBuf {
        self.path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(&self.manifest.file)
    }
}
