//! `xdf`: records streams into one XDF 1.0 file (LabRecorder's format, read by pyxdf, MNE and
//! EEGLAB): raw inputs, features, emotion distributions and markers, each subject's stream on its
//! own, with the pipeline as provenance.
//!
//! ```toml
//! [sinks.session]
//! kind = "xdf"
//! inputs = ["amp.eeg", "stim.markers", "helo"]
//! path = "recordings/session.xdf"   # or bids = { root, subject, session, task, run, modality }
//! overwrite = false                 # an existing file is refused unless true
//! ```
//!
//! - **Streams.** One XDF stream per input stream and subject, created when its first row
//!   arrives: the schema's channels (label, unit, type), format and nominal rate, `desc/subject`,
//!   `desc/heloflow/{pipeline,stream,modality,version}` and a stable `source_id`
//!   (`heloflow:{pipeline}:{stream}:{subject}`). Model outputs (`helo`, `onnx`) add
//!   `desc/model/{name,version,sha256,labels,window_s,hop_s}`.
//! - **Streams from a sender** (an LSL source records the sender's stream info and clock offsets
//!   in the run's [`Origins`]) keep the sender's name, type, `source_id`, hostname, uid, creation
//!   time, channel format and `desc` children (acquisition...), and are written as LabRecorder
//!   writes them: the sender's own timestamps (event time minus the offset the source applied,
//!   recovered to the nanosecond) and every clock offset measured (about every 5 s) as
//!   ClockOffset chunks, so pyxdf's synchronisation reproduces the pipeline's event times.
//!   Other streams are written with their event times and no offsets.
//! - **Provenance** in the file header: heloflow's version, the pipeline's name and full text,
//!   every model's name, version and SHA-256, and the subjects each input declares.
//! - **Deterministic bytes.** Samples chunks are cut on a 0.25 s event-time grid, and Boundary
//!   chunks follow the chunks of every 10 s of event time, so the file does not depend on thread
//!   timing or `-w` (apart from the header's `datetime` and offsets measured by LSL). A chunk is
//!   written and flushed as soon as event time passes its end: a crash loses the last chunk
//!   (0.25 s) plus however far the pipeline's event time trails the wall clock.
//! - **Crash-safe and full-disk-safe** through [`XdfWriter`]: a failed write keeps every
//!   complete chunk and stops the run with an error saying how much was kept.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use super::{
    check_file_path, Destination, ModelProvenance, Row, RowValues, Sink, SinkContext, SinkWriter,
};
use crate::config::document::Node;
use crate::config::options::Options;
use crate::origin::{offset_applied_at, Origins, StreamOrigin};
use crate::stream::ChannelFormat;
use crate::stream::{nanos_to_secs, secs_to_nanos, Nanos, StreamSchema, NANOS_PER_SEC};
use crate::xdf::bids::BidsName;
use crate::xdf::writer::{ChannelDesc, CreateOptions, StreamHeader, Values, XdfWriter, XmlNode};

/// Event time each Samples chunk covers.
pub const CHUNK_NS: Nanos = NANOS_PER_SEC / 4;

/// Event time between Boundary chunks.
pub const BOUNDARY_NS: Nanos = 10 * NANOS_PER_SEC;

/// Options of an `xdf` sink.
#[derive(Clone, Debug, PartialEq)]
pub struct XdfSinkConfig {
    /// The file (given as `path`, or built from `bids`).
    pub path: String,
    /// Replace an existing file.
    pub overwrite: bool,
}

/// A BIDS name part: a string, or a whole number such as a run or session index.
fn bids_label(bids: &mut Options, key: &'static str) -> Option<String> {
    let node = bids.raw(key)?;
    match node.get_ref() {
        Node::Str(text) => Some(text.clone()),
        Node::Int(number) if *number >= 0 => Some(number.to_string()),
        other => {
            bids.error_at(
                key,
                format!(
                    "`bids.{key}` must be a label or a whole number, found {}",
                    other.describe()
                ),
                format!("for example {key} = \"1\""),
            );
            None
        }
    }
}

