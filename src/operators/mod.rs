//! Operators: the components between sources and sinks.
//!
//! Each operator kind is one module holding its config (read from the pipeline file through
//! [`Options`]), its port check (which input schemas it accepts and what schema it outputs) and its
//! per-subject logic ([`OperatorLogic`]). The runtime gives every subject its own logic instance, so
//! operators never see two subjects' data mixed and results do not depend on the worker count.
//! A kind that maintains collections across time (`condition_means`, on differential-dataflow)
//! builds its own fragment of the dataflow instead ([`Operator::dataflow`]).

mod band_power;
mod condition_means;
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
pub use condition_means::{Condition, ConditionMeansConfig, IntervalRule, MarkerUpdate};
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
pub use window::{WindowAlign, WindowPlan, WindowSpec};
pub use window_stats::WindowStatsConfig;

use crate::config::options::Options;
use crate::config::{PortError, PortSite};
use crate::pipeline::StreamId;
use crate::runtime::BatchStream;
use crate::stream::{Batch, Nanos, StreamSchema};

/// How the runtime spreads an operator's subjects over workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routing {
    /// One logic instance per subject, subjects partitioned across workers.
    PerSubject,
    /// One logic instance per worker, serving every subject routed to that worker (models batch
    /// their worker's subjects together, and each worker runs its own session).
    PerWorker,
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

    /// Input samples dropped so far because they came after their place in the output had been
    /// emitted; the runtime adds them to the run's drop counts.
    fn late_samples(&self) -> u64 {
        0
    }

    /// The model inference the last [`OperatorLogic::on_frontier`] call ran, if any, taken once
    /// (telemetry's inference latency and batch size).
    fn take_inference(&mut self) -> Option<Inference> {
        None
    }
}

/// One model inference: how many rows (subject windows) were scored together, and how long the
/// run took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inference {
    /// Rows in the batch.
    pub rows: usize,
    /// Wall-clock time of the run.
    pub elapsed: std::time::Duration,
}

/// Where a dataflow fragment sits in the pipeline: its input streams and its output stream.
#[derive(Clone, Debug)]
pub struct FragmentPorts {
    /// The operator's name (its output stream's name), for naming timely operators.
    pub name: String,
    /// Ids of the input streams, in the order written (a batch's `stream` is one of them).
    pub input_ids: Vec<StreamId>,
    /// The input schemas, in the same order.
    pub inputs: Vec<StreamSchema>,
    /// Id of the output stream (the `stream` of every batch the fragment emits).
    pub output_id: StreamId,
    /// The output schema, as [`Operator::output_schema`] gave it.
    pub output: StreamSchema,
}

/// An operator kind that builds its own fragment of the timely dataflow (differential-dataflow
/// collections kept across time) instead of running per-subject [`OperatorLogic`].
///
/// The fragment gets every input batch (all subjects, on every worker) and returns the output
/// stream. It keeps the runtime's invariant: a batch travels at a timely time no later than its
/// first sample's timestamp. Its output must not depend on the worker count: it exchanges by
/// subject itself and emits rows whose content and timestamps are a function of the input rows.
pub trait DataflowOperator {
    /// Builds the fragment on `input` (the operator's inputs, concatenated).
    fn build<'s>(&self, input: BatchStream<'s>, ports: &FragmentPorts) -> BatchStream<'s>;
}

/// What every operator kind provides. A kind implements it once and is registered once, in
/// [`OperatorConfig`]'s list below.
pub trait Operator {
    /// Checks the upstream schemas and returns the schema of the operator's output stream `name`.
    fn output_schema(
        &self,
        name: &str,
        inputs: &[&StreamSchema],
    ) -> Result<StreamSchema, PortError>;

    /// A fresh logic instance for one subject; `output` is the output stream's id and schema.
    fn logic(
        &self,
        inputs: &[&StreamSchema],
        output_id: u32,
        output: &StreamSchema,
        subject: &str,
    ) -> Box<dyn OperatorLogic>;

    /// How the runtime spreads subjects over workers for this operator.
    fn routing(&self) -> Routing {
        Routing::PerSubject
    }

    /// Acquires what the operator needs before the dataflow starts (a model session).
    fn prepare(&mut self, _name: &str) -> Result<(), String> {
        Ok(())
    }

    /// The option that makes this operator need a finished recording (zero-phase filtering), if
    /// set: such an operator is rejected downstream of a real-time source.
    fn offline_only(&self) -> Option<&'static str> {
        None
    }

    /// The sliding windows the operator buffers per subject, if it windows its input: the
    /// pipeline checks that one window of each input fits in memory.
    fn window(&self) -> Option<WindowSpec> {
        None
    }

    /// Whether the runtime lets the rest of the dataflow run once before this operator handles
    /// a frontier advance: a model's inference takes milliseconds, and rows the same frontier
    /// completed elsewhere (a sink's other outputs) should leave without waiting for it.
    fn yields_first(&self) -> bool {
        false
    }

    /// The kind's own dataflow fragment, for kinds that keep collections across time: the runtime
    /// builds it in place of per-subject [`OperatorLogic`] (and never calls `logic`).
    fn dataflow(&self) -> Option<&dyn DataflowOperator> {
        None
    }
}

