//! Sources: where streams enter the pipeline.
//!
//! A source runs on its own thread (or, when its subjects are independent, one thread per worker,
//! each producing the subjects that worker owns) and feeds the dataflow through a bounded queue
//! ([`queue`]) per thread: data batches, then watermarks that promise no earlier sample will
//! follow. The dataflow advances each source's frontier from its watermarks, so windows close by
//! event time, never by wall clock.

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
use crate::stream::{StreamSchema, SubjectShare};

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

    /// Whether the source can produce its subjects in shares, one thread per worker, each feeding
    /// the worker that owns its subjects (so generation spreads over cores and processes). Only
    /// sources whose subjects are independent of each other can.
    fn splits_by_subject(&self) -> bool {
        false
    }

    /// Starts one thread per `(share, sender)`, each producing only the subjects of its share;
    /// called instead of [`Source::spawn`] when [`Source::splits_by_subject`] is true. Together
    /// the threads send exactly what one unsplit thread would. A source that cannot split takes
    /// only [`SubjectShare::ALL`].
    fn spawn_shares(
        &self,
        source_name: &str,
        stream_ids: Vec<u32>,
        mut shares: Vec<(SubjectShare, SourceSender)>,
    ) -> std::io::Result<Vec<JoinHandle<()>>> {
        match shares.pop() {
            Some((SubjectShare::ALL, sender)) if shares.is_empty() => {
                Ok(vec![self.spawn(source_name, stream_ids, sender)?])
            }
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "this source cannot produce its subjects in shares",
            )),
        }
    }
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
