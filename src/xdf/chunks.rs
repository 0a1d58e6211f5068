//! The chunks of an XDF file, in order, with damage records for everything wrong and
//! resynchronisation after it, as the XDF specification and pyxdf do it.
//!
//! [`Chunks`] reads any `Read + Seek` (a `BufReader<File>`, or a `Cursor` over bytes) and yields
//! each chunk with its byte offset and length, its content parsed (headers and footers as XML,
//! Samples decoded with [`decode_samples`], clock offsets as two numbers), or a [`Damage`]. After
//! damage that leaves the chunk framing in doubt (a length width that is not 1, 4 or 8, a chunk
//! running past the end of the file, content that does not decode) it scans forward to the next
//! Boundary signature and continues after it. Chunks whose framing is sound but whose meaning is
//! not (an unknown tag, a stream id without a header, a second header) are skipped by their
//! length. No length read from the file is used to allocate before it is checked against the
//! bytes that remain, and no input makes it panic.
//!
//! ```
//! use std::io::Cursor;
//! use heloflow::xdf::chunks::{Body, Chunks, Event};
//! use heloflow::xdf::format::{boundary_chunk, encode_chunk, Tag, MAGIC};
//!
//! let mut file = MAGIC.to_vec();
//! file.extend(encode_chunk(Tag::FileHeader, None, b"<info><version>1.0</version></info>"));
//! file.extend([1, 200, 3, 0]); // a chunk claiming more bytes than are left...
//! file.extend(boundary_chunk()); // ...and the boundary reading resumes after
//! let events: Vec<Event> = Chunks::new(Cursor::new(&file)).unwrap().map(Result::unwrap).collect();
//! assert!(matches!(&events[0], Event::Chunk(c) if matches!(c.body, Body::FileHeader(_))));
//! assert!(matches!(&events[1], Event::Damage(d) if d.offset == 43));
//! assert_eq!(events.len(), 2);
//! ```

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Seek, SeekFrom};

use super::error::{Damage, XdfError};
use super::format::{Tag, BOUNDARY_SIGNATURE, MAGIC};
use super::header::{malformed, parse_xml, FileHeader, StreamFooter, StreamInfo};
use super::samples::{decode_samples, Samples};

/// What to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkOptions {
    /// Only these stream ids (pyxdf's `select_streams` with ints); chunks of other streams are
    /// skipped unread. `None` reads every stream.
    pub select: Option<HashSet<u32>>,
    /// Whether to decode sample values; `false` decodes timestamps only.
    pub decode_values: bool,
    /// Read only the file and stream headers, skipping every other chunk undecoded and seeking
    /// past those larger than the read buffer (what a source needs to check a recording at
    /// validation: 25 ms for a 100 MB recording of small interleaved chunks, from the page cache).
    pub headers_only: bool,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        ChunkOptions {
            select: None,
            decode_values: true,
            headers_only: false,
        }
    }
}

/// One intact chunk: where it is and what it holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Chunk {
    /// Byte offset of the chunk's first byte (its length width).
    pub offset: u64,
    /// The chunk's whole size in bytes (width byte, length, tag and content).
    pub len: u64,
    /// Its parsed content.
    pub body: Body,
}

/// The parsed content of a chunk.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// The file header.
    FileHeader(FileHeader),
    /// A stream's header.
    StreamHeader {
        /// The stream id.
        stream_id: u32,
        /// The header.
        info: Box<StreamInfo>,
    },
    /// Samples of one stream, timestamps as stored (omitted ones deduced).
    Samples {
        /// The stream id.
        stream_id: u32,
        /// One timestamp per sample.
        time_stamps: Vec<f64>,
        /// The values (empty when values are not decoded).
        samples: Samples,
    },
    /// One clock offset measurement.
    ClockOffset {
        /// The stream id.
        stream_id: u32,
        /// Collection time, seconds on the recorder's clock.
        time: f64,
        /// Offset value, seconds.
        value: f64,
    },
    /// A Boundary chunk.
    Boundary,
    /// A stream's footer.
    StreamFooter {
        /// The stream id.
        stream_id: u32,
        /// The footer.
        footer: StreamFooter,
    },
}

