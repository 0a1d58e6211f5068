//! Reading a whole XDF recording as pyxdf's `load_xdf` does: every stream's timestamps and typed
//! values, clock offsets, footer, and pyxdf 1.17.5's post-processing (corrupted offset truncation,
//! clock synchronisation, jitter removal) with the same options and defaults.
//!
//! Damage does not stop reading: it is listed in [`Recording::damage`] with byte offsets and
//! reading resumes at the next boundary (see [`super::chunks`]). Only a file that is not XDF at
//! all, or cannot be read, is an [`XdfError`].
//!
//! ```no_run
//! use heloflow::xdf::reader::{read, ReadOptions};
//!
//! let recording = read("session.xdf".as_ref(), &ReadOptions::default()).unwrap();
//! for stream in &recording.streams {
//!     println!("{}: {} samples", stream.info.name, stream.time_stamps.len());
//! }
//! for damage in &recording.damage {
//!     eprintln!("{damage}");
//! }
//! ```

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek};
use std::path::Path;

use super::chunks::{Body, Chunk, ChunkOptions, Chunks, Event};
pub use super::error::{Damage, XdfError};
use super::header::{FileHeader, StreamFooter, StreamInfo};
pub use super::samples::{decode_samples, Samples, SamplesChunk};
use super::sync::{self, ClockSyncOptions, JitterOptions};

/// What to read and how to post-process it: pyxdf `load_xdf`'s keyword arguments, with its
/// defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadOptions {
    /// Only these stream ids (`select_streams` with ints); `None` reads all.
    pub select: Option<Vec<u32>>,
    /// Whether to decode sample values; `false` keeps timestamps, offsets and counts only.
    pub decode_values: bool,
    /// Map timestamps onto the recorder's clock with the ClockOffset chunks (default true).
    pub synchronize_clocks: bool,
    /// Look for clock resets (default true).
    pub handle_clock_resets: bool,
    /// Replace regular streams' timestamps by a line per segment (default true).
    pub dejitter_timestamps: bool,
    /// A break in a regular stream is longer than this many seconds (default 1)...
    pub jitter_break_threshold_seconds: f64,
    /// ... and longer than this many samples (default 500).
    pub jitter_break_threshold_samples: f64,
    /// A clock reset delays a ClockOffset by at least this many seconds (default 5)...
    pub clock_reset_threshold_seconds: f64,
    /// ... and this many MAD-standardised deviations (default 5).
    pub clock_reset_threshold_stds: f64,
    /// A clock reset moves the offset by at least this many seconds (default 1)...
    pub clock_reset_threshold_offset_seconds: f64,
    /// ... and this many MAD-standardised deviations (default 10).
    pub clock_reset_threshold_offset_stds: f64,
    /// Clock offsets further than this many seconds from the fit are treated robustly
    /// (default 0.0001).
    pub winsor_threshold: f64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            select: None,
            decode_values: true,
            synchronize_clocks: true,
            handle_clock_resets: true,
            dejitter_timestamps: true,
            jitter_break_threshold_seconds: 1.0,
            jitter_break_threshold_samples: 500.0,
            clock_reset_threshold_seconds: 5.0,
            clock_reset_threshold_stds: 5.0,
            clock_reset_threshold_offset_seconds: 1.0,
            clock_reset_threshold_offset_stds: 10.0,
            winsor_threshold: 0.0001,
        }
    }
}

impl ReadOptions {
    /// Timestamps as stored: no clock synchronisation, no jitter removal.
    pub fn raw() -> Self {
        ReadOptions {
            synchronize_clocks: false,
            dejitter_timestamps: false,
            ..ReadOptions::default()
        }
    }