impl Sink for XdfSinkConfig {
    fn parse(options: &mut Options) -> Self {
        let path = options.string("path").map(|p| p.into_inner());
        let bids = options.table("bids", |bids| {
            let name = BidsName {
                root: bids_label(bids, "root").unwrap_or_default(),
                subject: bids_label(bids, "subject").unwrap_or_default(),
                session: bids_label(bids, "session"),
                task: bids_label(bids, "task").unwrap_or_default(),
                run: bids_label(bids, "run"),
                modality: bids_label(bids, "modality").unwrap_or_else(|| "eeg".to_string()),
            };
            if let Err(message) = name.check() {
                bids.error_at(
                    "subject",
                    message,
                    "bids = { root = \"study\", subject = \"P01\", session = \"S1\", task = \"music\", run = \"1\", modality = \"eeg\" } (root, subject and task required)",
                );
            }
            name
        });
        let overwrite = options.boolean("overwrite", false);
        let path = match (path, bids) {
            (Some(_), Some(_)) => {
                options.error_at(
                    "bids",
                    "an `xdf` sink takes `path` or `bids`, not both",
                    "keep one of them",
                );
                String::new()
            }
            (Some(path), None) if Destination::parse(&path).is_stdout() => {
                options.error_at(
                    "path",
                    "an `xdf` sink writes a file, not standard output",
                    "give a file name, for example path = \"recordings/session.xdf\"",
                );
                String::new()
            }
            (Some(path), None) => {
                if let Err(message) = check_file_path(&path) {
                    options.error_at(
                        "path",
                        message,
                        "give a file name, for example path = \"recordings/session.xdf\"",
                    );
                }
                path
            }
            (None, Some(bids)) => bids
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            (None, None) => {
                options.error_at(
                    "path",
                    "an `xdf` sink needs a file to write",
                    "add path = \"recordings/session.xdf\", or bids = { root = \"study\", subject = \"P01\", task = \"music\" }",
                );
                String::new()
            }
        };
        XdfSinkConfig { path, overwrite }
    }

    fn destination(&self) -> Option<&str> {
        Some(&self.path)
    }

    /// Creates the file now, so a path that cannot be written stops the run before it starts.
    fn open(
        &self,
        inputs: &[StreamSchema],
        run: &SinkContext,
    ) -> Result<Box<dyn SinkWriter>, String> {
        let options = CreateOptions {
            overwrite: self.overwrite,
            provenance: vec![provenance(inputs, run)],
            ..CreateOptions::default()
        };
        let writer = XdfWriter::create(&PathBuf::from(&self.path), &options).map_err(|e| {
            if e.kind == io::ErrorKind::AlreadyExists {
                format!(
                    "{} already exists and is left untouched; set overwrite = true to replace it",
                    self.path
                )
            } else {
                e.message
            }
        })?;
        let inputs = inputs
            .iter()
            .zip(run.input_ids)
            .map(|(schema, &id)| Input {
                schema: schema.clone(),
                id,
                model: run.models.iter().find(|m| m.output == id).cloned(),
            })
            .collect();
        Ok(Box::new(XdfSink {
            writer: Some(writer),
            pipeline: run.pipeline.to_string(),
            origins: run.origins.clone(),
            inputs,
            streams: Vec::new(),
            window: None,
            next_boundary: None,
        }))
    }
}

/// The file header's `heloflow` element: version, pipeline, models and each input's subjects.
fn provenance(inputs: &[StreamSchema], run: &SinkContext) -> XmlNode {
    let models = run
        .models
        .iter()
        .map(|m| {
            XmlNode::element(
                "model",
                vec![
                    XmlNode::text("operator", &m.operator),
                    XmlNode::text("name", &m.name),
                    XmlNode::text("version", &m.version),
                    XmlNode::text("sha256", &m.sha256),
                ],
            )
        })
        .collect();
    let streams = inputs
        .iter()
        .map(|schema| {
            let subjects = schema
                .subjects
                .iter()
                .map(|s| XmlNode::text("subject", s))
                .collect();
            XmlNode::element(
                "stream",
                vec![
                    XmlNode::text("name", &schema.name),
                    XmlNode::text("modality", schema.modality.name()),
                    XmlNode::element("subjects", subjects),
                ],
            )
        })
        .collect();
    XmlNode::element(
        "heloflow",
        vec![
            XmlNode::text("version", env!("CARGO_PKG_VERSION")),
            XmlNode::element(
                "pipeline",
                vec![
                    XmlNode::text("name", run.pipeline),
                    XmlNode::text("text", run.pipeline_text),
                ],
            ),
            XmlNode::element("models", models),
            XmlNode::element("streams", streams),
        ],
    )
}

struct Input {
    schema: StreamSchema,
    id: u32,
    model: Option<ModelProvenance>,
}

