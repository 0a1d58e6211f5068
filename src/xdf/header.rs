//! The XML chunks of an XDF file: the file header, each stream's header (its LSL stream info) and
//! each stream's footer, parsed with `roxmltree` as pyxdf reads them.
//!
//! A stream header needs `channel_count`, `nominal_srate` and `channel_format`; a missing or
//! invalid one is an error naming the field and the chunk's byte offset. Everything else is
//! optional and kept as text: `desc_xml` is the exact original text inside `<desc>`, so a
//! re-recording can copy it byte for byte.
//!
//! ```
//! use heloflow::stream::ChannelFormat;
//! use heloflow::xdf::header::StreamInfo;
//!
//! let xml = "<info><name>amp</name><type>EEG</type><channel_count>2</channel_count>\
//!            <nominal_srate>250</nominal_srate><channel_format>float32</channel_format>\
//!            <desc><channels><channel><label>Cz</label><unit>microvolts</unit></channel>\
//!            </channels><acquisition><subject>P01</subject></acquisition></desc></info>";
//! let info = StreamInfo::parse(xml, 42).unwrap();
//! assert_eq!((info.kind.as_str(), info.channel_count), ("EEG", 2));
//! assert_eq!(info.channel_format, ChannelFormat::Float32);
//! assert_eq!(info.channels[0].label, "Cz");
//! assert_eq!(info.channels[1].label, ""); // exactly channel_count entries
//! assert_eq!(info.desc_value("acquisition/subject").as_deref(), Some("P01"));
//! assert!(info.desc_xml.starts_with("<channels><channel><label>Cz"));
//!
//! let error = StreamInfo::parse("<info><channel_count>x</channel_count></info>", 42).unwrap_err();
//! assert!(error.message.contains("channel_count"), "{error}");
//! assert!(error.message.contains("byte 42"), "{error}");
//! ```

use roxmltree::{Document, Node, ParsingOptions};
use serde::Serialize;

use super::error::XdfError;
use crate::stream::ChannelFormat;

/// The most channels a stream header may declare (a corrupted count must not make the reader
/// allocate per-channel metadata for billions of channels).
pub const MAX_CHANNELS: usize = 1_000_000;

/// Parses XML the way the XDF chunks need: DTDs allowed (expat, pyxdf's parser, allows them), and
/// a node limit so a corrupted chunk cannot make the parser build an enormous tree.
pub fn parse_xml(text: &str) -> Result<Document<'_>, roxmltree::Error> {
    Document::parse_with_options(
        text,
        ParsingOptions {
            allow_dtd: true,
            nodes_limit: 10_000_000,
            ..ParsingOptions::default()
        },
    )
}

/// The error for a chunk whose XML does not parse.
pub(crate) fn malformed(what: &str, offset: u64, error: &roxmltree::Error) -> XdfError {
    XdfError::new(
        offset,
        format!("{what} at byte {offset} is not well-formed XML: {error}"),
    )
}

/// The first child element of `node` named `name`.
fn child<'a, 'input>(node: Node<'a, 'input>, name: &str) -> Option<Node<'a, 'input>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

/// The text of the first child element named `name`, as pyxdf keeps it (untrimmed; empty when the
/// element is absent or has no text).
fn child_text(node: Node<'_, '_>, name: &str) -> String {
    child(node, name)
        .and_then(|c| c.text())
        .unwrap_or_default()
        .to_string()
}

/// The root element, which XDF requires to be `<info>`.
fn info_root<'a, 'input>(
    doc: &'a Document<'input>,
    what: &str,
    offset: u64,
) -> Result<Node<'a, 'input>, XdfError> {
    let root = doc.root_element();
    if root.tag_name().name() == "info" {
        Ok(root)
    } else {
        Err(XdfError::new(
            offset,
            format!(
                "{what} at byte {offset}: the root element is <{}>, not <info>",
                root.tag_name().name()
            ),
        ))
    }
}