    /// Checks every number: thresholds finite and at least 0 (infinity allowed where pyxdf's
    /// tests use it to switch a criterion off), the winsor threshold finite and above 0.
    pub fn validate(&self) -> Result<(), XdfError> {
        let thresholds = [
            (
                "jitter_break_threshold_seconds",
                self.jitter_break_threshold_seconds,
            ),
            (
                "jitter_break_threshold_samples",
                self.jitter_break_threshold_samples,
            ),
            (
                "clock_reset_threshold_seconds",
                self.clock_reset_threshold_seconds,
            ),
            (
                "clock_reset_threshold_stds",
                self.clock_reset_threshold_stds,
            ),
            (
                "clock_reset_threshold_offset_seconds",
                self.clock_reset_threshold_offset_seconds,
            ),
            (
                "clock_reset_threshold_offset_stds",
                self.clock_reset_threshold_offset_stds,
            ),
        ];
        for (name, value) in thresholds {
            if value.is_nan() || value < 0.0 {
                return Err(XdfError::new(
                    0,
                    format!("{name} is {value}; it must be a number at least 0"),
                ));
            }
        }
        let winsor = self.winsor_threshold;
        if !(winsor.is_finite() && winsor > 0.0) {
            return Err(XdfError::new(
                0,
                format!("winsor_threshold is {winsor}; it must be a finite number above 0"),
            ));
        }
        if self.select.as_ref().is_some_and(Vec::is_empty) {
            return Err(XdfError::new(
                0,
                "select lists no stream ids; leave it out to read every stream",
            ));
        }
        Ok(())
    }

    fn clock_sync(&self) -> ClockSyncOptions {
        ClockSyncOptions {
            handle_clock_resets: self.handle_clock_resets,
            reset_threshold_stds: self.clock_reset_threshold_stds,
            reset_threshold_seconds: self.clock_reset_threshold_seconds,
            reset_threshold_offset_stds: self.clock_reset_threshold_offset_stds,
            reset_threshold_offset_seconds: self.clock_reset_threshold_offset_seconds,
            winsor_threshold: self.winsor_threshold,
        }
    }

    fn jitter(&self) -> JitterOptions {
        JitterOptions {
            threshold_seconds: self.jitter_break_threshold_seconds,
            threshold_samples: self.jitter_break_threshold_samples,
        }
    }
}

/// One stream of a recording.
#[derive(Clone, Debug, PartialEq)]
pub struct Stream {
    /// The stream id in the file.
    pub id: u32,
    /// Its header.
    pub info: StreamInfo,
    /// Its footer, when the file has an intact one.
    pub footer: Option<StreamFooter>,
    /// One timestamp per sample (post-processed as the options ask).
    pub time_stamps: Vec<f64>,
    /// The values, row-major (empty when values were not decoded).
    pub samples: Samples,
    /// Collection times of the clock offsets, seconds.
    pub clock_times: Vec<f64>,
    /// Clock offset values, seconds.
    pub clock_values: Vec<f64>,
    /// Measured sampling rate (pyxdf's `effective_srate`; 0 for irregular streams).
    pub effective_srate: f64,
    /// Inclusive sample ranges between breaks (pyxdf's `segments`).
    pub segments: Vec<(usize, usize)>,
    /// Inclusive sample ranges per clock segment (pyxdf's `clock_segments`; empty without clock
    /// synchronisation).
    pub clock_segments: Vec<(usize, usize)>,
}

impl Stream {
    /// Number of samples.
    pub fn sample_count(&self) -> usize {
        self.time_stamps.len()
    }
}

/// A whole recording.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    /// The file header, when the file has one.
    pub file_header: Option<FileHeader>,
    /// Streams in the order of their headers.
    pub streams: Vec<Stream>,
    /// Everything that was wrong, in file order.
    pub damage: Vec<Damage>,
}

impl Recording {
    /// The stream with id `id`.
    pub fn stream(&self, id: u32) -> Option<&Stream> {
        self.streams.iter().find(|s| s.id == id)
    }
}

/// Reads the XDF file at `path`.
pub fn read(path: &Path, options: &ReadOptions) -> Result<Recording, XdfError> {
    let file = File::open(path)
        .map_err(|e| XdfError::new(0, format!("cannot open {}: {e}", path.display())))?;
    read_from(BufReader::with_capacity(1 << 20, file), options)
}

