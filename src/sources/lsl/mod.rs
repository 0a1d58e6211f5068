//! The `lsl` source: streams from Lab Streaming Layer outlets (amplifiers, wristbands, eye and face
//! trackers, pylsl scripts, another heloflow).
//!
//! ```toml
//! [sources.amp]
//! kind = "lsl"
//! type = "EEG"                        # and/or name, source_id, hostname, predicate
//! channels = ["Fp1", "Fp2", "C3"]     # labels (checked against desc/channels) or a count
//! unit = "microvolts"
//! rate = 300                          # nominal Hz; 0 = irregular
//! subject_from = "source_id"          # or "name", "hostname", "desc:<path>"
//! subjects = { "dsi-4021" = "P01" }   # optional table: key -> subject id
//! min_streams = 1                     # wait for this many matching streams
//! timeout_s = 5                       # ... at most this long, then fail listing visible streams
//! stall_timeout_s = 2                 # a silent stream is a gap after this long
//! on_stall = "advance"                # or "hold": windows wait until the stream returns
//! ```
//!
//! Validation needs no network: the source declares what it expects and `outputs()` returns that
//! schema (`<source>.<modality>`, plus `<source>.events`, a marker stream of `lost` / `resumed`
//! events). At run start each matched stream's real metadata is checked against the declaration.

mod link;
pub mod metadata;
mod run;

use std::collections::BTreeMap;
use std::thread::JoinHandle;

use crate::config::document::Node;
use crate::config::options::Options;
use crate::sources::queue::{QueueConfig, SourceSender};
use crate::sources::Source;
use crate::stream::{Channel, ChannelFormat, Modality, Rate, StreamSchema};
use metadata::{heloflow_format, modality_of_type};

/// Which field of a stream's info names its subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubjectFrom {
    /// The stream's `source_id` (default).
    SourceId,
    /// The stream's `name`.
    Name,
    /// The `hostname` of the machine that runs the outlet.
    Hostname,
    /// The text of an element inside `desc` (`desc:subject`, `desc:acquisition/subject`).
    Desc(String),
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
    /// Declared LSL format name, if any (`float32`, `int16`, `string`...).
    pub format: Option<String>,
    /// Declared nominal rate.
    pub rate: Rate,
    /// Which info field names the subject.
    pub subject_from: SubjectFrom,
    /// Optional mapping from that field to subject ids.
    pub subjects: BTreeMap<String, String>,
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
    /// Seconds between clock-offset (`time_correction`) refreshes.
    pub clock_refresh_s: f64,
    /// Queue to the dataflow.
    pub queue: QueueConfig,
}

/// Escapes a value for an XPath string literal in single quotes.
pub fn xpath_literal(value: &str) -> String {
    if value.contains('\'') {
        format!(
            "concat('{}')",
            value.split('\'').collect::<Vec<_>>().join("', \"'\", '")
        )
    } else {
        format!("'{value}'")
    }
}

