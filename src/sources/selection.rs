//! Choosing streams and naming their subjects: the options the `lsl` and `xdf` sources share, so a
//! pipeline moves from live streams to their recording by changing the source's `kind`.
//!
//! ```
//! use heloflow::sources::selection::{StreamFields, SubjectFrom, SubjectRule};
//!
//! let rule = SubjectRule { from: SubjectFrom::Desc("subject".into()), table: Default::default() };
//! let fields = StreamFields { name: "amp", source_id: "dsi-4021", hostname: "lab1", desc: &|path| (path == "subject").then(|| "P07".to_string()) };
//! assert_eq!(rule.subject(&fields).unwrap(), "P07");
//! ```

use std::collections::BTreeMap;

use crate::config::document::Node;
use crate::config::options::Options;
use crate::stream::{Channel, ChannelFormat, Modality, Rate};

/// Most channels a source may declare (and an LSL stream's metadata may list).
pub const MAX_CHANNELS: usize = 100_000;

/// Most subjects one pipeline component (a simulator, a source's `subjects` table, an `lsl`
/// sink's `subjects`) or `heloflow demo`/`simulate` may name: each subject gets its own windows,
/// filters and outputs, so this bounds the memory a run can ask for.
pub const MAX_SUBJECTS: usize = 10_000;

/// Declared regular sampling rates, Hz (0 declares an irregular stream): slower than a sample
/// every 1000 s would put a subject's samples beyond event time's range within a few years.
pub const RATE_RANGE_HZ: std::ops::RangeInclusive<f64> = 1e-3..=1e6;

/// Escapes a value for an XPath string literal in single quotes.
pub fn xpath_literal(value: &str) -> String {
    if value.contains('\'') {
        format!(
            "concat('{}')",
            value.split('\'').collect::<Vec<_>>().join("', \"'\", '")
        )
    } else {
        format!("'{value}'")
    }
}

/// The stream's `type` with ASCII letters in lower case, in XPath 1.0 (which has no
/// `lower-case`): `type = "EEG"` matches outlets of type `eeg` (MNE-LSL's `PlayerLSL`), `EEG` and
/// `Eeg` alike. liblsl compares strings exactly, so this is done in the predicate itself, which
/// every outlet evaluates (liblsl 1.13 and later use pugixml's full XPath 1.0).
pub const TYPE_ANY_CASE: &str =
    "translate(type,'ABCDEFGHIJKLMNOPQRSTUVWXYZ','abcdefghijklmnopqrstuvwxyz')";

/// A predicate as messages show it: the any-case type comparison reads `type (any case)=`.
pub fn readable_predicate(predicate: &str) -> String {
    predicate.replace(&format!("{TYPE_ANY_CASE}="), "type (any case)=")
}

/// Which streams a source takes: an XPath predicate over stream infos, as liblsl evaluates it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selection {
    /// `name`, `type`, `source_id`, `hostname` and `predicate` joined with `and`.
    pub predicate: String,
    /// The `type` asked for, if any (it also names the modality).
    pub declared_type: Option<String>,
}

impl Selection {
    /// Reads `name`, `type`, `source_id`, `hostname` and `predicate`; `what` names the source in
    /// the message when none is given and `required` is set.
    pub fn parse(options: &mut Options, what: &str, required: bool) -> Self {
        let mut fields: [Option<String>; 4] = Default::default();
        for (slot, key) in fields
            .iter_mut()
            .zip(["name", "type", "source_id", "hostname"])
        {
            *slot = options.string(key).map(|v| v.into_inner());
        }
        let spanned = options.string("predicate");
        if let Some(spanned) = &spanned {
            if let Err(error) = crate::sources::lsl::xpath::check(spanned.get_ref()) {
                let message = format!("this is not a valid LSL predicate (XPath 1.0): {error}");
                let help = "liblsl would match no stream with it; e.g. predicate = \"type='EEG' and starts-with(name, 'Muse')\"";
                let (text, span) = (spanned.get_ref(), spanned.span());
                // Point at the character itself when the value is written without escapes.
                if span.len() == text.len() + 2 {
                    let offset = text
                        .char_indices()
                        .nth(error.column - 1)
                        .map_or(text.len(), |(at, _)| at);
                    let at = span.start + 1 + offset;
                    options.error_at_span(at..at + 1, message, help);
                } else {
                    options.error_at("predicate", message, help);
                }
            }
        }
        let predicate = spanned.map(|p| p.into_inner());
        let [name, kind, source_id, hostname] = fields;
        let selection = Selection::from_fields(
            name.as_deref(),
            kind.as_deref(),
            source_id.as_deref(),
            hostname.as_deref(),
            predicate.as_deref(),
        );
        if selection.is_empty() && required {
            options.error_at(
                "type",
                format!("{what} needs something to match streams by"),
                "add type = \"EEG\" (or name, source_id, hostname, or a full predicate = \"...\")",
            );
        }
        selection
    }