/// Reads an XDF file held in memory.
pub fn read_bytes(bytes: &[u8], options: &ReadOptions) -> Result<Recording, XdfError> {
    read_from(Cursor::new(bytes), options)
}

/// The stream headers of the XDF file at `path`, by stream id in file order, reading nothing
/// else: what a source checks a recording against when a pipeline is validated.
pub fn read_headers(path: &Path) -> Result<Vec<(u32, StreamInfo)>, XdfError> {
    let file = File::open(path)
        .map_err(|e| XdfError::new(0, format!("cannot open {}: {e}", path.display())))?;
    let options = ChunkOptions {
        headers_only: true,
        ..ChunkOptions::default()
    };
    let mut headers = Vec::new();
    for event in Chunks::with_options(BufReader::with_capacity(1 << 16, file), options)? {
        if let Event::Chunk(Chunk {
            body: Body::StreamHeader { stream_id, info },
            ..
        }) = event?
        {
            headers.push((stream_id, *info));
        }
    }
    Ok(headers)
}

/// Reads an XDF file from any seekable reader.
pub fn read_from<R: Read + Seek>(reader: R, options: &ReadOptions) -> Result<Recording, XdfError> {
    options.validate()?;
    let chunk_options = ChunkOptions {
        select: options
            .select
            .as_ref()
            .map(|ids| ids.iter().copied().collect::<HashSet<u32>>()),
        decode_values: options.decode_values,
        headers_only: false,
    };
    let mut recording = Recording {
        file_header: None,
        streams: Vec::new(),
        damage: Vec::new(),
    };
    let mut index_of: HashMap<u32, usize> = HashMap::new();
    let mut footer_offsets: HashMap<u32, u64> = HashMap::new();
    for event in Chunks::with_options(reader, chunk_options)? {
        let chunk = match event? {
            Event::Chunk(chunk) => chunk,
            Event::Damage(damage) => {
                recording.damage.push(damage);
                continue;
            }
        };
        match chunk.body {
            Body::FileHeader(header) => recording.file_header = Some(header),
            Body::StreamHeader { stream_id, info } => {
                index_of.insert(stream_id, recording.streams.len());
                recording.streams.push(Stream {
                    id: stream_id,
                    samples: Samples::empty(info.channel_format),
                    info: *info,
                    footer: None,
                    time_stamps: Vec::new(),
                    clock_times: Vec::new(),
                    clock_values: Vec::new(),
                    effective_srate: 0.0,
                    segments: Vec::new(),
                    clock_segments: Vec::new(),
                });
            }
            Body::Samples {
                stream_id,
                time_stamps,
                samples,
            } => {
                if let Some(stream) = stream_mut(&mut recording.streams, &index_of, stream_id) {
                    if stream.time_stamps.is_empty() {
                        stream.time_stamps = time_stamps;
                    } else {
                        stream.time_stamps.extend_from_slice(&time_stamps);
                    }
                    stream.samples.append(samples);
                }
            }
            Body::ClockOffset {
                stream_id,
                time,
                value,
            } => {
                if let Some(stream) = stream_mut(&mut recording.streams, &index_of, stream_id) {
                    stream.clock_times.push(time);
                    stream.clock_values.push(value);
                }
            }
            Body::Boundary => {}
            Body::StreamFooter { stream_id, footer } => {
                if let Some(stream) = stream_mut(&mut recording.streams, &index_of, stream_id) {
                    if stream.footer.is_some() {
                        recording.damage.push(Damage::new(
                            chunk.offset,
                            format!("a second footer for stream {stream_id} is ignored"),
                        ));
                    } else {
                        stream.footer = Some(footer);
                        footer_offsets.insert(stream_id, chunk.offset);
                    }
                }
            }
        }
    }
    for stream in &mut recording.streams {
        let footer_at = footer_offsets.get(&stream.id).copied().unwrap_or(0);
        if let Some(damage) = post_process(stream, footer_at, options) {
            recording.damage.push(damage);
        }
    }
    recording.damage.sort_by_key(|d| d.offset);
    Ok(recording)
}

