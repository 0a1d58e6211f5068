//! The `lsl` source: streams from Lab Streaming Layer outlets (amplifiers, wristbands, eye and face
//! trackers, pylsl scripts, another heloflow).
//!
//! ```toml
//! [sources.amp]
//! kind = "lsl"
//! type = "EEG"                        # and/or name, source_id, hostname, predicate
//! channels = ["Fp1", "Fp2", "C3"]     # labels (checked against desc/channels) or a count
//! unit = "microvolts"                 # checked against desc/channels/channel/unit
//! on_unit_mismatch = "error"          # or "convert": a stream in volts is multiplied into it
//! rate = 300                          # nominal Hz; 0 = irregular
//! subject_from = "source_id"          # or "name", "hostname", "desc:<path>"
//! subjects = { "dsi-4021" = "P01" }   # optional table: key -> subject id
//! min_streams = 1                     # wait for this many matching streams
//! timeout_s = 5                       # ... at most this long, then fail listing visible streams
//! stall_timeout_s = 2                 # a silent stream is a gap after this long
//! on_stall = "advance"                # or "hold": windows wait until the stream returns
//! expected_next = true                # false: a window waits for the sample after its end
//! ```
//!
//! Validation needs no network: the source declares what it expects and `outputs()` returns that
//! schema (`<source>.<modality>`, plus `<source>.events`, a marker stream of `lost` / `resumed` /
//! `clock_step` events). At run start each matched stream's real metadata is checked against the
//! declaration, its units too (see [`unit_check`]). `type` matches in any case (`EEG` finds
//! MNE-LSL's `eeg` outlets; see [`crate::sources::selection::TYPE_ANY_CASE`]).
//!
//! Timestamps a sender's clock gets wrong are placed by the rules of [`placement`]: a sample
//! stamped more than 1 s after its arrival never advances event time, and a clock that jumps by
//! more than 1 s and stays there for 1 s (or half `stall_timeout_s`, if less) is re-anchored so its
//! data continues on the local clock (announced on standard error and as a `clock_step` event
//! whose `seconds` is the shift). Every sample that cannot be placed is counted in the summary.
//!
//! Event time follows each stream ([`cadence`]): a regular stream's next sample is expected one
//! period after its last, so a window closes as soon as its last sample has arrived (less a jitter
//! margin learnt from the stream); an irregular stream trails the local clock by `lateness_s`.

pub mod cadence;
mod link;
pub mod metadata;
pub mod placement;
mod run;
pub mod unit_check;
pub mod xpath;

use std::ops::RangeInclusive;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::options::Options;
use crate::sources::queue::{QueueConfig, SourceSender};
use crate::sources::selection::{modality_names, Declaration, Selection, SubjectRule};
use crate::sources::Source;
use crate::stream::{secs_to_nanos, Channel, ChannelFormat, Modality, Nanos, Rate, StreamSchema};
use unit_check::UnitPolicy;

/// `timeout_s`: how long a run may wait for its streams, seconds (a tenth of a second to a day).
pub const TIMEOUT_RANGE_S: RangeInclusive<f64> = 0.1..=86_400.0;
/// `stall_timeout_s`: silence that makes a gap, seconds (shorter would call every pause a gap).
pub const STALL_RANGE_S: RangeInclusive<f64> = 0.05..=3_600.0;
/// `lateness_s`: how far irregular streams' event time trails the local clock, seconds.
pub const LATENESS_RANGE_S: RangeInclusive<f64> = 1e-3..=3_600.0;
/// `clock_refresh_s`: seconds between clock-offset refreshes (each may wait up to 50 ms).
pub const CLOCK_REFRESH_RANGE_S: RangeInclusive<f64> = 0.1..=3_600.0;

/// The time options of an `lsl` source converted once, as the source thread uses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LslTiming {
    /// How long to wait for `min_streams` at the start.
    pub timeout: Duration,
    /// Silence (wall clock) after which a regular stream is a gap.
    pub stall: Duration,
    /// The same, in event-time nanoseconds.
    pub stall_ns: Nanos,
    /// How far irregular streams trail the local clock, nanoseconds.
    pub lateness_ns: Nanos,
}

/// What a source does while one of its streams is silent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StallPolicy {
    /// After `stall_timeout_s`, event time moves on without it; its windows show coverage < 1.
    Advance,
    /// Event time waits until the stream returns; its subjects' windows (and everyone's) are held.
    Hold,
}

