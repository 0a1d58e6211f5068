//! Operators: the components between sources and sinks.
//!
//! Each operator kind is one module holding its config (read from the pipeline file through
//! [`Options`]), its port check (which input schemas it accepts and what schema it outputs) and its
//! per-subject logic ([`OperatorLogic`]). The runtime gives every subject its own logic instance, so
//! operators never see two subjects' data mixed and results do not depend on the worker count.

mod band_power;
mod eeg_de;
mod face_features;
mod feature_output;
mod filter;
mod join;
mod model;
mod normalize;
mod peripheral_features;
mod physio;
mod rereference;
mod resample;
mod select;
mod window;
mod window_stats;

#[cfg(test)]
mod dmer_tests;
#[cfg(test)]
mod signal_tests;

pub use band_power::BandPowerConfig;
pub use eeg_de::EegDeConfig;
pub use face_features::FaceFeaturesConfig;
pub use filter::FilterConfig;
pub use join::{JoinConfig, Missing};
pub use model::{ModelConfig, DEFAULT_HELO_MANIFEST};
pub use normalize::NormalizeConfig;
pub use peripheral_features::{PeripheralConfig, PeripheralSignal};
pub use physio::{window_features, window_quality, PhysioConfig, PhysioFeature, PhysioLogic};
pub use rereference::RereferenceConfig;
pub use resample::ResampleConfig;
pub use select::SelectConfig;
pub use window::{WindowPlan, WindowSpec};
pub use window_stats::WindowStatsConfig;

use crate::config::options::Options;
use crate::config::{PortError, PortSite};
use crate::stream::{Batch, Nanos, StreamSchema};

/// Operator kinds a pipeline file may name, in the order shown in messages.
pub const OPERATOR_KINDS: [&str; 20] = [
    "activity",
    "band_power",
    "eda_components",
    "eeg_de",
    "face_features",
    "filter",
    "gsr_features",
    "heart_rate_variability",
    "helo",
    "join",
    "normalize",
    "onnx",
    "ppg_features",
    "pulse",
    "rereference",
    "resample",
    "respiration",
    "select",
    "temperature_slope",
    "window_stats",
];

/// How the runtime spreads an operator's subjects over workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routing {
    /// One logic instance per subject, subjects partitioned across workers.
    PerSubject,
    /// One logic instance for all subjects, on one worker (models batch subjects together).
    AllSubjects,
}

/// The validated configuration of one operator.
#[derive(Clone, Debug, PartialEq)]
pub enum OperatorConfig {
    /// Per-channel band power over sliding windows.
    BandPower(BandPowerConfig),
    /// DMER EEG differential entropy.
    EegDe(EegDeConfig),
    /// Per-window action-unit statistics.
    FaceFeatures(FaceFeaturesConfig),
    /// Butterworth or notch filter, causal or zero-phase.
    Filter(FilterConfig),
    /// Rows of several windowed streams joined on their window ends.
    Join(JoinConfig),
    /// Running z-score.
    Normalize(NormalizeConfig),
    /// DMER GSR or PPG statistical features.
    Peripheral(PeripheralConfig),
    /// Common average reference.
    Rereference(RereferenceConfig),
    /// Lower sampling rate.
    Resample(ResampleConfig),
    /// Physiological features over sliding windows (HRV, pulse, EDA, respiration, temperature, activity).
    Physio(PhysioConfig),
    /// A subset of channels, by label.
    Select(SelectConfig),
    /// Per-channel statistics over sliding windows.
    WindowStats(WindowStatsConfig),
    /// A model with a manifest on ONNX Runtime (`helo` when `helo` is true, else `onnx`).
    Model {
        /// Whether the pipeline asked for `helo` (HeLo manifest required).
        helo: bool,
        /// The model and how to run it.
        config: Box<ModelConfig>,
    },
}

/// Per-subject processing logic of an operator.
///
/// All batches of one subject reach the same instance, in event-time order per input stream.
pub trait OperatorLogic: Send {
    /// Consumes a batch from input `input`; samples that are complete go to `out` right away.
    fn on_batch(&mut self, input: usize, batch: &Batch, out: &mut Vec<Batch>);

