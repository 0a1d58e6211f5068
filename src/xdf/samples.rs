//! A stream's values, typed by its channel format, and the decoding of one Samples chunk exactly
//! as pyxdf's `_read_chunk3` does it.
//!
//! A Samples chunk's content (after the stream id) is `[NumSamples varlen]` then per sample a
//! timestamp byte (0: deduced as the previous timestamp plus 1/srate, 8: an f64 follows) and the
//! channel values: little-endian numbers, or for strings a varlen length and UTF-8 bytes (invalid
//! UTF-8 is replaced like Python's `errors="replace"`). Values are row-major
//! (`sample * channels + channel`), so int64 stays exact.
//!
//! [`decode_samples`] takes the stream's last timestamp, so a source can decode a file chunk by
//! chunk; with `decode_values = false` it returns timestamps only (a fast first pass).
//!
//! ```
//! use heloflow::xdf::header::StreamInfo;
//! use heloflow::xdf::samples::{decode_samples, Samples};
//!
//! let info = StreamInfo::parse("<info><channel_count>2</channel_count>\
//!     <nominal_srate>10</nominal_srate><channel_format>int16</channel_format></info>", 0).unwrap();
//! let mut content = vec![1, 2]; // varlen: 2 samples
//! content.push(8);
//! content.extend_from_slice(&5.0f64.to_le_bytes());
//! content.extend_from_slice(&[1, 0, 2, 0]);
//! content.push(0); // timestamp deduced: 5.0 + 0.1
//! content.extend_from_slice(&[3, 0, 0xff, 0xff]);
//! let chunk = decode_samples(&content, &info, 0.0, true).unwrap();
//! assert_eq!(chunk.time_stamps, vec![5.0, 5.0 + 0.1]);
//! assert_eq!(chunk.samples, Samples::Int16(vec![1, 2, 3, -1]));
//! ```

use std::fmt;

use super::format::read_varlen;
use super::header::StreamInfo;
use crate::stream::ChannelFormat;

/// A stream's values in its channel format, row-major (`sample * channels + channel`).
#[derive(Clone, Debug, PartialEq)]
pub enum Samples {
    /// `int8` values.
    Int8(Vec<i8>),
    /// `int16` values.
    Int16(Vec<i16>),
    /// `int32` values.
    Int32(Vec<i32>),
    /// `int64` values (exact).
    Int64(Vec<i64>),
    /// `float32` values.
    Float32(Vec<f32>),
    /// `double64` values.
    Double64(Vec<f64>),
    /// `string` values.
    String(Vec<String>),
}

/// Applies the same expression to the vector inside any variant.
macro_rules! each_variant {
    ($samples:expr, $values:ident => $body:expr) => {
        match $samples {
            Samples::Int8($values) => $body,
            Samples::Int16($values) => $body,
            Samples::Int32($values) => $body,
            Samples::Int64($values) => $body,
            Samples::Float32($values) => $body,
            Samples::Double64($values) => $body,
            Samples::String($values) => $body,
        }
    };
}

impl Samples {
    /// No values, in `format`.
    pub fn empty(format: ChannelFormat) -> Samples {
        match format {
            ChannelFormat::Int8 => Samples::Int8(Vec::new()),
            ChannelFormat::Int16 => Samples::Int16(Vec::new()),
            ChannelFormat::Int32 => Samples::Int32(Vec::new()),
            ChannelFormat::Int64 => Samples::Int64(Vec::new()),
            ChannelFormat::Float32 => Samples::Float32(Vec::new()),
            ChannelFormat::Double64 => Samples::Double64(Vec::new()),
            ChannelFormat::String => Samples::String(Vec::new()),
        }
    }

    /// The channel format these values are in.
    pub fn format(&self) -> ChannelFormat {
        match self {
            Samples::Int8(_) => ChannelFormat::Int8,
            Samples::Int16(_) => ChannelFormat::Int16,
            Samples::Int32(_) => ChannelFormat::Int32,
            Samples::Int64(_) => ChannelFormat::Int64,
            Samples::Float32(_) => ChannelFormat::Float32,
            Samples::Double64(_) => ChannelFormat::Double64,
            Samples::String(_) => ChannelFormat::String,
        }
    }