/// A boxed kind (large configs such as models are boxed in the registry) behaves as the kind.
impl<T: Operator + ?Sized> Operator for Box<T> {
    fn output_schema(
        &self,
        name: &str,
        inputs: &[&StreamSchema],
    ) -> Result<StreamSchema, PortError> {
        self.as_ref().output_schema(name, inputs)
    }

    fn logic(
        &self,
        inputs: &[&StreamSchema],
        output_id: u32,
        output: &StreamSchema,
        subject: &str,
    ) -> Box<dyn OperatorLogic> {
        self.as_ref().logic(inputs, output_id, output, subject)
    }

    fn routing(&self) -> Routing {
        self.as_ref().routing()
    }

    fn prepare(&mut self, name: &str) -> Result<(), String> {
        self.as_mut().prepare(name)
    }

    fn offline_only(&self) -> Option<&'static str> {
        self.as_ref().offline_only()
    }

    fn window(&self) -> Option<WindowSpec> {
        self.as_ref().window()
    }

    fn yields_first(&self) -> bool {
        self.as_ref().yields_first()
    }

    fn dataflow(&self) -> Option<&dyn DataflowOperator> {
        self.as_ref().dataflow()
    }
}

crate::registry! {
    /// The validated configuration of one operator.
    pub enum OperatorConfig: Operator, OPERATOR_KINDS {
        /// Accelerometer activity (magnitude, ENMO).
        "activity" => Activity(PhysioConfig) = |o| PhysioConfig::parse(PhysioFeature::Activity, o),
        /// Per-channel band power over sliding windows.
        "band_power" => BandPower(BandPowerConfig) = BandPowerConfig::parse,
        /// Per-subject, per-condition window counts and means, kept up to date on differential-dataflow.
        "condition_means" => ConditionMeans(ConditionMeansConfig) = ConditionMeansConfig::parse,
        /// Tonic and phasic EDA, skin conductance responses.
        "eda_components" => EdaComponents(PhysioConfig) = |o| PhysioConfig::parse(PhysioFeature::EdaComponents, o),
        /// DMER EEG differential entropy.
        "eeg_de" => EegDe(EegDeConfig) = EegDeConfig::parse,
        /// Per-window action-unit statistics.
        "face_features" => FaceFeatures(FaceFeaturesConfig) = FaceFeaturesConfig::parse,
        /// Butterworth or notch filter, causal or zero-phase.
        "filter" => Filter(FilterConfig) = FilterConfig::parse,
        /// DMER GSR statistical features.
        "gsr_features" => GsrFeatures(PeripheralConfig) = |o| PeripheralConfig::parse(PeripheralSignal::Gsr, o),
        /// Heart rate and HRV from ECG.
        "heart_rate_variability" => HeartRateVariability(PhysioConfig) = |o| PhysioConfig::parse(PhysioFeature::HeartRateVariability, o),
        /// The HeLo model on ONNX Runtime (HeLo manifest required).
        "helo" => Helo(Box<ModelConfig>) = |o| ModelConfig::parse(o, true).map(Box::new),
        /// Rows of several windowed streams joined on their window ends.
        "join" => Join(JoinConfig) = JoinConfig::parse,
        /// Running z-score.
        "normalize" => Normalize(NormalizeConfig) = NormalizeConfig::parse,
        /// Any model with a manifest on ONNX Runtime.
        "onnx" => Onnx(Box<ModelConfig>) = |o| ModelConfig::parse(o, false).map(Box::new),
        /// DMER PPG statistical features.
        "ppg_features" => PpgFeatures(PeripheralConfig) = |o| PeripheralConfig::parse(PeripheralSignal::Ppg, o),
        /// Pulse rate and variability from PPG.
        "pulse" => Pulse(PhysioConfig) = |o| PhysioConfig::parse(PhysioFeature::Pulse, o),
        /// Common average reference.
        "rereference" => Rereference(RereferenceConfig) = RereferenceConfig::parse,
        /// Lower sampling rate.
        "resample" => Resample(ResampleConfig) = ResampleConfig::parse,
        /// Breathing rate and amplitude.
        "respiration" => Respiration(PhysioConfig) = |o| PhysioConfig::parse(PhysioFeature::Respiration, o),
        /// A subset of channels, by label.
        "select" => Select(SelectConfig) = SelectConfig::parse,
        /// Skin temperature slope and mean.
        "temperature_slope" => TemperatureSlope(PhysioConfig) = |o| PhysioConfig::parse(PhysioFeature::TemperatureSlope, o),
        /// Per-channel statistics over sliding windows.
        "window_stats" => WindowStats(WindowStatsConfig) = WindowStatsConfig::parse,
    }
}

impl OperatorConfig {
    /// The model this operator runs, for `helo` and `onnx` operators.
    pub fn model(&self) -> Option<&ModelConfig> {
        match self {
            OperatorConfig::Helo(config) | OperatorConfig::Onnx(config) => Some(config),
            _ => None,
        }
    }
}

/// The channel labels listed in `key` (empty when absent), each once: a label listed twice is an
/// error at its place, since it would give an output two channels of one name.
pub fn unique_labels(options: &mut Options, key: &'static str) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for label in options.string_list(key).unwrap_or_default() {
        if labels.contains(label.get_ref()) {
            options.error_at_span(
                label.span(),
                format!("channel \"{}\" is listed twice in `{key}`", label.get_ref()),
                "list each channel once",
            );
        } else {
            labels.push(label.into_inner());
        }
    }
    labels
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
