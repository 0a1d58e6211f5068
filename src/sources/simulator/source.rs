//! The `simulator` source: its pipeline options and the threads that pace the simulation, one per
//! worker, each generating the subjects that worker owns (a subject's data depends on its id and
//! the seed alone, so the split changes no sample).
//!
//! ```toml
//! [sources.sim]
//! kind = "simulator"
//! seed = 7
//! subjects = 2                    # or a list of ids: ["P01", "P02"]
//! streams = ["eeg", "ecg", "eda", "emotion"]   # default: all
//! duration_s = 60                 # default: until Ctrl-C
//! realtime = true                 # pace by the wall clock; false = as fast as possible
//! start_s = "now"                 # event time starts at the LSL clock (default 0)
//! ```

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{SimStream, Simulator, SimulatorSettings};
use crate::config::document::{suggest_or_list, Node};
use crate::config::options::Options;
use crate::sources::playback::MAX_TIME_S;
use crate::sources::queue::{QueueConfig, SourceSender};
use crate::sources::selection::MAX_SUBJECTS;
use crate::sources::{spawn_whole, thread_name, Source, Split};
use crate::stream::{secs_to_nanos, Batch, Nanos, StreamSchema, SubjectShare};

/// Longest simulation, seconds (about three years of event time): from any `start_s` within
/// ±[`MAX_TIME_S`] the run stays inside event time (i64 nanoseconds). A simulation without
/// `duration_s` also ends there.
pub const MAX_DURATION_S: f64 = 1.0e8;

/// Event time per step, seconds: a millisecond to a second (a step of every subject and stream is
/// built at once, so longer steps would hold that much data in memory).
const CHUNK_RANGE_S: std::ops::RangeInclusive<f64> = 1e-3..=1.0;

/// Longest wall-clock sleep between checks for Ctrl-C while pacing in real time.
const PACING_SLICE: Duration = Duration::from_millis(50);

/// Options of a `simulator` source.
#[derive(Clone, Debug, PartialEq)]
pub struct SimulatorConfig {
    /// Seed: the same seed gives the same data, byte for byte.
    pub seed: u64,
    /// Subject ids.
    pub subjects: Vec<String>,
    /// Streams to produce, in output order.
    pub streams: Vec<SimStream>,
    /// Event time of the first sample (seconds on the LSL clock).
    pub start_s: f64,
    /// Start at the LSL local clock when the run begins (`start_s = "now"`), e.g. to publish live
    /// LSL outlets whose timestamps other LSL clients can compare with their own.
    pub start_now: bool,
    /// Length of the simulation; `None` runs until stopped.
    pub duration_s: Option<f64>,
    /// Pace output by the wall clock instead of running as fast as possible.
    pub realtime: bool,
    /// Event time covered by each step (data batch per stream and watermark).
    pub chunk_s: f64,
    /// Queue to the dataflow.
    pub queue: QueueConfig,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            seed: 1,
            subjects: subject_ids(1),
            streams: SimStream::ALL.to_vec(),
            start_s: 0.0,
            start_now: false,
            duration_s: None,
            realtime: false,
            chunk_s: 0.1,
            queue: QueueConfig::default(),
        }
    }
}

/// Subject ids `S01`, `S02`, ... for a count.
pub fn subject_ids(count: usize) -> Vec<String> {
    (1..=count).map(|i| format!("S{i:02}")).collect()
}

