//! `heloflow xdf repair`: turns a cut-off or damaged recording into a complete one and says
//! what it did.
//!
//! The chunks the reader reads are kept byte for byte; a truncated last chunk and every damaged
//! range are dropped. After damage that breaks the framing, reading resumes at the next Boundary
//! chunk as the spec describes, so intact chunks between the damage and that boundary (up to
//! about 10 s of a heloflow or LabRecorder recording) go with it, and the report says which
//! bytes. A StreamFooter (first and last timestamp as stored, sample count, clock offsets) is
//! added for each stream without an intact one; a Boundary chunk ends the file. Without an
//! output path the file is repaired in place safely: the result is written to a temporary file
//! in the same directory, synced, and renamed over the original. A complete file is left
//! unchanged.
//!
//! ```no_run
//! use heloflow::xdf::repair::repair;
//!
//! let report = repair("cut.xdf".as_ref(), None).unwrap();
//! print!("{}", report.to_text());
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::chunks::{Body, ChunkOptions, Chunks, Event};
use super::error::{Damage, XdfError};
use super::format::{boundary_chunk, encode_chunk, Footer, Tag, MAGIC};

/// Bytes of the input that were not kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DroppedRange {
    /// First byte dropped.
    pub offset: u64,
    /// Bytes dropped.
    pub len: u64,
    /// The damage found in the range.
    pub reasons: Vec<String>,
}

/// What the repair did for one stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StreamRepair {
    /// Stream id.
    pub id: u32,
    /// Stream name.
    pub name: String,
    /// Samples kept.
    pub samples_kept: u64,
    /// Clock offsets kept.
    pub clock_offsets_kept: usize,
    /// Whether a footer was added (the stream had no intact one).
    pub footer_added: bool,
}

/// What `repair` did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RepairReport {
    /// The damaged file.
    pub input: PathBuf,
    /// Where the repaired file is (the input itself when repaired in place).
    pub output: PathBuf,
    /// The input was already complete and was left unchanged (and copied to `output` when that
    /// is another file).
    pub already_complete: bool,
    /// Size of the input, bytes.
    pub bytes_in: u64,
    /// Size of the output, bytes.
    pub bytes_out: u64,
    /// Ranges of the input that were not kept.
    pub dropped: Vec<DroppedRange>,
    /// Per stream, in file order.
    pub streams: Vec<StreamRepair>,
}

/// What is known of a stream while scanning.
struct StreamScan {
    id: u32,
    name: String,
    samples: u64,
    first: Option<f64>,
    last: f64,
    offsets: Vec<(f64, f64)>,
    has_footer: bool,
}

fn io_error(path: &Path, what: &str, error: io::Error) -> XdfError {
    XdfError::new(0, format!("cannot {what} {}: {error}", path.display()))
}

