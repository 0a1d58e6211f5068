//! Sources: where streams enter the pipeline.
//!
//! A source runs on its own thread and feeds the dataflow through a bounded queue ([`queue`]): data
//! batches, then watermarks that promise no earlier sample will follow. The dataflow advances each
//! source's frontier from its watermarks, so windows close by event time, never by wall clock.

pub mod csv;
pub mod lsl;
pub mod playback;
pub mod queue;
pub mod selection;
pub mod simulator;
pub mod xdf;

use std::thread::JoinHandle;

pub use self::csv::CsvSourceConfig;
pub use self::lsl::LslSourceConfig;
pub use queue::{QueueConfig, QueuePolicy, SourceEvent, SourceSender};
pub use simulator::SimulatorConfig;
pub use xdf::XdfSourceConfig;

use crate::config::options::Options;
use crate::stream::StreamSchema;

/// What every source kind provides. A kind implements it once and is registered once, in
/// [`SourceConfig`]'s list below.
pub trait Source {
    /// Reads the source's options; problems are recorded in `options` with their location.
    fn parse(options: &mut Options) -> Self
    where
        Self: Sized;

    /// Schemas of the streams this source produces, named `<source>.<stream>`.
    fn outputs(&self, source_name: &str) -> Vec<StreamSchema>;

    /// Whether the source delivers data as it happens (paced by the wall clock), so that operators
    /// needing a finished recording (zero-phase filters) cannot run downstream of it.
    fn is_live(&self) -> bool;

    /// The queue between this source's thread and the dataflow.
    fn queue(&self) -> QueueConfig;

    /// Starts the source thread; `stream_ids[i]` is the pipeline id of output `i`.
    fn spawn(
        &self,
        source_name: &str,
        stream_ids: Vec<u32>,
        sender: SourceSender,
    ) -> std::io::Result<JoinHandle<()>>;
}

crate::registry! {
    /// The validated configuration of one source.
    pub enum SourceConfig: Source, SOURCE_KINDS {
        /// A recording kept as comma-separated values.
        "csv" => Csv(CsvSourceConfig),
        /// Lab Streaming Layer streams from the network.
        "lsl" => Lsl(LslSourceConfig),
        /// Simulated subjects (deterministic from a seed).
        "simulator" => Simulator(SimulatorConfig),
        /// A recording in XDF (heloflow's own or LabRecorder's).
        "xdf" => Xdf(XdfSourceConfig),
    }
}