    /// The selection of streams with these fields (each given one must equal; `type` in any
    /// case of its ASCII letters) that also satisfy `predicate`: what the `lsl` source options and
    /// the command-line flags of `record` and `replay` say.
    pub fn from_fields(
        name: Option<&str>,
        kind: Option<&str>,
        source_id: Option<&str>,
        hostname: Option<&str>,
        predicate: Option<&str>,
    ) -> Self {
        let mut clauses: Vec<String> = [
            ("name", name),
            ("type", kind),
            ("source_id", source_id),
            ("hostname", hostname),
        ]
        .into_iter()
        .filter_map(|(key, value)| {
            value.map(|v| match key {
                "type" => format!("{TYPE_ANY_CASE}={}", xpath_literal(&v.to_ascii_lowercase())),
                _ => format!("{key}={}", xpath_literal(v)),
            })
        })
        .collect();
        if let Some(predicate) = predicate {
            clauses.push(format!("({predicate})"));
        }
        Selection {
            predicate: clauses.join(" and "),
            declared_type: kind.map(str::to_string),
        }
    }

    /// Whether any matching option was given.
    pub fn is_empty(&self) -> bool {
        self.predicate.is_empty()
    }

    /// Whether the stream described by its full info XML matches, evaluated by liblsl itself as a
    /// resolver would; no predicate matches all. liblsl 1.13 reads only complete stream infos
    /// (every field of `to_xml()`, a non-empty uid); anything else matches nothing.
    pub fn matches_xml(&self, xml: &str) -> bool {
        self.predicate.is_empty()
            || lsl::StreamInfo::from_xml(xml)
                .map(|info| info.matches_query(&self.predicate))
                .unwrap_or(false)
    }
}

/// Which streams a command takes (`heloflow record`, `heloflow replay`), as the `lsl` source's
/// options say it; all streams when none is given.
#[derive(clap::Args, Clone, Debug, Default, PartialEq)]
pub struct SelectArgs {
    /// Streams of this content type (`EEG`, `GSR`, `Markers`...), in any case.
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Streams of this name.
    #[arg(long)]
    pub name: Option<String>,
    /// The stream with this source_id.
    #[arg(long)]
    pub source_id: Option<String>,
    /// Streams sent from this host.
    #[arg(long)]
    pub hostname: Option<String>,
    /// An XPath predicate over the stream info, as liblsl evaluates it (ANDed with the above).
    #[arg(long)]
    pub predicate: Option<String>,
}

impl SelectArgs {
    /// The selection the flags describe; an empty flag is an error naming it.
    pub fn selection(&self) -> Result<Selection, String> {
        for (flag, value) in [
            ("--type", &self.kind),
            ("--name", &self.name),
            ("--source-id", &self.source_id),
            ("--hostname", &self.hostname),
            ("--predicate", &self.predicate),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(format!("error: {flag} must not be empty"));
            }
        }
        if let Some(Err(error)) = self
            .predicate
            .as_deref()
            .map(crate::sources::lsl::xpath::check)
        {
            return Err(format!(
                "error: --predicate is not a valid LSL predicate (XPath 1.0): {error}\n  {}\n  {}^",
                self.predicate.as_deref().unwrap_or_default(),
                " ".repeat(error.column.saturating_sub(1))
            ));
        }
        Ok(Selection::from_fields(
            self.name.as_deref(),
            self.kind.as_deref(),
            self.source_id.as_deref(),
            self.hostname.as_deref(),
            self.predicate.as_deref(),
        ))
    }
}

