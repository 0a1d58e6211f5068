//! The `xdf` source: runs any XDF recording (heloflow's own or LabRecorder's) through a pipeline,
//! as fast as possible on the recording's own clock-corrected timestamps, or paced.
//!
//! Streams are chosen and mapped to subjects like in the `lsl` source, so a live pipeline runs on
//! its recording by changing the source's `kind` and adding `path`:
//!
//! ```toml
//! [sources.amp]
//! kind = "xdf"
//! path = "recordings/sub-P01_ses-S1_task-film_run-1_eeg.xdf"
//! type = "EEG"                       # and/or name, source_id, hostname, predicate
//! subject_from = "desc:subject"      # or "source_id" (default), "name", "hostname"
//! ```
//!
//! Several streams of one file come out of one source with a `streams` table, each entry
//! choosing its streams the same way; output `<source>.<key>`. A pipeline written for the
//! simulator replays its recording by replacing `[sources.sim]` with:
//!
//! ```toml
//! [sources.sim]
//! kind = "xdf"
//! path = "session.xdf"
//! subject_from = "desc:subject"
//! streams = { eeg = { type = "EEG" }, eda = { type = "GSR" }, markers = { type = "Markers" } }
//! ```
//!
//! The file's stream headers are read when the pipeline is validated: channels, units, format and
//! rate come from the file (a declaration such as `channels` or `rate` is checked against it),
//! and the subjects are known before anything runs. Timestamps are post-processed like pyxdf's
//! `load_xdf`: clock synchronisation with clock-reset handling (on by default), dejittering (off
//! by default: the recorded timestamps are kept; `dejitter = true` as pyxdf). Output is the same,
//! byte for byte, on every run and every worker count; `speed = 1.0` paces it in real time.
//! With `-w N`, N threads of process 0 share the reading: each decodes and plays the streams of
//! the subjects its worker owns, all from the file's earliest sample.
//! Damage in the file is reported with byte offsets and everything intact is played.

use std::path::Path;
use std::thread::JoinHandle;

use crate::config::options::Options;
use crate::origin::StreamOrigin;
use crate::sources::lsl::metadata::full_info_xml;
use crate::sources::playback::{
    drop_backward_samples, report_dropped, Playback, SharedStart, Track, MAX_TIME_S,
};
use crate::sources::queue::{QueueConfig, SourceSender};
use crate::sources::selection::{
    modality_names, Declaration, Selection, StreamFields, SubjectRule,
};
use crate::sources::{spawn_whole, thread_name, Source, Split};
use crate::stream::{
    secs_to_nanos, Channel, ChannelFormat, Modality, Rate, StreamSchema, SubjectShare, Values,
};
use crate::xdf::header::StreamInfo;
use crate::xdf::reader::{read, read_headers, ReadOptions, Samples};

/// One output stream of an `xdf` source: the file streams it takes, one per subject.
#[derive(Clone, Debug, PartialEq)]
pub struct XdfOutput {
    /// Output name after the source's (`<source>.<name>`).
    pub name: String,
    /// The schema every matched stream shares.
    pub modality: Modality,
    /// Channel metadata, from the file (or the declaration).
    pub channels: Vec<Channel>,
    /// Value format.
    pub format: ChannelFormat,
    /// Nominal rate.
    pub rate: Rate,
    /// Matched file streams: (stream id in the file, subject), in file order.
    pub streams: Vec<(u32, String)>,
}

/// Options of an `xdf` source.
#[derive(Clone, Debug, PartialEq)]
pub struct XdfSourceConfig {
    /// The recording.
    pub path: String,
    /// Output streams.
    pub outputs: Vec<XdfOutput>,
    /// Map timestamps onto the recorder's clock with the file's clock offsets.
    pub synchronize_clocks: bool,
    /// Detect clock resets while synchronising.
    pub handle_clock_resets: bool,
    /// Replace regular streams' timestamps by a least-squares line per segment, as pyxdf.
    pub dejitter: bool,
    /// Step and pacing.
    pub playback: Playback,
    /// Queue to the dataflow.
    pub queue: QueueConfig,
}