/// One XDF stream (an input stream of one subject) and its rows of the open chunk.
struct Recorded {
    id: u32,
    input: usize,
    subject: String,
    /// Whether the stream has an origin: its stamps are then the sender's own.
    from_sender: bool,
    offsets_written: usize,
    times: Vec<Nanos>,
    numbers: Vec<f64>,
    texts: Vec<String>,
}

struct XdfSink {
    writer: Option<XdfWriter>,
    pipeline: String,
    origins: Arc<Origins>,
    inputs: Vec<Input>,
    streams: Vec<Recorded>,
    /// Index of the chunk window the buffered rows fall in.
    window: Option<Nanos>,
    /// Event time at which the next Boundary chunk is due.
    next_boundary: Option<Nanos>,
}

/// Seconds that convert back to `time` once `offset` is added (`secs_to_nanos(s + offset)`):
/// `time / 1e9 - offset`, moved by a few units in the last place when rounding needs it. Exact
/// while the clocks read less than 2^22 s (48 days of uptime: seconds as f64 still hold every
/// nanosecond); beyond, within a nanosecond (XDF's f64 seconds cannot hold more).
pub fn stamp_seconds(time: Nanos, offset: f64) -> f64 {
    let first = nanos_to_secs(time) - offset;
    let mut seconds = first;
    for _ in 0..64 {
        match secs_to_nanos(seconds + offset).cmp(&time) {
            std::cmp::Ordering::Equal => return seconds,
            std::cmp::Ordering::Less => seconds = seconds.next_up(),
            std::cmp::Ordering::Greater => seconds = seconds.next_down(),
        }
    }
    first
}

/// A stable stream instance id from what identifies the stream (FNV-1a, as a UUID-shaped hex).
fn stable_uid(source_id: &str, created_at: Nanos) -> String {
    let hash = |seed: u64| {
        source_id
            .bytes()
            .chain(created_at.to_le_bytes())
            .fold(seed, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            })
    };
    let (a, b) = (hash(0xcbf2_9ce4_8422_2325), hash(0x8422_2325_cbf2_9ce4));
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

impl XdfSink {
    fn writer(&mut self) -> io::Result<&mut XdfWriter> {
        self.writer
            .as_mut()
            .ok_or_else(|| io::Error::other("the XDF file is already finished"))
    }

    fn header(&self, input: usize, subject: &str, first: Nanos) -> (StreamHeader, bool) {
        let source = &self.inputs[input];
        let schema = &source.schema;
        let format = schema.format;
        let channels = schema
            .channels
            .iter()
            .map(|c| ChannelDesc::new(&c.label, &c.unit, &c.kind))
            .collect();
        let mut header = StreamHeader::new(
            format!("{}-{subject}", schema.name),
            schema.modality.lsl_type(),
            format,
            schema.rate.nominal_srate(),
            channels,
        );
        header.source_id = format!("heloflow:{}:{}:{subject}", self.pipeline, schema.name);
        header.created_at = nanos_to_secs(first);
        header.uid = stable_uid(&header.source_id, first);
        let mut desc = vec![
            XmlNode::text("subject", subject),
            XmlNode::element(
                "heloflow",
                vec![
                    XmlNode::text("pipeline", &self.pipeline),
                    XmlNode::text("stream", &schema.name),
                    XmlNode::text("modality", schema.modality.name()),
                    XmlNode::text("version", env!("CARGO_PKG_VERSION")),
                ],
            ),
        ];
        if let Some(model) = &source.model {
            let labels = model
                .labels
                .iter()
                .map(|l| XmlNode::text("label", l))
                .collect();
            desc.push(XmlNode::element(
                "model",
                vec![
                    XmlNode::text("name", &model.name),
                    XmlNode::text("version", &model.version),
                    XmlNode::text("sha256", &model.sha256),
                    XmlNode::element("labels", labels),
                    XmlNode::text("window_s", model.window_s.to_string()),
                    XmlNode::text("hop_s", model.hop_s.to_string()),
                ],
            ));
        }
        let origin = self.origins.get(source.id, subject);
        if let Some(origin) = &origin {
            keep_sender_identity(&mut header, &mut desc, origin);
        }
        header.desc = desc;
        (header, origin.is_some())
    }

