//! Sources: where streams enter the pipeline.
//!
//! A source runs on its own thread (or, as its [`Split`] allows, one thread per worker, each
//! producing a share of the subjects) and feeds the dataflow through a bounded queue
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

    /// How the source spreads its subjects over threads (one thread on process 0 unless it
    /// says otherwise).
    fn split(&self) -> Split {
        Split::Whole
    }

    /// Starts one thread per `(share, sender)`, each producing only the subjects of its share;
    /// called instead of [`Source::spawn`] unless [`Source::split`] is [`Split::Whole`]. Together
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

/// Starts a source that splits as one share of every subject ([`SubjectShare::ALL`]): its
/// [`Source::spawn`] when it implements [`Source::spawn_shares`].
pub fn spawn_whole(
    source: &dyn Source,
    source_name: &str,
    stream_ids: Vec<u32>,
    sender: SourceSender,
) -> std::io::Result<JoinHandle<()>> {
    let mut threads =
        source.spawn_shares(source_name, stream_ids, vec![(SubjectShare::ALL, sender)])?;
    Ok(threads.remove(0))
}

/// The name of a source's thread (what a debugger or `top -H` shows): `source NAME`, or
/// `source NAME i` for share `i` of several.
pub fn thread_name(source_name: &str, share: SubjectShare, shares: usize) -> String {
    match shares {
        1 => format!("source {source_name}"),
        _ => format!("source {source_name} {}", share.index),
    }
}

/// How a source spreads its subjects over threads, so producing them does not serialise the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// One thread on process 0 produces every subject.
    Whole,
    /// Process 0 runs one thread per worker of its own, each producing a share of the subjects:
    /// for sources whose data only process 0 has (a file), or whose shares agree on something
    /// at the start (a file's first timestamp).
    OnFirstProcess,
    /// Every process runs one thread per worker, each producing the subjects that worker owns:
    /// for sources whose subjects are independent of each other and of the machine.
    Everywhere,
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