/// The selection and declaration of one output, before the file is consulted.
struct Wanted {
    name: Option<String>,
    selection: Selection,
    declared: Declaration,
    anchor: &'static str,
}

impl Source for XdfSourceConfig {
    fn parse(options: &mut Options) -> Self {
        let path = match options.string("path") {
            Some(path) => path.into_inner(),
            None => {
                options.error_at(
                    "path",
                    "an `xdf` source needs `path`, the recording to read",
                    "add path = \"recordings/session.xdf\"",
                );
                String::new()
            }
        };
        let subjects = SubjectRule::parse(options);
        let mut wanted: Vec<Wanted> = match options.tables("streams", |name, inner| {
            let selection = Selection::parse(inner, "each entry of `streams`", true);
            let declared = Declaration::parse(inner, &selection);
            Wanted {
                name: Some(name.to_string()),
                selection,
                declared,
                anchor: "streams",
            }
        }) {
            Some(list) => list.into_iter().map(|(_, w)| w).collect(),
            None => Vec::new(),
        };
        let top = Selection::parse(options, "an `xdf` source", false);
        let top_declared = Declaration::parse(options, &top);
        if wanted.is_empty() {
            wanted.push(Wanted {
                name: None,
                selection: top,
                declared: top_declared,
                anchor: "type",
            });
        } else {
            if !top.is_empty() {
                options.error_at(
                    "type",
                    "give either `streams` or a top-level selection (type, name, source_id, hostname, predicate), not both",
                    "move the selection into an entry of `streams`",
                );
            }
            let declared = [
                ("modality", top_declared.modality.is_some()),
                ("channels", top_declared.channels.is_some()),
                ("unit", !top_declared.unit.is_empty()),
                ("format", top_declared.format.is_some()),
                ("rate", top_declared.rate.is_some()),
            ];
            if let Some((key, _)) = declared.into_iter().find(|(_, given)| *given) {
                options.error_at(
                    key,
                    format!("with `streams`, `{key}` belongs in each entry of `streams`"),
                    format!("move it into the entries it describes, e.g. streams = {{ eeg = {{ type = \"EEG\", {key} = ... }} }}"),
                );
            }
        }
        let config = XdfSourceConfig {
            path,
            outputs: Vec::new(),
            synchronize_clocks: options.boolean("synchronize_clocks", true),
            handle_clock_resets: options.boolean("handle_clock_resets", true),
            dejitter: options.boolean("dejitter", false),
            playback: Playback::parse(options),
            queue: QueueConfig::default(),
        };
        let mut config = config.resolve(options, wanted, &subjects);
        let round = config.outputs.iter().map(|o| o.streams.len()).sum();
        config.queue = QueueConfig::parse_for_round(options, round);
        config
    }

    fn outputs(&self, source_name: &str) -> Vec<StreamSchema> {
        self.outputs
            .iter()
            .map(|output| {
                let mut subjects: Vec<String> =
                    output.streams.iter().map(|(_, s)| s.clone()).collect();
                subjects.sort();
                StreamSchema {
                    name: format!("{source_name}.{}", output.name),
                    modality: output.modality,
                    channels: output.channels.clone(),
                    format: output.format,
                    rate: output.rate,
                    subjects,
                }
            })
            .collect()
    }

    fn is_live(&self) -> bool {
        self.playback.is_live()
    }

    fn queue(&self) -> QueueConfig {
        self.queue
    }

    fn spawn(
        &self,
        source_name: &str,
        stream_ids: Vec<u32>,
        sender: SourceSender,
    ) -> std::io::Result<JoinHandle<()>> {
        spawn_whole(self, source_name, stream_ids, sender)
    }

    /// The file is on process 0 and its shares start at its earliest sample, found once every
    /// share has read its own streams.
    fn split(&self) -> Split {
        Split::OnFirstProcess
    }

