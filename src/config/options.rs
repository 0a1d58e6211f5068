//! Typed access to a component's options, recording precise diagnostics instead of failing fast.
//!
//! Each component's config reads its options through [`Options`]; every read remembers the key as
//! valid, so that [`Options::finish`] can reject unknown keys and list the ones that exist.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;

use super::diagnostic::Diagnostic;
use super::document::{suggest_or_list, Node};
use super::source_text::SourceText;

/// The options of one component (or one nested table), read with typed accessors.
pub struct Options<'a> {
    source: &'a SourceText,
    /// Where the component is (`operators.bands`), used in messages.
    path: String,
    /// Span reported for problems that have no better place (a missing key).
    anchor: Range<usize>,
    entries: BTreeMap<String, (Range<usize>, Spanned<Node>)>,
    known: Vec<&'static str>,
    errors: Vec<Diagnostic>,
}

impl<'a> Options<'a> {
    /// Wraps the entries of a table; `path` names it in messages, `anchor` locates it.
    pub fn new(
        source: &'a SourceText,
        path: impl Into<String>,
        anchor: Range<usize>,
        entries: &[(Spanned<String>, Spanned<Node>)],
    ) -> Self {
        Options {
            source,
            path: path.into(),
            anchor,
            entries: entries
                .iter()
                .map(|(key, value)| (key.get_ref().clone(), (key.span(), value.clone())))
                .collect(),
            known: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// The source text, for components that build their own diagnostics.
    pub fn source(&self) -> &'a SourceText {
        self.source
    }

    /// Span of the value of `key`, if present (for later checks that need to point at it).
    pub fn value_span(&self, key: &str) -> Option<Range<usize>> {
        self.entries.get(key).map(|(_, value)| value.span())
    }

    /// Records a problem with the value of `key` (or the component when the key is absent).
    pub fn error_at(&mut self, key: &str, message: impl Into<String>, help: impl Into<String>) {
        let span = self.value_span(key).unwrap_or_else(|| self.anchor.clone());
        let diagnostic = Diagnostic::new(self.source, span, message).with_help(help);
        self.errors.push(diagnostic);
    }

    fn take(&mut self, key: &'static str) -> Option<Spanned<Node>> {
        if !self.known.contains(&key) {
            self.known.push(key);
        }
        self.entries.get(key).map(|(_, value)| value.clone())
    }

    /// The raw value of `key` (marked as known), for options with a shape of their own.
    pub fn raw(&mut self, key: &'static str) -> Option<Spanned<Node>> {
        self.take(key)
    }

    /// Records a problem at an explicit span (inside a value read with [`Options::raw`]).
    pub fn error_at_span(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        let diagnostic = Diagnostic::new(self.source, span, message).with_help(help);
        self.errors.push(diagnostic);
    }

    fn type_error(&mut self, key: &str, value: &Spanned<Node>, expected: &str) {
        let diagnostic = Diagnostic::new(
            self.source,
            value.span(),
            format!(
                "`{}.{key}` must be {expected}, found {}",
                self.path,
                value.get_ref().describe()
            ),
        )
        .with_help(format!("write it as {key} = <{expected}>"));
        self.errors.push(diagnostic);
    }

    fn missing(&mut self, key: &str, expected: &str) {
        let diagnostic = Diagnostic::new(
            self.source,
            self.anchor.clone(),
            format!("`{}` is missing the required option `{key}`", self.path),
        )
        .with_help(format!("add {key} = <{expected}>"));
        self.errors.push(diagnostic);
    }

    /// A number (integer or float) or `None` when absent or wrong (the error is recorded).
    pub fn number(&mut self, key: &'static str) -> Option<f64> {
        let value = self.take(key)?;
        match value.get_ref() {
            Node::Float(f) => Some(*f),
            Node::Int(i) => Some(*i as f64),
            _ => {
                self.type_error(key, &value, "a number");
                None
            }
        }
    }

    /// A number within `range` (inclusive), or `default` when absent or out of range (the error is
    /// recorded): every numeric option that validates must be one the run can use.
    pub fn number_in(
        &mut self,
        key: &'static str,
        default: f64,
        range: std::ops::RangeInclusive<f64>,
    ) -> f64 {
        match self.number(key) {
            None => default,
            Some(v) if range.contains(&v) => v,
            Some(v) => {
                self.error_at(
                    key,
                    format!(
                        "`{}.{key}` must be between {} and {}, found {v}",
                        self.path,
                        range.start(),
                        range.end()
                    ),
                    format!("for example {key} = {default}"),
                );
                default
            }
        }
    }

    /// A required number within `range` (inclusive); `what` names its unit in the message when
    /// it is missing. Returns the start of the range when missing or wrong (the error is recorded).
    pub fn required_number_in(
        &mut self,
        key: &'static str,
        what: &str,
        range: std::ops::RangeInclusive<f64>,
    ) -> f64 {
        if !self.entries.contains_key(key) {
            self.take(key);
            self.missing(key, what);
            return *range.start();
        }
        self.number_in(key, *range.start(), range)
    }

    /// An integer within `range`, or `default` when absent.
    pub fn integer(&mut self, key: &'static str, default: i64, range: Range<i64>) -> i64 {
        let Some(value) = self.take(key) else {
            return default;
        };
        match value.get_ref() {
            Node::Int(i) if range.contains(i) => *i,
            Node::Int(i) => {
                self.error_at(
                    key,
                    format!(
                        "`{}.{key}` must be between {} and {}, found {i}",
                        self.path,
                        range.start,
                        range.end - 1
                    ),
                    format!("for example {key} = {default}"),
                );
                default
            }
            _ => {
                self.type_error(key, &value, "an integer");
                default
            }
        }
    }

    /// A boolean, or `default` when absent.
    pub fn boolean(&mut self, key: &'static str, default: bool) -> bool {
        let Some(value) = self.take(key) else {
            return default;
        };
        match value.get_ref() {
            Node::Bool(b) => *b,
            _ => {
                self.type_error(key, &value, "true or false");
                default
            }
        }
    }

    /// A string, or `None` when absent or not a string (the error is recorded).
    pub fn string(&mut self, key: &'static str) -> Option<Spanned<String>> {
        let value = self.take(key)?;
        match value.get_ref() {
            Node::Str(s) => Some(Spanned::new(value.span(), s.clone())),
            _ => {
                self.type_error(key, &value, "a string");
                None
            }
        }
    }

    /// One of `choices`, or `default` when absent.
    pub fn choice(
        &mut self,
        key: &'static str,
        default: &'static str,
        choices: &[&'static str],
    ) -> &'static str {
        let Some(given) = self.string(key) else {
            return default;
        };
        match choices.iter().find(|c| **c == given.get_ref()) {
            Some(choice) => choice,
            None => {
                let help = suggest_or_list(given.get_ref(), choices);
                self.errors.push(
                    Diagnostic::new(
                        self.source,
                        given.span(),
                        format!(
                            "`{}.{key}` has no option \"{}\"",
                            self.path,
                            given.get_ref()
                        ),
                    )
                    .with_help(help),
                );
                default
            }
        }
    }

    /// An array of strings with their spans, or `None` when absent or malformed.
    pub fn string_list(&mut self, key: &'static str) -> Option<Vec<Spanned<String>>> {
        let value = self.take(key)?;
        let Node::Array(items) = value.get_ref() else {
            self.type_error(key, &value, "an array of strings");
            return None;
        };
        let mut strings = Vec::with_capacity(items.len());
        for item in items {
            match item.get_ref() {
                Node::Str(s) => strings.push(Spanned::new(item.span(), s.clone())),
                _ => {
                    self.type_error(key, item, "a string (inside an array of strings)");
                    return None;
                }
            }
        }
        Some(strings)
    }

    /// An array of numbers, or `None` when absent or malformed.
    pub fn number_list(&mut self, key: &'static str) -> Option<Vec<f64>> {
        let value = self.take(key)?;
        let Node::Array(items) = value.get_ref() else {
            self.type_error(key, &value, "an array of numbers");
            return None;
        };
        let mut numbers = Vec::with_capacity(items.len());
        for item in items {
            match item.get_ref() {
                Node::Float(f) => numbers.push(*f),
                Node::Int(i) => numbers.push(*i as f64),
                _ => {
                    self.type_error(key, item, "a number (inside an array of numbers)");
                    return None;
                }
            }
        }
        Some(numbers)
    }

    /// A nested table read with its own [`Options`]; its errors join this component's on `finish`.
    pub fn table<T>(
        &mut self,
        key: &'static str,
        read: impl FnOnce(&mut Options<'a>) -> T,
    ) -> Option<T> {
        let value = self.take(key)?;
        let Node::Table(entries) = value.get_ref() else {
            self.type_error(key, &value, "a table");
            return None;
        };
        let mut nested = Options::new(
            self.source,
            format!("{}.{key}", self.path),
            value.span(),
            entries,
        );
        let result = read(&mut nested);
        match nested.finish() {
            Ok(()) => Some(result),
            Err(errors) => {
                self.errors.extend(errors);
                None
            }
        }
    }

    /// A table of tables (`streams = { eeg = { ... }, gsr = { ... } }`): each inner table read
    /// with its own [`Options`], in file order, with its key; their errors join this component's.
    pub fn tables<T>(
        &mut self,
        key: &'static str,
        mut read: impl FnMut(&str, &mut Options<'a>) -> T,
    ) -> Option<Vec<(String, T)>> {
        let value = self.take(key)?;
        let Node::Table(entries) = value.get_ref() else {
            self.type_error(key, &value, "a table of tables");
            return None;
        };
        let mut results = Vec::with_capacity(entries.len());
        for (name, inner) in entries {
            let Node::Table(inner_entries) = inner.get_ref() else {
                self.type_error(key, inner, "a table (inside a table of tables)");
                continue;
            };
            let mut nested = Options::new(
                self.source,
                format!("{}.{key}.{}", self.path, name.get_ref()),
                inner.span(),
                inner_entries,
            );
            let result = read(name.get_ref(), &mut nested);
            match nested.finish() {
                Ok(()) => results.push((name.get_ref().clone(), result)),
                Err(errors) => self.errors.extend(errors),
            }
        }
        Some(results)
    }

    /// Ends reading: reports every key no accessor asked for, then returns all recorded problems.
    pub fn finish(mut self) -> Result<(), Vec<Diagnostic>> {
        let mut known = self.known.clone();
        known.sort_unstable();
        for (key, (key_span, _)) in &self.entries {
            if !known.contains(&key.as_str()) {
                let help = suggest_or_list(key, &known);
                self.errors.push(
                    Diagnostic::new(
                        self.source,
                        key_span.clone(),
                        format!("unknown option `{key}` in `{}`", self.path),
                    )
                    .with_help(help),
                );
            }
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            self.errors.sort_by_key(|d| (d.line, d.column));
            Err(self.errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::document::Document;

    fn with_options<T>(body: &str, read: impl FnOnce(&mut Options) -> T) -> (T, Vec<Diagnostic>) {
        let source = SourceText::new("t.toml", format!("[operators.op]\n{body}"));
        let doc = Document::parse(&source).unwrap();
        let table = &doc.operators[0];
        let mut options = Options::new(&source, "operators.op", table.span.clone(), &table.entries);
        let value = read(&mut options);
        (value, options.finish().err().unwrap_or_default())
    }

    #[test]
    fn reads_typed_values() {
        let (value, errors) = with_options("w = 2\nname = \"x\"\nflag = true\n", |o| {
            (
                o.number_in("w", 1.0, 1e-3..=1e3),
                o.string("name").unwrap().into_inner(),
                o.boolean("flag", false),
            )
        });
        assert!(errors.is_empty());
        assert_eq!(value, (2.0, "x".to_string(), true));
    }

    #[test]
    fn unknown_keys_suggest_the_closest() {
        let (_, errors) = with_options("windw_s = 2\n", |o| {
            o.number_in("window_s", 1.0, 1e-3..=1e3)
        });
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 2);
        assert!(errors[0].message.contains("unknown option `windw_s`"));
        assert!(errors[0]
            .help
            .as_deref()
            .unwrap()
            .contains("did you mean `window_s`"));
    }

    #[test]
    fn tables_of_tables_keep_their_keys_and_errors() {
        let (value, errors) = with_options(
            "streams = { eeg = { type = \"EEG\" }, gsr = { typ = \"GSR\" } }\n",
            |o| {
                o.tables("streams", |name, inner| {
                    (
                        name.to_string(),
                        inner.string("type").map(|t| t.into_inner()),
                    )
                })
            },
        );
        let value = value.unwrap();
        assert_eq!(
            value.len(),
            1,
            "the table with an unknown key is reported, not returned"
        );
        assert_eq!(value[0].1, ("eeg".to_string(), Some("EEG".to_string())));
        assert_eq!(errors.len(), 1);
        assert!(errors[0]
            .message
            .contains("unknown option `typ` in `operators.op.streams.gsr`"));
    }

    #[test]
    fn wrong_types_and_ranges_point_at_the_value() {
        let (_, errors) = with_options("w = \"1s\"\nn = 0\n", |o| {
            (o.number_in("w", 1.0, 1e-3..=1e3), o.integer("n", 1, 1..10))
        });
        assert_eq!(errors.len(), 2);
        assert!(errors[0]
            .message
            .contains("must be a number, found the string \"1s\""));
        assert_eq!((errors[0].line, errors[0].column), (2, 5));
        assert!(errors[1].message.contains("between 1 and 9, found 0"));
    }
}