impl Source for LslSourceConfig {
    fn parse(options: &mut Options) -> Self {
        let mut clauses = Vec::new();
        let mut declared_type = None;
        for key in ["name", "type", "source_id", "hostname"] {
            if let Some(value) = options.string(key) {
                if key == "type" {
                    declared_type = Some(value.get_ref().clone());
                }
                clauses.push(format!("{key}={}", xpath_literal(value.get_ref())));
            }
        }
        if let Some(predicate) = options.string("predicate") {
            clauses.push(format!("({})", predicate.get_ref()));
        }
        if clauses.is_empty() {
            options.error_at(
                "type",
                "an `lsl` source needs something to match streams by",
                "add type = \"EEG\" (or name, source_id, hostname, or a full predicate = \"...\")",
            );
        }
        let modality = match options.string("modality") {
            Some(name) => Modality::from_name(name.get_ref()).unwrap_or_else(|| {
                let valid: Vec<&str> = Modality::ALL.iter().map(|m| m.name()).collect();
                options.error_at(
                    "modality",
                    format!("unknown modality \"{}\"", name.get_ref()),
                    format!("valid: {}", valid.join(", ")),
                );
                Modality::Features
            }),
            None => match declared_type.as_deref().map(modality_of_type) {
                Some(Some(modality)) => modality,
                Some(None) => {
                    options.error_at(
                        "type",
                        format!(
                            "heloflow does not know what the LSL type \"{}\" measures",
                            declared_type.as_deref().unwrap_or_default()
                        ),
                        "add modality = \"eeg\" (or ecg, eda, ppg, resp, temp, accel, emg, face, markers, emotion, features)",
                    );
                    Modality::Features
                }
                None => {
                    if !clauses.is_empty() {
                        options.error_at(
                            "type",
                            "an `lsl` source without `type` must say what it measures",
                            "add modality = \"eeg\" (or ecg, eda, ppg, resp, temp, accel, emg, face, markers, emotion, features)",
                        );
                    }
                    Modality::Features
                }
            },
        };
        let markers = modality == Modality::Markers;
        let unit = options
            .string("unit")
            .map(|u| u.into_inner())
            .unwrap_or_default();
        let kind = modality.lsl_type().to_string();
        let (channels, labelled) = match options.raw("channels") {
            Some(node) => match node.get_ref() {
                Node::Int(n) if (1..=100_000).contains(n) => (
                    (1..=*n)
                        .map(|i| Channel::new(format!("ch{i}"), unit.clone(), kind.clone()))
                        .collect(),
                    false,
                ),
                Node::Array(items) if !items.is_empty() => {
                    let labels: Vec<Channel> = items
                        .iter()
                        .filter_map(|item| match item.get_ref() {
                            Node::Str(s) if !s.is_empty() => {
                                Some(Channel::new(s.clone(), unit.clone(), kind.clone()))
                            }
                            _ => None,
                        })
                        .collect();
                    if labels.len() != items.len() {
                        options.error_at(
                            "channels",
                            "`channels` must be a list of non-empty labels or a count",
                            "for example channels = [\"C3\", \"C4\"] or channels = 2",
                        );
                    }
                    (labels, true)
                }
                other => {
                    options.error_at(
                        "channels",
                        format!(
                            "`channels` must be a count (1 to 100000) or a list of labels, found {}",
                            other.describe()
                        ),
                        "for example channels = [\"C3\", \"C4\"] or channels = 2",
                    );
                    (vec![Channel::new("ch1", unit.clone(), kind.clone())], false)
                }
            },
            None if markers => (vec![Channel::new("Marker", "", "Markers")], false),
            None => {
                options.error_at(
                    "channels",
                    "an `lsl` source must declare its channels, so the pipeline can be checked before any stream is seen",
                    "add channels = [\"label\", ...] (checked against the stream's desc/channels) or channels = <count>",
                );
                (vec![Channel::new("ch1", unit.clone(), kind.clone())], false)
            }
        };
        let format = options.string("format").and_then(|f| {
            let name = f.into_inner();
            match heloflow_format(&name) {
                Some(ChannelFormat::String) if !markers => {
                    options.error_at(
                        "format",
                        format!("a {} stream cannot be of format string", modality.name()),
                        "string streams are markers: set modality = \"markers\"",
                    );
                    None
                }
                Some(other) if markers && other.is_numeric() => {
                    options.error_at(
                        "format",
                        "a markers stream carries strings",
                        "leave `format` out, or use format = \"string\"",
                    );
                    None
                }
                Some(_) => Some(name),
                None => {
                    options.error_at(
                        "format",
                        format!("unknown LSL channel format \"{name}\""),
                        "valid: float32, double64, int8, int16, int32, int64, string",
                    );
                    None
                }
            }
        });
        let rate = match options.number("rate") {
            Some(hz) if hz > 0.0 && hz.is_finite() => Rate::Regular(hz),
            Some(0.0) => Rate::Irregular,
            Some(hz) => {
                options.error_at(
                    "rate",
                    format!("`rate` must be a positive rate in Hz or 0 (irregular), found {hz}"),
                    "for example rate = 256",
                );
                Rate::Irregular
            }
            None if markers => Rate::Irregular,
            None => {
                options.error_at(
                    "rate",
                    "an `lsl` source must declare its nominal rate (checked against the stream)",
                    "add rate = <Hz>, or rate = 0 for an irregular stream",
                );
                Rate::Irregular
            }
        };
        let subject_from = match options.string("subject_from") {
            None => SubjectFrom::SourceId,
            Some(rule) => match rule.get_ref().as_str() {
                "source_id" => SubjectFrom::SourceId,
                "name" => SubjectFrom::Name,
                "hostname" => SubjectFrom::Hostname,
                text => match text.strip_prefix("desc:") {
                    Some(path) if !path.is_empty() => SubjectFrom::Desc(path.to_string()),
                    _ => {
                        options.error_at(
                            "subject_from",
                            format!("unknown subject rule \"{text}\""),
                            "valid: \"source_id\", \"name\", \"hostname\", \"desc:<path>\" (e.g. \"desc:subject\")",
                        );
                        SubjectFrom::SourceId
                    }
                },
            },
        };
        let mut subjects = BTreeMap::new();
        if let Some(node) = options.raw("subjects") {
            match node.get_ref() {
                Node::Table(entries) => {
                    for (key, value) in entries {
                        match value.get_ref() {
                            Node::Str(id) if !id.is_empty() => {
                                subjects.insert(key.get_ref().clone(), id.clone());
                            }
                            _ => options.error_at_span(
                                value.span(),
                                "each entry of `subjects` maps a stream field to a subject id string",
                                "for example subjects = { \"dsi-4021\" = \"P01\" }",
                            ),
                        }
                    }
                }
                other => options.error_at_span(
                    node.span(),
                    format!("`subjects` must be a table, found {}", other.describe()),
                    "for example subjects = { \"dsi-4021\" = \"P01\" }",
                ),
            }
        }
        let on_stall = match options.choice("on_stall", "advance", &["advance", "hold"]) {
            "hold" => StallPolicy::Hold,
            _ => StallPolicy::Advance,
        };
        LslSourceConfig {
            predicate: clauses.join(" and "),
            modality,
            channels,
            labelled,
            format,
            rate,
            subject_from,
            subjects,
            min_streams: options.integer("min_streams", 1, 1..10_001) as usize,
            timeout_s: options.positive("timeout_s", 5.0),
            stall_timeout_s: options.positive("stall_timeout_s", 2.0),
            on_stall,
            lateness_s: options.positive("lateness_s", 0.5),
            dejitter: options.boolean("dejitter", false),
            clock_refresh_s: options.positive("clock_refresh_s", 5.0),
            queue: QueueConfig::parse(options),
        }
    }

    /// The data stream's schema (`<source>.<modality>`) and the events stream's schema.
    fn outputs(&self, source_name: &str) -> Vec<StreamSchema> {
        let subjects: Vec<String> = {
            let mut ids: Vec<String> = self.subjects.values().cloned().collect();
            ids.sort();
            ids.dedup();
            ids
        };
        let format = self.format.as_deref().and_then(heloflow_format).unwrap_or(
            if self.modality == Modality::Markers {
                ChannelFormat::String
            } else {
                ChannelFormat::Float32
            },
        );
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
                    Channel::new("gap_s", "s", "Markers"),
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
        assert_eq!(config.predicate, "type='EEG'");
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
            unknown.contains("does not know what the LSL type \"Gaze\" measures"),
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

    #[test]
    fn xpath_literals_survive_quotes() {
        assert_eq!(xpath_literal("EEG"), "'EEG'");
        assert_eq!(xpath_literal("a'b"), "concat('a', \"'\", 'b')");
    }
}
