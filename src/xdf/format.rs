//! The XDF 1.0 byte format: magic, chunk tags, variable-length integers, the boundary signature,
//! value formats and chunk encoding. Reader and writer both build on these definitions.
//!
//! A file is the magic `XDF:` followed by chunks. A chunk is
//! `[NumLengthBytes: 1, 4 or 8][Length, little-endian][Tag u16][Content]`, where `Length` counts
//! the tag's two bytes and the content (which starts with the `StreamId u32` for stream chunks).
//!
//! ```
//! use heloflow::xdf::format::{encode_chunk, read_varlen, write_varlen, Tag};
//!
//! let mut bytes = Vec::new();
//! write_varlen(&mut bytes, 300);
//! assert_eq!(bytes, [4, 44, 1, 0, 0]);
//! assert_eq!(read_varlen(&bytes), Some((300, 5)));
//!
//! let chunk = encode_chunk(Tag::ClockOffset, Some(7), &[0u8; 16]);
//! assert_eq!(chunk[..4], [1, 22, 4, 0]); // length 2 + 4 + 16, tag 4
//! ```

/// The four bytes every XDF file starts with.
pub const MAGIC: &[u8; 4] = b"XDF:";

/// The 16 bytes of a Boundary chunk's content: readers scan for them to resynchronise after damage.
pub const BOUNDARY_SIGNATURE: [u8; 16] = [
    0x43, 0xA5, 0x46, 0xDC, 0xCB, 0xF5, 0x41, 0x0F, 0xB3, 0x0E, 0xD5, 0x46, 0x73, 0x83, 0xCB, 0xE4,
];

/// Chunk types of XDF 1.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tag {
    /// File header XML (once, first).
    FileHeader = 1,
    /// A stream's header XML (its LSL stream info).
    StreamHeader = 2,
    /// A run of samples of one stream.
    Samples = 3,
    /// One clock offset measurement of one stream.
    ClockOffset = 4,
    /// A resynchronisation point (no stream id).
    Boundary = 5,
    /// A stream's footer XML (first and last timestamp, sample count, clock offsets).
    StreamFooter = 6,
}

impl Tag {
    /// The tag for a chunk type number, or `None` for types XDF 1.0 does not define.
    pub fn from_u16(value: u16) -> Option<Tag> {
        Some(match value {
            1 => Tag::FileHeader,
            2 => Tag::StreamHeader,
            3 => Tag::Samples,
            4 => Tag::ClockOffset,
            5 => Tag::Boundary,
            6 => Tag::StreamFooter,
            _ => return None,
        })
    }

    /// Whether the chunk's content starts with a `StreamId u32`.
    pub fn has_stream_id(self) -> bool {
        matches!(
            self,
            Tag::StreamHeader | Tag::Samples | Tag::ClockOffset | Tag::StreamFooter
        )
    }
}

