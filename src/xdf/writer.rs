//! Crash-safe XDF 1.0 writing: a file header with provenance, stream headers (LSL stream info
//! XML), Samples chunks of every format with every timestamp, ClockOffset and Boundary chunks,
//! and stream footers at the end.
//!
//! ```
//! use heloflow::stream::ChannelFormat;
//! use heloflow::xdf::writer::{ChannelDesc, CreateOptions, StreamHeader, Values, XdfWriter};
//!
//! let path = std::env::temp_dir().join(format!("heloflow-doc-{}.xdf", std::process::id()));
//! let options = CreateOptions { overwrite: true, ..CreateOptions::default() };
//! let mut writer = XdfWriter::create(&path, &options).unwrap();
//! let channels = vec![ChannelDesc::new("C3", "microvolts", "EEG")];
//! let amp = writer
//!     .add_stream(&StreamHeader::new("amp", "EEG", ChannelFormat::Float32, 250.0, channels))
//!     .unwrap();
//! writer.push_samples(amp, &[10.0, 10.004], Values::Numbers(&[1.5, 2.5])).unwrap();
//! writer.push_clock_offset(amp, 10.01, -0.002).unwrap();
//! writer.flush().unwrap();
//! let summary = writer.finish().unwrap();
//! assert_eq!(summary.streams[0].samples, 2);
//! # std::fs::remove_file(&path).unwrap();
//! ```
//!
//! # Crash safety
//!
//! Chunks are encoded into memory and reach the file only whole, at [`XdfWriter::flush`] (callers
//! flush at least every 0.5 s). A flush writes its chunks in segments, each ending at a Boundary
//! chunk, and each segment in two steps: first everything but its first byte, then that first
//! byte (the width byte of the first chunk's length). Until the second step the file holds a zero
//! where a chunk should start. pyxdf 1.17.5 (`load_xdf`) reads a zero width as an invalid length,
//! catches that, scans forward for a boundary signature and, finding none (a segment's only
//! boundary is its last chunk), stops: the file loads with everything before the segment. Only
//! the second step, one byte that cannot be split, makes the segment visible, and by then it is
//! complete. This matters because pyxdf does **not** tolerate every cut: a file ending inside a
//! chunk's tag, inside a ClockOffset chunk or inside a stream header (or the file header) raises
//! an exception and loads nothing, and a file ending inside the last sample's values loads that
//! sample with stale values without a word. A `kill -9` can stop a large `write` at any page
//! boundary, so a plain `write` of whole chunks is not enough. The magic `XDF:` is written alone
//! (four bytes at offset 0); a file killed before its file header is complete loads as empty.
//!
//! Residual risks, stated plainly:
//! - **Power loss** (or a kernel crash) keeps only what was synchronised: the writer calls
//!   `fdatasync` every few seconds ([`CreateOptions::sync_every`], on a thread of its own so the
//!   writing thread never waits for the disk, see [`super::disk_sync`]) and at the end. Bytes written
//!   after the last sync may be missing, or (filesystem permitting) present out of order, so the
//!   last few seconds can end in any of the cuts above; `heloflow xdf repair` restores such files.
//! - The loss on `kill -9` is what had not been flushed: up to the callers' flush cadence.
//! - Streams are footer-less after a kill; pyxdf loads them (footers are optional).
//!
//! # Full disk
//!
//! A failed write (`ENOSPC`, `EFBIG` under a file-size limit: binaries should ignore `SIGXFSZ` so
//! the limit is an error, not a kill) never leaves a partial chunk: the file is truncated back to
//! its last complete chunk, nothing more is written, and the error says how much was kept.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::disk_sync::DiskSync;
use super::format::{
    boundary_chunk, clock_offset_content, encode_chunk, varlen_size, write_varlen, xml_escape,
    xml_number, Footer, Tag, MAGIC,
};
use crate::stream::ChannelFormat;

/// How to create a file.
#[derive(Clone, Debug)]
pub struct CreateOptions {
    /// Replace an existing file (otherwise creation fails when the path exists).
    pub overwrite: bool,
    /// Elements added to the file header after `version` and `datetime` (provenance).
    pub provenance: Vec<XmlNode>,
    /// Program named in every footer (`heloflow 0.1.0`).
    pub writer: String,
    /// Longest time between two `fdatasync` calls (at flush time).
    pub sync_every: Duration,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            overwrite: false,
            provenance: Vec::new(),
            writer: format!("heloflow {}", env!("CARGO_PKG_VERSION")),
            sync_every: Duration::from_secs(3),
        }
    }
}

/// An XML element for headers: text, children, or a fragment kept exactly as a sender wrote it.
#[derive(Clone, Debug, PartialEq)]
pub enum XmlNode {
    /// `<name>text</name>`; the text is escaped when written.
    Text(String, String),
    /// `<name>children</name>`.
    Element(String, Vec<XmlNode>),
    /// A complete, well-formed element written as is (a sender's `desc` child).
    Raw(String),
}

impl XmlNode {
    /// `<name>text</name>`.
    pub fn text(name: impl Into<String>, text: impl Into<String>) -> XmlNode {
        XmlNode::Text(name.into(), text.into())
    }

    /// `<name>children</name>`.
    pub fn element(name: impl Into<String>, children: Vec<XmlNode>) -> XmlNode {
        XmlNode::Element(name.into(), children)
    }

    /// The element's name (`None` for raw fragments).
    pub fn name(&self) -> Option<&str> {
        match self {
            XmlNode::Text(name, _) | XmlNode::Element(name, _) => Some(name),
            XmlNode::Raw(_) => None,
        }
    }