    /// One thread per share, each reading and playing the file streams of its own subjects.
    fn spawn_shares(
        &self,
        source_name: &str,
        stream_ids: Vec<u32>,
        shares: Vec<(SubjectShare, SourceSender)>,
    ) -> std::io::Result<Vec<JoinHandle<()>>> {
        let start = SharedStart::new(shares.len());
        let count = shares.len();
        let configs: Vec<XdfSourceConfig> = shares
            .iter()
            .map(|(share, _)| {
                let mut config = self.clone();
                for output in &mut config.outputs {
                    output.streams.retain(|(_, subject)| share.owns(subject));
                }
                config
            })
            .collect();
        // The file's damage is the same for every share: the first that reads it reports it.
        let reporter = configs
            .iter()
            .position(|c| c.outputs.iter().any(|o| !o.streams.is_empty()));
        shares
            .into_iter()
            .zip(configs)
            .enumerate()
            .map(|(position, ((share, sender), config))| {
                let reports_damage = reporter == Some(position);
                let source = format!("xdf source `{source_name}`");
                let thread = thread_name(source_name, share, count);
                let stream_ids = stream_ids.clone();
                self.playback
                    .spawn_share(thread, sender, start.clone(), move |sender| {
                        config
                            .load(&source, &stream_ids, reports_damage, sender)
                            .map_err(|e| format!("{source}: {e}"))
                    })
            })
            .collect()
    }
}