/// What a source declares about its streams; each part is `None` when not given.
#[derive(Clone, Debug, PartialEq)]
pub struct Declaration {
    /// What the streams measure (`modality`, or what `type` names).
    pub modality: Option<Modality>,
    /// Channels and whether they were given as labels (true) or only as a count.
    pub channels: Option<(Vec<Channel>, bool)>,
    /// Unit of every channel.
    pub unit: String,
    /// Channel format.
    pub format: Option<ChannelFormat>,
    /// Nominal rate.
    pub rate: Option<Rate>,
}

/// Valid modality names, for messages.
pub fn modality_names() -> String {
    Modality::ALL
        .iter()
        .map(|m| m.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Declaration {
    /// Reads `modality`, `unit`, `channels` (labels or a count), `format` and `rate`, checking
    /// them against each other (a markers stream carries strings, nothing else does).
    pub fn parse(options: &mut Options, selection: &Selection) -> Self {
        let modality = match options.string("modality") {
            Some(name) => Some(Modality::from_name(name.get_ref()).unwrap_or_else(|| {
                options.error_at(
                    "modality",
                    format!("unknown modality \"{}\"", name.get_ref()),
                    format!("valid: {}", modality_names()),
                );
                Modality::Features
            })),
            None => selection.declared_type.as_deref().map(|kind| {
                Modality::from_content_type(kind).unwrap_or_else(|| {
                    options.error_at(
                        "type",
                        format!("heloflow does not know what the stream type \"{kind}\" measures"),
                        format!("add modality = \"eeg\" (valid: {})", modality_names()),
                    );
                    Modality::Features
                })
            }),
        };
        let markers = modality == Some(Modality::Markers);
        let unit = options
            .string("unit")
            .map(|u| u.into_inner())
            .unwrap_or_default();
        let kind = modality.map_or("", |m| m.lsl_type()).to_string();
        let channels = options.raw("channels").map(|node| match node.get_ref() {
            Node::Int(n) if (1..=MAX_CHANNELS as i64).contains(n) => (
                (1..=*n)
                    .map(|i| Channel::new(format!("ch{i}"), unit.clone(), kind.clone()))
                    .collect(),
                false,
            ),
            Node::Array(items) if !items.is_empty() && items.len() <= MAX_CHANNELS => {
                let mut labels: Vec<Channel> = Vec::with_capacity(items.len());
                for item in items {
                    match item.get_ref() {
                        Node::Str(s) if labels.iter().any(|c| &c.label == s) => {
                            options.error_at_span(
                                item.span(),
                                format!("channel \"{s}\" is declared twice in `channels`"),
                                "give every channel its own label",
                            );
                        }
                        Node::Str(s) if !s.is_empty() => {
                            labels.push(Channel::new(s.clone(), unit.clone(), kind.clone()));
                        }
                        _ => options.error_at_span(
                            item.span(),
                            "`channels` must be a list of non-empty labels or a count",
                            "for example channels = [\"C3\", \"C4\"] or channels = 2",
                        ),
                    }
                }
                (labels, true)
            }
            other => {
                options.error_at(
                    "channels",
                    format!(
                        "`channels` must be a count (1 to {MAX_CHANNELS}) or a list of up to {MAX_CHANNELS} labels, found {}",
                        other.describe()
                    ),
                    "for example channels = [\"C3\", \"C4\"] or channels = 2",
                );
                (vec![Channel::new("ch1", unit.clone(), kind.clone())], false)
            }
        });
        let format = options.string("format").and_then(|f| {
            let name = f.into_inner();
            match ChannelFormat::from_lsl_name(&name) {
                Some(ChannelFormat::String) if modality.is_some() && !markers => {
                    options.error_at(
                        "format",
                        format!(
                            "a {} stream cannot be of format string",
                            modality.map_or("", |m| m.name())
                        ),
                        "string streams are markers: set modality = \"markers\"",
                    );
                    None
                }
                Some(other) if markers && other.is_numeric() => {
                    options.error_at(
                        "format",
                        "a markers stream carries strings",
                        "leave `format` out, or use format = \"string\"",
                    );
                    None
                }
                Some(format) => Some(format),
                None => {
                    options.error_at(
                        "format",
                        format!("unknown channel format \"{name}\""),
                        "valid: float32, double64, int8, int16, int32, int64, string",
                    );
                    None
                }
            }
        });
        let rate = options.number("rate").map(|hz| match hz {
            0.0 => Rate::Irregular,
            hz if RATE_RANGE_HZ.contains(&hz) => Rate::Regular(hz),
            hz => {
                options.error_at(
                    "rate",
                    format!(
                        "`rate` must be a rate from {} to {} Hz, or 0 (irregular), found {hz}",
                        RATE_RANGE_HZ.start(),
                        RATE_RANGE_HZ.end()
                    ),
                    "for example rate = 256",
                );
                Rate::Irregular
            }
        });
        Declaration {
            modality,
            channels,
            unit,
            format,
            rate,
        }
    }
}

/// Which field of a stream's info names its subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubjectFrom {
    /// The stream's `source_id` (default).
    SourceId,
    /// The stream's `name`.
    Name,
    /// The `hostname` of the machine that runs the outlet.
    Hostname,
    /// The text of an element inside `desc` (`desc:subject`, `desc:acquisition/subject`).
    Desc(String),
}

/// The fields of one stream's info a subject can be taken from.
pub struct StreamFields<'a> {
    /// Stream name.
    pub name: &'a str,
    /// The stream's `source_id`.
    pub source_id: &'a str,
    /// The sending machine.
    pub hostname: &'a str,
    /// The text at a path inside `desc`.
    pub desc: &'a dyn Fn(&str) -> Option<String>,
}