    /// Appends the element, indented by `depth` tabs, one element per line.
    pub fn write(&self, out: &mut String, depth: usize) {
        out.extend(std::iter::repeat_n('\t', depth));
        match self {
            XmlNode::Text(name, text) if text.is_empty() => {
                out.push_str(&format!("<{name} />\n"));
            }
            XmlNode::Text(name, text) => {
                out.push_str(&format!("<{name}>{}</{name}>\n", xml_text(text)));
            }
            XmlNode::Element(name, children) if children.is_empty() => {
                out.push_str(&format!("<{name} />\n"));
            }
            XmlNode::Element(name, children) => {
                out.push_str(&format!("<{name}>\n"));
                for child in children {
                    child.write(out, depth + 1);
                }
                out.extend(std::iter::repeat_n('\t', depth));
                out.push_str(&format!("</{name}>\n"));
            }
            XmlNode::Raw(xml) => {
                out.push_str(xml.trim());
                out.push('\n');
            }
        }
    }
}

/// Escapes text for XML and replaces the characters XML 1.0 forbids (control characters other
/// than tab, newline and carriage return) with U+FFFD, so every header stays parseable.
pub fn xml_text(text: &str) -> String {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r')
            || ('\u{20}'..='\u{D7FF}').contains(&c)
            || ('\u{E000}'..='\u{FFFD}').contains(&c)
            || c >= '\u{10000}'
    };
    if text.chars().all(allowed) {
        xml_escape(text)
    } else {
        let cleaned: String = text
            .chars()
            .map(|c| if allowed(c) { c } else { '\u{FFFD}' })
            .collect();
        xml_escape(&cleaned)
    }
}

/// One channel's `desc/channels/channel` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelDesc {
    /// Label (`C3`, `EDA`, `joy`).
    pub label: String,
    /// Unit (`microvolts`, `uS`, `probability`).
    pub unit: String,
    /// Channel type (`EEG`, `GSR`).
    pub kind: String,
}

impl ChannelDesc {
    /// A channel from its label, unit and type.
    pub fn new(label: impl Into<String>, unit: impl Into<String>, kind: impl Into<String>) -> Self {
        ChannelDesc {
            label: label.into(),
            unit: unit.into(),
            kind: kind.into(),
        }
    }
}

/// The LSL stream info a stream header carries, built field by field.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamHeader {
    /// Stream name.
    pub name: String,
    /// Content type (`EEG`, `Markers`).
    pub kind: String,
    /// Values per sample.
    pub channel_count: usize,
    /// Nominal rate in Hz; 0 for irregular streams.
    pub nominal_srate: f64,
    /// How values are stored.
    pub format: ChannelFormat,
    /// Unique, stable id of the sender.
    pub source_id: String,
    /// When the sender was created, seconds on its clock.
    pub created_at: f64,
    /// Unique id of this stream instance.
    pub uid: String,
    /// LSL session id (`default`).
    pub session_id: String,
    /// Machine of the sender.
    pub hostname: String,
    /// Channel metadata (`desc/channels`), empty or one per channel.
    pub channels: Vec<ChannelDesc>,
    /// Further `desc` children, after `channels`.
    pub desc: Vec<XmlNode>,
}

impl StreamHeader {
    /// A header with these essentials; `source_id`, `uid` and `created_at` empty, this machine's
    /// hostname, session `default`, no further `desc`.
    pub fn new(
        name: impl Into<String>,
        kind: impl Into<String>,
        format: ChannelFormat,
        nominal_srate: f64,
        channels: Vec<ChannelDesc>,
    ) -> Self {
        StreamHeader {
            name: name.into(),
            kind: kind.into(),
            channel_count: channels.len(),
            nominal_srate,
            format,
            source_id: String::new(),
            created_at: 0.0,
            uid: String::new(),
            session_id: "default".to_string(),
            hostname: local_hostname(),
            channels,
            desc: Vec::new(),
        }
    }

    /// The stream info XML, laid out as liblsl writes it.
    pub fn to_xml(&self) -> String {
        let mut fields = vec![
            XmlNode::text("name", &self.name),
            XmlNode::text("type", &self.kind),
            XmlNode::text("channel_count", self.channel_count.to_string()),
            XmlNode::text("channel_format", self.format.lsl_name()),
            XmlNode::text("source_id", &self.source_id),
            XmlNode::text("nominal_srate", xml_number(self.nominal_srate)),
            XmlNode::text("version", "1.1"),
            XmlNode::text("created_at", xml_number(self.created_at)),
            XmlNode::text("uid", &self.uid),
            XmlNode::text("session_id", &self.session_id),
            XmlNode::text("hostname", &self.hostname),
        ];
        let mut desc = Vec::new();
        if !self.channels.is_empty() {
            let channels = self
                .channels
                .iter()
                .map(|c| {
                    XmlNode::element(
                        "channel",
                        vec![
                            XmlNode::text("label", &c.label),
                            XmlNode::text("unit", &c.unit),
                            XmlNode::text("type", &c.kind),
                        ],
                    )
                })
                .collect();
            desc.push(XmlNode::element("channels", channels));
        }
        desc.extend(self.desc.iter().cloned());
        fields.push(XmlNode::element("desc", desc));
        let mut xml = String::from("<?xml version=\"1.0\"?>\n");
        XmlNode::element("info", fields).write(&mut xml, 0);
        xml
    }
}

/// This machine's host name (empty when it cannot be read).
pub fn local_hostname() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length; gethostname writes at most that much.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if result != 0 {
        return String::new();
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

/// Now as ISO-8601 (UTC, `2026-12-01T17:05:09+00:00`), the file header's `datetime`.
pub fn iso8601_now() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    iso8601(seconds)
}

