//! Sources: where streams enter the pipeline.
//!
//! A source runs on its own thread and feeds the dataflow through a bounded queue ([`queue`]): data
//! batches, then watermarks that promise no earlier sample will follow. The dataflow advances each
//! source's frontier from its watermarks, so windows close by event time, never by wall clock.

pub mod lsl;
pub mod queue;
pub mod simulator;

use std::thread::JoinHandle;

pub use self::lsl::LslSourceConfig;
pub use queue::{QueueConfig, QueuePolicy, SourceEvent, SourceSender};
pub use simulator::SimulatorConfig;

use crate::pipeline::options::Options;
use crate::stream::StreamSchema;

/// Source kinds a pipeline file may name.
pub const SOURCE_KINDS: [&str; 2] = ["lsl", "simulator"];

/// The validated configuration of one source.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceConfig {
    /// Simulated subjects (deterministic from a seed).
    Simulator(SimulatorConfig),
    /// Lab Streaming Layer streams from the network.
    Lsl(LslSourceConfig),
}

impl SourceConfig {
    /// Reads the options of a source of `kind`, or `None` when the kind is unknown.
    pub fn parse(kind: &str, options: &mut Options) -> Option<SourceConfig> {
        Some(match kind {
            "simulator" => SourceConfig::Simulator(SimulatorConfig::parse(options)),
            "lsl" => SourceConfig::Lsl(LslSourceConfig::parse(options)),
            _ => return None,
        })
    }

    /// The kind name as written in pipeline files.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Simulator(_) => "simulator",
            SourceConfig::Lsl(_) => "lsl",
        }
    }

    /// Whether the source delivers data as it happens (paced by the wall clock), so that operators
    /// needing a finished recording (zero-phase filters) cannot run downstream of it.
    pub fn is_live(&self) -> bool {
        match self {
            SourceConfig::Simulator(config) => config.realtime,
            SourceConfig::Lsl(_) => true,
        }
    }

    /// The queue between this source's thread and the dataflow.
    pub fn queue(&self) -> QueueConfig {
        match self {
            SourceConfig::Simulator(config) => config.queue,
            SourceConfig::Lsl(config) => config.queue,
        }
    }

    /// Schemas of the streams this source produces, named `<source>.<stream>`.
    pub fn outputs(&self, source_name: &str) -> Vec<StreamSchema> {
        match self {
            SourceConfig::Simulator(config) => config.outputs(source_name),
            SourceConfig::Lsl(config) => config.outputs(source_name),
        }
    }

    /// Starts the source thread; `stream_ids[i]` is the pipeline id of output `i`.
    pub fn spawn(
        &self,
        source_name: &str,
        stream_ids: Vec<u32>,
        sender: SourceSender,
    ) -> std::io::Result<JoinHandle<()>> {
        match self {
            SourceConfig::Simulator(config) => config.spawn(source_name, stream_ids, sender),
            SourceConfig::Lsl(config) => config.spawn(source_name, stream_ids, sender),
        }
    }
}