/// The exact text between an element's start and end tags (empty for `<desc/>`).
fn inner_text<'input>(text: &'input str, node: Node<'_, 'input>) -> &'input str {
    let range = node.range();
    let Some(element) = text.get(range.clone()) else {
        return "";
    };
    if element.ends_with("/>") {
        return "";
    }
    // The start tag ends at the first `>` outside a quoted attribute value.
    let mut quote = None;
    let mut start = None;
    for (i, c) in element.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => {
                start = Some(i + 1);
                break;
            }
            _ => {}
        }
    }
    let end = element.rfind("</");
    match (start, end) {
        (Some(start), Some(end)) if start <= end => &element[start..end],
        _ => "",
    }
}

/// One channel's metadata from `desc/channels/channel`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Channel {
    /// `label` (empty when absent).
    pub label: String,
    /// `unit` (empty when absent).
    pub unit: String,
    /// `type` (empty when absent).
    pub kind: String,
}

/// A stream's header: its LSL stream info as recorded in a StreamHeader chunk.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamInfo {
    /// `name`.
    pub name: String,
    /// `type`, the content type (`EEG`, `Markers`...).
    pub kind: String,
    /// `channel_count` (at most [`MAX_CHANNELS`]).
    pub channel_count: usize,
    /// `nominal_srate` in Hz; 0 for irregular streams.
    pub nominal_srate: f64,
    /// `channel_format`.
    pub channel_format: ChannelFormat,
    /// `source_id` (empty when absent).
    pub source_id: String,
    /// `hostname` (empty when absent).
    pub hostname: String,
    /// `uid` (empty when absent).
    pub uid: String,
    /// `session_id` (empty when absent).
    pub session_id: String,
    /// `created_at`, seconds on the sender's clock, when present and a number.
    pub created_at: Option<f64>,
    /// Exactly `channel_count` channels, from `desc/channels/channel` (empty fields when absent).
    pub channels: Vec<Channel>,
    /// The exact original text inside `<desc>...</desc>` (empty when there is none).
    pub desc_xml: String,
    /// The whole header text.
    pub xml: String,
}

impl StreamInfo {
    /// Parses a StreamHeader chunk's XML; `offset` (the chunk's byte offset) goes into errors.
    pub fn parse(xml: &str, offset: u64) -> Result<StreamInfo, XdfError> {
        let doc = parse_xml(xml).map_err(|e| malformed(Self::WHAT, offset, &e))?;
        Self::from_document(&doc, xml, offset)
    }

    /// What the chunk is called in messages.
    pub(crate) const WHAT: &'static str = "stream header";

    /// The stream info in an already parsed header (`xml` is its text).
    pub(crate) fn from_document(
        doc: &Document<'_>,
        xml: &str,
        offset: u64,
    ) -> Result<StreamInfo, XdfError> {
        let what = Self::WHAT;
        let info = info_root(doc, what, offset)?;
        let field = |name: &str| -> Result<String, XdfError> {
            match child(info, name) {
                Some(node) => Ok(node.text().unwrap_or_default().trim().to_string()),
                None => Err(XdfError::new(
                    offset,
                    format!("{what} at byte {offset}: required field `{name}` is missing"),
                )),
            }
        };
        let invalid = |name: &str, text: &str, expected: &str| {
            XdfError::new(
                offset,
                format!("{what} at byte {offset}: `{name}` is `{text}`, expected {expected}"),
            )
        };

        let count_text = field("channel_count")?;
        let channel_count = count_text
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= MAX_CHANNELS)
            .ok_or_else(|| {
                invalid(
                    "channel_count",
                    &count_text,
                    &format!("a whole number from 0 to {MAX_CHANNELS}"),
                )
            })?;
        let rate_text = field("nominal_srate")?;
        let nominal_srate = rate_text
            .parse::<f64>()
            .ok()
            .filter(|r| r.is_finite() && *r >= 0.0)
            .ok_or_else(|| {
                invalid(
                    "nominal_srate",
                    &rate_text,
                    "a finite number of Hz, at least 0",
                )
            })?;
        let format_text = field("channel_format")?;
        let channel_format = ChannelFormat::from_lsl_name(&format_text).ok_or_else(|| {
            let names: Vec<&str> = ChannelFormat::ALL.iter().map(|f| f.lsl_name()).collect();
            invalid(
                "channel_format",
                &format_text,
                &format!("one of {}", names.join(", ")),
            )
        })?;