/// Seconds since the Unix epoch as ISO-8601 in UTC.
pub fn iso8601(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let time = unix_seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+00:00",
        time / 3600,
        time % 3600 / 60,
        time % 60
    )
}

/// The values of a run of samples, row-major (`sample * channel_count + channel`).
#[derive(Clone, Copy, Debug)]
pub enum Values<'a> {
    /// For `int8` streams.
    Int8(&'a [i8]),
    /// For `int16` streams.
    Int16(&'a [i16]),
    /// For `int32` streams.
    Int32(&'a [i32]),
    /// For `int64` streams.
    Int64(&'a [i64]),
    /// For `float32` streams.
    Float32(&'a [f32]),
    /// For `double64` streams.
    Double64(&'a [f64]),
    /// For any numeric stream: converted to its format (integers rounded and saturated, NaN as 0).
    Numbers(&'a [f64]),
    /// For `string` streams: UTF-8 text.
    Strings(&'a [String]),
    /// For `string` streams: raw bytes, exactly as received.
    Bytes(&'a [Vec<u8>]),
}

impl Values<'_> {
    fn len(&self) -> usize {
        match self {
            Values::Int8(v) => v.len(),
            Values::Int16(v) => v.len(),
            Values::Int32(v) => v.len(),
            Values::Int64(v) => v.len(),
            Values::Float32(v) => v.len(),
            Values::Double64(v) | Values::Numbers(v) => v.len(),
            Values::Strings(v) => v.len(),
            Values::Bytes(v) => v.len(),
        }
    }

    fn fits(&self, format: ChannelFormat) -> bool {
        matches!(
            (self, format),
            (Values::Int8(_), ChannelFormat::Int8)
                | (Values::Int16(_), ChannelFormat::Int16)
                | (Values::Int32(_), ChannelFormat::Int32)
                | (Values::Int64(_), ChannelFormat::Int64)
                | (Values::Float32(_), ChannelFormat::Float32)
                | (Values::Double64(_), ChannelFormat::Double64)
                | (Values::Strings(_) | Values::Bytes(_), ChannelFormat::String)
        ) || (matches!(self, Values::Numbers(_)) && format != ChannelFormat::String)
    }

    fn kind(&self) -> &'static str {
        match self {
            Values::Int8(_) => "int8",
            Values::Int16(_) => "int16",
            Values::Int32(_) => "int32",
            Values::Int64(_) => "int64",
            Values::Float32(_) => "float32",
            Values::Double64(_) => "double64",
            Values::Numbers(_) => "numeric",
            Values::Strings(_) | Values::Bytes(_) => "string",
        }
    }
}

/// Why writing failed.
#[derive(Debug, Clone)]
pub struct WriteError {
    /// What failed, with the path and the system's reason.
    pub message: String,
    /// What the system reported (`StorageFull`, `FileTooLarge`, `AlreadyExists`...).
    pub kind: io::ErrorKind,
    /// Bytes of complete chunks the file keeps; `None` when no file was left.
    pub kept_bytes: Option<u64>,
}

impl WriteError {
    fn usage(message: String) -> WriteError {
        WriteError {
            message,
            kind: io::ErrorKind::InvalidInput,
            kept_bytes: None,
        }
    }
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WriteError {}

impl From<WriteError> for io::Error {
    fn from(error: WriteError) -> io::Error {
        io::Error::new(error.kind, error.message)
    }
}

/// What was written for one stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamSummary {
    /// Samples written.
    pub samples: u64,
    /// First timestamp written.
    pub first_timestamp: Option<f64>,
    /// Last timestamp written.
    pub last_timestamp: Option<f64>,
    /// Clock offsets written, `(collection time, offset)`, oldest first.
    pub clock_offsets: Vec<(f64, f64)>,
}

/// What a finished file holds.
#[derive(Clone, Debug, PartialEq)]
pub struct FileSummary {
    /// Where it is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Per stream, in stream id order.
    pub streams: Vec<StreamSummary>,
}

struct StreamState {
    format: ChannelFormat,
    channels: usize,
    summary: StreamSummary,
}

/// An XDF file being written. See the module documentation for its crash and full-disk
/// behaviour.
pub struct XdfWriter {
    file: File,
    path: PathBuf,
    /// Bytes of complete chunks in the file.
    complete: u64,
    /// Encoded chunks not yet in the file.
    pending: Vec<u8>,
    /// Ends of the segments of `pending` (after each Boundary chunk).
    cuts: Vec<usize>,
    streams: Vec<StreamState>,
    writer_name: String,
    sync_every: Duration,
    last_sync: Instant,
    /// Runs the periodic syncs (`None` if its thread could not start: they run here then).
    background: Option<DiskSync>,
    failure: Option<WriteError>,
    closed: bool,
}

impl XdfWriter {
    /// Creates the file and writes the magic and the file header. Refuses, before anything is
    /// written, a path whose directory cannot be created, a location that cannot be written, and
    /// an existing file unless `options.overwrite`.
    pub fn create(path: &Path, options: &CreateOptions) -> Result<XdfWriter, WriteError> {
        let fail = |what: String, error: &io::Error| WriteError {
            message: what,
            kind: error.kind(),
            kept_bytes: None,
        };
        if path.as_os_str().is_empty() {
            return Err(WriteError::usage(
                "an XDF file needs a path (an empty path was given)".to_string(),
            ));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                fail(
                    format!("cannot create the directory {}: {e}", parent.display()),
                    &e,
                )
            })?;
        }
        let mut open = OpenOptions::new();
        open.read(true).write(true);
        if options.overwrite {
            open.create(true).truncate(true);
        } else {
            open.create_new(true);
        }
        let file = open.open(path).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                fail(
                    format!(
                        "{} already exists; it is left untouched (ask to overwrite it to replace it)",
                        path.display()
                    ),
                    &e,
                )
            } else {
                fail(format!("cannot create {}: {e}", path.display()), &e)
            }
        })?;
        let mut writer = XdfWriter {
            file,
            path: path.to_path_buf(),
            complete: 0,
            pending: Vec::new(),
            cuts: Vec::new(),
            streams: Vec::new(),
            writer_name: options.writer.clone(),
            sync_every: options.sync_every,
            last_sync: Instant::now(),
            background: None,
            failure: None,
            closed: false,
        };
        let mut header = String::from("<?xml version=\"1.0\"?>\n");
        let mut fields = vec![
            XmlNode::text("version", "1.0"),
            XmlNode::text("datetime", iso8601_now()),
        ];
        fields.extend(options.provenance.iter().cloned());
        XmlNode::element("info", fields).write(&mut header, 0);
        if let Err(e) = writer.start(header.as_bytes(), path) {
            let message = format!("cannot write {}: {e}", path.display());
            writer.closed = true;
            drop(writer);
            let _ = std::fs::remove_file(path);
            return Err(fail(message, &e));
        }
        writer.background = DiskSync::start(&writer.file).ok();
        Ok(writer)
    }

    /// The magic alone (four bytes at offset 0, never split), then the file header as a segment,
    /// then a sync of the file and of its directory.
    fn start(&mut self, header: &[u8], path: &Path) -> io::Result<()> {
        self.file.write_all_at(MAGIC, 0)?;
        self.complete = MAGIC.len() as u64;
        self.write_segment(&encode_chunk(Tag::FileHeader, None, header))?;
        self.file.sync_all()?;
        sync_directory(path)
    }

    /// Bytes of complete chunks in the file so far.
    pub fn bytes_written(&self) -> u64 {
        self.complete
    }

    /// Why writing stopped, if it did (nothing more is written after a failure).
    pub fn failure(&self) -> Option<&WriteError> {
        self.failure.as_ref()
    }

    /// What has been written for stream `id` so far.
    pub fn stream_summary(&self, id: u32) -> Option<&StreamSummary> {
        self.streams.get(id as usize).map(|s| &s.summary)
    }

    fn check_usable(&self) -> Result<(), WriteError> {
        match &self.failure {
            Some(failure) => Err(failure.clone()),
            None if self.closed => Err(WriteError::usage(format!(
                "{} is already finished",
                self.path.display()
            ))),
            None => Ok(()),
        }
    }

    fn stream(&self, id: u32) -> Result<&StreamState, WriteError> {
        self.streams.get(id as usize).ok_or_else(|| {
            WriteError::usage(format!(
                "{}: no stream with id {id} (add its header first)",
                self.path.display()
            ))
        })
    }

    /// Adds a stream from its header; returns its stream id.
    pub fn add_stream(&mut self, header: &StreamHeader) -> Result<u32, WriteError> {
        if !header.channels.is_empty() && header.channels.len() != header.channel_count {
            return Err(WriteError::usage(format!(
                "stream `{}` declares {} channels but describes {}",
                header.name,
                header.channel_count,
                header.channels.len()
            )));
        }
        self.add_stream_xml(&header.to_xml())
    }

    /// Adds a stream from its stream info XML as a sender wrote it; its format and channel count
    /// are read from the XML, so the samples written are the ones a reader will expect. XML that
    /// is not a stream header pyxdf can read (malformed, missing `channel_count`, `nominal_srate`
    /// or `channel_format`) is refused. Returns the stream id.
    pub fn add_stream_xml(&mut self, xml: &str) -> Result<u32, WriteError> {
        self.check_usable()?;
        let info = super::header::StreamInfo::parse(xml, 0).map_err(|e| {
            WriteError::usage(format!(
                "a stream header pyxdf could not read ({}); it would make the file unreadable",
                e.message
            ))
        })?;
        let (format, channel_count) = (info.channel_format, info.channel_count);
        let id = self.streams.len() as u32;
        self.pending
            .extend(encode_chunk(Tag::StreamHeader, Some(id), xml.as_bytes()));
        self.streams.push(StreamState {
            format,
            channels: channel_count,
            summary: StreamSummary::default(),
        });
        Ok(id)
    }

    /// Adds one Samples chunk: `timestamps` (seconds, each written in full) and `values`
    /// (row-major, `timestamps.len() * channel_count` of them, of the stream's format).
    pub fn push_samples(
        &mut self,
        id: u32,
        timestamps: &[f64],
        values: Values<'_>,
    ) -> Result<(), WriteError> {
        self.check_usable()?;
        let stream = self.stream(id)?;
        let (format, channels) = (stream.format, stream.channels);
        if !values.fits(format) {
            return Err(WriteError::usage(format!(
                "stream {id} is {}, but {} values were given",
                format.lsl_name(),
                values.kind()
            )));
        }
        if values.len() != timestamps.len() * channels {
            return Err(WriteError::usage(format!(
                "stream {id}: {} samples of {channels} channel(s) need {} values, got {}",
                timestamps.len(),
                timestamps.len() * channels,
                values.len()
            )));
        }
        if timestamps.is_empty() {
            return Ok(());
        }
        let count = timestamps.len();
        let value_bytes = match values {
            Values::Strings(v) => v
                .iter()
                .map(|s| varlen_size(s.len() as u64) + s.len())
                .sum(),
            Values::Bytes(v) => v
                .iter()
                .map(|s| varlen_size(s.len() as u64) + s.len())
                .sum(),
            _ => count * channels * format.size().unwrap_or(0),
        };
        let content = 4 + varlen_size(count as u64) + count * 9 + value_bytes;
        let out = &mut self.pending;
        out.reserve(content + 11);
        write_varlen(out, (2 + content) as u64);
        out.extend_from_slice(&(Tag::Samples as u16).to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
        write_varlen(out, count as u64);
        let start = out.len();
        encode_rows(out, timestamps, channels.max(1), values, format);
        debug_assert_eq!(out.len() - start + 4 + varlen_size(count as u64), content);
        let summary = &mut self.streams[id as usize].summary;
        summary.samples += count as u64;
        summary.first_timestamp.get_or_insert(timestamps[0]);
        summary.last_timestamp = Some(timestamps[count - 1]);
        Ok(())
    }

    /// Adds a ClockOffset chunk: at `collected` (seconds, local clock) the sender's clock was
    /// `offset` seconds behind. Non-finite values are refused (a failed measurement writes
    /// nothing, unlike LabRecorder's uninitialised value).
    pub fn push_clock_offset(
        &mut self,
        id: u32,
        collected: f64,
        offset: f64,
    ) -> Result<(), WriteError> {
        self.check_usable()?;
        self.stream(id)?;
        if !collected.is_finite() || !offset.is_finite() {
            return Err(WriteError::usage(format!(
                "stream {id}: clock offset {offset} at {collected} is not a measurement"
            )));
        }
        self.pending.extend(encode_chunk(
            Tag::ClockOffset,
            Some(id),
            &clock_offset_content(collected, offset),
        ));
        self.streams[id as usize]
            .summary
            .clock_offsets
            .push((collected, offset));
        Ok(())
    }

    /// Adds a Boundary chunk (readers resynchronise at it after damage; about every 10 s).
    pub fn push_boundary(&mut self) -> Result<(), WriteError> {
        self.check_usable()?;
        self.pending.extend(boundary_chunk());
        self.cuts.push(self.pending.len());
        Ok(())
    }

    /// Writes every pending chunk to the file (see the module documentation for how), and
    /// synchronises it when the last sync is older than `sync_every`.
    pub fn flush(&mut self) -> Result<(), WriteError> {
        self.check_usable()?;
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            let mut cuts = std::mem::take(&mut self.cuts);
            cuts.push(pending.len());
            let mut start = 0;
            for end in cuts {
                if end > start {
                    if let Err(e) = self.write_segment(&pending[start..end]) {
                        return Err(self.fail(&e, (pending.len() - start) as u64));
                    }
                    start = end;
                }
            }
            self.pending = pending;
            self.pending.clear();
        }
        if self.last_sync.elapsed() >= self.sync_every {
            self.last_sync = Instant::now();
            match self.background.as_mut().map(DiskSync::request) {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(self.sync_failure(&e)),
                None => self.sync()?,
            }
        }
        Ok(())
    }

    /// Synchronises the file with the disk now (`fdatasync`), after any sync still running.
    pub fn sync(&mut self) -> Result<(), WriteError> {
        self.check_usable()?;
        self.last_sync = Instant::now();
        let result = match self.background.as_mut() {
            Some(background) => background.wait(),
            None => Ok(()),
        };
        result
            .and_then(|()| self.file.sync_data())
            .map_err(|e| self.sync_failure(&e))
    }

    /// Records a failed sync: nothing more is written.
    fn sync_failure(&mut self, e: &io::Error) -> WriteError {
        let failure = WriteError {
            message: format!(
                "cannot synchronise {} with the disk: {e}; it holds {} bytes of complete chunks, which may not all have reached the disk; nothing more is written",
                self.path.display(),
                self.complete
            ),
            kind: e.kind(),
            kept_bytes: Some(self.complete),
        };
        self.failure = Some(failure.clone());
        failure
    }

    /// Writes the footers of every stream, flushes and synchronises; returns what the file holds.
    pub fn finish(mut self) -> Result<FileSummary, WriteError> {
        self.close()
    }

    fn close(&mut self) -> Result<FileSummary, WriteError> {
        self.check_usable()?;
        for (id, stream) in self.streams.iter().enumerate() {
            let summary = &stream.summary;
            let footer = Footer {
                writer: self.writer_name.clone(),
                first_timestamp: summary.first_timestamp.unwrap_or(0.0),
                last_timestamp: summary.last_timestamp.unwrap_or(0.0),
                sample_count: summary.samples,
                clock_offsets: summary.clock_offsets.clone(),
            };
            self.pending.extend(encode_chunk(
                Tag::StreamFooter,
                Some(id as u32),
                footer.to_xml().as_bytes(),
            ));
        }
        self.flush()?;
        self.sync()?;
        self.closed = true;
        Ok(FileSummary {
            path: self.path.clone(),
            bytes: self.complete,
            streams: self.streams.iter().map(|s| s.summary.clone()).collect(),
        })
    }

    fn write_segment(&mut self, segment: &[u8]) -> io::Result<()> {
        write_segment(&self.file, self.complete, segment)?;
        self.complete += segment.len() as u64;
        Ok(())
    }

    /// Cuts the file back to its complete chunks after a failed write and stops writing.
    fn fail(&mut self, error: &io::Error, lost: u64) -> WriteError {
        let truncated = self.file.set_len(self.complete);
        let kept = match truncated {
            Ok(()) => format!(
                "it keeps its first {} bytes, every chunk complete (it loads without footers)",
                self.complete
            ),
            Err(e) => format!(
                "cutting it back to its {} bytes of complete chunks also failed ({e}), so it may end in a partial chunk",
                self.complete
            ),
        };
        let failure = WriteError {
            message: format!(
                "cannot write {}: {error}; {kept}; the last {lost} bytes encoded are lost and nothing more is written",
                self.path.display()
            ),
            kind: error.kind(),
            kept_bytes: Some(self.complete),
        };
        self.failure = Some(failure.clone());
        failure
    }
}

impl Drop for XdfWriter {
    /// A writer dropped without [`XdfWriter::finish`] still writes its footers when it can.
    fn drop(&mut self) {
        if !self.closed && self.failure.is_none() {
            let _ = self.close();
        }
    }
}

/// Writing at a position, as `File` does (a seam for checking the order of writes).
trait WriteAt {
    fn put_at(&self, bytes: &[u8], offset: u64) -> io::Result<()>;
}

impl WriteAt for File {
    fn put_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        self.write_all_at(bytes, offset)
    }
}