/// Appends `value` as an XDF variable-length integer: a byte giving the width (1, 4 or 8), then the
/// value in that many little-endian bytes (the narrowest width that holds it).
pub fn write_varlen(out: &mut Vec<u8>, value: u64) {
    if value <= u64::from(u8::MAX) {
        out.push(1);
        out.push(value as u8);
    } else if value <= u64::from(u32::MAX) {
        out.push(4);
        out.extend_from_slice(&(value as u32).to_le_bytes());
    } else {
        out.push(8);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

/// Bytes [`write_varlen`] takes for `value`: the width byte and the value.
pub fn varlen_size(value: u64) -> usize {
    if value <= u64::from(u8::MAX) {
        2
    } else if value <= u64::from(u32::MAX) {
        5
    } else {
        9
    }
}

/// Decodes a variable-length integer at the start of `bytes`: the value and the bytes it took, or
/// `None` when the width byte is not 1, 4 or 8 or the bytes end first.
pub fn read_varlen(bytes: &[u8]) -> Option<(u64, usize)> {
    let width = usize::from(*bytes.first()?);
    let digits = bytes.get(1..1 + width)?;
    let value = match width {
        1 => u64::from(digits[0]),
        4 => u64::from(u32::from_le_bytes(digits.try_into().ok()?)),
        8 => u64::from_le_bytes(digits.try_into().ok()?),
        _ => return None,
    };
    Some((value, 1 + width))
}

/// A whole chunk: length, tag, the stream id when the tag has one, then `content`.
pub fn encode_chunk(tag: Tag, stream_id: Option<u32>, content: &[u8]) -> Vec<u8> {
    let id_bytes = if stream_id.is_some() { 4 } else { 0 };
    let length = 2 + id_bytes + content.len();
    let mut out = Vec::with_capacity(length + 9);
    write_varlen(&mut out, length as u64);
    out.extend_from_slice(&(tag as u16).to_le_bytes());
    if let Some(id) = stream_id {
        out.extend_from_slice(&id.to_le_bytes());
    }
    out.extend_from_slice(content);
    out
}

/// The Boundary chunk, written about every 10 s so readers can resynchronise after damage.
pub fn boundary_chunk() -> Vec<u8> {
    encode_chunk(Tag::Boundary, None, &BOUNDARY_SIGNATURE)
}

/// The content of a ClockOffset chunk: collection time and offset value, both in seconds.
pub fn clock_offset_content(collection_time: f64, offset: f64) -> [u8; 16] {
    let mut content = [0u8; 16];
    content[..8].copy_from_slice(&collection_time.to_le_bytes());
    content[8..].copy_from_slice(&offset.to_le_bytes());
    content
}

/// Escapes text for an XML element's content.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Shortest text of an `f64` that parses back to the same number (for XML fields and footers).
pub fn xml_number(value: f64) -> String {
    if value.is_finite() {
        format!("{value:?}")
    } else {
        "0".to_string()
    }
}

/// What a stream footer records, as LabRecorder writes it: first and last timestamp, sample
/// count and every clock offset `(collection time, value)` measured for the stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Footer {
    /// Program that wrote the file (`heloflow 0.1.0`).
    pub writer: String,
    /// Timestamp of the first sample (0 when there was none).
    pub first_timestamp: f64,
    /// Timestamp of the last sample (0 when there was none).
    pub last_timestamp: f64,
    /// Samples written.
    pub sample_count: u64,
    /// Clock offsets written, oldest first.
    pub clock_offsets: Vec<(f64, f64)>,
}

impl Footer {
    /// The footer's XML, as the content of a StreamFooter chunk (after the stream id).
    pub fn to_xml(&self) -> String {
        let mut xml = format!(
            "<?xml version=\"1.0\"?>\n<info>\n\t<writer>{}</writer>\n\t<first_timestamp>{}</first_timestamp>\n\t<last_timestamp>{}</last_timestamp>\n\t<sample_count>{}</sample_count>\n\t<clock_offsets>",
            xml_escape(&self.writer),
            xml_number(self.first_timestamp),
            xml_number(self.last_timestamp),
            self.sample_count
        );
        for (time, value) in &self.clock_offsets {
            xml.push_str(&format!(
                "<offset><time>{}</time><value>{}</value></offset>",
                xml_number(*time),
                xml_number(*value)
            ));
        }
        xml.push_str("</clock_offsets>\n</info>\n");
        xml
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varlen_round_trips_at_every_width() {
        for value in [
            0,
            1,
            255,
            256,
            65_535,
            u64::from(u32::MAX),
            1 << 40,
            u64::MAX,
        ] {
            let mut bytes = Vec::new();
            write_varlen(&mut bytes, value);
            assert_eq!(read_varlen(&bytes), Some((value, bytes.len())), "{value}");
            assert_eq!(varlen_size(value), bytes.len(), "{value}");
        }
        assert_eq!(read_varlen(&[2, 0, 0]), None);
        assert_eq!(read_varlen(&[4, 0, 0]), None);
        assert_eq!(read_varlen(&[]), None);
    }

    #[test]
    fn boundary_chunks_carry_the_signature() {
        let chunk = boundary_chunk();
        assert_eq!(chunk[..4], [1, 18, 5, 0]);
        assert_eq!(chunk[4..], BOUNDARY_SIGNATURE);
        assert_eq!(Tag::from_u16(5), Some(Tag::Boundary));
        assert!(!Tag::Boundary.has_stream_id());
        assert_eq!(Tag::from_u16(7), None);
    }

    #[test]
    fn footers_list_every_clock_offset() {
        let footer = Footer {
            writer: "heloflow".into(),
            first_timestamp: 5.1,
            last_timestamp: 5.9,
            sample_count: 9,
            clock_offsets: vec![(6.1, -0.1), (7.1, -0.1)],
        };
        let xml = footer.to_xml();
        assert!(xml.contains("<sample_count>9</sample_count>"), "{xml}");
        assert!(
            xml.contains("<offset><time>7.1</time><value>-0.1</value></offset>"),
            "{xml}"
        );
        assert!(
            xml.contains("<first_timestamp>5.1</first_timestamp>"),
            "{xml}"
        );
    }

    #[test]
    fn xml_text_is_escaped() {
        assert_eq!(xml_escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(xml_number(0.1), "0.1");
        assert_eq!(xml_number(5.0), "5.0");
    }
}