/// What [`Chunks`] yields: an intact chunk or a damaged part of the file.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// An intact chunk.
    Chunk(Chunk),
    /// A damaged part, skipped.
    Damage(Damage),
}

/// Per-stream state needed to decode later chunks.
struct StreamState {
    info: StreamInfo,
    last_timestamp: f64,
}

/// Chunks of a stream id that has no valid header, counted to be reported once.
struct Orphans {
    first_offset: u64,
    chunks: u64,
    bytes: u64,
}

/// The chunk reader: an iterator of [`Event`]s; an `Err` (an I/O error) ends it.
pub struct Chunks<R> {
    reader: R,
    options: ChunkOptions,
    file_len: u64,
    position: u64,
    streams: HashMap<u32, StreamState>,
    invalid_headers: HashSet<u32>,
    orphans: HashMap<u32, Orphans>,
    seen_file_header: bool,
    pending: Vec<Damage>,
    finished: bool,
    scratch: Vec<u8>,
}

/// Bytes read at a time while scanning for a boundary.
const SCAN_BLOCK: usize = 1 << 16;

/// The largest chunk content read (1 GiB). Writers flush far more often than that (LabRecorder
/// writes a chunk per stream about every half second), so a larger length is taken as damage
/// rather than allocated.
pub const MAX_CHUNK_BYTES: u64 = 1 << 30;

impl<R: Read + Seek> Chunks<R> {
    /// Reads every stream, values included. Fails when the input does not start with `XDF:`.
    pub fn new(reader: R) -> Result<Self, XdfError> {
        Self::with_options(reader, ChunkOptions::default())
    }

    /// Reads what `options` asks for. Fails when the input does not start with `XDF:`.
    pub fn with_options(mut reader: R, options: ChunkOptions) -> Result<Self, XdfError> {
        let io_error = |e: io::Error| XdfError::new(0, format!("cannot read the file: {e}"));
        let file_len = reader.seek(SeekFrom::End(0)).map_err(io_error)?;
        reader.seek(SeekFrom::Start(0)).map_err(io_error)?;
        let mut magic = [0u8; 4];
        if file_len < 4 || reader.read_exact(&mut magic).is_err() || &magic != MAGIC {
            return Err(XdfError::new(
                0,
                "not an XDF file (no `XDF:` magic at byte 0)",
            ));
        }
        Ok(Chunks {
            reader,
            options,
            file_len,
            position: 4,
            streams: HashMap::new(),
            invalid_headers: HashSet::new(),
            orphans: HashMap::new(),
            seen_file_header: false,
            pending: Vec::new(),
            finished: false,
            scratch: Vec::new(),
        })
    }