/// Writes one segment (no Boundary chunk before its last chunk) at `at` in two steps: all but its
/// first byte, then its first byte, so the segment becomes readable only once complete.
fn write_segment(file: &impl WriteAt, at: u64, segment: &[u8]) -> io::Result<()> {
    if segment.len() > 1 {
        file.put_at(&segment[1..], at + 1)?;
    }
    file.put_at(&segment[..1], at)
}

/// Synchronises the directory holding `path`, so the new file's entry survives a power loss.
fn sync_directory(path: &Path) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent).and_then(|d| d.sync_all())
}

/// Appends every sample: `[8][timestamp f64][values]`.
fn encode_rows(
    out: &mut Vec<u8>,
    timestamps: &[f64],
    channels: usize,
    values: Values<'_>,
    format: ChannelFormat,
) {
    fn rows<T: Copy, const N: usize>(
        out: &mut Vec<u8>,
        timestamps: &[f64],
        channels: usize,
        values: &[T],
        bytes: impl Fn(T) -> [u8; N],
    ) {
        for (row, &time) in timestamps.iter().enumerate() {
            out.push(8);
            out.extend_from_slice(&time.to_le_bytes());
            let sample = values
                .get(row * channels..(row + 1) * channels)
                .unwrap_or(&[]);
            for &value in sample {
                out.extend_from_slice(&bytes(value));
            }
        }
    }
    fn texts<S: AsRef<[u8]>>(out: &mut Vec<u8>, timestamps: &[f64], channels: usize, values: &[S]) {
        for (row, &time) in timestamps.iter().enumerate() {
            out.push(8);
            out.extend_from_slice(&time.to_le_bytes());
            let sample = values
                .get(row * channels..(row + 1) * channels)
                .unwrap_or(&[]);
            for value in sample {
                let bytes = value.as_ref();
                write_varlen(out, bytes.len() as u64);
                out.extend_from_slice(bytes);
            }
        }
    }
    match values {
        Values::Int8(v) => rows(out, timestamps, channels, v, i8::to_le_bytes),
        Values::Int16(v) => rows(out, timestamps, channels, v, i16::to_le_bytes),
        Values::Int32(v) => rows(out, timestamps, channels, v, i32::to_le_bytes),
        Values::Int64(v) => rows(out, timestamps, channels, v, i64::to_le_bytes),
        Values::Float32(v) => rows(out, timestamps, channels, v, f32::to_le_bytes),
        Values::Double64(v) => rows(out, timestamps, channels, v, f64::to_le_bytes),
        Values::Strings(v) => texts(out, timestamps, channels, v),
        Values::Bytes(v) => texts(out, timestamps, channels, v),
        Values::Numbers(v) => match format {
            ChannelFormat::Int8 => rows(out, timestamps, channels, v, |x| {
                (x.round() as i8).to_le_bytes()
            }),
            ChannelFormat::Int16 => rows(out, timestamps, channels, v, |x| {
                (x.round() as i16).to_le_bytes()
            }),
            ChannelFormat::Int32 => rows(out, timestamps, channels, v, |x| {
                (x.round() as i32).to_le_bytes()
            }),
            ChannelFormat::Int64 => rows(out, timestamps, channels, v, |x| {
                (x.round() as i64).to_le_bytes()
            }),
            ChannelFormat::Float32 => {
                rows(out, timestamps, channels, v, |x| (x as f32).to_le_bytes())
            }
            ChannelFormat::Double64 | ChannelFormat::String => {
                rows(out, timestamps, channels, v, f64::to_le_bytes)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xdf::format::read_varlen;
    use proptest::prelude::*;

    /// A chunk's tag, stream id and content.
    type Chunk = (u16, Option<u32>, Vec<u8>);

    /// Splits a file into its chunks; `None` if a chunk is cut.
    fn chunks(bytes: &[u8]) -> Option<Vec<Chunk>> {
        let mut at = 4;
        let mut out = Vec::new();
        assert_eq!(&bytes[..4], MAGIC);
        while at < bytes.len() {
            let (length, used) = read_varlen(&bytes[at..])?;
            let body = bytes.get(at + used..at + used + length as usize)?;
            let tag = u16::from_le_bytes([body[0], body[1]]);
            let has_id = Tag::from_u16(tag).is_some_and(Tag::has_stream_id);
            let (id, content) = if has_id {
                (
                    Some(u32::from_le_bytes(body[2..6].try_into().ok()?)),
                    &body[6..],
                )
            } else {
                (None, &body[2..])
            };
            out.push((tag, id, content.to_vec()));
            at += used + length as usize;
        }
        Some(out)
    }

    fn temp_path(dir: &tempfile::TempDir, name: &str) -> PathBuf {
        dir.path().join(name)
    }

    #[test]
    fn samples_chunks_hold_every_timestamp_and_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = temp_path(&dir, "a.xdf");
        let mut writer = XdfWriter::create(&path, &CreateOptions::default()).unwrap();
        let header = StreamHeader::new(
            "s",
            "EEG",
            ChannelFormat::Int16,
            100.0,
            vec![ChannelDesc::new("a", "", ""), ChannelDesc::new("b", "", "")],
        );
        let id = writer.add_stream(&header).unwrap();
        writer
            .push_samples(id, &[1.0, 1.01], Values::Int16(&[1, -2, 300, i16::MIN]))
            .unwrap();
        writer.push_clock_offset(id, 2.0, 0.5).unwrap();
        writer.push_boundary().unwrap();
        writer.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let chunks = chunks(&bytes).expect("complete chunks");
        let tags: Vec<u16> = chunks.iter().map(|c| c.0).collect();
        assert_eq!(tags, [1, 2, 3, 4, 5, 6]);
        let samples = &chunks[2].2;
        assert_eq!(samples[..2], [1, 2]);
        assert_eq!(samples[2], 8);
        assert_eq!(samples[3..11], 1.0f64.to_le_bytes());
        assert_eq!(samples[11..15], [1, 0, 0xFE, 0xFF]);
        assert_eq!(samples[15], 8);
        assert_eq!(samples[16..24], 1.01f64.to_le_bytes());
        assert_eq!(samples[24..28], [0x2C, 0x01, 0x00, 0x80]);
        assert_eq!(samples.len(), 28);
        let header = String::from_utf8(chunks[1].2.clone()).unwrap();
        assert!(header.contains("<channel_format>int16</channel_format>"));
        let footer = String::from_utf8(chunks[5].2.clone()).unwrap();
        assert!(
            footer.contains("<sample_count>2</sample_count>"),
            "{footer}"
        );
        assert!(footer.contains("<first_timestamp>1.0</first_timestamp>"));
        assert!(footer.contains("<last_timestamp>1.01</last_timestamp>"));
        assert!(footer.contains("<offset><time>2.0</time><value>0.5</value></offset>"));
    }

    #[test]
    fn strings_are_length_prefixed_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = temp_path(&dir, "m.xdf");
        let mut writer = XdfWriter::create(&path, &CreateOptions::default()).unwrap();
        let id = writer
            .add_stream(&StreamHeader::new(
                "m",
                "Markers",
                ChannelFormat::String,
                0.0,
                vec![ChannelDesc::new("Marker", "", "")],
            ))
            .unwrap();
        let long = "x".repeat(300);
        writer
            .push_samples(
                id,
                &[5.0, 6.0],
                Values::Strings(&["héllo".to_string(), long.clone()]),
            )
            .unwrap();
        writer.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let chunk = &chunks(&bytes).unwrap()[2].2;
        assert_eq!(chunk[..2], [1, 2]);
        assert_eq!(chunk[11..13], [1, 6]);
        assert_eq!(&chunk[13..19], "héllo".as_bytes());
        assert_eq!(chunk[28..33], [4, 44, 1, 0, 0]);
        assert_eq!(&chunk[33..], long.as_bytes());
    }

    #[test]
    fn creation_refuses_what_it_cannot_or_may_not_write() {
        let dir = tempfile::tempdir().unwrap();
        let existing = temp_path(&dir, "old.xdf");
        std::fs::write(&existing, b"precious").unwrap();
        let error = match XdfWriter::create(&existing, &CreateOptions::default()) {
            Err(e) => e,
            Ok(_) => panic!("an existing file was replaced"),
        };
        assert_eq!(error.kind, io::ErrorKind::AlreadyExists);
        assert!(error.message.contains("already exists"), "{error}");
        assert_eq!(std::fs::read(&existing).unwrap(), b"precious");
        let replaced = CreateOptions {
            overwrite: true,
            ..CreateOptions::default()
        };
        XdfWriter::create(&existing, &replaced)
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(&std::fs::read(&existing).unwrap()[..4], MAGIC);

        let under_file = existing.join("sub").join("x.xdf");
        let error = XdfWriter::create(&under_file, &CreateOptions::default())
            .err()
            .expect("a path under a regular file");
        assert!(
            error.message.contains("cannot create the directory"),
            "{error}"
        );
        let error = XdfWriter::create(Path::new("/proc/heloflow/x.xdf"), &replaced)
            .err()
            .expect("/proc takes no directories");
        assert!(error.message.contains("/proc/heloflow"), "{error}");
    }

    #[test]
    fn misuse_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer =
            XdfWriter::create(&temp_path(&dir, "u.xdf"), &CreateOptions::default()).unwrap();
        assert!(writer
            .push_samples(3, &[1.0], Values::Numbers(&[1.0]))
            .is_err());
        let id = writer
            .add_stream(&StreamHeader::new(
                "s",
                "EEG",
                ChannelFormat::Float32,
                1.0,
                vec![ChannelDesc::new("a", "", "")],
            ))
            .unwrap();
        assert!(writer
            .push_samples(id, &[1.0], Values::Numbers(&[1.0, 2.0]))
            .is_err());
        assert!(writer.push_samples(id, &[1.0], Values::Int8(&[1])).is_err());
        assert!(writer.push_clock_offset(id, f64::NAN, 0.0).is_err());
        assert!(writer.add_stream_xml("<info><name>x</info>").is_err());
        writer.finish().unwrap();
    }

    #[test]
    fn header_text_stays_valid_xml() {
        let mut header = StreamHeader::new(
            "a<b>&\u{1}",
            "EEG",
            ChannelFormat::Double64,
            0.0,
            vec![ChannelDesc::new("\"q\"", "µV", "EEG")],
        );
        header.desc.push(XmlNode::Raw(
            "<acquisition><maker>X</maker></acquisition>".into(),
        ));
        let xml = header.to_xml();
        let document = roxmltree::Document::parse(&xml).expect("well-formed");
        let name = document
            .descendants()
            .find(|n| n.has_tag_name("name"))
            .and_then(|n| n.text());
        assert_eq!(name, Some("a<b>&\u{FFFD}"));
        assert!(document.descendants().any(|n| n.has_tag_name("maker")));
    }

    /// Records every positional write.
    #[derive(Default)]
    struct Recorder(std::cell::RefCell<Vec<(u64, Vec<u8>)>>);

    impl WriteAt for Recorder {
        fn put_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
            self.0.borrow_mut().push((offset, bytes.to_vec()));
            Ok(())
        }
    }

    proptest! {
        /// Stopped after any write (and inside any write, which only shortens its bytes), every
        /// segment is either complete or still has a zero where its first chunk starts: the
        /// state pyxdf skips (see the xdf_record integration test, which loads such states).
        #[test]
        fn a_segment_is_visible_only_once_complete(
            segments in prop::collection::vec(prop::collection::vec(1u8..=255, 1..64), 1..6),
            cut_write in 0usize..12,
            cut_byte in 0usize..64,
        ) {
            let recorder = Recorder::default();
            let mut at = 0u64;
            let mut starts = Vec::new();
            for segment in &segments {
                write_segment(&recorder, at, segment).unwrap();
                starts.push((at, segment.len()));
                at += segment.len() as u64;
            }
            let writes = recorder.0.into_inner();
            let cut_write = cut_write.min(writes.len());
            let mut image = vec![0u8; at as usize];
            for (index, (offset, bytes)) in writes.iter().enumerate().take(cut_write + 1) {
                let keep = if index == cut_write { cut_byte.min(bytes.len()) } else { bytes.len() };
                let offset = *offset as usize;
                image[offset..offset + keep].copy_from_slice(&bytes[..keep]);
            }
            let mut at = 0;
            for (segment, &(start, length)) in segments.iter().zip(&starts) {
                prop_assert_eq!(start, at);
                let written = &image[start as usize..start as usize + length];
                prop_assert!(written == &segment[..] || written[0] == 0);
                at += length as u64;
            }
        }
    }

    #[test]
    fn dates_are_iso_8601() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00+00:00");
        assert_eq!(iso8601(1_798_761_599), "2026-12-31T23:59:59+00:00");
    }

    #[derive(Debug, Clone)]
    enum Step {
        Samples(ChannelFormat, Vec<f64>),
        Offset(f64),
        Boundary,
        Flush,
    }

    fn step() -> impl Strategy<Value = Step> {
        let format = prop::sample::select(ChannelFormat::ALL.to_vec());
        prop_oneof![
            4 => (format, prop::collection::vec(-1e6f64..1e6, 0..40))
                .prop_map(|(f, v)| Step::Samples(f, v)),
            1 => (-1.0f64..1.0).prop_map(Step::Offset),
            1 => Just(Step::Boundary),
            2 => Just(Step::Flush),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// After every flush the file is a run of complete chunks, holding exactly what was pushed.
        #[test]
        fn every_flush_leaves_complete_chunks(steps in prop::collection::vec(step(), 1..30)) {
            let dir = tempfile::tempdir().unwrap();
            let path = temp_path(&dir, "p.xdf");
            let mut writer = XdfWriter::create(&path, &CreateOptions::default()).unwrap();
            let mut ids = std::collections::BTreeMap::new();
            let mut samples = 0u64;
            for step in &steps {
                match step {
                    Step::Samples(format, values) => {
                        let id = *ids.entry(format.lsl_name()).or_insert_with(|| {
                            writer
                                .add_stream(&StreamHeader::new(
                                    format.lsl_name(),
                                    "T",
                                    *format,
                                    0.0,
                                    vec![ChannelDesc::new("a", "", ""), ChannelDesc::new("b", "", "")],
                                ))
                                .unwrap()
                        });
                        let rows = values.len() / 2;
                        let times: Vec<f64> = (0..rows).map(|i| i as f64 * 0.25).collect();
                        let texts: Vec<String> = values[..rows * 2].iter().map(|v| v.to_string()).collect();
                        let values = if *format == ChannelFormat::String {
                            Values::Strings(&texts)
                        } else {
                            Values::Numbers(&values[..rows * 2])
                        };
                        writer.push_samples(id, &times, values).unwrap();
                        samples += rows as u64;
                    }
                    Step::Offset(offset) => {
                        if let Some(&id) = ids.values().next() {
                            writer.push_clock_offset(id, 1.0, *offset).unwrap();
                        }
                    }
                    Step::Boundary => writer.push_boundary().unwrap(),
                    Step::Flush => {
                        writer.flush().unwrap();
                        let bytes = std::fs::read(&path).unwrap();
                        prop_assert_eq!(bytes.len() as u64, writer.bytes_written());
                        prop_assert!(chunks(&bytes).is_some());
                    }
                }
            }
            let summary = writer.finish().unwrap();
            let bytes = std::fs::read(&path).unwrap();
            let all = chunks(&bytes).expect("complete chunks");
            prop_assert_eq!(summary.bytes, bytes.len() as u64);
            let written: u64 = summary.streams.iter().map(|s| s.samples).sum();
            prop_assert_eq!(written, samples);
            let counted: u64 = all
                .iter()
                .filter(|c| c.0 == 3)
                .map(|c| read_varlen(&c.2).unwrap().0)
                .sum();
            prop_assert_eq!(counted, samples);
            prop_assert_eq!(all.iter().filter(|c| c.0 == 6).count(), ids.len());
        }
    }
}