/// Options of an `lsl` source.
#[derive(Clone, Debug, PartialEq)]
pub struct LslSourceConfig {
    /// The XPath predicate streams must match (built from name/type/source_id/hostname/predicate).
    pub predicate: String,
    /// What the streams measure.
    pub modality: Modality,
    /// Declared channels (labels checked when `labelled`).
    pub channels: Vec<Channel>,
    /// Whether `channels` gave labels (true) or only a count (false).
    pub labelled: bool,
    /// The declared unit of every channel (checked against the streams' `desc`; empty: none).
    pub unit: String,
    /// What a stream announcing another unit of the same quantity gets.
    pub on_unit_mismatch: UnitPolicy,
    /// Declared channel format, if any.
    pub format: Option<ChannelFormat>,
    /// Declared nominal rate.
    pub rate: Rate,
    /// Which info field names each stream's subject, optionally mapped through a table.
    pub subjects: SubjectRule,
    /// Matching streams to wait for at start.
    pub min_streams: usize,
    /// How long to wait for them.
    pub timeout_s: f64,
    /// A regular stream silent this long (wall clock) is a gap.
    pub stall_timeout_s: f64,
    /// What a gap does to event time.
    pub on_stall: StallPolicy,
    /// Irregular streams: event time trails the local clock by this much (later markers are late).
    pub lateness_s: f64,
    /// Smooth regular streams' timestamps with liblsl's dejitter post-processing.
    pub dejitter: bool,
    /// Regular streams let event time advance to their next sample's expected time (less a
    /// margin) as soon as a sample arrives, instead of only past that sample.
    pub expected_next: bool,
    /// Seconds between clock-offset (`time_correction`) refreshes.
    pub clock_refresh_s: f64,
    /// Queue to the dataflow.
    pub queue: QueueConfig,
}

impl LslSourceConfig {
    /// The time options as durations and nanoseconds; every value validation accepts converts.
    pub fn timing(&self) -> LslTiming {
        LslTiming {
            timeout: Duration::from_secs_f64(self.timeout_s),
            stall: Duration::from_secs_f64(self.stall_timeout_s),
            stall_ns: secs_to_nanos(self.stall_timeout_s),
            lateness_ns: secs_to_nanos(self.lateness_s),
        }
    }
}

impl Source for LslSourceConfig {
    fn parse(options: &mut Options) -> Self {
        let selection = Selection::parse(options, "an `lsl` source", true);
        let declared = Declaration::parse(options, &selection);
        let modality = declared.modality.unwrap_or_else(|| {
            if !selection.is_empty() {
                options.error_at(
                    "type",
                    "an `lsl` source without `type` must say what it measures",
                    format!("add modality = \"eeg\" (valid: {})", modality_names()),
                );
            }
            Modality::Features
        });
        let markers = modality == Modality::Markers;
        let (channels, labelled) = declared.channels.unwrap_or_else(|| {
            if markers {
                (vec![Channel::new("Marker", "", "Markers")], false)
            } else {
                options.error_at(
                    "channels",
                    "an `lsl` source must declare its channels, so the pipeline can be checked before any stream is seen",
                    "add channels = [\"label\", ...] (checked against the stream's desc/channels) or channels = <count>",
                );
                (vec![Channel::new("ch1", declared.unit.clone(), modality.lsl_type())], false)
            }
        });
        let rate = declared.rate.unwrap_or_else(|| {
            if !markers {
                options.error_at(
                    "rate",
                    "an `lsl` source must declare its nominal rate (checked against the stream)",
                    "add rate = <Hz>, or rate = 0 for an irregular stream",
                );
            }
            Rate::Irregular
        });
        let subjects = SubjectRule::parse(options);
        let on_unit_mismatch =
            match options.choice("on_unit_mismatch", "error", &["error", "convert"]) {
                "convert" => UnitPolicy::Convert,
                _ => UnitPolicy::Error,
            };
        let on_stall = match options.choice("on_stall", "advance", &["advance", "hold"]) {
            "hold" => StallPolicy::Hold,
            _ => StallPolicy::Advance,
        };
        let stall_timeout_s = options.number_in("stall_timeout_s", 2.0, STALL_RANGE_S);
        if let Some(hz) = rate.hz().filter(|hz| stall_timeout_s * hz < 2.0) {
            options.error_at(
                "stall_timeout_s",
                format!(
                    "stall_timeout_s = {stall_timeout_s} is shorter than two sample intervals of the declared rate ({hz} Hz): every pause between samples would be a gap"
                ),
                format!("use stall_timeout_s >= {}", 2.0 / hz),
            );
        }
        LslSourceConfig {
            predicate: selection.predicate,
            modality,
            channels,
            labelled,
            unit: declared.unit,
            on_unit_mismatch,
            format: declared.format,
            rate,
            subjects,
            min_streams: options.integer("min_streams", 1, 1..10_001) as usize,
            timeout_s: options.number_in("timeout_s", 5.0, TIMEOUT_RANGE_S),
            stall_timeout_s,
            on_stall,
            lateness_s: options.number_in("lateness_s", 0.5, LATENESS_RANGE_S),
            dejitter: options.boolean("dejitter", false),
            expected_next: options.boolean("expected_next", true),
            clock_refresh_s: options.number_in("clock_refresh_s", 5.0, CLOCK_REFRESH_RANGE_S),
            queue: QueueConfig::parse(options),
        }
    }