    /// The file's size in bytes.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    fn io_error(&self, error: io::Error) -> XdfError {
        XdfError::new(
            self.position,
            format!("cannot read the file at byte {}: {error}", self.position),
        )
    }

    fn read_exact_at(&mut self, buffer: &mut [u8]) -> Result<(), XdfError> {
        self.reader
            .read_exact(buffer)
            .map_err(|e| self.io_error(e))?;
        self.position += buffer.len() as u64;
        Ok(())
    }

    /// Reads `len` bytes (already checked against the file size) into the scratch buffer.
    fn read_content(&mut self, len: u64) -> Result<Vec<u8>, XdfError> {
        let mut content = std::mem::take(&mut self.scratch);
        content.clear();
        content.resize(len as usize, 0);
        self.read_exact_at(&mut content)?;
        Ok(content)
    }

    /// Moves to byte `target` (at or after the current position, inside the file).
    fn skip_to(&mut self, target: u64) -> Result<(), XdfError> {
        let distance = target - self.position;
        if self.options.headers_only {
            // Sought past, never read (a buffered reader keeps what it holds past `target`).
            self.reader
                .seek_relative(distance as i64)
                .map_err(|e| self.io_error(e))?;
            self.position = target;
            return Ok(());
        }
        if distance <= SCAN_BLOCK as u64 {
            io::copy(&mut (&mut self.reader).take(distance), &mut io::sink())
                .map_err(|e| self.io_error(e))?;
        } else {
            self.reader
                .seek(SeekFrom::Start(target))
                .map_err(|e| self.io_error(e))?;
        }
        self.position = target;
        Ok(())
    }

    /// Scans forward from the byte after `damaged` (where damage was found) to the next Boundary
    /// signature and continues after it (or at the end of the file); says what was skipped.
    fn resynchronise(&mut self, damaged: u64) -> Result<String, XdfError> {
        let from = (damaged + 1).min(self.file_len);
        self.reader
            .seek(SeekFrom::Start(from))
            .map_err(|e| self.io_error(e))?;
        self.position = from;
        let signature_len = BOUNDARY_SIGNATURE.len();
        let mut window: Vec<u8> = Vec::with_capacity(SCAN_BLOCK + signature_len);
        let mut window_start = from;
        let mut block = vec![0u8; SCAN_BLOCK];
        loop {
            let read = match self.reader.read(&mut block) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io_error(e)),
            };
            window.extend_from_slice(&block[..read]);
            if let Some(found) = find_signature(&window) {
                let signature_at = window_start + found as u64;
                let resume = signature_at + signature_len as u64;
                self.reader
                    .seek(SeekFrom::Start(resume))
                    .map_err(|e| self.io_error(e))?;
                self.position = resume;
                return Ok(format!(
                    "{} bytes skipped, reading resumed after the boundary signature at byte {signature_at}",
                    resume - damaged
                ));
            }
            let keep = window.len().min(signature_len - 1);
            window_start += (window.len() - keep) as u64;
            window.drain(..window.len() - keep);
        }
        self.position = self.file_len;
        Ok(format!(
            "no boundary follows: the last {} bytes are skipped",
            self.file_len - damaged
        ))
    }

    /// Damage at `offset`, then resynchronisation after it.
    fn damage_and_resync(&mut self, offset: u64, problem: String) -> Result<Event, XdfError> {
        let resumed = self.resynchronise(offset)?;
        Ok(Event::Damage(Damage::new(
            offset,
            format!("{problem}; {resumed}"),
        )))
    }

    /// Counts a chunk of a stream without a valid header (reported once, at the end).
    fn orphan(&mut self, stream_id: u32, offset: u64, len: u64) {
        let entry = self.orphans.entry(stream_id).or_insert(Orphans {
            first_offset: offset,
            chunks: 0,
            bytes: 0,
        });
        entry.chunks += 1;
        entry.bytes += len;
    }

    /// The damage records kept for the end of the file.
    fn finish(&mut self) {
        self.finished = true;
        let mut orphans: Vec<(u32, Orphans)> = self.orphans.drain().collect();
        orphans.sort_by_key(|(id, o)| (o.first_offset, *id));
        for (id, orphan) in orphans {
            let why = if self.invalid_headers.contains(&id) {
                "whose header is invalid"
            } else {
                "which has no header"
            };
            self.pending.push(Damage::new(
                orphan.first_offset,
                format!(
                    "{} chunks ({} bytes) of stream {id}, {why}, are skipped (the first at byte {})",
                    orphan.chunks, orphan.bytes, orphan.first_offset
                ),
            ));
        }
        if !self.seen_file_header {
            let offset = if self.file_len > 4 { 4 } else { 0 };
            self.pending
                .push(Damage::new(offset, "the file has no FileHeader chunk"));
        }
        self.pending.reverse();
    }

    /// Reads the next event; `Ok(None)` at the end.
    fn next_event(&mut self) -> Result<Option<Event>, XdfError> {
        loop {
            if let Some(damage) = self.pending.pop() {
                return Ok(Some(Event::Damage(damage)));
            }
            if self.finished {
                return Ok(None);
            }
            if self.position >= self.file_len {
                self.finish();
                continue;
            }
            if let Some(event) = self.read_chunk()? {
                return Ok(Some(event));
            }
        }
    }

    /// Reads one chunk at the current position: an event, or `None` for a chunk skipped silently
    /// (a stream not selected, an orphan counted for later).
    fn read_chunk(&mut self) -> Result<Option<Event>, XdfError> {
        let offset = self.position;
        let remaining = self.file_len - offset;
        let mut width = [0u8; 1];
        self.read_exact_at(&mut width)?;
        let width = width[0];
        if !matches!(width, 1 | 4 | 8) {
            return self
                .damage_and_resync(
                    offset,
                    format!("invalid chunk length width {width} (expected 1, 4 or 8)"),
                )
                .map(Some);
        }
        let width = u64::from(width);
        if 1 + width + 2 > remaining {
            return self
                .damage_and_resync(
                    offset,
                    format!("truncated chunk: the file ends {remaining} bytes into its header"),
                )
                .map(Some);
        }
        let mut digits = [0u8; 8];
        self.read_exact_at(&mut digits[..width as usize])?;
        let length = u64::from_le_bytes(digits);
        let total = (1 + width).saturating_add(length);
        if total > remaining {
            return self
                .damage_and_resync(
                    offset,
                    format!(
                        "truncated chunk: it claims {length} bytes after its length but only {} remain",
                        remaining - 1 - width
                    ),
                )
                .map(Some);
        }
        if length < 2 {
            return self
                .damage_and_resync(
                    offset,
                    format!("chunk length {length} is shorter than its 2-byte tag"),
                )
                .map(Some);
        }
        if length > MAX_CHUNK_BYTES {
            return self
                .damage_and_resync(
                    offset,
                    format!(
                        "chunk length {length} is more than the {MAX_CHUNK_BYTES} bytes any writer puts in one chunk"
                    ),
                )
                .map(Some);
        }
        let end = offset + total;
        let mut tag = [0u8; 2];
        self.read_exact_at(&mut tag)?;
        let tag_number = u16::from_le_bytes(tag);
        let Some(tag) = Tag::from_u16(tag_number) else {
            self.skip_to(end)?;
            return Ok(Some(Event::Damage(Damage::new(
                offset,
                format!("unknown chunk type {tag_number}: its {total} bytes are skipped"),
            ))));
        };
        let mut stream_id = None;
        if tag.has_stream_id() {
            if length < 6 {
                return self
                    .damage_and_resync(
                        offset,
                        format!("{tag:?} chunk of length {length} has no room for its stream id"),
                    )
                    .map(Some);
            }
            let mut id = [0u8; 4];
            self.read_exact_at(&mut id)?;
            let id = u32::from_le_bytes(id);
            if self
                .options
                .select
                .as_ref()
                .is_some_and(|s| !s.contains(&id))
            {
                self.skip_to(end)?;
                return Ok(None);
            }
            if tag != Tag::StreamHeader && !self.streams.contains_key(&id) {
                self.orphan(id, offset, total);
                self.skip_to(end)?;
                return Ok(None);
            }
            stream_id = Some(id);
        }
        if self.options.headers_only && !matches!(tag, Tag::FileHeader | Tag::StreamHeader) {
            self.skip_to(end)?;
            return Ok(None);
        }
        let content_len = end - self.position;
        let content = self.read_content(content_len)?;
        let result = self.parse_body(tag, stream_id.unwrap_or(0), offset, &content);
        self.scratch = content;
        match result {
            Parsed::Body(body) => Ok(Some(Event::Chunk(Chunk {
                offset,
                len: total,
                body,
            }))),
            Parsed::Skipped(problem) => Ok(Some(Event::Damage(Damage::new(offset, problem)))),
            Parsed::Flawed(body, problem) => {
                self.pending.push(Damage::new(offset, problem));
                Ok(Some(Event::Chunk(Chunk {
                    offset,
                    len: total,
                    body,
                })))
            }
            Parsed::Broken(problem) => self.damage_and_resync(offset, problem).map(Some),
        }
    }

    /// Interprets a chunk's content (after the stream id).
    fn parse_body(&mut self, tag: Tag, stream_id: u32, offset: u64, content: &[u8]) -> Parsed {
        match tag {
            Tag::FileHeader => {
                let text = String::from_utf8_lossy(content);
                let doc = match parse_xml(&text) {
                    Ok(doc) => doc,
                    Err(e) => {
                        return Parsed::Broken(malformed(FileHeader::WHAT, offset, &e).message)
                    }
                };
                if self.seen_file_header {
                    return Parsed::Skipped("a second file header is ignored".to_string());
                }
                match FileHeader::from_document(&doc, &text, offset) {
                    Ok(header) => {
                        self.seen_file_header = true;
                        Parsed::Body(Body::FileHeader(header))
                    }
                    Err(e) => Parsed::Skipped(e.message),
                }
            }
            Tag::StreamHeader => {
                let text = String::from_utf8_lossy(content);
                let doc = match parse_xml(&text) {
                    Ok(doc) => doc,
                    Err(e) => {
                        return Parsed::Broken(malformed(StreamInfo::WHAT, offset, &e).message)
                    }
                };
                if self.streams.contains_key(&stream_id) {
                    return Parsed::Skipped(format!(
                        "a second header for stream {stream_id} is ignored"
                    ));
                }
                match StreamInfo::from_document(&doc, &text, offset) {
                    Ok(info) => {
                        self.invalid_headers.remove(&stream_id);
                        self.streams.insert(
                            stream_id,
                            StreamState {
                                info: info.clone(),
                                last_timestamp: 0.0,
                            },
                        );
                        Parsed::Body(Body::StreamHeader {
                            stream_id,
                            info: Box::new(info),
                        })
                    }
                    Err(e) => {
                        self.invalid_headers.insert(stream_id);
                        Parsed::Skipped(format!("{} (stream {stream_id})", e.message))
                    }
                }
            }
            Tag::Samples => {
                let decode_values = self.options.decode_values;
                let Some(state) = self.streams.get_mut(&stream_id) else {
                    return Parsed::Skipped(format!("stream {stream_id} has no header"));
                };
                match decode_samples(content, &state.info, state.last_timestamp, decode_values) {
                    Ok(chunk) => {
                        if let Some(last) = chunk.time_stamps.last() {
                            state.last_timestamp = *last;
                        }
                        Parsed::Body(Body::Samples {
                            stream_id,
                            time_stamps: chunk.time_stamps,
                            samples: chunk.samples,
                        })
                    }
                    Err(e) => Parsed::Broken(format!(
                        "Samples chunk of stream {stream_id} does not decode: {e}; the chunk is dropped"
                    )),
                }
            }
            Tag::ClockOffset => {
                if content.len() != 16 {
                    return Parsed::Broken(format!(
                        "ClockOffset chunk of stream {stream_id} has {} content bytes (expected 16)",
                        content.len()
                    ));
                }
                let number = |range: std::ops::Range<usize>| {
                    f64::from_le_bytes(content[range].try_into().unwrap_or_default())
                };
                Parsed::Body(Body::ClockOffset {
                    stream_id,
                    time: number(0..8),
                    value: number(8..16),
                })
            }
            Tag::Boundary => {
                if content == BOUNDARY_SIGNATURE {
                    Parsed::Body(Body::Boundary)
                } else {
                    Parsed::Broken("Boundary chunk without the boundary signature".to_string())
                }
            }
            Tag::StreamFooter => {
                let text = String::from_utf8_lossy(content);
                let doc = match parse_xml(&text) {
                    Ok(doc) => doc,
                    Err(e) => {
                        return Parsed::Broken(format!(
                            "{} (stream {stream_id}); the footer is ignored",
                            malformed(StreamFooter::WHAT, offset, &e).message
                        ))
                    }
                };
                match StreamFooter::from_document(&doc, &text, offset) {
                    Ok((footer, problems)) if problems.is_empty() => {
                        Parsed::Body(Body::StreamFooter { stream_id, footer })
                    }
                    Ok((footer, problems)) => Parsed::Flawed(
                        Body::StreamFooter { stream_id, footer },
                        format!(
                            "stream footer at byte {offset} (stream {stream_id}): {}",
                            problems.join(", ")
                        ),
                    ),
                    Err(e) => Parsed::Skipped(format!(
                        "{} (stream {stream_id}); the footer is ignored",
                        e.message
                    )),
                }
            }
        }
    }
}