    /// Opens the XDF stream of `input` for `subject` (its header chunk goes out now).
    fn stream_for(&mut self, input: usize, subject: &str, first: Nanos) -> io::Result<usize> {
        if let Some(index) = self
            .streams
            .iter()
            .position(|s| s.input == input && s.subject == subject)
        {
            return Ok(index);
        }
        let (header, from_sender) = self.header(input, subject, first);
        let id = self.writer()?.add_stream(&header)?;
        let index = self.streams.len();
        self.streams.push(Recorded {
            id,
            input,
            subject: subject.to_string(),
            from_sender,
            offsets_written: 0,
            times: Vec::new(),
            numbers: Vec::new(),
            texts: Vec::new(),
        });
        Ok(index)
    }

    /// Writes the chunks of the open window when `limit` is at or past its end (every row before
    /// `limit` has been seen), then a Boundary chunk when one is due, and flushes them.
    fn close_until(&mut self, limit: Nanos) -> io::Result<()> {
        let Some(window) = self.window else {
            return Ok(());
        };
        let end = window.saturating_add(1).saturating_mul(CHUNK_NS);
        if limit < end {
            return Ok(());
        }
        self.window = None;
        let Some(writer) = self.writer.as_mut() else {
            return Err(io::Error::other("the XDF file is already finished"));
        };
        for stream in &mut self.streams {
            let clock = if stream.from_sender {
                self.origins.clock_since(
                    self.inputs[stream.input].id,
                    &stream.subject,
                    stream.offsets_written,
                )
            } else {
                None
            };
            if let Some(clock) = &clock {
                for offset in &clock.offsets {
                    writer.push_clock_offset(stream.id, offset.collected, offset.offset)?;
                }
                stream.offsets_written = clock.total;
            }
            if stream.times.is_empty() {
                continue;
            }
            let stamps: Vec<f64> = stream
                .times
                .iter()
                .map(|&t| {
                    let applied = clock
                        .as_ref()
                        .map_or(0.0, |c| offset_applied_at(&c.applied, t));
                    stamp_seconds(t, applied)
                })
                .collect();
            if self.inputs[stream.input].schema.format.is_numeric() {
                writer.push_samples(stream.id, &stamps, Values::Numbers(&stream.numbers))?;
            } else {
                writer.push_samples(stream.id, &stamps, Values::Strings(&stream.texts))?;
            }
            stream.times.clear();
            stream.numbers.clear();
            stream.texts.clear();
        }
        if self.next_boundary.is_some_and(|due| end >= due) {
            writer.push_boundary()?;
            self.next_boundary = Some(
                end.div_euclid(BOUNDARY_NS)
                    .saturating_add(1)
                    .saturating_mul(BOUNDARY_NS),
            );
        }
        // Each window reaches the file on its own, so a failed write (a full disk) loses at most
        // this window, however far event time advanced at once.
        writer.flush()?;
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.close_until(Nanos::MAX)?;
        // Every stream a subject was declared to have is in the file, if only as an empty one
        // (a session without markers still has its marker stream), so pipelines that replay the
        // recording find what they expect.
        if self.writer.is_some() {
            let declared: Vec<(usize, String)> = self
                .inputs
                .iter()
                .enumerate()
                .flat_map(|(input, i)| i.schema.subjects.iter().map(move |s| (input, s.clone())))
                .collect();
            for (input, subject) in declared {
                self.stream_for(input, &subject, 0)?;
            }
        }
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        let summary = writer.finish().map_err(io::Error::from)?;
        let samples: u64 = summary.streams.iter().map(|s| s.samples).sum();
        crate::notice!(
            "heloflow: xdf: {}: {} stream(s), {samples} samples, {} bytes",
            summary.path.display(),
            summary.streams.len(),
            summary.bytes
        );
        Ok(())
    }
}

