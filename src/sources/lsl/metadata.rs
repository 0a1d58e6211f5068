//! Reading an LSL stream's metadata: channel labels, units and types from `desc/channels`, format,
//! rate, and a one-line description used in messages and by `heloflow streams`.

use lsl::{StreamInfo, StreamInlet};
use serde::Serialize;

use crate::stream::{Channel, ChannelFormat};

/// What heloflow knows about one LSL stream, read once from its full `StreamInfo`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StreamMetadata {
    /// Stream name.
    pub name: String,
    /// Content type (`EEG`, `Markers`...).
    pub kind: String,
    /// Unique, stable id of the device or program (empty when the sender set none).
    pub source_id: String,
    /// Machine the outlet runs on.
    pub hostname: String,
    /// Channel count as announced.
    pub channel_count: usize,
    /// Channel metadata from `desc/channels` (empty labels when the sender wrote none).
    pub channels: Vec<Channel>,
    /// LSL channel format name (`float32`, `double64`, `int16`, `string`...).
    pub format: String,
    /// Nominal rate in Hz; 0 for irregular streams.
    pub nominal_srate: f64,
}

/// The LSL format name of a channel format.
pub fn format_name(format: lsl::ChannelFormat) -> &'static str {
    match format {
        lsl::ChannelFormat::Float32 => "float32",
        lsl::ChannelFormat::Double64 => "double64",
        lsl::ChannelFormat::String => "string",
        lsl::ChannelFormat::Int32 => "int32",
        lsl::ChannelFormat::Int16 => "int16",
        lsl::ChannelFormat::Int8 => "int8",
        lsl::ChannelFormat::Int64 => "int64",
        lsl::ChannelFormat::Undefined => "undefined",
    }
}

/// A complete LSL stream info XML for a recorded stream header, with every field liblsl 1.13
/// needs to read it back (`StreamInfo::from_xml` rejects partial infos): recorded headers from
/// any writer can then be matched against predicates and republished with their full `desc`.
pub fn full_info_xml(info: &crate::xdf::header::StreamInfo) -> String {
    use crate::xdf::format::{xml_escape, xml_number};
    let uid = if info.uid.is_empty() {
        format!(
            "xdf-{}-{}",
            xml_escape(&info.source_id),
            xml_escape(&info.name)
        )
    } else {
        xml_escape(&info.uid)
    };
    let session = if info.session_id.is_empty() {
        "default".to_string()
    } else {
        xml_escape(&info.session_id)
    };
    format!(
        "<?xml version=\"1.0\"?>\n<info>\n\t<name>{}</name>\n\t<type>{}</type>\n\t<channel_count>{}</channel_count>\n\t<channel_format>{}</channel_format>\n\t<source_id>{}</source_id>\n\t<nominal_srate>{}</nominal_srate>\n\t<version>1.1000000000000001</version>\n\t<created_at>{}</created_at>\n\t<uid>{uid}</uid>\n\t<session_id>{session}</session_id>\n\t<hostname>{}</hostname>\n\t<v4address></v4address>\n\t<v4data_port>0</v4data_port>\n\t<v4service_port>0</v4service_port>\n\t<v6address></v6address>\n\t<v6data_port>0</v6data_port>\n\t<v6service_port>0</v6service_port>\n\t<desc>{}</desc>\n</info>\n",
        xml_escape(&info.name),
        xml_escape(&info.kind),
        info.channel_count,
        info.channel_format.lsl_name(),
        xml_escape(&info.source_id),
        xml_number(info.nominal_srate),
        xml_number(info.created_at.unwrap_or(0.0)),
        xml_escape(&info.hostname),
        info.desc_xml,
    )
}

/// The LSL format an outlet uses for a heloflow format.
pub fn lsl_format(format: ChannelFormat) -> lsl::ChannelFormat {
    match format {
        ChannelFormat::Float32 => lsl::ChannelFormat::Float32,
        ChannelFormat::Double64 => lsl::ChannelFormat::Double64,
        ChannelFormat::Int8 => lsl::ChannelFormat::Int8,
        ChannelFormat::Int16 => lsl::ChannelFormat::Int16,
        ChannelFormat::Int32 => lsl::ChannelFormat::Int32,
        ChannelFormat::Int64 => lsl::ChannelFormat::Int64,
        ChannelFormat::String => lsl::ChannelFormat::String,
    }
}

/// Most channels given placeholder metadata when a stream describes fewer than it announces: a
/// sender announcing billions must not make us allocate them (its stream is refused anyway, as no
/// pipeline declares that many).
const MAX_CHANNELS: usize = 1 << 16;