impl Source for SimulatorConfig {
    fn parse(options: &mut Options) -> Self {
        let defaults = SimulatorConfig::default();
        let seed = options.integer("seed", 1, 0..i64::MAX) as u64;
        let subjects = match options.raw("subjects") {
            None => defaults.subjects,
            Some(node) => match node.get_ref() {
                Node::Int(n) if (1..=MAX_SUBJECTS as i64).contains(n) => subject_ids(*n as usize),
                Node::Array(items) if !items.is_empty() && items.len() <= MAX_SUBJECTS => {
                    let mut ids: Vec<String> = Vec::with_capacity(items.len());
                    for item in items {
                        match item.get_ref() {
                            Node::Str(s) if ids.contains(s) => options.error_at_span(
                                item.span(),
                                format!("subject \"{s}\" is listed twice in `subjects`"),
                                "give every simulated subject its own id",
                            ),
                            Node::Str(s) if !s.is_empty() => ids.push(s.clone()),
                            _ => options.error_at_span(
                                item.span(),
                                "`subjects` must be a list of non-empty subject ids",
                                "for example subjects = [\"P01\", \"P02\"], or a count: subjects = 2",
                            ),
                        }
                    }
                    ids
                }
                other => {
                    options.error_at_span(
                        node.span(),
                        format!(
                            "`subjects` must be a count (1 to {MAX_SUBJECTS}) or a list of 1 to {MAX_SUBJECTS} ids, found {}",
                            other.describe()
                        ),
                        "for example subjects = 2, or subjects = [\"P01\", \"P02\"]",
                    );
                    defaults.subjects
                }
            },
        };
        let mut streams = Vec::new();
        let valid: Vec<&str> = SimStream::ALL.iter().map(|s| s.name()).collect();
        match options.string_list("streams") {
            None => streams = defaults.streams,
            Some(names) if names.is_empty() => {
                options.error_at(
                    "streams",
                    "`streams` is empty, so the simulator would produce nothing",
                    format!(
                        "list the streams to simulate, for example streams = [\"eeg\", \"eda\"] (valid: {}), or leave `streams` out for all of them",
                        valid.join(", ")
                    ),
                );
                // Go on as if left out, so the inputs naming its streams are not errors too.
                streams = defaults.streams;
            }
            Some(names) => {
                for name in names {
                    match SimStream::from_name(name.get_ref()) {
                        Some(stream) if !streams.contains(&stream) => streams.push(stream),
                        Some(_) => options.error_at_span(
                            name.span(),
                            format!("stream \"{}\" is listed twice in `streams`", name.get_ref()),
                            "list each stream once",
                        ),
                        None => options.error_at_span(
                            name.span(),
                            format!("the simulator has no stream \"{}\"", name.get_ref()),
                            suggest_or_list(name.get_ref(), &valid),
                        ),
                    }
                }
            }
        }
        let (start_s, start_now) = match options.raw("start_s") {
            None => (0.0, false),
            Some(node) => match node.get_ref() {
                Node::Float(f) if f.abs() <= MAX_TIME_S => (*f, false),
                Node::Int(i) if (*i as f64).abs() <= MAX_TIME_S => (*i as f64, false),
                Node::Str(s) if s == "now" => (0.0, true),
                other => {
                    options.error_at_span(
                        node.span(),
                        format!(
                            "`start_s` must be seconds within ±{MAX_TIME_S} (event time is i64 nanoseconds) or \"now\", found {}",
                            other.describe()
                        ),
                        "for example start_s = 0, or start_s = \"now\" (the LSL clock at start)",
                    );
                    (0.0, false)
                }
            },
        };
        let duration_s = options
            .number("duration_s")
            .is_some()
            .then(|| options.number_in("duration_s", 1.0, 1e-3..=MAX_DURATION_S));
        let round = subjects.len().saturating_mul(streams.len());
        SimulatorConfig {
            seed,
            subjects,
            streams,
            start_s,
            start_now,
            duration_s,
            realtime: options.boolean("realtime", false),
            chunk_s: options.number_in("chunk_s", defaults.chunk_s, CHUNK_RANGE_S),
            queue: QueueConfig::parse_for_round(options, round),
        }
    }

    /// One schema per configured stream.
    fn outputs(&self, source_name: &str) -> Vec<StreamSchema> {
        self.streams
            .iter()
            .map(|s| s.schema(source_name, &self.subjects))
            .collect()
    }

    fn is_live(&self) -> bool {
        self.realtime
    }

    fn queue(&self) -> QueueConfig {
        self.queue
    }

    /// Starts the simulation thread.
    fn spawn(
        &self,
        source_name: &str,
        stream_ids: Vec<u32>,
        sender: SourceSender,
    ) -> std::io::Result<JoinHandle<()>> {
        spawn_whole(self, source_name, stream_ids, sender)
    }

    /// Simulated subjects are independent of each other (each is seeded by its id alone).
    fn split(&self) -> Split {
        Split::Everywhere
    }

    /// One simulation thread per share, all starting at the same event time.
    fn spawn_shares(
        &self,
        source_name: &str,
        stream_ids: Vec<u32>,
        shares: Vec<(SubjectShare, SourceSender)>,
    ) -> std::io::Result<Vec<JoinHandle<()>>> {
        let start = if self.start_now {
            secs_to_nanos(lsl::local_clock())
        } else {
            secs_to_nanos(self.start_s)
        };
        let count = shares.len();
        shares
            .into_iter()
            .map(|(share, sender)| {
                let mut config = self.clone();
                config.subjects.retain(|subject| share.owns(subject));
                let stream_ids = stream_ids.clone();
                std::thread::Builder::new()
                    .name(thread_name(source_name, share, count))
                    .spawn(move || config.run(start, &stream_ids, &sender))
            })
            .collect()
    }
}

impl SimulatorConfig {
    /// Simulates this config's subjects from `start` and sends them, step by step.
    fn run(&self, start: Nanos, stream_ids: &[u32], sender: &SourceSender) {
        self.produce(start, stream_ids, sender);
        sender.metrics().note_due(None);
    }

    fn produce(&self, start: Nanos, stream_ids: &[u32], sender: &SourceSender) {
        if self.subjects.is_empty() {
            return;
        }
        let end = start.saturating_add(secs_to_nanos(self.duration_s.unwrap_or(MAX_DURATION_S)));
        let step = secs_to_nanos(self.chunk_s).max(1);
        let mut simulator = Simulator::new(SimulatorSettings {
            seed: self.seed,
            subjects: self.subjects.clone(),
            streams: self.streams.clone(),
            start,
        });
        let wall_start = Instant::now();
        let mut batches: Vec<Batch> = Vec::new();
        let mut produced = start;
        if !sender.watermark(start) {
            return;
        }
        while produced < end && !sender.stopping() {
            let target = produced.saturating_add(step).min(end);
            if self.realtime {
                let due = wall_start + Duration::from_nanos((target - start) as u64);
                while let Some(left) = due.checked_duration_since(Instant::now()) {
                    if sender.stopping() {
                        return;
                    }
                    std::thread::sleep(left.min(PACING_SLICE));
                }
                sender.metrics().note_due(Some(due));
            }
            simulator.advance(target, &mut batches);
            for mut batch in batches.drain(..) {
                batch.stream = stream_ids[batch.stream as usize];
                if !sender.data(batch) {
                    return;
                }
            }
            if !sender.watermark(target) {
                return;
            }
            produced = target;
        }
    }
}