/// A sender's identity replaces heloflow's in a recorded stream's header: name, type, ids, host,
/// creation time, format (when it carries the same kind of values) and `desc` children other
/// than the channels, subject and heloflow elements written here.
fn keep_sender_identity(header: &mut StreamHeader, desc: &mut Vec<XmlNode>, origin: &StreamOrigin) {
    let Ok(document) = crate::xdf::header::parse_xml(&origin.info_xml) else {
        return;
    };
    let info = document.root_element();
    let field = |name: &str| {
        info.children()
            .find(|n| n.has_tag_name(name))
            .map(|n| n.text().unwrap_or_default().to_string())
    };
    for (name, slot) in [
        ("name", &mut header.name),
        ("type", &mut header.kind),
        ("source_id", &mut header.source_id),
        ("hostname", &mut header.hostname),
        ("uid", &mut header.uid),
        ("session_id", &mut header.session_id),
    ] {
        if let Some(value) = field(name) {
            *slot = value;
        }
    }
    if let Some(created) = field("created_at").and_then(|t| t.trim().parse::<f64>().ok()) {
        header.created_at = created;
    }
    if let Some(format) =
        field("channel_format").and_then(|f| ChannelFormat::from_lsl_name(f.trim()))
    {
        if (format == ChannelFormat::String) == (header.format == ChannelFormat::String) {
            header.format = format;
        }
    }
    let written = ["channels", "subject", "heloflow"];
    if let Some(sender_desc) = info.children().find(|n| n.has_tag_name("desc")) {
        for child in sender_desc.children().filter(|n| n.is_element()) {
            if !written.contains(&child.tag_name().name()) {
                desc.push(XmlNode::Raw(origin.info_xml[child.range()].to_string()));
            }
        }
    }
}

impl SinkWriter for XdfSink {
    fn write_row(&mut self, row: &Row<'_>) -> io::Result<()> {
        self.close_until(row.time)?;
        let Some(input) = self
            .inputs
            .iter()
            .position(|i| i.schema.name == row.schema.name)
        else {
            return Err(io::Error::other(format!(
                "the xdf sink has no input named `{}`",
                row.schema.name
            )));
        };
        let index = self.stream_for(input, row.subject, row.time)?;
        let window = row.time.div_euclid(CHUNK_NS);
        if self.window.is_none() {
            self.window = Some(window);
            if self.next_boundary.is_none() {
                self.next_boundary = Some(
                    window
                        .saturating_mul(CHUNK_NS)
                        .div_euclid(BOUNDARY_NS)
                        .saturating_add(1)
                        .saturating_mul(BOUNDARY_NS),
                );
            }
        }
        let stream = &mut self.streams[index];
        stream.times.push(row.time);
        match row.values {
            RowValues::Numeric(values) => stream.numbers.extend_from_slice(values),
            RowValues::Text(values) => stream.texts.extend(values.iter().cloned()),
        }
        Ok(())
    }

    fn advance(&mut self, frontier: Nanos) -> io::Result<()> {
        if frontier == Nanos::MAX {
            self.finish()
        } else {
            self.close_until(frontier)
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.writer.as_mut() {
            Some(writer) => writer.flush().map_err(io::Error::from),
            None => Ok(()),
        }
    }
}

impl Drop for XdfSink {
    /// A sink dropped before its input completed still closes its file when it can.
    fn drop(&mut self) {
        if self.writer.as_ref().is_some_and(|w| w.failure().is_none()) {
            if let Err(error) = self.finish() {
                crate::notice!("heloflow: xdf: {error}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn uids_are_stable_and_distinct() {
        assert_eq!(stable_uid("a", 1), stable_uid("a", 1));
        assert_ne!(stable_uid("a", 1), stable_uid("a", 2));
        assert_eq!(stable_uid("a", 1).len(), 36);
    }

    proptest! {
        /// Event times written as seconds read back as the same nanosecond (LSL clocks below
        /// 2^23 s, 97 days of uptime).
        #[test]
        fn event_times_round_trip(time in -(1i64 << 52)..(1i64 << 52)) {
            prop_assert_eq!(secs_to_nanos(stamp_seconds(time, 0.0)), time);
        }

        /// A sender's stamp plus the applied offset is the event time again, exactly, while both
        /// clocks read less than 2^22 s.
        #[test]
        fn sender_stamps_recover_event_times(
            time in 100_000 * NANOS_PER_SEC..(4_090_000 * NANOS_PER_SEC),
            offset in -1e5f64..1e5,
        ) {
            prop_assert_eq!(secs_to_nanos(stamp_seconds(time, offset) + offset), time);
        }

        /// Beyond 2^22 s (up to 97 days) they are within a nanosecond.
        #[test]
        fn late_sender_stamps_are_within_a_nanosecond(
            time in 4_200_000 * NANOS_PER_SEC..(8_300_000 * NANOS_PER_SEC),
            offset in -1e5f64..1e5,
        ) {
            let recovered = secs_to_nanos(stamp_seconds(time, offset) + offset);
            prop_assert!((recovered - time).abs() <= 1, "{recovered} vs {time}");
        }
    }
}