/// How a stream's subject is found: a field of its info, optionally mapped through a table.
#[derive(Clone, Debug, PartialEq)]
pub struct SubjectRule {
    /// The field.
    pub from: SubjectFrom,
    /// Field value -> subject id (empty: the field's value is the id).
    pub table: BTreeMap<String, String>,
}

impl SubjectRule {
    /// Reads `subject_from` and `subjects`.
    pub fn parse(options: &mut Options) -> Self {
        let from = match options.string("subject_from") {
            None => SubjectFrom::SourceId,
            Some(rule) => match rule.get_ref().as_str() {
                "source_id" => SubjectFrom::SourceId,
                "name" => SubjectFrom::Name,
                "hostname" => SubjectFrom::Hostname,
                text => match text.strip_prefix("desc:") {
                    Some(path) if !path.is_empty() => SubjectFrom::Desc(path.to_string()),
                    _ => {
                        options.error_at(
                            "subject_from",
                            format!("unknown subject rule \"{text}\""),
                            "valid: \"source_id\", \"name\", \"hostname\", \"desc:<path>\" (e.g. \"desc:subject\")",
                        );
                        SubjectFrom::SourceId
                    }
                },
            },
        };
        let mut table: BTreeMap<String, String> = BTreeMap::new();
        if let Some(node) = options.raw("subjects") {
            match node.get_ref() {
                Node::Table(entries) if entries.len() > MAX_SUBJECTS => options.error_at_span(
                    node.span(),
                    format!(
                        "`subjects` maps {} streams, more than {MAX_SUBJECTS}",
                        entries.len()
                    ),
                    "split the recording over several pipelines",
                ),
                Node::Table(entries) => {
                    for (key, value) in entries {
                        match value.get_ref() {
                            Node::Str(id) if table.values().any(|known| known == id) => {
                                let other = table.iter().find(|(_, known)| *known == id);
                                let other = other.map_or("", |(field, _)| field.as_str());
                                options.error_at_span(
                                    value.span(),
                                    format!("subject \"{id}\" is named by both \"{other}\" and \"{}\": their samples would merge into one subject", key.get_ref()),
                                    "give every stream its own subject id",
                                );
                            }
                            Node::Str(id) if !id.is_empty() => {
                                table.insert(key.get_ref().clone(), id.clone());
                            }
                            _ => options.error_at_span(
                                value.span(),
                                "each entry of `subjects` maps a stream field to a subject id string",
                                "for example subjects = { \"dsi-4021\" = \"P01\" }",
                            ),
                        }
                    }
                }
                other => options.error_at_span(
                    node.span(),
                    format!("`subjects` must be a table, found {}", other.describe()),
                    "for example subjects = { \"dsi-4021\" = \"P01\" }",
                ),
            }
        }
        SubjectRule { from, table }
    }