        let desc = child(info, "desc");
        let mut channels: Vec<Channel> = desc
            .and_then(|d| child(d, "channels"))
            .map(|list| {
                list.children()
                    .filter(|c| c.is_element() && c.tag_name().name() == "channel")
                    .take(channel_count)
                    .map(|c| Channel {
                        label: child_text(c, "label"),
                        unit: child_text(c, "unit"),
                        kind: child_text(c, "type"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        channels.resize(channel_count, Channel::default());

        Ok(StreamInfo {
            name: child_text(info, "name"),
            kind: child_text(info, "type"),
            channel_count,
            nominal_srate,
            channel_format,
            source_id: child_text(info, "source_id"),
            hostname: child_text(info, "hostname"),
            uid: child_text(info, "uid"),
            session_id: child_text(info, "session_id"),
            created_at: child_text(info, "created_at").trim().parse().ok(),
            channels,
            desc_xml: desc
                .map(|d| inner_text(xml, d))
                .unwrap_or_default()
                .to_string(),
            xml: xml.to_string(),
        })
    }

    /// The text at `path` (element names separated by `/`) inside `<desc>`, taking the first
    /// element of each name as pyxdf does; `None` when an element is missing.
    pub fn desc_value(&self, path: &str) -> Option<String> {
        let doc = parse_xml(&self.xml).ok()?;
        let mut node = child(doc.root_element(), "desc")?;
        for name in path.split('/').filter(|n| !n.is_empty()) {
            node = child(node, name)?;
        }
        Some(node.text().unwrap_or_default().to_string())
    }

    /// Whether `desc/synchronization/can_drop_samples` is `true` (any case): such streams (video,
    /// HMDs) are not dejittered, as in pyxdf.
    pub fn can_drop_samples(&self) -> bool {
        self.desc_value("synchronization/can_drop_samples")
            .is_some_and(|v| v.to_lowercase() == "true")
    }

    /// The nominal interval between samples in seconds (0 for irregular streams), as pyxdf uses it
    /// to deduce omitted timestamps.
    pub fn sample_interval(&self) -> f64 {
        if self.nominal_srate > 0.0 {
            1.0 / self.nominal_srate
        } else {
            0.0
        }
    }
}

/// One child element of the file header other than `version` and `datetime`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeaderField {
    /// The element's name.
    pub name: String,
    /// The element's whole original text (`<name>...</name>`).
    pub xml: String,
}

/// The file header: XDF version, recording time and anything else the writer put there.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FileHeader {
    /// `version` (`1.0`), when present.
    pub version: Option<String>,
    /// `datetime` (ISO 8601), when present.
    pub datetime: Option<String>,
    /// Every other child element, in order, as raw text.
    pub other: Vec<HeaderField>,
    /// The whole header text.
    #[serde(skip)]
    pub xml: String,
}

impl FileHeader {
    /// Parses a FileHeader chunk's XML; `offset` (the chunk's byte offset) goes into errors.
    pub fn parse(xml: &str, offset: u64) -> Result<FileHeader, XdfError> {
        let doc = parse_xml(xml).map_err(|e| malformed(Self::WHAT, offset, &e))?;
        Self::from_document(&doc, xml, offset)
    }

    /// What the chunk is called in messages.
    pub(crate) const WHAT: &'static str = "file header";

    /// The file header in an already parsed document (`xml` is its text).
    pub(crate) fn from_document(
        doc: &Document<'_>,
        xml: &str,
        offset: u64,
    ) -> Result<FileHeader, XdfError> {
        let info = info_root(doc, Self::WHAT, offset)?;
        let mut header = FileHeader {
            xml: xml.to_string(),
            ..FileHeader::default()
        };
        for node in info.children().filter(|c| c.is_element()) {
            let text = node.text().unwrap_or_default().to_string();
            match node.tag_name().name() {
                "version" if header.version.is_none() => header.version = Some(text),
                "datetime" if header.datetime.is_none() => header.datetime = Some(text),
                name => header.other.push(HeaderField {
                    name: name.to_string(),
                    xml: xml.get(node.range()).unwrap_or_default().to_string(),
                }),
            }
        }
        Ok(header)
    }
}

/// A stream's footer as read back: first and last timestamp, sample count and clock offsets.
/// Fields that are missing or not numbers are `None` (and reported as damage by the reader).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StreamFooter {
    /// `first_timestamp`.
    pub first_timestamp: Option<f64>,
    /// `last_timestamp`.
    pub last_timestamp: Option<f64>,
    /// `sample_count`.
    pub sample_count: Option<u64>,
    /// `clock_offsets/offset` as `(time, value)`, in file order (entries that are not two numbers
    /// are left out and reported).
    pub clock_offsets: Vec<(f64, f64)>,
    /// The whole footer text.
    #[serde(skip)]
    pub xml: String,
}

impl StreamFooter {
    /// Parses a StreamFooter chunk's XML. Malformed XML is an error; fields that are missing or
    /// not numbers come back as problems beside the footer (a footer is optional to readers).
    pub fn parse(xml: &str, offset: u64) -> Result<(StreamFooter, Vec<String>), XdfError> {
        let doc = parse_xml(xml).map_err(|e| malformed(Self::WHAT, offset, &e))?;
        Self::from_document(&doc, xml, offset)
    }