    /// Every input sample with a timestamp below `frontier` has arrived (`Nanos::MAX` at the end of
    /// all input): emit what that completes. Outputs carry timestamps at or above the previous frontier.
    fn on_frontier(&mut self, frontier: Nanos, out: &mut Vec<Batch>);

    /// The earliest timestamp this logic may still emit, when it lags the frontier (a zero-phase
    /// filter holding a recording, a resampler waiting for the sample after a grid point).
    fn hold(&self) -> Option<Nanos> {
        None
    }
}

impl OperatorConfig {
    /// Reads the options of an operator of `kind`, or `None` when the kind is unknown.
    pub fn parse(kind: &str, options: &mut Options) -> Option<OperatorConfig> {
        Some(match kind {
            "band_power" => OperatorConfig::BandPower(BandPowerConfig::parse(options)),
            "eeg_de" => OperatorConfig::EegDe(EegDeConfig::parse(options)),
            "face_features" => OperatorConfig::FaceFeatures(FaceFeaturesConfig::parse(options)),
            "filter" => OperatorConfig::Filter(FilterConfig::parse(options)),
            "join" => OperatorConfig::Join(JoinConfig::parse(options)),
            "normalize" => OperatorConfig::Normalize(NormalizeConfig::parse(options)),
            "rereference" => OperatorConfig::Rereference(RereferenceConfig::parse(options)),
            "resample" => OperatorConfig::Resample(ResampleConfig::parse(options)),
            "gsr_features" => {
                OperatorConfig::Peripheral(PeripheralConfig::parse(PeripheralSignal::Gsr, options))
            }
            "ppg_features" => {
                OperatorConfig::Peripheral(PeripheralConfig::parse(PeripheralSignal::Ppg, options))
            }
            "select" => OperatorConfig::Select(SelectConfig::parse(options)),
            "window_stats" => OperatorConfig::WindowStats(WindowStatsConfig::parse(options)),
            "helo" | "onnx" => {
                let helo = kind == "helo";
                let config = Box::new(ModelConfig::parse(options, helo)?);
                OperatorConfig::Model { helo, config }
            }
            other => {
                let feature = PhysioFeature::from_kind(other)?;
                OperatorConfig::Physio(PhysioConfig::parse(feature, options))
            }
        })
    }