    /// Number of values (samples times channels).
    pub fn value_count(&self) -> usize {
        each_variant!(self, values => values.len())
    }

    /// Keeps the first `count` values.
    pub fn truncate(&mut self, count: usize) {
        each_variant!(self, values => values.truncate(count))
    }

    /// Appends `other`'s values; `other` must be in the same format (values of another format are
    /// not appended and `false` is returned).
    pub fn append(&mut self, other: Samples) -> bool {
        match (self, other) {
            (Samples::Int8(a), Samples::Int8(b)) => append_vec(a, b),
            (Samples::Int16(a), Samples::Int16(b)) => append_vec(a, b),
            (Samples::Int32(a), Samples::Int32(b)) => append_vec(a, b),
            (Samples::Int64(a), Samples::Int64(b)) => append_vec(a, b),
            (Samples::Float32(a), Samples::Float32(b)) => append_vec(a, b),
            (Samples::Double64(a), Samples::Double64(b)) => append_vec(a, b),
            (Samples::String(a), Samples::String(b)) => append_vec(a, b),
            _ => return false,
        }
        true
    }

    /// Value `index` as an `f64` (strings parse as numbers or give NaN), for summaries.
    pub fn value_f64(&self, index: usize) -> Option<f64> {
        Some(match self {
            Samples::Int8(v) => f64::from(*v.get(index)?),
            Samples::Int16(v) => f64::from(*v.get(index)?),
            Samples::Int32(v) => f64::from(*v.get(index)?),
            Samples::Int64(v) => *v.get(index)? as f64,
            Samples::Float32(v) => f64::from(*v.get(index)?),
            Samples::Double64(v) => *v.get(index)?,
            Samples::String(v) => v.get(index)?.trim().parse().unwrap_or(f64::NAN),
        })
    }
}

fn append_vec<T>(into: &mut Vec<T>, mut from: Vec<T>) {
    if into.is_empty() {
        *into = from;
    } else {
        into.append(&mut from);
    }
}

/// The timestamps and values of one Samples chunk.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplesChunk {
    /// One timestamp per sample, as stored (omitted ones deduced).
    pub time_stamps: Vec<f64>,
    /// The values, or none when decoding values was not asked for.
    pub samples: Samples,
}

/// Why a Samples chunk's content does not decode: what was wrong and where in the content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte position in the chunk's content (after the stream id).
    pub position: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (content byte {})", self.message, self.position)
    }
}

impl std::error::Error for DecodeError {}

fn decode_error(position: usize, message: impl Into<String>) -> DecodeError {
    DecodeError {
        position,
        message: message.into(),
    }
}