impl XdfSourceConfig {
    /// Matches the wanted outputs against the file's stream headers.
    fn resolve(mut self, options: &mut Options, wanted: Vec<Wanted>, rule: &SubjectRule) -> Self {
        if self.path.is_empty() {
            return self;
        }
        let headers = match read_headers(Path::new(&self.path)) {
            Ok(headers) => headers,
            Err(error) => {
                options.error_at(
                    "path",
                    error.to_string(),
                    "check the path (relative to the working directory)",
                );
                return self;
            }
        };
        let listing = || {
            headers
                .iter()
                .map(|(id, info)| {
                    format!(
                        "  stream {id}: name \"{}\" type \"{}\" source_id \"{}\", {} ch {} at {} Hz",
                        info.name,
                        info.kind,
                        info.source_id,
                        info.channel_count,
                        info.channel_format.lsl_name(),
                        info.nominal_srate
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        for want in wanted {
            let matched: Vec<&(u32, StreamInfo)> = headers
                .iter()
                .filter(|(_, info)| want.selection.matches_xml(&full_info_xml(info)))
                .collect();
            let Some((_, first)) = matched.first() else {
                options.error_at(
                    want.anchor,
                    format!(
                        "no stream of {} matches [{}]; its streams:\n{}",
                        self.path,
                        crate::sources::selection::readable_predicate(&want.selection.predicate),
                        listing()
                    ),
                    "choose streams by type, name, source_id, hostname or predicate",
                );
                continue;
            };
            match self.output(want, first, &matched, rule) {
                Ok(output) => {
                    if self.outputs.iter().any(|o| o.name == output.name) {
                        options.error_at(
                            "streams",
                            format!("two outputs of this source are named `{}`", output.name),
                            "give each entry of `streams` its own name",
                        );
                    }
                    self.outputs.push(output);
                }
                Err(message) => options.error_at("path", message, "choose streams that share one schema, one subject each (see `subject_from` and `subjects`)"),
            }
        }
        self
    }

    /// The output for the streams one entry matched, checked to share one schema.
    fn output(
        &self,
        want: Wanted,
        first: &StreamInfo,
        matched: &[&(u32, StreamInfo)],
        rule: &SubjectRule,
    ) -> Result<XdfOutput, String> {
        let declared = want.declared;
        let modality = match declared.modality {
            Some(modality) => modality,
            None => Modality::from_content_type(&first.kind).ok_or_else(|| {
                format!(
                    "heloflow does not know what the stream type \"{}\" of \"{}\" measures; add modality = \"eeg\" (valid: {})",
                    first.kind,
                    first.name,
                    modality_names()
                )
            })?,
        };
        for (_, info) in matched {
            let same = info.channel_count == first.channel_count
                && info.channel_format == first.channel_format
                && info.nominal_srate == first.nominal_srate;
            if !same {
                return Err(format!(
                    "the matched streams \"{}\" and \"{}\" differ in channel count, format or rate",
                    first.name, info.name
                ));
            }
        }
        let format = first.channel_format;
        if modality == Modality::Markers && format.is_numeric() {
            return Err(format!(
                "\"{}\" carries {} numbers, not marker strings",
                first.name,
                format.lsl_name()
            ));
        }
        if modality != Modality::Markers && !format.is_numeric() {
            return Err(format!(
                "\"{}\" carries strings (a marker stream); add modality = \"markers\"",
                first.name
            ));
        }
        if let Some(declared_format) = declared.format.filter(|f| *f != format) {
            return Err(format!(
                "\"{}\" is {}, but the source declares format = \"{}\"",
                first.name,
                format.lsl_name(),
                declared_format.lsl_name()
            ));
        }
        let rate = if first.nominal_srate > 0.0 {
            Rate::Regular(first.nominal_srate)
        } else {
            Rate::Irregular
        };
        if let Some(declared_rate) = declared.rate {
            let agree = match (declared_rate, rate) {
                (Rate::Regular(a), Rate::Regular(b)) => (a - b).abs() <= 1e-6 * b,
                (Rate::Irregular, Rate::Irregular) => true,
                _ => false,
            };
            if !agree {
                return Err(format!(
                    "\"{}\" has nominal rate {rate}, but the source declares rate = {}",
                    first.name,
                    declared_rate.nominal_srate()
                ));
            }
        }
        let kind = modality.lsl_type();
        let mut channels: Vec<Channel> = first
            .channels
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let label = if c.label.is_empty() {
                    format!("ch{}", i + 1)
                } else {
                    c.label.clone()
                };
                let unit = if declared.unit.is_empty() {
                    c.unit.clone()
                } else {
                    declared.unit.clone()
                };
                let channel_kind = if c.kind.is_empty() { kind } else { &c.kind };
                Channel::new(label, unit, channel_kind)
            })
            .collect();
        if let Some((declared_channels, labelled)) = declared.channels {
            if declared_channels.len() != channels.len() {
                return Err(format!(
                    "\"{}\" has {} channel(s), but the source declares {}",
                    first.name,
                    channels.len(),
                    declared_channels.len()
                ));
            }
            if labelled {
                let file_labelled = first.channels.iter().any(|c| !c.label.is_empty());
                let file: Vec<&str> = first.channels.iter().map(|c| c.label.as_str()).collect();
                let wanted: Vec<&str> =
                    declared_channels.iter().map(|c| c.label.as_str()).collect();
                if file_labelled && file != wanted {
                    return Err(format!(
                        "\"{}\" has channels [{}], but the source declares [{}]",
                        first.name,
                        file.join(", "),
                        wanted.join(", ")
                    ));
                }
                for (channel, declared) in channels.iter_mut().zip(declared_channels) {
                    channel.label = declared.label;
                }
            }
        }
        let mut streams: Vec<(u32, String)> = Vec::new();
        for (id, info) in matched {
            let subject = rule
                .subject(&StreamFields {
                    name: &info.name,
                    source_id: &info.source_id,
                    hostname: &info.hostname,
                    desc: &|path| info.desc_value(path),
                })
                .map_err(|e| format!("stream {id} \"{}\": {e}", info.name))?;
            if let Some((other, _)) = streams.iter().find(|(_, s)| *s == subject) {
                return Err(format!(
                    "streams {other} and {id} both map to subject {subject}; each subject takes one stream per output (see `subject_from` and `subjects`)"
                ));
            }
            streams.push((*id, subject));
        }
        Ok(XdfOutput {
            name: want.name.unwrap_or_else(|| modality.name().to_string()),
            modality,
            channels,
            format,
            rate,
            streams,
        })
    }

    /// Reads the matched streams and turns them into tracks on the pipeline's stream ids.
    fn load(
        &self,
        source: &str,
        stream_ids: &[u32],
        reports_damage: bool,
        sender: &SourceSender,
    ) -> Result<Vec<Track>, String> {
        let select: Vec<u32> = self
            .outputs
            .iter()
            .flat_map(|o| o.streams.iter().map(|(id, _)| *id))
            .collect();
        if select.is_empty() {
            return Ok(Vec::new());
        }
        let options = ReadOptions {
            select: Some(select),
            synchronize_clocks: self.synchronize_clocks,
            handle_clock_resets: self.handle_clock_resets,
            dejitter_timestamps: self.dejitter,
            ..ReadOptions::default()
        };
        let recording = read(Path::new(&self.path), &options).map_err(|e| e.to_string())?;
        for damage in recording.damage.iter().filter(|_| reports_damage) {
            crate::notice!("heloflow: {source}: {}: {damage}", self.path);
        }
        // Each stream's typed values are dropped once its track is built (peak memory).
        let mut streams: std::collections::HashMap<u32, _> =
            recording.streams.into_iter().map(|s| (s.id, s)).collect();
        let mut tracks = Vec::new();
        let mut dropped = 0u64;
        for (output, &pipeline_id) in self.outputs.iter().zip(stream_ids) {
            for (file_id, subject) in &output.streams {
                let Some(stream) = streams.remove(file_id) else {
                    return Err(format!("stream {file_id} is no longer in {}", self.path));
                };
                sender.origins().set(
                    pipeline_id,
                    subject,
                    StreamOrigin::new(stream.info.xml.clone()),
                );
                let width = stream.info.channel_count;
                let mut times = Vec::with_capacity(stream.time_stamps.len());
                let mut keep = Vec::with_capacity(stream.time_stamps.len());
                for (index, &t) in stream.time_stamps.iter().enumerate() {
                    if t.is_finite() && t.abs() <= MAX_TIME_S {
                        times.push(secs_to_nanos(t));
                        keep.push(index);
                    }
                }
                dropped += (stream.time_stamps.len() - keep.len()) as u64;
                let mut values = values_of(&stream.samples, width, &keep);
                dropped += drop_backward_samples(&mut times, &mut values);
                tracks.push(Track {
                    stream: pipeline_id,
                    subject: subject.clone(),
                    times,
                    values,
                });
            }
        }
        let why = format!(
            "of {} whose timestamps go back in time or cannot be represented",
            self.path
        );
        report_dropped(sender, source, dropped, &why);
        Ok(tracks)
    }
}

/// The values of the samples at `keep`, as the dataflow carries them.
fn values_of(samples: &Samples, width: usize, keep: &[usize]) -> Values {
    fn pick<T: Copy>(values: &[T], width: usize, keep: &[usize], to: impl Fn(T) -> f64) -> Values {
        Values::Numeric(
            keep.iter()
                .flat_map(|&i| values[i * width..(i + 1) * width].iter().map(|&v| to(v)))
                .collect(),
        )
    }
    match samples {
        Samples::Int8(v) => pick(v, width, keep, f64::from),
        Samples::Int16(v) => pick(v, width, keep, f64::from),
        Samples::Int32(v) => pick(v, width, keep, f64::from),
        Samples::Int64(v) => pick(v, width, keep, |x| x as f64),
        Samples::Float32(v) => pick(v, width, keep, f64::from),
        Samples::Double64(v) => pick(v, width, keep, |x| x),
        Samples::String(v) => Values::Text(
            keep.iter()
                .flat_map(|&i| v[i * width..(i + 1) * width].iter().cloned())
                .collect(),
        ),
    }
}