    /// The option that makes this operator need a finished recording (zero-phase filtering), if set:
    /// such an operator is rejected downstream of a real-time source.
    pub fn offline_only(&self) -> Option<&'static str> {
        match self {
            OperatorConfig::Filter(config) if config.zero_phase => Some("zero_phase"),
            _ => None,
        }
    }

    /// The kind name as written in pipeline files.
    pub fn kind(&self) -> &'static str {
        match self {
            OperatorConfig::BandPower(_) => "band_power",
            OperatorConfig::EegDe(_) => "eeg_de",
            OperatorConfig::FaceFeatures(_) => "face_features",
            OperatorConfig::Filter(_) => "filter",
            OperatorConfig::Join(_) => "join",
            OperatorConfig::Normalize(_) => "normalize",
            OperatorConfig::Rereference(_) => "rereference",
            OperatorConfig::Resample(_) => "resample",
            OperatorConfig::Peripheral(config) => match config.signal {
                PeripheralSignal::Gsr => "gsr_features",
                PeripheralSignal::Ppg => "ppg_features",
            },
            OperatorConfig::Physio(config) => config.feature.kind(),
            OperatorConfig::Select(_) => "select",
            OperatorConfig::WindowStats(_) => "window_stats",
            OperatorConfig::Model { helo: true, .. } => "helo",
            OperatorConfig::Model { helo: false, .. } => "onnx",
        }
    }

    /// Checks the upstream schemas and returns the schema of the operator's output stream `name`.
    pub fn output_schema(
        &self,
        name: &str,
        inputs: &[&StreamSchema],
    ) -> Result<StreamSchema, PortError> {
        match self {
            OperatorConfig::BandPower(config) => config.output_schema(name, inputs),
            OperatorConfig::EegDe(config) => config.output_schema(name, inputs),
            OperatorConfig::FaceFeatures(config) => config.output_schema(name, inputs),
            OperatorConfig::Peripheral(config) => config.output_schema(name, inputs),
            OperatorConfig::Filter(config) => config.output_schema(name, inputs),
            OperatorConfig::Join(config) => config.output_schema(name, inputs),
            OperatorConfig::Normalize(config) => config.output_schema(name, inputs),
            OperatorConfig::Rereference(config) => config.output_schema(name, inputs),
            OperatorConfig::Resample(config) => config.output_schema(name, inputs),
            OperatorConfig::Physio(config) => config.output_schema(name, inputs),
            OperatorConfig::Select(config) => config.output_schema(name, inputs),
            OperatorConfig::WindowStats(config) => config.output_schema(name, inputs),
            OperatorConfig::Model { config, .. } => config.output_schema(name, inputs),
        }
    }

    /// A fresh logic instance for one subject; `output` is the output stream's id and schema.
    pub fn instantiate(
        &self,
        inputs: &[&StreamSchema],
        output_id: u32,
        output: &StreamSchema,
        subject: &str,
    ) -> Box<dyn OperatorLogic> {
        match self {
            OperatorConfig::BandPower(config) => {
                Box::new(config.instantiate(inputs[0], output_id, output, subject))
            }
            OperatorConfig::EegDe(config) => {
                Box::new(config.instantiate(inputs[0], output_id, subject))
            }
            OperatorConfig::FaceFeatures(config) => {
                Box::new(config.instantiate(inputs[0], output_id, subject))
            }
            OperatorConfig::Peripheral(config) => Box::new(config.instantiate(output_id, subject)),
            OperatorConfig::Filter(config) => {
                Box::new(config.instantiate(inputs[0], output_id, subject))
            }
            OperatorConfig::Join(config) => {
                Box::new(config.instantiate(inputs, output_id, subject))
            }
            OperatorConfig::Normalize(config) => Box::new(config.instantiate(inputs[0], output_id)),
            OperatorConfig::Rereference(config) => {
                Box::new(config.instantiate(inputs[0], output_id))
            }
            OperatorConfig::Resample(config) => Box::new(config.instantiate(inputs[0], output_id)),
            OperatorConfig::Physio(config) => {
                Box::new(config.instantiate(inputs[0], output_id, subject))
            }
            OperatorConfig::Select(config) => {
                Box::new(config.instantiate(inputs[0], output_id, subject))
            }
            OperatorConfig::WindowStats(config) => {
                Box::new(config.instantiate(inputs[0], output_id, output, subject))
            }
            OperatorConfig::Model { config, .. } => Box::new(config.instantiate(inputs, output_id)),
        }
    }

    /// How the runtime spreads subjects over workers for this operator.
    pub fn routing(&self) -> Routing {
        match self {
            OperatorConfig::Model { .. } => Routing::AllSubjects,
            _ => Routing::PerSubject,
        }
    }

    /// Acquires what the operator needs before the dataflow starts (a model session).
    pub fn prepare(&mut self, name: &str) -> Result<(), String> {
        match self {
            OperatorConfig::Model { config, .. } => config.prepare(name),
            _ => Ok(()),
        }
    }
}

/// Positions of `labels` among `input`'s channels; an unknown label is an error at `option`.
pub fn channel_indices(
    input: &StreamSchema,
    labels: &[String],
    option: &'static str,
) -> Result<Vec<usize>, PortError> {
    labels
        .iter()
        .map(|label| {
            input
                .channels
                .iter()
                .position(|c| &c.label == label)
                .ok_or_else(|| {
                    PortError::option(
                        option,
                        format!("`{}` has no channel \"{label}\"", input.name),
                        format!("its channels are: {}", input.labels().join(", ")),
                    )
                })
        })
        .collect()
}

/// Checks that an input carries regularly sampled numbers, as signal-processing operators need.
pub fn require_regular_numeric(kind: &str, input: &StreamSchema) -> Result<f64, PortError> {
    if !input.format.is_numeric() {
        return Err(PortError::input(
            0,
            format!(
                "`{kind}` needs a numeric signal, but `{}` is a {} stream of {} values",
                input.name,
                input.modality.name(),
                input.format.lsl_name()
            ),
            "connect a numeric signal stream such as an EEG, ECG or EDA stream",
        ));
    }
    input.rate.hz().ok_or_else(|| {
        PortError::input(
            0,
            format!(
                "`{kind}` needs a regularly sampled signal, but `{}` has an irregular rate",
                input.name
            ),
            "connect a stream with a nominal sampling rate",
        )
    })
}