impl StreamMetadata {
    /// Reads a full stream info (from an inlet's `info()`: resolver results carry no `desc`).
    pub fn read(info: &mut StreamInfo) -> StreamMetadata {
        let channel_count = info.channel_count().max(0) as usize;
        let mut channels = Vec::new();
        let desc = info.desc();
        let mut channel = desc.child("channels").child("channel");
        while channel.is_valid() && !channel.empty() && channels.len() < channel_count {
            channels.push(Channel::new(
                channel.child_value_named("label"),
                channel.child_value_named("unit"),
                channel.child_value_named("type"),
            ));
            channel = channel.next_sibling_named("channel");
        }
        if channels.len() != channel_count && channel_count <= MAX_CHANNELS {
            channels = (0..channel_count)
                .map(|_| Channel::new("", "", ""))
                .collect();
        }
        StreamMetadata {
            name: info.stream_name(),
            kind: info.stream_type(),
            source_id: info.source_id(),
            hostname: info.hostname(),
            channel_count,
            channels,
            format: format_name(info.channel_format()).to_string(),
            nominal_srate: info.nominal_srate(),
        }
    }

    /// Whether the sender labelled its channels.
    pub fn has_labels(&self) -> bool {
        self.channels.iter().any(|c| !c.label.is_empty())
    }

    /// The text of the element at `path` (`a/b/c`) inside `desc`, or `None` when absent or empty.
    pub fn desc_value(info: &mut StreamInfo, path: &str) -> Option<String> {
        let mut element = info.desc();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            element = element.child(part);
            if !element.is_valid() || element.empty() {
                return None;
            }
        }
        Some(element.child_value()).filter(|v| !v.is_empty())
    }

    /// One line: name, type, source_id, host, channels, format, rate (escaped for messages:
    /// these come from the network, see `crate::display`).
    pub fn summary(&self) -> String {
        let rate = if self.nominal_srate > 0.0 {
            format!("{} Hz", self.nominal_srate)
        } else {
            "irregular".to_string()
        };
        let line = format!(
            "\"{}\" type={} source_id={} host={} {} ch {} {rate}",
            self.name,
            if self.kind.is_empty() {
                "-"
            } else {
                &self.kind
            },
            if self.source_id.is_empty() {
                "-"
            } else {
                &self.source_id
            },
            self.hostname,
            self.channel_count,
            self.format,
        );
        crate::display::escaped(&line).into_owned()
    }
}

/// What identifies a stream across outlet restarts: its `source_id` with its name and type (a
/// device may publish several streams under one `source_id`, as muselsl does for EEG, PPG and
/// accelerometer), or its uid when it has no `source_id` (then a restart is a new stream).
pub fn stream_key(info: &StreamInfo) -> String {
    match info.source_id() {
        id if id.is_empty() => format!("uid:{}", info.uid()),
        id => format!(
            "{id}\u{1f}{}\u{1f}{}",
            info.stream_name(),
            info.stream_type()
        ),
    }
}

/// A one-line summary of a resolver result (which has no `desc`), escaped like
/// [`StreamMetadata::summary`].
pub fn short_summary(info: &StreamInfo) -> String {
    let rate = info.nominal_srate();
    let line = format!(
        "\"{}\" type={} source_id={} host={} {} ch {} {}",
        info.stream_name(),
        info.stream_type(),
        info.source_id(),
        info.hostname(),
        info.channel_count(),
        format_name(info.channel_format()),
        if rate > 0.0 {
            format!("{rate} Hz")
        } else {
            "irregular".to_string()
        }
    );
    crate::display::escaped(&line).into_owned()
}

/// Every stream visible on the network within `wait_s` seconds, as one-line summaries.
pub fn visible_streams(wait_s: f64) -> Vec<String> {
    let mut lines: Vec<String> = lsl::resolve_streams(wait_s)
        .unwrap_or_default()
        .iter()
        .map(short_summary)
        .collect();
    lines.sort();
    lines
}

