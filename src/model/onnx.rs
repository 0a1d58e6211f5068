//! ONNX Runtime sessions: finding the library, choosing the execution provider, running batches.
//!
//! The ONNX Runtime library is loaded at run time (`ort`'s `load-dynamic`), from, in order: the
//! operator's `library` option, `ORT_DYLIB_PATH`, or the `onnxruntime` Python wheel in the project's
//! `.venv` (which `./scripts/demo` and `./scripts/test` install).
//!
//! Execution providers: `cpu` (default) or `cuda`. CUDA registration is made to fail loudly rather
//! than silently falling back; the operator's `fallback` policy then either continues on CPU with a
//! warning naming the reason, or refuses to start. The provider that actually runs is reported.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::Session;
use ort::value::{Tensor, TensorElementType, ValueType};

use super::manifest::LoadedManifest;

/// Where the model runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// ONNX Runtime's CPU provider.
    Cpu,
    /// NVIDIA CUDA (needs the `onnxruntime-gpu` library and a GPU).
    Cuda,
}

/// What to do when the requested provider cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// Run on CPU and say so loudly.
    Cpu,
    /// Refuse to start.
    Error,
}

/// How to open a model session.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionOptions {
    /// Requested execution provider.
    pub provider: Provider,
    /// Policy when it is unavailable.
    pub fallback: Fallback,
    /// Intra-op threads for the CPU provider.
    pub threads: usize,
    /// Explicit path of the ONNX Runtime library.
    pub library: Option<PathBuf>,
    /// Write an ONNX Runtime profile (which provider ran each node) to this path prefix.
    pub profile: Option<PathBuf>,
    /// How far ONNX Runtime rewrites the graph before running it.
    pub optimization: GraphOptimization,
}

/// ONNX Runtime's graph optimisation levels (its default is `All`), kept selectable so their
/// effect can be measured (`cargo bench --bench helo_batch`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GraphOptimization {
    /// No rewrites: the graph as exported.
    Disable,
    /// Constant folding and redundant-node elimination.
    Basic,
    /// Basic plus node fusions.
    Extended,
    /// Everything, including layout optimisations.
    #[default]
    All,
}

impl GraphOptimization {
    /// Every level, least first.
    pub const LEVELS: [GraphOptimization; 4] = [
        GraphOptimization::Disable,
        GraphOptimization::Basic,
        GraphOptimization::Extended,
        GraphOptimization::All,
    ];

    fn level(self) -> ort::session::builder::GraphOptimizationLevel {
        use ort::session::builder::GraphOptimizationLevel as Level;
        match self {
            GraphOptimization::Disable => Level::Disable,
            GraphOptimization::Basic => Level::Level1,
            GraphOptimization::Extended => Level::Level2,
            GraphOptimization::All => Level::All,
        }
    }
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            provider: Provider::Cpu,
            fallback: Fallback::Cpu,
            threads: 1,
            library: None,
            profile: None,
            optimization: GraphOptimization::All,
        }
    }
}

/// An open model: its session and what it takes and returns.
pub struct ModelSession {
    session: Session,
    input_names: Vec<String>,
    widths: Vec<usize>,
    labels: usize,
    /// Name of the execution provider that runs the model.
    pub provider: &'static str,
    /// Why the requested provider was not used, when it was not.
    pub fallback_reason: Option<String>,
}

/// Candidate locations of the ONNX Runtime library, most specific first.
pub fn library_candidates(explicit: Option<&Path>) -> Vec<PathBuf> {
    let mut candidates: Vec<PathBuf> = explicit.map(Path::to_path_buf).into_iter().collect();
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        candidates.push(PathBuf::from(path));
    }
    let mut roots = vec![PathBuf::from(".")];
    if let Ok(exe) = std::env::current_exe() {
        // target/{debug,release}/heloflow -> the repository root.
        if let Some(root) = exe.ancestors().nth(3) {
            roots.push(root.to_path_buf());
        }
    }
    roots.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    for root in roots {
        let lib = root.join(".venv/lib");
        let Ok(entries) = std::fs::read_dir(&lib) else {
            continue;
        };
        for entry in entries.flatten() {
            let capi = entry.path().join("site-packages/onnxruntime/capi");
            if let Ok(files) = std::fs::read_dir(&capi) {
                let mut found: Vec<PathBuf> = files
                    .flatten()
                    .map(|f| f.path())
                    .filter(|p| {
                        p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("libonnxruntime.so."))
                    })
                    .collect();
                found.sort();
                candidates.extend(found);
            }
        }
    }
    candidates
}

