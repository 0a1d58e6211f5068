//! The `simulator` source: its pipeline options and the thread that paces the simulation.
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
use crate::sources::queue::{QueueConfig, SourceSender};
use crate::sources::Source;
use crate::stream::{secs_to_nanos, Batch, Nanos, StreamSchema};

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
                Node::Int(n) if (1..=10_000).contains(n) => subject_ids(*n as usize),
                Node::Array(items) if !items.is_empty() => {
                    let ids: Vec<String> = items
                        .iter()
                        .filter_map(|item| match item.get_ref() {
                            Node::Str(s) if !s.is_empty() => Some(s.clone()),
                            _ => None,
                        })
                        .collect();
                    if ids.len() != items.len() {
                        options.error_at_span(
                            node.span(),
                            "`subjects` must be a list of non-empty subject ids",
                            "for example subjects = [\"P01\", \"P02\"], or a count: subjects = 2",
                        );
                    }
                    ids
                }
                other => {
                    options.error_at_span(
                        node.span(),
                        format!(
                            "`subjects` must be a count (1 to 10000) or a list of ids, found {}",
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
                        Some(_) => {}
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
                Node::Float(f) if f.is_finite() => (*f, false),
                Node::Int(i) => (*i as f64, false),
                Node::Str(s) if s == "now" => (0.0, true),
                other => {
                    options.error_at_span(
                        node.span(),
                        format!(
                            "`start_s` must be seconds or \"now\", found {}",
                            other.describe()
                        ),
                        "for example start_s = 0, or start_s = \"now\" (the LSL clock at start)",
                    );
                    (0.0, false)
                }
            },
        };
        let duration_s = options.number("duration_s");
        if let Some(d) = duration_s.filter(|d| *d <= 0.0 || !d.is_finite()) {
            options.error_at(
                "duration_s",
                format!("`duration_s` must be greater than zero, found {d}"),
                "leave it out to run until stopped",
            );
        }
        SimulatorConfig {
            seed,
            subjects,
            streams,
            start_s,
            start_now,
            duration_s,
            realtime: options.boolean("realtime", false),
            chunk_s: options.positive("chunk_s", defaults.chunk_s),
            queue: QueueConfig::parse(options),
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
        let config = self.clone();
        std::thread::Builder::new()
            .name(format!("source {source_name}"))
            .spawn(move || config.run(&stream_ids, &sender))
    }
}

impl SimulatorConfig {
    fn run(&self, stream_ids: &[u32], sender: &SourceSender) {
        self.produce(stream_ids, sender);
        sender.metrics().note_due(None);
    }

    fn produce(&self, stream_ids: &[u32], sender: &SourceSender) {
        let start = if self.start_now {
            secs_to_nanos(lsl::local_clock())
        } else {
            secs_to_nanos(self.start_s)
        };
        let end = self
            .duration_s
            .map_or(Nanos::MAX, |d| start.saturating_add(secs_to_nanos(d)));
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
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
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