/// Decodes one Samples chunk's content (everything after the stream id) of a stream described by
/// `info`, whose previous sample had timestamp `last_timestamp` (0.0 before the first chunk).
/// With `decode_values = false` only timestamps are decoded and `samples` stays empty.
///
/// The whole content must decode, with no bytes left over; otherwise nothing is returned (a
/// truncated or corrupted chunk is dropped whole).
pub fn decode_samples(
    content: &[u8],
    info: &StreamInfo,
    last_timestamp: f64,
    decode_values: bool,
) -> Result<SamplesChunk, DecodeError> {
    let (count, mut position) = read_varlen(content).ok_or_else(|| {
        decode_error(0, "the sample count is not a valid variable-length integer")
    })?;
    let channels = info.channel_count;
    let format = info.channel_format;
    let min_value_bytes = format.size().unwrap_or(2) as u128;
    let min_sample_bytes = 1 + channels as u128 * min_value_bytes;
    let available = (content.len() - position) as u128;
    if u128::from(count) * min_sample_bytes > available {
        return Err(decode_error(
            0,
            format!(
                "{count} samples of {channels} {} channels need at least {} bytes, the chunk has {available}",
                format.lsl_name(),
                u128::from(count) * min_sample_bytes
            ),
        ));
    }
    // Bounded by the content length checked above.
    let count = count as usize;
    let interval = info.sample_interval();
    let mut time_stamps = Vec::with_capacity(count);
    let mut samples = Samples::empty(format);
    if decode_values {
        each_variant!(&mut samples, values => values.reserve_exact(count * channels));
    }
    let mut last = last_timestamp;
    for index in 0..count {
        match content.get(position) {
            Some(0) => {
                last += interval;
                position += 1;
            }
            Some(8) => {
                let bytes = content.get(position + 1..position + 9).ok_or_else(|| {
                    decode_error(position, format!("sample {index}'s timestamp is cut off"))
                })?;
                last = f64::from_le_bytes(bytes.try_into().unwrap_or_default());
                position += 9;
            }
            Some(other) => {
                return Err(decode_error(
                    position,
                    format!("sample {index} has timestamp byte {other} (expected 0 or 8)"),
                ))
            }
            None => {
                return Err(decode_error(
                    position,
                    format!("the chunk ends before sample {index}"),
                ))
            }
        }
        time_stamps.push(last);
        position = match format.size() {
            Some(size) => {
                let end = position + channels * size;
                let bytes = content.get(position..end).ok_or_else(|| {
                    decode_error(position, format!("sample {index}'s values are cut off"))
                })?;
                if decode_values {
                    push_numbers(&mut samples, bytes);
                }
                end
            }
            None => decode_strings(
                content,
                position,
                channels,
                index,
                &mut samples,
                decode_values,
            )?,
        };
    }
    if position != content.len() {
        return Err(decode_error(
            position,
            format!(
                "{} bytes are left over after the last of {count} samples",
                content.len() - position
            ),
        ));
    }
    Ok(SamplesChunk {
        time_stamps,
        samples,
    })
}

/// Appends the little-endian numbers in `bytes` to `samples` (whose format fixes their size).
fn push_numbers(samples: &mut Samples, bytes: &[u8]) {
    macro_rules! extend {
        ($values:expr, $t:ty, $size:expr) => {
            $values.extend(
                bytes
                    .chunks_exact($size)
                    .map(|b| <$t>::from_le_bytes(b.try_into().unwrap_or_default())),
            )
        };
    }
    match samples {
        Samples::Int8(v) => v.extend(bytes.iter().map(|b| *b as i8)),
        Samples::Int16(v) => extend!(v, i16, 2),
        Samples::Int32(v) => extend!(v, i32, 4),
        Samples::Int64(v) => extend!(v, i64, 8),
        Samples::Float32(v) => extend!(v, f32, 4),
        Samples::Double64(v) => extend!(v, f64, 8),
        Samples::String(_) => {}
    }
}