    /// What the chunk is called in messages.
    pub(crate) const WHAT: &'static str = "stream footer";

    /// The footer in an already parsed document (`xml` is its text), with its problems.
    pub(crate) fn from_document(
        doc: &Document<'_>,
        xml: &str,
        offset: u64,
    ) -> Result<(StreamFooter, Vec<String>), XdfError> {
        let info = info_root(doc, Self::WHAT, offset)?;
        let mut problems = Vec::new();
        let mut number = |node: Node<'_, '_>, name: &str| -> Option<f64> {
            let Some(element) = child(node, name) else {
                problems.push(format!("`{name}` is missing"));
                return None;
            };
            let text = element.text().unwrap_or_default().trim();
            let value = text.parse::<f64>().ok();
            if value.is_none() {
                problems.push(format!("`{name}` is `{text}`, not a number"));
            }
            value
        };
        let first_timestamp = number(info, "first_timestamp");
        let last_timestamp = number(info, "last_timestamp");
        let mut clock_offsets = Vec::new();
        if let Some(list) = child(info, "clock_offsets") {
            for offset_node in list
                .children()
                .filter(|c| c.is_element() && c.tag_name().name() == "offset")
            {
                let time = number(offset_node, "time");
                let value = number(offset_node, "value");
                if let (Some(time), Some(value)) = (time, value) {
                    clock_offsets.push((time, value));
                }
            }
        }
        let sample_count = match child(info, "sample_count") {
            None => {
                problems.push("`sample_count` is missing".to_string());
                None
            }
            Some(node) => {
                let text = node.text().unwrap_or_default().trim();
                let count = text.parse::<u64>().ok();
                if count.is_none() {
                    problems.push(format!("`sample_count` is `{text}`, not a count"));
                }
                count
            }
        };
        let footer = StreamFooter {
            first_timestamp,
            last_timestamp,
            sample_count,
            clock_offsets,
            xml: xml.to_string(),
        };
        Ok((footer, problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "<?xml version=\"1.0\"?>\n<info>\n\t<name>BioSemi</name>\n\t<type>EEG</type>\n\t<channel_count>3</channel_count>\n\t<nominal_srate>100</nominal_srate>\n\t<channel_format>int64</channel_format>\n\t<source_id>s1</source_id>\n\t<created_at>653103.26692229998</created_at>\n\t<desc attr=\"a>b\">\n\t\t<channels><channel><label>C3</label><unit>uV</unit><type>EEG</type></channel>\n\t\t<channel><label>C4</label></channel></channels>\n\t\t<synchronization><can_drop_samples>True</can_drop_samples></synchronization>\n\t</desc>\n</info>";

    #[test]
    fn headers_keep_every_field_and_the_exact_desc_text() {
        let info = StreamInfo::parse(HEADER, 7).unwrap();
        assert_eq!(info.name, "BioSemi");
        assert_eq!(info.channel_format, ChannelFormat::Int64);
        assert_eq!(info.created_at, "653103.26692229998".parse().ok());
        assert_eq!(info.source_id, "s1");
        assert_eq!(info.hostname, "");
        assert_eq!(info.channels.len(), 3);
        assert_eq!(
            info.channels[0],
            Channel {
                label: "C3".into(),
                unit: "uV".into(),
                kind: "EEG".into()
            }
        );
        assert_eq!(info.channels[1].label, "C4");
        assert_eq!(info.channels[2], Channel::default());
        let start = HEADER.find("\n\t\t<channels>").unwrap();
        let end = HEADER.find("</desc>").unwrap();
        assert_eq!(info.desc_xml, &HEADER[start..end]);
        assert!(info.can_drop_samples());
        assert_eq!(
            info.desc_value("channels/channel/unit").as_deref(),
            Some("uV")
        );
        assert_eq!(info.desc_value("nothing"), None);
        assert_eq!(info.sample_interval(), 0.01);
    }

    #[test]
    fn empty_desc_gives_empty_text() {
        let xml = "<info><channel_count>1</channel_count><nominal_srate>0</nominal_srate><channel_format>string</channel_format><desc/></info>";
        let info = StreamInfo::parse(xml, 0).unwrap();
        assert_eq!(info.desc_xml, "");
        assert!(!info.can_drop_samples());
        assert_eq!(info.sample_interval(), 0.0);
        assert_eq!(info.desc_value("").as_deref(), Some(""));
    }

    #[test]
    fn invalid_required_fields_are_named_with_the_offset() {
        let base = |count: &str, rate: &str, format: &str| {
            format!("<info><channel_count>{count}</channel_count><nominal_srate>{rate}</nominal_srate><channel_format>{format}</channel_format></info>")
        };
        for (xml, field) in [
            (base("-1", "10", "int8"), "channel_count"),
            (base("2000000", "10", "int8"), "channel_count"),
            (base("1", "-5", "int8"), "nominal_srate"),
            (base("1", "nan", "int8"), "nominal_srate"),
            (base("1", "inf", "int8"), "nominal_srate"),
            (base("1", "10", "float"), "channel_format"),
            (
                "<info><nominal_srate>1</nominal_srate></info>".to_string(),
                "channel_count",
            ),
        ] {
            let error = StreamInfo::parse(&xml, 99).unwrap_err();
            assert!(error.message.contains(field), "{field}: {error}");
            assert!(error.message.contains("byte 99"), "{error}");
            assert_eq!(error.offset, 99);
        }
        let error = StreamInfo::parse("<info><name>", 5).unwrap_err();
        assert!(error.message.contains("not well-formed XML"), "{error}");
        let error = StreamInfo::parse("<stream/>", 5).unwrap_err();
        assert!(error.message.contains("<stream>"), "{error}");
    }

    #[test]
    fn file_headers_keep_unknown_fields_as_raw_text() {
        let xml = "<?xml version=\"1.0\"?><info><version>1.0</version><datetime>2025-01-31T00:21:17+0000</datetime><lab><room>3</room></lab></info>";
        let header = FileHeader::parse(xml, 4).unwrap();
        assert_eq!(header.version.as_deref(), Some("1.0"));
        assert_eq!(header.datetime.as_deref(), Some("2025-01-31T00:21:17+0000"));
        assert_eq!(
            header.other,
            vec![HeaderField {
                name: "lab".into(),
                xml: "<lab><room>3</room></lab>".into()
            }]
        );
    }

    #[test]
    fn footers_parse_numbers_and_report_bad_ones() {
        let xml = "<info><first_timestamp>5.1</first_timestamp><last_timestamp>x</last_timestamp><sample_count>9</sample_count><clock_offsets><offset><time>6.1</time><value>-.1</value></offset><offset><time>7</time></offset></clock_offsets></info>";
        let (footer, problems) = StreamFooter::parse(xml, 0).unwrap();
        assert_eq!(footer.first_timestamp, Some(5.1));
        assert_eq!(footer.last_timestamp, None);
        assert_eq!(footer.sample_count, Some(9));
        assert_eq!(footer.clock_offsets, vec![(6.1, -0.1)]);
        assert_eq!(
            problems,
            vec![
                "`last_timestamp` is `x`, not a number",
                "`value` is missing"
            ]
        );
        assert!(StreamFooter::parse("<info>", 3).is_err());
    }
}