/// Repairs `input`, writing to `output` (or in place when `None` or the same path).
pub fn repair(input: &Path, output: Option<&Path>) -> Result<RepairReport, XdfError> {
    let file = File::open(input).map_err(|e| io_error(input, "open", e))?;
    let chunks = Chunks::with_options(
        BufReader::with_capacity(1 << 20, file),
        ChunkOptions {
            decode_values: false,
            ..ChunkOptions::default()
        },
    )?;
    let bytes_in = chunks.file_len();
    let mut kept: Vec<(u64, u64)> = Vec::new();
    let mut damage: Vec<Damage> = Vec::new();
    let mut streams: Vec<StreamScan> = Vec::new();
    let mut index_of: HashMap<u32, usize> = HashMap::new();
    let mut last_tag = None;
    let mut footer_chunks: Vec<(u64, usize)> = Vec::new();
    for event in chunks {
        let chunk = match event? {
            Event::Chunk(chunk) => chunk,
            Event::Damage(d) => {
                damage.push(d);
                continue;
            }
        };
        let mut keep = true;
        last_tag = Some(match &chunk.body {
            Body::FileHeader(_) => Tag::FileHeader,
            Body::StreamHeader { stream_id, info } => {
                index_of.insert(*stream_id, streams.len());
                streams.push(StreamScan {
                    id: *stream_id,
                    name: info.name.clone(),
                    samples: 0,
                    first: None,
                    last: 0.0,
                    offsets: Vec::new(),
                    has_footer: false,
                });
                Tag::StreamHeader
            }
            Body::Samples {
                stream_id,
                time_stamps,
                ..
            } => {
                if let Some(s) = index_of.get(stream_id).map(|i| &mut streams[*i]) {
                    s.samples += time_stamps.len() as u64;
                    if let Some(first) = time_stamps.first() {
                        s.first.get_or_insert(*first);
                    }
                    if let Some(last) = time_stamps.last() {
                        s.last = *last;
                    }
                }
                Tag::Samples
            }
            Body::ClockOffset {
                stream_id,
                time,
                value,
            } => {
                if let Some(s) = index_of.get(stream_id).map(|i| &mut streams[*i]) {
                    s.offsets.push((*time, *value));
                }
                Tag::ClockOffset
            }
            Body::Boundary => Tag::Boundary,
            Body::StreamFooter { stream_id, .. } => {
                if let Some(&i) = index_of.get(stream_id) {
                    if streams[i].has_footer {
                        keep = false;
                        damage.push(Damage::new(
                            chunk.offset,
                            format!("a second footer for stream {stream_id} is dropped"),
                        ));
                    } else {
                        footer_chunks.push((chunk.offset, i));
                    }
                    streams[i].has_footer = true;
                }
                Tag::StreamFooter
            }
        });
        if keep {
            kept.push((chunk.offset, chunk.len));
        }
    }
    damage.sort_by_key(|d| d.offset);
    // A footer with a bad field is replaced by a new one.
    for &(offset, i) in &footer_chunks {
        if damage.iter().any(|d| d.offset == offset) {
            kept.retain(|&(kept_offset, _)| kept_offset != offset);
            streams[i].has_footer = false;
        }
    }
    let dropped = dropped_ranges(&kept, bytes_in, &damage);
    let output_path = output.unwrap_or(input).to_path_buf();
    let in_place = same_file(input, &output_path);
    let already_complete = damage.is_empty() && streams.iter().all(|s| s.has_footer);
    let report = |bytes_out| RepairReport {
        input: input.to_path_buf(),
        output: output_path.clone(),
        already_complete,
        bytes_in,
        bytes_out,
        dropped: dropped.clone(),
        streams: streams
            .iter()
            .map(|s| StreamRepair {
                id: s.id,
                name: s.name.clone(),
                samples_kept: s.samples,
                clock_offsets_kept: s.offsets.len(),
                footer_added: !s.has_footer,
            })
            .collect(),
    };
    if already_complete {
        if !in_place {
            write_atomically(&output_path, |out| {
                let mut source = File::open(input).map_err(|e| io_error(input, "open", e))?;
                io::copy(&mut source, out).map_err(|e| io_error(input, "copy", e))?;
                Ok(())
            })?;
        }
        return Ok(report(bytes_in));
    }
    let mut footers = Vec::new();
    for s in streams.iter().filter(|s| !s.has_footer) {
        let footer = Footer {
            writer: format!("heloflow {} xdf repair", env!("CARGO_PKG_VERSION")),
            first_timestamp: s.first.unwrap_or(0.0),
            last_timestamp: s.last,
            sample_count: s.samples,
            clock_offsets: s.offsets.clone(),
        };
        footers.push(encode_chunk(
            Tag::StreamFooter,
            Some(s.id),
            footer.to_xml().as_bytes(),
        ));
    }
    let add_boundary = last_tag != Some(Tag::Boundary) || !footers.is_empty();
    let bytes_out = write_atomically(&output_path, |out| {
        let mut source = File::open(input).map_err(|e| io_error(input, "open", e))?;
        out.write_all(MAGIC)
            .map_err(|e| io_error(&output_path, "write", e))?;
        for &(offset, len) in &kept {
            source
                .seek(SeekFrom::Start(offset))
                .map_err(|e| io_error(input, "read", e))?;
            let copied = io::copy(&mut (&mut source).take(len), out)
                .map_err(|e| io_error(input, "copy", e))?;
            if copied != len {
                return Err(XdfError::new(
                    offset,
                    format!(
                        "{} changed while it was repaired (byte {offset})",
                        input.display()
                    ),
                ));
            }
        }
        for footer in &footers {
            out.write_all(footer)
                .map_err(|e| io_error(&output_path, "write", e))?;
        }
        if add_boundary {
            out.write_all(&boundary_chunk())
                .map_err(|e| io_error(&output_path, "write", e))?;
        }
        Ok(())
    })?;
    Ok(report(bytes_out))
}