    /// The data stream's schema (`<source>.<modality>`) and the events stream's schema.
    fn outputs(&self, source_name: &str) -> Vec<StreamSchema> {
        let subjects = self.subjects.known_subjects();
        let format = self
            .format
            .unwrap_or(if self.modality == Modality::Markers {
                ChannelFormat::String
            } else {
                ChannelFormat::Float32
            });
        vec![
            StreamSchema {
                name: format!("{source_name}.{}", self.modality.name()),
                modality: self.modality,
                channels: self.channels.clone(),
                format,
                rate: self.rate,
                subjects: subjects.clone(),
            },
            StreamSchema {
                name: format!("{source_name}.events"),
                modality: Modality::Markers,
                channels: vec![
                    Channel::new("event", "", "Markers"),
                    Channel::new("source_id", "", "Markers"),
                    Channel::new("seconds", "s", "Markers"),
                ],
                format: ChannelFormat::String,
                rate: Rate::Irregular,
                subjects,
            },
        ]
    }

    fn is_live(&self) -> bool {
        true
    }

    fn queue(&self) -> QueueConfig {
        self.queue
    }

    /// Starts the source thread (inlets are created inside it: liblsl objects are not `Send`).
    fn spawn(
        &self,
        source_name: &str,
        stream_ids: Vec<u32>,
        sender: SourceSender,
    ) -> std::io::Result<JoinHandle<()>> {
        let config = self.clone();
        let name = source_name.to_string();
        std::thread::Builder::new()
            .name(format!("source {source_name}"))
            .spawn(move || run::run(&config, &name, &stream_ids, &sender))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline;
    use crate::sources::SourceConfig;

    fn errors(source: &str) -> String {
        let text = format!("{source}\n[sinks.out]\nkind = \"jsonl\"\ninputs = [\"amp.eeg\"]\n");
        match pipeline::parse("t.toml", &text) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_declared_schema_is_the_output_at_validation() {
        let text = "[sources.amp]\nkind = \"lsl\"\ntype = \"EEG\"\nchannels = [\"C3\", \"C4\"]\nunit = \"microvolts\"\nrate = 256\nsubjects = { \"dev-1\" = \"P01\" }\n[operators.bands]\nkind = \"band_power\"\ninputs = [\"amp.eeg\"]\n[sinks.out]\nkind = \"jsonl\"\ninputs = [\"bands\", \"amp.events\"]\n";
        let pipeline = pipeline::parse("t.toml", text).expect("valid");
        let eeg = &pipeline.streams[0];
        assert_eq!(eeg.name, "amp.eeg");
        assert_eq!(eeg.modality, Modality::Eeg);
        assert_eq!(eeg.labels(), ["C3", "C4"]);
        assert_eq!(eeg.channels[0].unit, "microvolts");
        assert_eq!(eeg.rate, Rate::Regular(256.0));
        assert_eq!(eeg.subjects, ["P01"]);
        assert_eq!(pipeline.streams[1].name, "amp.events");
        let SourceConfig::Lsl(config) = &pipeline.sources[0].config else {
            panic!("an lsl source");
        };
        assert_eq!(
            crate::sources::selection::readable_predicate(&config.predicate),
            "type (any case)='eeg'"
        );
    }

    #[test]
    fn declarations_that_cannot_work_are_located_errors() {
        let missing = errors("[sources.amp]\nkind = \"lsl\"\ntype = \"EEG\"\n");
        assert!(missing.contains("must declare its channels"), "{missing}");
        assert!(
            missing.contains("must declare its nominal rate"),
            "{missing}"
        );
        let unknown =
            errors("[sources.amp]\nkind = \"lsl\"\ntype = \"Gaze\"\nchannels = 2\nrate = 60\n");
        assert!(
            unknown.contains("does not know what the stream type \"Gaze\" measures"),
            "{unknown}"
        );
        let nothing =
            errors("[sources.amp]\nkind = \"lsl\"\nmodality = \"eeg\"\nchannels = 2\nrate = 60\n");
        assert!(
            nothing.contains("needs something to match streams by"),
            "{nothing}"
        );
        let rule = errors("[sources.amp]\nkind = \"lsl\"\ntype = \"EEG\"\nchannels = 2\nrate = 60\nsubject_from = \"serial\"\n");
        assert!(rule.contains("unknown subject rule"), "{rule}");
        assert!(
            errors("[sources.amp]\nkind = \"lsl\"\ntype = \"EEG\"\nchannels = 2\nrate = 60\n")
                .is_empty()
        );
    }

    #[test]
    fn markers_into_a_signal_operator_fail_before_anything_runs() {
        let text = "[sources.stim]\nkind = \"lsl\"\ntype = \"Markers\"\n[operators.bands]\nkind = \"band_power\"\ninputs = [\"stim.markers\"]\n[sinks.out]\nkind = \"jsonl\"\ninputs = [\"bands\"]\n";
        let error = pipeline::parse("t.toml", text).unwrap_err().to_string();
        assert!(error.contains("markers"), "{error}");
    }
}
