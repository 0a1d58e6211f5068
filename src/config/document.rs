//! The pipeline file as written: a TOML document parsed into values that remember where they came from.
//!
//! Every value keeps its byte span so that later checks (unknown option, missing input, cycle, wrong
//! port type) can point at the exact text in the file.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

use super::diagnostic::Diagnostic;
use super::source_text::SourceText;

/// A TOML value with the spans of all its parts.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// An array of spanned values.
    Array(Vec<Spanned<Node>>),
    /// A table: entries in file order, each key with its own span.
    Table(Vec<(Spanned<String>, Spanned<Node>)>),
    /// A TOML date or time (never valid in a pipeline file, kept to report it).
    Datetime,
}

impl Node {
    /// What the value is, for messages ("a string", "an integer").
    pub fn describe(&self) -> String {
        match self {
            Node::Str(s) => format!("the string \"{s}\""),
            Node::Int(i) => format!("the integer {i}"),
            Node::Float(f) => format!("the number {f}"),
            Node::Bool(b) => format!("the boolean {b}"),
            Node::Array(_) => "an array".to_string(),
            Node::Table(_) => "a table".to_string(),
            Node::Datetime => "a date/time".to_string(),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Node, E> {
        i64::try_from(v)
            .map(Node::Int)
            .map_err(|_| E::custom("integer too large"))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            if key.get_ref().starts_with("$__toml_private") {
                let _ = map.next_value::<serde::de::IgnoredAny>()?;
                return Ok(Node::Datetime);
            }
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push((key, value));
        }
        entries.sort_by_key(|(key, _)| key.span().start);
        Ok(Node::Table(entries))
    }
}

/// One `[sources.NAME]`, `[operators.NAME]` or `[sinks.NAME]` table.
#[derive(Clone, Debug)]
pub struct ComponentTable {
    /// The component's name with the span of the name in its header.
    pub name: Spanned<String>,
    /// The whole table's span.
    pub span: Range<usize>,
    /// Its entries in file order.
    pub entries: Vec<(Spanned<String>, Spanned<Node>)>,
}

/// The three sections of a pipeline file and its optional `[pipeline]` header.
#[derive(Clone, Debug, Default)]
pub struct Document {
    /// `[pipeline]` entries (name, description).
    pub header: Vec<(Spanned<String>, Spanned<Node>)>,
    /// `[sources.*]` tables in file order.
    pub sources: Vec<ComponentTable>,
    /// `[operators.*]` tables in file order.
    pub operators: Vec<ComponentTable>,
    /// `[sinks.*]` tables in file order.
    pub sinks: Vec<ComponentTable>,
    /// `[server]` entries with the table's span, when the file has one.
    pub server: Option<(Range<usize>, Entries)>,
}

/// A table's entries in file order, each key with its own span.
pub type Entries = Vec<(Spanned<String>, Spanned<Node>)>;

/// The top-level sections a pipeline file may contain.
pub const SECTIONS: [&str; 5] = ["pipeline", "sources", "operators", "sinks", "server"];

impl Document {
    /// Parses a pipeline file's text; TOML syntax errors and misplaced sections become diagnostics.
    pub fn parse(source: &SourceText) -> Result<Document, Vec<Diagnostic>> {
        let root: Spanned<Node> = toml::from_str(&source.text).map_err(|err| {
            let span = err.span().unwrap_or(0..0);
            vec![Diagnostic::new(
                source,
                span,
                format!("invalid TOML: {}", err.message().trim()),
            )
            .with_help("see README.md, section \"Pipeline files\", for the syntax")]
        })?;
        let Node::Table(entries) = root.into_inner() else {
            return Err(vec![Diagnostic::new(
                source,
                0..0,
                "a pipeline file must be a TOML table",
            )]);
        };
        let mut doc = Document::default();
        let mut errors = Vec::new();
        for (key, value) in entries {
            let span = value.span();
            match (key.get_ref().as_str(), value.into_inner()) {
                ("pipeline", Node::Table(header)) => doc.header = header,
                ("server", Node::Table(entries)) => doc.server = Some((span, entries)),
                (section @ ("sources" | "operators" | "sinks"), Node::Table(tables)) => {
                    let list = match section {
                        "sources" => &mut doc.sources,
                        "operators" => &mut doc.operators,
                        _ => &mut doc.sinks,
                    };
                    for (name, table) in tables {
                        let table_span = table.span();
                        match table.into_inner() {
                            Node::Table(entries) => list.push(ComponentTable {
                                name,
                                span: table_span,
                                entries,
                            }),
                            other => errors.push(
                                Diagnostic::new(
                                    source,
                                    table_span,
                                    format!(
                                        "`{section}.{}` must be a table, found {}",
                                        name.get_ref(),
                                        other.describe()
                                    ),
                                )
                                .with_help(format!(
                                    "write it as a section: [{section}.{}]",
                                    name.get_ref()
                                )),
                            ),
                        }
                    }
                }
                (section, other) if SECTIONS.contains(&section) => errors.push(Diagnostic::new(
                    source,
                    span,
                    format!("`{section}` must be a table, found {}", other.describe()),
                )),
                (unknown, _) => errors.push(
                    Diagnostic::new(
                        source,
                        key.span(),
                        format!("unknown top-level section `{unknown}`"),
                    )
                    .with_help(suggest_or_list(unknown, &SECTIONS)),
                ),
            }
        }
        if errors.is_empty() {
            Ok(doc)
        } else {
            Err(errors)
        }
    }
}

/// "did you mean `x`?" when a close match exists, otherwise the list of valid names.
pub fn suggest_or_list(given: &str, valid: &[&str]) -> String {
    let closest = valid
        .iter()
        .map(|candidate| (edit_distance(given, candidate), *candidate))
        .min();
    let listing = valid
        .iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match closest {
        Some((distance, candidate)) if distance <= 2.max(given.len() / 3) => {
            format!("did you mean `{candidate}`? valid: {listing}")
        }
        _ if valid.is_empty() => "nothing is valid here".to_string(),
        _ => format!("valid: {listing}"),
    }
}

/// Levenshtein distance between two short strings.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b_chars: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b_chars.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b_chars.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b_chars.len()]
}

/// Collects table entries into a map by key (used by option readers).
pub fn entries_by_key(
    entries: &[(Spanned<String>, Spanned<Node>)],
) -> BTreeMap<String, (Range<usize>, Spanned<Node>)> {
    entries
        .iter()
        .map(|(key, value)| (key.get_ref().clone(), (key.span(), value.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Document, Vec<Diagnostic>> {
        Document::parse(&SourceText::new("test.toml", text))
    }

    #[test]
    fn keeps_spans_of_nested_values() {
        let text = "[sources.sim]\nkind = \"simulator\"\nstreams = [\"eeg\", \"ecg\"]\n";
        let doc = parse(text).unwrap();
        let sim = &doc.sources[0];
        assert_eq!(sim.name.get_ref(), "sim");
        let (_, streams) = &sim.entries[1];
        let Node::Array(items) = streams.get_ref() else {
            panic!("not an array")
        };
        assert_eq!(&text[items[1].span()], "\"ecg\"");
    }

    #[test]
    fn unknown_section_is_an_error() {
        let errors = parse("[operator.x]\nkind = \"select\"\n").unwrap_err();
        assert!(errors[0]
            .message
            .contains("unknown top-level section `operator`"));
        assert!(errors[0]
            .help
            .as_deref()
            .unwrap()
            .contains("did you mean `operators`"));
    }

    #[test]
    fn distances() {
        assert_eq!(edit_distance("band_powr", "band_power"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