/// Decodes one sample's string values starting at `position`; returns the position after them.
fn decode_strings(
    content: &[u8],
    mut position: usize,
    channels: usize,
    index: usize,
    samples: &mut Samples,
    decode_values: bool,
) -> Result<usize, DecodeError> {
    for channel in 0..channels {
        let (length, width) = content
            .get(position..)
            .and_then(read_varlen)
            .ok_or_else(|| {
                decode_error(
                    position,
                    format!("sample {index} channel {channel}: the string length is not a valid variable-length integer"),
                )
            })?;
        let start = position + width;
        let bytes = usize::try_from(length)
            .ok()
            .and_then(|length| content.get(start..start.checked_add(length)?))
            .ok_or_else(|| {
                decode_error(
                    position,
                    format!("sample {index} channel {channel}: a string of {length} bytes runs past the chunk"),
                )
            })?;
        if decode_values {
            if let Samples::String(values) = samples {
                values.push(String::from_utf8_lossy(bytes).into_owned());
            }
        }
        position = start + bytes.len();
    }
    Ok(position)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xdf::format::write_varlen;

    fn info(format: &str, channels: usize, rate: f64) -> StreamInfo {
        StreamInfo::parse(
            &format!("<info><channel_count>{channels}</channel_count><nominal_srate>{rate}</nominal_srate><channel_format>{format}</channel_format></info>"),
            0,
        )
        .unwrap()
    }

    #[test]
    fn strings_decode_with_replacement_and_deduced_timestamps() {
        let info = info("string", 2, 4.0);
        let mut content = Vec::new();
        write_varlen(&mut content, 2);
        for (stamp, values) in [
            (Some(1.5), [&b"a"[..], b"\xff\xfeb"]),
            (None, [b"", b"xyz"]),
        ] {
            match stamp {
                Some(t) => {
                    content.push(8);
                    content.extend_from_slice(&f64::to_le_bytes(t));
                }
                None => content.push(0),
            }
            for value in values {
                write_varlen(&mut content, value.len() as u64);
                content.extend_from_slice(value);
            }
        }
        let chunk = decode_samples(&content, &info, 0.0, true).unwrap();
        assert_eq!(chunk.time_stamps, vec![1.5, 1.75]);
        assert_eq!(
            chunk.samples,
            Samples::String(vec![
                "a".into(),
                "\u{fffd}\u{fffd}b".into(),
                "".into(),
                "xyz".into()
            ])
        );
        let stamps_only = decode_samples(&content, &info, 0.0, false).unwrap();
        assert_eq!(stamps_only.time_stamps, chunk.time_stamps);
        assert_eq!(stamps_only.samples.value_count(), 0);
        for cut in 0..content.len() {
            assert!(
                decode_samples(&content[..cut], &info, 0.0, true).is_err(),
                "{cut}"
            );
        }
    }

    #[test]
    fn every_numeric_format_is_little_endian() {
        let cases: [(&str, Vec<u8>, Samples); 6] = [
            ("int8", vec![0xff], Samples::Int8(vec![-1])),
            ("int16", vec![0x00, 0x80], Samples::Int16(vec![i16::MIN])),
            (
                "int32",
                vec![1, 0, 0, 0x80],
                Samples::Int32(vec![i32::MIN + 1]),
            ),
            (
                "int64",
                (i64::MAX - 1).to_le_bytes().to_vec(),
                Samples::Int64(vec![i64::MAX - 1]),
            ),
            (
                "float32",
                0.1f32.to_le_bytes().to_vec(),
                Samples::Float32(vec![0.1]),
            ),
            (
                "double64",
                0.1f64.to_le_bytes().to_vec(),
                Samples::Double64(vec![0.1]),
            ),
        ];
        for (format, bytes, expected) in cases {
            let info = info(format, 1, 0.0);
            let mut content = vec![1, 1, 0];
            content.extend_from_slice(&bytes);
            let chunk = decode_samples(&content, &info, 2.0, true).unwrap();
            assert_eq!(chunk.samples, expected, "{format}");
            // Irregular streams deduce the previous timestamp itself.
            assert_eq!(chunk.time_stamps, vec![2.0], "{format}");
        }
    }

    #[test]
    fn bad_content_is_rejected_without_allocating_from_the_count() {
        let info = info("double64", 4, 100.0);
        let huge = [8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0];
        let error = decode_samples(&huge, &info, 0.0, true).unwrap_err();
        assert!(error.message.contains("need at least"), "{error}");
        assert!(decode_samples(&[3, 0], &info, 0.0, true).is_err());
        let mut content = vec![1, 1, 5];
        content.extend_from_slice(&[0; 40]);
        let error = decode_samples(&content, &info, 0.0, true).unwrap_err();
        assert!(error.message.contains("timestamp byte 5"), "{error}");
        let mut content = vec![1, 1, 0];
        content.extend_from_slice(&[0; 33]);
        let error = decode_samples(&content, &info, 0.0, true).unwrap_err();
        assert!(error.message.contains("1 bytes are left over"), "{error}");
    }

    #[test]
    fn samples_append_and_truncate_by_format() {
        let mut samples = Samples::empty(ChannelFormat::Int64);
        assert!(samples.append(Samples::Int64(vec![1, 2])));
        assert!(samples.append(Samples::Int64(vec![3])));
        assert!(!samples.append(Samples::Int8(vec![3])));
        samples.truncate(2);
        assert_eq!(samples, Samples::Int64(vec![1, 2]));
        assert_eq!(samples.value_f64(1), Some(2.0));
        assert_eq!(samples.format(), ChannelFormat::Int64);
    }
}