/// The stream with id `id`, through the id-to-position map.
fn stream_mut<'a>(
    streams: &'a mut [Stream],
    index_of: &HashMap<u32, usize>,
    id: u32,
) -> Option<&'a mut Stream> {
    index_of.get(&id).and_then(|i| streams.get_mut(*i))
}

/// pyxdf's post-processing of one stream, in its order; says what it dropped.
fn post_process(stream: &mut Stream, footer_at: u64, options: &ReadOptions) -> Option<Damage> {
    let mut dropped = None;
    if options.synchronize_clocks {
        let footer_count = stream.footer.as_ref().and_then(|f| f.sample_count);
        if let Some(keep) = sync::corrupted_offset_truncation(
            stream.time_stamps.len(),
            footer_count,
            &stream.clock_times,
            &stream.clock_values,
        ) {
            dropped = Some(Damage::new(
                footer_at,
                format!(
                    "stream {} \"{}\": {} sample(s) past the footer's count and the last clock offset dropped, as pyxdf does (an outlet destroyed while connected, pylsl#67)",
                    stream.id,
                    stream.info.name,
                    stream.time_stamps.len() - keep
                ),
            ));
            stream.clock_times.pop();
            stream.clock_values.pop();
            stream.time_stamps.truncate(keep);
            stream
                .samples
                .truncate(keep.saturating_mul(stream.info.channel_count));
        }
        stream.clock_segments = sync::clock_sync(
            &mut stream.time_stamps,
            &stream.clock_times,
            &stream.clock_values,
            &options.clock_sync(),
        );
    }
    let jitter = if options.dejitter_timestamps {
        sync::jitter_removal(
            &mut stream.time_stamps,
            stream.info.nominal_srate,
            stream.info.can_drop_samples(),
            &options.jitter(),
        )
    } else {
        sync::without_jitter_removal(&stream.time_stamps, stream.info.nominal_srate)
    };
    stream.effective_srate = jitter.effective_srate;
    stream.segments = jitter.segments;
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xdf::format::{boundary_chunk, clock_offset_content, encode_chunk, Tag, MAGIC};

    #[test]
    fn headers_alone_are_read_from_a_real_recording() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/xdf/clock_resets.xdf");
        let headers = read_headers(&path).expect("the example reads");
        let names: Vec<(u32, &str)> = headers
            .iter()
            .map(|(id, i)| (*id, i.name.as_str()))
            .collect();
        assert_eq!(names, [(1, "MyMarkerStream"), (2, "BioSemi")]);
        let whole = read(&path, &ReadOptions::raw()).expect("the example reads");
        for ((_, info), stream) in headers.iter().zip(&whole.streams) {
            assert_eq!(*info, stream.info);
        }
        let error = read_headers(Path::new("missing.xdf")).unwrap_err();
        assert!(error.message.contains("cannot open missing.xdf"), "{error}");
    }

    fn header(channels: usize, format: &str) -> Vec<u8> {
        format!("<info><name>s</name><channel_count>{channels}</channel_count><nominal_srate>10</nominal_srate><channel_format>{format}</channel_format></info>").into_bytes()
    }

    fn samples(stamp: f64, values: &[u8]) -> Vec<u8> {
        let mut content = vec![1, 1, 8];
        content.extend_from_slice(&stamp.to_le_bytes());
        content.extend_from_slice(values);
        content
    }

    fn file(chunks: &[Vec<u8>]) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        for chunk in chunks {
            bytes.extend_from_slice(chunk);
        }
        bytes
    }

    #[test]
    fn samples_dropped_for_a_corrupted_last_offset_are_reported() {
        let mut chunks = vec![encode_chunk(Tag::StreamHeader, Some(1), &header(1, "int8"))];
        for k in 0..4 {
            chunks.push(encode_chunk(
                Tag::Samples,
                Some(1),
                &samples(k as f64 * 0.1, &[k as u8]),
            ));
        }
        for k in 0..5 {
            chunks.push(encode_chunk(
                Tag::ClockOffset,
                Some(1),
                &clock_offset_content(k as f64 * 5.0, -0.001),
            ));
        }
        // The pylsl#67 signature: one sample more than the footer counts, a garbage last offset.
        chunks.push(encode_chunk(
            Tag::ClockOffset,
            Some(1),
            &clock_offset_content(1e6, 123.0),
        ));
        let footer = "<info><first_timestamp>0</first_timestamp><last_timestamp>0.2</last_timestamp><sample_count>3</sample_count></info>";
        chunks.push(encode_chunk(Tag::StreamFooter, Some(1), footer.as_bytes()));
        let recording = read_bytes(&file(&chunks), &ReadOptions::default()).unwrap();
        assert_eq!(recording.streams[0].time_stamps.len(), 3);
        let dropped = recording
            .damage
            .iter()
            .find(|d| d.message.contains("1 sample(s) past the footer's count"))
            .unwrap_or_else(|| panic!("{:?}", recording.damage));
        assert!(dropped.offset > 4, "at the footer: {dropped}");
    }

    #[test]
    fn options_out_of_range_are_rejected_by_name() {
        assert!(ReadOptions::default().validate().is_ok());
        let cases = [
            ReadOptions {
                winsor_threshold: 0.0,
                ..ReadOptions::default()
            },
            ReadOptions {
                winsor_threshold: f64::INFINITY,
                ..ReadOptions::default()
            },
            ReadOptions {
                jitter_break_threshold_seconds: -1.0,
                ..ReadOptions::default()
            },
            ReadOptions {
                clock_reset_threshold_stds: f64::NAN,
                ..ReadOptions::default()
            },
            ReadOptions {
                select: Some(Vec::new()),
                ..ReadOptions::default()
            },
        ];
        let names = [
            "winsor_threshold",
            "winsor_threshold",
            "jitter_break_threshold_seconds",
            "clock_reset_threshold_stds",
            "select",
        ];
        for (options, name) in cases.iter().zip(names) {
            let error = options.validate().unwrap_err();
            assert!(error.message.contains(name), "{error}");
            assert!(read_bytes(MAGIC, options).is_err());
        }
        let infinite = ReadOptions {
            clock_reset_threshold_seconds: f64::INFINITY,
            ..ReadOptions::default()
        };
        assert!(infinite.validate().is_ok());
    }

    #[test]
    fn chunks_of_unknown_streams_are_counted_once_and_others_kept() {
        let bytes = file(&[
            encode_chunk(Tag::FileHeader, None, b"<info><version>1.0</version></info>"),
            encode_chunk(Tag::StreamHeader, Some(1), &header(1, "int8")),
            encode_chunk(Tag::Samples, Some(9), &samples(1.0, &[1])),
            encode_chunk(Tag::Samples, Some(1), &samples(1.0, &[5])),
            encode_chunk(Tag::Samples, Some(9), &samples(2.0, &[2])),
            encode_chunk(Tag::ClockOffset, Some(9), &clock_offset_content(1.0, 0.5)),
            encode_chunk(Tag::StreamHeader, Some(1), &header(1, "int8")),
            encode_chunk(Tag::StreamFooter, Some(1), b"<info><first_timestamp>1</first_timestamp><last_timestamp>1</last_timestamp><sample_count>1</sample_count><clock_offsets/></info>"),
            encode_chunk(Tag::StreamFooter, Some(1), b"<info><first_timestamp>1</first_timestamp><last_timestamp>1</last_timestamp><sample_count>1</sample_count><clock_offsets/></info>"),
            boundary_chunk(),
        ]);
        let recording = read_bytes(&bytes, &ReadOptions::raw()).unwrap();
        assert_eq!(recording.streams.len(), 1);
        let stream = &recording.streams[0];
        assert_eq!(stream.samples, Samples::Int8(vec![5]));
        assert!(stream.footer.is_some());
        let messages: Vec<&str> = recording
            .damage
            .iter()
            .map(|d| d.message.as_str())
            .collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(
            messages[0].starts_with("3 chunks (")
                && messages[0].contains("stream 9, which has no header"),
            "{messages:?}"
        );
        assert!(
            messages[1].contains("a second header for stream 1"),
            "{messages:?}"
        );
        assert!(
            messages[2].contains("a second footer for stream 1"),
            "{messages:?}"
        );
        assert!(recording
            .damage
            .windows(2)
            .all(|w| w[0].offset <= w[1].offset));
    }

    #[test]
    fn footers_with_bad_fields_are_kept_and_reported() {
        let bytes = file(&[
            encode_chunk(Tag::StreamHeader, Some(1), &header(1, "int8")),
            encode_chunk(Tag::StreamFooter, Some(1), b"<info><first_timestamp>x</first_timestamp><last_timestamp>1</last_timestamp><clock_offsets/></info>"),
        ]);
        let recording = read_bytes(&bytes, &ReadOptions::default()).unwrap();
        let footer = recording.streams[0].footer.as_ref().unwrap();
        assert_eq!(
            (footer.first_timestamp, footer.last_timestamp),
            (None, Some(1.0))
        );
        assert_eq!(footer.sample_count, None);
        let footer_damage = recording
            .damage
            .iter()
            .find(|d| d.message.contains("stream footer"))
            .unwrap();
        assert!(
            footer_damage.message.contains("`first_timestamp` is `x`"),
            "{footer_damage}"
        );
        assert!(
            footer_damage.message.contains("`sample_count` is missing"),
            "{footer_damage}"
        );
    }

    #[test]
    fn invalid_headers_and_missing_file_headers_are_damage() {
        let bytes = file(&[
            encode_chunk(Tag::StreamHeader, Some(2), &header(1, "float")),
            encode_chunk(Tag::Samples, Some(2), &samples(1.0, &[1])),
            encode_chunk(Tag::StreamHeader, Some(3), &header(2, "int8")),
            encode_chunk(Tag::Samples, Some(3), &samples(1.0, &[1, 2])),
        ]);
        let recording = read_bytes(&bytes, &ReadOptions::default()).unwrap();
        assert_eq!(recording.file_header, None);
        assert_eq!(recording.streams.len(), 1);
        assert_eq!(recording.streams[0].samples, Samples::Int8(vec![1, 2]));
        let messages: Vec<&str> = recording
            .damage
            .iter()
            .map(|d| d.message.as_str())
            .collect();
        assert!(
            messages
                .iter()
                .any(|m| m.contains("`channel_format` is `float`") && m.contains("byte 4")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.contains("stream 2, whose header is invalid")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("no FileHeader")),
            "{messages:?}"
        );
    }

    #[test]
    fn selecting_streams_and_skipping_values_keep_timestamps() {
        let bytes = file(&[
            encode_chunk(Tag::StreamHeader, Some(1), &header(1, "int8")),
            encode_chunk(Tag::StreamHeader, Some(2), &header(2, "int8")),
            encode_chunk(Tag::Samples, Some(1), &samples(1.0, &[1])),
            encode_chunk(Tag::Samples, Some(2), &samples(3.0, &[1, 2])),
        ]);
        let only_two = ReadOptions {
            select: Some(vec![2]),
            ..ReadOptions::raw()
        };
        let recording = read_bytes(&bytes, &only_two).unwrap();
        assert_eq!(recording.streams.len(), 1);
        assert_eq!(recording.streams[0].id, 2);
        let stamps_only = ReadOptions {
            decode_values: false,
            ..ReadOptions::raw()
        };
        let recording = read_bytes(&bytes, &stamps_only).unwrap();
        assert_eq!(recording.stream(2).unwrap().time_stamps, vec![3.0]);
        assert_eq!(recording.stream(2).unwrap().samples.value_count(), 0);
    }
}