/// The parts of `[4, file_len)` not covered by a kept chunk, with the damage found in each.
fn dropped_ranges(kept: &[(u64, u64)], file_len: u64, damage: &[Damage]) -> Vec<DroppedRange> {
    let mut dropped = Vec::new();
    let mut position = MAGIC.len() as u64;
    let ends = kept.iter().copied().chain(std::iter::once((file_len, 0)));
    for (offset, len) in ends {
        if offset > position {
            dropped.push(DroppedRange {
                offset: position,
                len: offset - position,
                reasons: Vec::new(),
            });
        }
        position = position.max(offset + len);
    }
    for d in damage {
        let range = dropped
            .iter_mut()
            .find(|r| r.offset <= d.offset && d.offset < r.offset + r.len);
        match range {
            Some(range) => range.reasons.push(d.message.clone()),
            None => {
                // Damage of a chunk that was kept whole but ignored in part (for instance a
                // footer with a bad field) or of nothing in the file (no file header).
                if let Some(range) = dropped.iter_mut().find(|r| r.offset > d.offset) {
                    range.reasons.push(d.message.clone());
                } else if let Some(range) = dropped.last_mut() {
                    range.reasons.push(d.message.clone());
                } else {
                    dropped.push(DroppedRange {
                        offset: d.offset,
                        len: 0,
                        reasons: vec![d.message.clone()],
                    });
                }
            }
        }
    }
    dropped
}

/// Whether two paths name the same file (the second may not exist yet).
fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Writes `path` through a temporary file in its directory: written by `fill`, synced, renamed.
/// Returns the bytes written.
fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> Result<(), XdfError>,
) -> Result<u64, XdfError> {
    let directory = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "repaired.xdf".to_string());
    let temporary = directory.join(format!(".{name}.repair-{}.tmp", std::process::id()));
    let result = (|| {
        let file = File::create(&temporary).map_err(|e| io_error(&temporary, "create", e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        fill(&mut out)?;
        let file = out
            .into_inner()
            .map_err(|e| io_error(&temporary, "write", e.into_error()))?;
        file.sync_all()
            .map_err(|e| io_error(&temporary, "sync", e))?;
        let written = file
            .metadata()
            .map_err(|e| io_error(&temporary, "read", e))?
            .len();
        fs::rename(&temporary, path).map_err(|e| io_error(path, "replace", e))?;
        if let Ok(dir) = File::open(directory) {
            let _ = dir.sync_all();
        }
        Ok(written)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

impl RepairReport {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The report for people.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let place = if same_file(&self.input, &self.output) {
            "in place".to_string()
        } else {
            format!("to {}", self.output.display())
        };
        if self.already_complete {
            let _ = writeln!(
                out,
                "{}: already complete (every stream has a footer, no damage); left unchanged{}",
                self.input.display(),
                if place == "in place" {
                    String::new()
                } else {
                    format!(", copied {place}")
                }
            );
        } else {
            let _ = writeln!(
                out,
                "{}: repaired {place}: {} bytes in, {} bytes out",
                self.input.display(),
                self.bytes_in,
                self.bytes_out
            );
        }
        let dropped: u64 = self.dropped.iter().map(|r| r.len).sum();
        if !self.dropped.is_empty() {
            let _ = writeln!(
                out,
                "dropped {dropped} bytes in {} range{}:",
                self.dropped.len(),
                if self.dropped.len() == 1 { "" } else { "s" }
            );
            for range in &self.dropped {
                let reasons = if range.reasons.is_empty() {
                    "part of the damage above".to_string()
                } else {
                    range.reasons.join("; ")
                };
                let _ = writeln!(
                    out,
                    "    {} bytes at byte {}: {reasons}",
                    range.len, range.offset
                );
            }
        }
        for s in &self.streams {
            let _ = writeln!(
                out,
                "stream {} {:?}: {} samples and {} clock offsets kept, {}",
                s.id,
                s.name,
                s.samples_kept,
                s.clock_offsets_kept,
                if s.footer_added {
                    "footer added"
                } else {
                    "footer kept"
                }
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_ranges_are_the_gaps_between_kept_chunks() {
        let damage = vec![Damage::new(20, "broken"), Damage::new(50, "cut")];
        let ranges = dropped_ranges(&[(4, 10), (30, 10)], 60, &damage);
        assert_eq!(
            ranges,
            vec![
                DroppedRange {
                    offset: 14,
                    len: 16,
                    reasons: vec!["broken".into()]
                },
                DroppedRange {
                    offset: 40,
                    len: 20,
                    reasons: vec!["cut".into()]
                }
            ]
        );
        assert!(dropped_ranges(&[(4, 56)], 60, &[]).is_empty());
    }
}