/// What a chunk's content turned out to be.
enum Parsed {
    /// Intact.
    Body(Body),
    /// Framed correctly but unusable: reported and skipped by its length.
    Skipped(String),
    /// Usable in part (a footer with a bad field): yielded, and the problem reported after it.
    Flawed(Body, String),
    /// Does not decode: reported, then reading resynchronises.
    Broken(String),
}

/// Position of the first boundary signature in `bytes`.
fn find_signature(bytes: &[u8]) -> Option<usize> {
    let first = BOUNDARY_SIGNATURE[0];
    let mut start = 0;
    while let Some(found) = bytes.get(start..)?.iter().position(|b| *b == first) {
        let at = start + found;
        if bytes.get(at..at + BOUNDARY_SIGNATURE.len())? == BOUNDARY_SIGNATURE {
            return Some(at);
        }
        start = at + 1;
    }
    None
}

impl<R: Read + Seek> Iterator for Chunks<R> {
    type Item = Result<Event, XdfError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_event() {
            Ok(event) => event.map(Ok),
            Err(error) => {
                self.finished = true;
                self.pending.clear();
                Some(Err(error))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xdf::format::{boundary_chunk, encode_chunk};
    use std::io::Cursor;

    fn events(bytes: &[u8]) -> Vec<Event> {
        Chunks::new(Cursor::new(bytes))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    fn file_header() -> Vec<u8> {
        encode_chunk(
            Tag::FileHeader,
            None,
            b"<info><version>1.0</version></info>",
        )
    }

    #[test]
    fn the_signature_is_found_across_scan_blocks() {
        for shift in [0usize, 1, 8, 15, 16, 17] {
            let mut bytes = MAGIC.to_vec();
            bytes.extend(file_header());
            let damaged = bytes.len();
            bytes.push(2); // invalid length width
                           // The boundary's signature straddles the end of the first scan block.
            let boundary_at = damaged + 1 + SCAN_BLOCK - shift - 4;
            bytes.resize(boundary_at, 0);
            bytes.extend(boundary_chunk());
            bytes.extend(file_header());
            let events = events(&bytes);
            let Event::Damage(damage) = &events[1] else {
                panic!("{events:?}")
            };
            assert_eq!(damage.offset, damaged as u64);
            let resume = boundary_at + boundary_chunk().len();
            assert!(
                damage
                    .message
                    .contains(&format!("{} bytes skipped", resume - damaged)),
                "{damage}"
            );
            // The file header after the boundary is read (and reported as a second one).
            assert!(
                matches!(&events[2], Event::Damage(d) if d.offset == resume as u64 && d.message.contains("second file header")),
                "{events:?}"
            );
        }
    }

    #[test]
    fn damage_messages_say_what_was_skipped() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend(file_header());
        let cut_at = bytes.len();
        bytes.extend(&encode_chunk(Tag::Boundary, None, &BOUNDARY_SIGNATURE)[..10]);
        let events = events(&bytes);
        let Event::Damage(damage) = &events[1] else {
            panic!("{events:?}")
        };
        assert_eq!(damage.offset, cut_at as u64);
        assert!(damage.message.starts_with("truncated chunk"), "{damage}");
        assert!(
            damage
                .message
                .ends_with("no boundary follows: the last 10 bytes are skipped"),
            "{damage}"
        );
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn unknown_chunk_types_are_skipped_and_overlong_lengths_are_truncation() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend(file_header());
        let unknown_at = bytes.len() as u64;
        bytes.extend([1, 4, 9, 0, 0xaa, 0xbb]);
        let huge_at = bytes.len() as u64;
        bytes.push(8);
        bytes.extend((MAX_CHUNK_BYTES + 1).to_le_bytes());
        bytes.resize(bytes.len() + 64, 0);
        bytes.extend(boundary_chunk());
        let events = events(&bytes);
        assert!(
            matches!(&events[1], Event::Damage(d) if d.offset == unknown_at && d.message.contains("unknown chunk type 9")),
            "{events:?}"
        );
        // The huge length claims more than the file holds, so it reads as truncated.
        assert!(
            matches!(&events[2], Event::Damage(d) if d.offset == huge_at && d.message.contains("truncated")),
            "{events:?}"
        );
        assert_eq!(events.len(), 3);
    }

    #[test]
    fn the_magic_is_required() {
        for bytes in [&b""[..], b"XDF", b"XDG:", b"<?xml"] {
            let error = Chunks::new(Cursor::new(bytes)).err().unwrap();
            assert_eq!(error.offset, 0);
            assert_eq!(error.message, "not an XDF file (no `XDF:` magic at byte 0)");
        }
        let events = events(MAGIC);
        assert!(
            matches!(&events[..], [Event::Damage(d)] if d.offset == 0 && d.message.contains("no FileHeader")),
            "{events:?}"
        );
    }
}
