//! Operators: the components between sources and sinks.
//!
//! Each operator kind is one module holding its config (read from the pipeline file through
//! [`Options`]), its port check (which input schemas it accepts and what schema it outputs) and its
//! per-subject logic ([`OperatorLogic`]). The runtime gives every subject its own logic instance, so
//! operators never see two subjects' data mixed and results do not depend on the worker count.

mod band_power;
mod physio;
mod select;
mod window;
mod window_stats;

pub use band_power::BandPowerConfig;
pub use physio::{window_features, PhysioConfig, PhysioFeature, PhysioLogic};
pub use select::SelectConfig;
pub use window::{WindowPlan, WindowSpec};
pub use window_stats::WindowStatsConfig;

use crate::pipeline::options::Options;
use crate::stream::{Batch, Nanos, StreamSchema};

/// Operator kinds a pipeline file may name, in the order shown in messages.
pub const OPERATOR_KINDS: [&str; 9] = [
    "activity",
    "band_power",
    "eda_components",
    "heart_rate_variability",
    "pulse",
    "respiration",
    "select",
    "temperature_slope",
    "window_stats",
];

/// The validated configuration of one operator.
#[derive(Clone, Debug, PartialEq)]
pub enum OperatorConfig {
    /// Per-channel band power over sliding windows.
    BandPower(BandPowerConfig),
    /// Physiological features over sliding windows (HRV, pulse, EDA, respiration, temperature, activity).
    Physio(PhysioConfig),
    /// A subset of channels, by label.
    Select(SelectConfig),
    /// Per-channel statistics over sliding windows.
    WindowStats(WindowStatsConfig),
}

/// A problem with an operator's inputs, found once the upstream schemas are known.
#[derive(Clone, Debug, PartialEq)]
pub struct PortError {
    /// Where the problem is.
    pub site: PortSite,
    /// What is wrong.
    pub message: String,
    /// What would be valid.
    pub help: String,
}

/// The part of a component a [`PortError`] points at.
#[derive(Clone, Debug, PartialEq)]
pub enum PortSite {
    /// The input at this position in `inputs`.
    Input(usize),
    /// The `inputs` list as a whole (wrong count).
    Inputs,
    /// The named option.
    Option(&'static str),
}

impl PortError {
    /// A problem with input number `index`.
    pub fn input(index: usize, message: impl Into<String>, help: impl Into<String>) -> Self {
        PortError {
            site: PortSite::Input(index),
            message: message.into(),
            help: help.into(),
        }
    }

    /// A problem with an option, seen against the inputs.
    pub fn option(key: &'static str, message: impl Into<String>, help: impl Into<String>) -> Self {
        PortError {
            site: PortSite::Option(key),
            message: message.into(),
            help: help.into(),
        }
    }

    /// The operator takes exactly one input and got `count`.
    pub fn needs_one_input(kind: &str, count: usize) -> Self {
        PortError {
            site: PortSite::Inputs,
            message: format!("`{kind}` takes exactly one input, found {count}"),
            help: "use one operator per input stream".to_string(),
        }
    }
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
}

impl OperatorConfig {
    /// Reads the options of an operator of `kind`, or `None` when the kind is unknown.
    pub fn parse(kind: &str, options: &mut Options) -> Option<OperatorConfig> {
        Some(match kind {
            "band_power" => OperatorConfig::BandPower(BandPowerConfig::parse(options)),
            "select" => OperatorConfig::Select(SelectConfig::parse(options)),
            "window_stats" => OperatorConfig::WindowStats(WindowStatsConfig::parse(options)),
            other => {
                let feature = PhysioFeature::from_kind(other)?;
                OperatorConfig::Physio(PhysioConfig::parse(feature, options))
            }
        })
    }

    /// The kind name as written in pipeline files.
    pub fn kind(&self) -> &'static str {
        match self {
            OperatorConfig::BandPower(_) => "band_power",
            OperatorConfig::Physio(config) => config.feature.kind(),
            OperatorConfig::Select(_) => "select",
            OperatorConfig::WindowStats(_) => "window_stats",
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
            OperatorConfig::Physio(config) => config.output_schema(name, inputs),
            OperatorConfig::Select(config) => config.output_schema(name, inputs),
            OperatorConfig::WindowStats(config) => config.output_schema(name, inputs),
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
            OperatorConfig::Physio(config) => {
                Box::new(config.instantiate(inputs[0], output_id, subject))
            }
            OperatorConfig::Select(config) => {
                Box::new(config.instantiate(inputs[0], output_id, subject))
            }
            OperatorConfig::WindowStats(config) => {
                Box::new(config.instantiate(inputs[0], output_id, output, subject))
            }
        }
    }
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