/// Loads ONNX Runtime once per process; later calls return the same environment or error.
fn environment(explicit: Option<&Path>) -> Result<&'static Environment, String> {
    static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();
    ENVIRONMENT
        .get_or_init(|| {
            let candidates = library_candidates(explicit);
            // A path the user named (option or ORT_DYLIB_PATH) must exist: no silent substitute.
            let named = explicit
                .map(Path::to_path_buf)
                .or_else(|| std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from));
            if let Some(path) = named.filter(|p| !p.is_file()) {
                return Err(format!(
                    "ONNX Runtime library {} does not exist (named by the `library` option or ORT_DYLIB_PATH)",
                    path.display()
                ));
            }
            let library = candidates.iter().find(|p| p.is_file()).ok_or_else(|| {
                "ONNX Runtime library not found: set the operator's `library` option or \
                 ORT_DYLIB_PATH to libonnxruntime.so (1.31 or later), or run ./scripts/test, which \
                 installs the onnxruntime wheel into .venv"
                    .to_string()
            })?;
            ort::init_from(library)
                .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", library.display()))?
                .with_name("heloflow")
                .build()
                .map_err(|e| format!("cannot start ONNX Runtime: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Loads ONNX Runtime (from `library` or the usual places), so a missing or broken library is
/// reported before a model is checked against its manifest.
pub fn load_runtime(library: Option<&Path>) -> Result<(), String> {
    environment(library).map(|_| ())
}

impl ModelSession {
    /// Opens the model of `manifest` on CPU only to compare its graph with the manifest (inputs'
    /// names and widths, the output's width against the labels), as validation does before
    /// anything runs.
    pub fn check(manifest: &LoadedManifest, library: Option<&Path>) -> Result<(), String> {
        let options = SessionOptions {
            library: library.map(Path::to_path_buf),
            ..SessionOptions::default()
        };
        ModelSession::open(manifest, &options).map(drop)
    }

    /// Opens the model of `manifest` with `options`; errors say what is missing and where.
    pub fn open(
        manifest: &LoadedManifest,
        options: &SessionOptions,
    ) -> Result<ModelSession, String> {
        let model_path = manifest.model_path();
        if !model_path.is_file() {
            return Err(format!(
                "model file {} (named by {}) does not exist",
                model_path.display(),
                manifest.path.display()
            ));
        }
        let env = environment(options.library.as_deref())?;
        let build = |cuda: bool| -> Result<Session, String> {
            let mut builder = Session::builder(env)
                .map_err(|e| e.to_string())?
                .with_intra_threads(options.threads.max(1))
                .map_err(|e| e.to_string())?
                .with_optimization_level(options.optimization.level())
                .map_err(|e| e.to_string())?;
            if let Some(profile) = &options.profile {
                builder = builder.with_profiling(profile).map_err(|e| e.to_string())?;
            }
            if cuda {
                builder = builder
                    .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
                    .map_err(|e| e.to_string())?;
            }
            builder
                .commit_from_file(&model_path)
                .map_err(|e| format!("cannot load model {}: {e}", model_path.display()))
        };
        let (session, provider, fallback_reason) = match options.provider {
            Provider::Cpu => (build(false)?, "CPUExecutionProvider", None),
            Provider::Cuda => match build(true) {
                Ok(session) => (session, "CUDAExecutionProvider", None),
                Err(reason) if options.fallback == Fallback::Cpu => {
                    (build(false)?, "CPUExecutionProvider", Some(reason))
                }
                Err(reason) => {
                    return Err(format!(
                        "the CUDA execution provider is not available and fallback = \"error\": {reason}"
                    ))
                }
            },
        };
        let m = &manifest.manifest;
        check_graph(&session, manifest).map_err(|disagreement| {
            format!(
                "model file {} disagrees with its manifest {}: {disagreement}",
                model_path.display(),
                manifest.path.display()
            )
        })?;
        let input_names: Vec<String> = m.inputs.iter().map(|i| i.name.clone()).collect();
        Ok(ModelSession {
            session,
            input_names,
            widths: m.inputs.iter().map(|i| i.width()).collect(),
            labels: m.labels.len(),
            provider,
            fallback_reason,
        })
    }

    /// The warning to print when the requested provider was not used (`None` when it was).
    pub fn fallback_warning(&self, model: &str) -> Option<String> {
        self.fallback_reason.as_ref().map(|reason| {
            format!(
                "CUDA execution provider unavailable, running {model} on CPU (fallback = \"cpu\"): {reason}"
            )
        })
    }

    /// Runs one batch: `inputs[i]` holds `batch` rows of input `i`, row-major. Returns `batch` rows of
    /// label probabilities, row-major.
    pub fn run(&mut self, batch: usize, inputs: &[Vec<f32>]) -> Result<Vec<f32>, String> {
        let mut values = Vec::with_capacity(inputs.len());
        for ((name, width), data) in self.input_names.iter().zip(&self.widths).zip(inputs) {
            if data.len() != batch * width {
                return Err(format!(
                    "input `{name}` needs {batch} x {width} values, got {}",
                    data.len()
                ));
            }
            let tensor = Tensor::from_array(([batch, *width], data.clone()))
                .map_err(|e| format!("input `{name}`: {e}"))?;
            values.push((name.clone(), tensor.into_dyn()));
        }
        let outputs = self
            .session
            .run(values)
            .map_err(|e| format!("model run failed: {e}"))?;
        let (shape, data) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| format!("model output is not a float tensor: {e}"))?;
        if shape.len() != 2 || shape[0] as usize != batch || shape[1] as usize != self.labels {
            return Err(format!(
                "model output has shape {shape:?}, expected [{batch}, {}]",
                self.labels
            ));
        }
        Ok(data.to_vec())
    }
}

/// What the model's graph takes and returns agrees with the manifest: input names in order, each
/// a float tensor `[batch, width]`, and a float output `[batch, labels]`.
fn check_graph(session: &Session, manifest: &LoadedManifest) -> Result<(), String> {
    let m = &manifest.manifest;
    let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
    let expected: Vec<&str> = m.inputs.iter().map(|i| i.name.as_str()).collect();
    if names != expected {
        return Err(format!(
            "the model takes inputs {names:?} but the manifest lists {expected:?}"
        ));
    }
    for (outlet, input) in session.inputs().iter().zip(&m.inputs) {
        let what = format!("input `{}`", input.name);
        check_matrix(outlet.dtype(), &what, input.width(), "features")?;
    }
    let Some(output) = session.outputs().first() else {
        return Err("the model has no output".to_string());
    };
    if let Some(named) = &m.output {
        if named.name != output.name() {
            return Err(format!(
                "the model's output is `{}` but the manifest names `{}`",
                output.name(),
                named.name
            ));
        }
    }
    let what = format!("output `{}`", output.name());
    check_matrix(output.dtype(), &what, m.labels.len(), "labels")
}

/// `value` is a float tensor of rank 2 whose second dimension is `width` (or not fixed).
fn check_matrix(value: &ValueType, what: &str, width: usize, unit: &str) -> Result<(), String> {
    let (Some(shape), Some(TensorElementType::Float32)) =
        (value.tensor_shape(), value.tensor_type())
    else {
        return Err(format!("{what} is {value}, not a float tensor"));
    };
    match **shape {
        [_, columns] if columns < 0 || columns as usize == width => Ok(()),
        [_, columns] => Err(format!(
            "{what} has {columns} {unit}, but the manifest says {width}"
        )),
        _ => Err(format!(
            "{what} has shape {:?}; a [batch, {unit}] matrix is needed",
            &**shape
        )),
    }
}