/// Every stream visible within `wait_s` seconds, a line each (indented), or a line saying none is
/// and what to check: what a "no matching stream" error lists.
pub fn visible_streams_listing(wait_s: f64) -> String {
    let visible = visible_streams(wait_s);
    if visible.is_empty() {
        return "  (none: no LSL stream is visible; check that the outlets run and that LSLAPICFG allows this network)".to_string();
    }
    visible
        .iter()
        .map(|s| format!("  {s}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What `heloflow streams` saw: every stream's metadata, and which streams did not send their
/// full metadata (`desc`) in time, so theirs comes from the resolver's short info.
#[derive(Clone, Debug, Default)]
pub struct NetworkView {
    /// Every stream, sorted by type, name and source_id.
    pub streams: Vec<StreamMetadata>,
    /// Names of the streams whose full metadata did not arrive before the deadline.
    pub incomplete: Vec<String>,
}

/// An inlet handed to the thread that reads its stream's metadata.
struct OwnedInlet(StreamInlet);

// SAFETY: a `StreamInlet` is a liblsl inlet handle and a channel count, with no Rust-side shared
// state (no `Rc`); liblsl's inlets may be used from any thread, and this one is used by one only.
unsafe impl Send for OwnedInlet {}

/// Seconds `describe_network` gives streams, after resolving, to send their full metadata.
pub const METADATA_WAIT_S: f64 = 2.0;

/// Every stream that answers within `wait_s` seconds (at least 0.1), with its full metadata read
/// within [`METADATA_WAIT_S`] more: every stream's `desc` at once, through short-lived inlets on
/// a thread each, since resolver results carry no `desc`. A stream that does not answer in time
/// (its sender stalled or vanished after resolving) is listed from its short info and named in
/// `incomplete`; its thread is left to finish or die with the process.
pub fn describe_network(wait_s: f64) -> NetworkView {
    let resolved = lsl::resolve_streams(wait_s.max(0.1)).unwrap_or_default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(METADATA_WAIT_S);
    let mut short: Vec<StreamMetadata> = Vec::with_capacity(resolved.len());
    let (sender, replies) = crossbeam_channel::unbounded();
    for (index, info) in resolved.iter().enumerate() {
        short.push(StreamMetadata::read(&mut info.clone()));
        // The resolver's address lives outside the info's XML, so the inlet is made here.
        let Ok(inlet) = StreamInlet::new(info, 1, 0, false) else {
            continue;
        };
        let inlet = OwnedInlet(inlet);
        let sender = sender.clone();
        let wait_s = deadline
            .saturating_duration_since(std::time::Instant::now())
            .as_secs_f64();
        let spawned = std::thread::Builder::new()
            .name("lsl metadata".to_string())
            .spawn(move || {
                let inlet = inlet;
                if let Ok(mut full) = inlet.0.info(wait_s.max(0.01)) {
                    let _ = sender.send((index, StreamMetadata::read(&mut full)));
                }
            });
        drop(spawned);
    }
    drop(sender);
    let mut full: Vec<Option<StreamMetadata>> = vec![None; short.len()];
    let mut pending = short.len();
    while pending > 0 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match replies.recv_timeout(left) {
            Ok((index, meta)) => {
                full[index] = Some(meta);
                pending -= 1;
            }
            Err(_) => break,
        }
    }
    let mut view = NetworkView::default();
    for (meta, short) in full.into_iter().zip(short) {
        match meta {
            Some(meta) => view.streams.push(meta),
            None => {
                view.incomplete.push(short.name.clone());
                view.streams.push(short);
            }
        }
    }
    view.streams
        .sort_by(|a, b| (&a.kind, &a.name, &a.source_id).cmp(&(&b.kind, &b.name, &b.source_id)));
    view.incomplete.sort();
    view
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn recorded_headers_become_full_stream_infos() {
        let header = "<?xml version=\"1.0\"?><info><name>SendDataC</name><type>EEG</type><channel_count>2</channel_count><nominal_srate>10</nominal_srate><channel_format>int16</channel_format><desc><channels><channel><label>C3</label></channel><channel><label>C4</label></channel></channels><subject>P01</subject></desc></info>";
        let parsed = crate::xdf::header::StreamInfo::parse(header, 0).expect("a header");
        let mut info = StreamInfo::from_xml(&full_info_xml(&parsed)).expect("liblsl reads it");
        assert_eq!(info.stream_name(), "SendDataC");
        assert_eq!(info.channel_format(), lsl::ChannelFormat::Int16);
        assert_eq!(info.nominal_srate(), 10.0);
        assert!(info.matches_query("type='EEG' and desc/subject='P01'"));
        let meta = StreamMetadata::read(&mut info);
        assert_eq!(meta.channels[1].label, "C4");
    }

    /// A stream info XML with `fields` in place of the usual ones and `desc` as its `desc`.
    fn info_xml(fields: &[(&str, String)], desc: &str) -> String {
        let mut xml = String::from("<?xml version=\"1.0\"?>\n<info>");
        for (name, value) in fields {
            xml.push_str(&format!("<{name}>{value}</{name}>"));
        }
        // The rest of what liblsl 1.13 needs to read an info at all.
        xml.push_str("<version>1.1</version><created_at>0</created_at><uid>u-1</uid><session_id>default</session_id><hostname>h</hostname><v4address></v4address><v4data_port>0</v4data_port><v4service_port>0</v4service_port><v6address></v6address><v6data_port>0</v6data_port><v6service_port>0</v6service_port>");
        xml.push_str(&format!("<desc>{desc}</desc></info>"));
        xml
    }

    /// Everything heloflow reads from a stream info, so a panic anywhere in it shows.
    fn read_everything(xml: &str, path: &str) {
        if let Ok(mut info) = StreamInfo::from_xml(xml) {
            let meta = StreamMetadata::read(&mut info);
            assert!(meta.channels.len() <= meta.channel_count.max(MAX_CHANNELS));
            let _ = (meta.summary(), meta.has_labels(), stream_key(&info));
            let _ = short_summary(&info);
            let _ = StreamMetadata::desc_value(&mut info, path);
            let _ = serde_json::to_string(&meta);
        }
        if let Ok(header) = crate::xdf::header::StreamInfo::parse(xml, 0) {
            let _ = StreamInfo::from_xml(&full_info_xml(&header)).map(|mut info| {
                StreamMetadata::read(&mut info);
            });
        }
    }

    fn field_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "\\PC{0,12}",
            "[0-9]{1,12}",
            Just("-1".to_string()),
            Just("2147483647".to_string()),
            Just("99999999999999999999".to_string()),
            Just("nan".to_string()),
            Just("1e999".to_string()),
            Just("&amp;&lt;<x/>".to_string()),
            Just("<![CDATA[]]>".to_string()),
        ]
    }

    proptest::proptest! {
        /// Any text as a stream info: liblsl refuses it or heloflow reads it, never a panic.
        #[test]
        fn arbitrary_text_as_stream_info_never_panics(xml in "\\PC{0,200}", path in "\\PC{0,12}") {
            read_everything(&xml, &path);
        }

        /// Well-formed-looking infos with hostile field values, channel lists and desc nesting.
        #[test]
        fn hostile_stream_infos_never_panic(
            values in proptest::collection::vec(field_text(), 6),
            drop in proptest::collection::vec(proptest::bool::ANY, 6),
            channels in proptest::collection::vec(
                (field_text(), field_text(), proptest::bool::ANY), 0..6),
            path in prop_oneof![Just("subject".to_string()), "[a-z/]{0,10}"],
        ) {
            let names = ["name", "type", "channel_count", "nominal_srate", "channel_format", "source_id"];
            let fields: Vec<(&str, String)> = names
                .iter()
                .zip(&values)
                .zip(&drop)
                .filter(|(_, gone)| !**gone)
                .map(|((name, value), _)| (*name, value.clone()))
                .collect();
            let mut desc = String::from("<channels>");
            for (label, unit, nested) in &channels {
                if *nested {
                    desc.push_str(&format!("<channel><label><x>{label}</x></label></channel>"));
                } else {
                    desc.push_str(&format!("<channel><label>{label}</label><unit>{unit}</unit></channel>"));
                }
            }
            desc.push_str("</channels><subject>P01</subject>");
            read_everything(&info_xml(&fields, &desc), &path);
        }
    }

    #[test]
    fn a_stream_announcing_billions_of_channels_allocates_none() {
        let xml = info_xml(
            &[
                ("name", "x".into()),
                ("type", "EEG".into()),
                ("channel_count", "2147483647".into()),
                ("nominal_srate", "100".into()),
                ("channel_format", "float32".into()),
                ("source_id", "x".into()),
            ],
            "",
        );
        let mut info = StreamInfo::from_xml(&xml).expect("liblsl takes it");
        assert_eq!(info.channel_count(), i32::MAX);
        let meta = StreamMetadata::read(&mut info);
        assert!(meta.channels.len() <= MAX_CHANNELS);
    }

    #[test]
    fn metadata_reads_desc_channels() {
        let mut info = StreamInfo::new("t", "EEG", 2, 100.0, lsl::ChannelFormat::Float32, "id1")
            .expect("stream info");
        let mut channels = info.desc().append_child("channels");
        for label in ["C3", "C4"] {
            let mut channel = channels.append_child("channel");
            channel.append_child_value("label", label);
            channel.append_child_value("unit", "microvolts");
            channel.append_child_value("type", "EEG");
        }
        info.desc().append_child_value("subject", "P07");
        let meta = StreamMetadata::read(&mut info);
        assert_eq!(meta.channels[1], Channel::new("C4", "microvolts", "EEG"));
        assert_eq!(meta.format, "float32");
        assert_eq!(
            StreamMetadata::desc_value(&mut info, "subject").as_deref(),
            Some("P07")
        );
        assert_eq!(StreamMetadata::desc_value(&mut info, "missing/x"), None);
        assert!(meta.summary().contains("source_id=id1"));
    }
}