    /// The subject ids the table names, sorted, without repeats (empty without a table).
    pub fn known_subjects(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.table.values().cloned().collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The subject a stream feeds, or why it has none.
    pub fn subject(&self, fields: &StreamFields) -> Result<String, String> {
        let (what, key) = match &self.from {
            SubjectFrom::SourceId => ("source_id".to_string(), fields.source_id.to_string()),
            SubjectFrom::Name => ("name".to_string(), fields.name.to_string()),
            SubjectFrom::Hostname => ("hostname".to_string(), fields.hostname.to_string()),
            SubjectFrom::Desc(path) => (
                format!("desc/{path}"),
                (fields.desc)(path).unwrap_or_default(),
            ),
        };
        if key.is_empty() {
            return Err(format!(
                "it has no {what} to take the subject from; set `subject_from` to a field it has"
            ));
        }
        if self.table.is_empty() {
            return Ok(key);
        }
        self.table.get(&key).cloned().ok_or_else(|| {
            format!(
                "its {what} \"{key}\" is not in the `subjects` table (which has: {})",
                self.table.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xpath_literals_survive_quotes() {
        assert_eq!(xpath_literal("EEG"), "'EEG'");
        assert_eq!(xpath_literal("a'b"), "concat('a', \"'\", 'b')");
    }

    #[test]
    fn predicates_are_evaluated_by_liblsl_on_stream_headers() {
        let xml = "<?xml version=\"1.0\"?><info><name>amp-1</name><type>EEG</type><channel_count>2</channel_count><channel_format>float32</channel_format><source_id>dev'1</source_id><nominal_srate>100</nominal_srate><version>1.1</version><created_at>0</created_at><uid>u1</uid><session_id>default</session_id><hostname>lab1</hostname><v4address/><v4data_port>0</v4data_port><v4service_port>0</v4service_port><v6address/><v6data_port>0</v6data_port><v6service_port>0</v6service_port><desc><subject>P01</subject></desc></info>";
        let select = |predicate: &str| Selection {
            predicate: predicate.to_string(),
            declared_type: None,
        };
        assert!(select("").matches_xml(xml));
        assert!(select("type='EEG'").matches_xml(xml));
        assert!(!select("type='GSR'").matches_xml(xml));
        assert!(select("starts-with(name,'amp') and desc/subject='P01'").matches_xml(xml));
        for (kind, matches) in [("EEG", true), ("eeg", true), ("Eeg", true), ("EE", false)] {
            let typed = Selection::from_fields(None, Some(kind), None, None, None);
            assert_eq!(typed.matches_xml(xml), matches, "type {kind}");
            assert_eq!(typed.declared_type.as_deref(), Some(kind));
        }
        let typed = Selection::from_fields(None, Some("eeg"), None, None, Some("name='amp-1'"));
        assert_eq!(
            readable_predicate(&typed.predicate),
            "type (any case)='eeg' and (name='amp-1')"
        );
        let quoted = format!("source_id={}", xpath_literal("dev'1"));
        assert!(select(&quoted).matches_xml(xml));
        assert!(!select("((").matches_xml(xml));
    }

    #[test]
    fn subjects_map_through_the_table() {
        let rule = SubjectRule {
            from: SubjectFrom::SourceId,
            table: [("dev-1".to_string(), "P01".to_string())].into(),
        };
        let fields = |source_id| StreamFields {
            name: "n",
            source_id,
            hostname: "h",
            desc: &|_| None,
        };
        assert_eq!(rule.subject(&fields("dev-1")).unwrap(), "P01");
        let error = rule.subject(&fields("dev-2")).unwrap_err();
        assert!(error.contains("not in the `subjects` table"), "{error}");
        let error = rule.subject(&fields("")).unwrap_err();
        assert!(error.contains("no source_id"), "{error}");
    }
}
