//! Event codes: string markers published as positive integers, for clients that read numbers only
//! (MNE-LSL's `StreamLSL` refuses string streams; its `EpochsStream` epochs on integer event ids).
//!
//! ```toml
//! event_codes = { "stimulus_start:*" = 1, "stimulus_end:*" = 2, "rest" = 3 }
//! ```
//!
//! A name matches a marker exactly, or as a pattern where `*` stands for any text (none
//! included). A marker takes the code of the first name it matches, exact names before patterns,
//! each group in the order written; several names may share a code.

use crate::config::document::Node;
use crate::config::options::Options;

/// Most names one `event_codes` table may give (each is a line of the outlet's `desc`).
pub const MAX_EVENT_CODES: usize = 10_000;

/// Event codes: positive and at most `i32::MAX`, since they go out as int32 samples and MNE
/// refuses event ids of 0 or below (0 means "no event" on a stim channel).
pub const CODE_RANGE: std::ops::RangeInclusive<i64> = 1..=i32::MAX as i64;

/// Marker name (or pattern) -> code, in the order written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventCodes {
    /// Every name with its code, in file order (what the outlets' `desc/events` lists).
    pub entries: Vec<(String, i32)>,
}

impl EventCodes {
    /// Reads `event_codes` (a table of name = code), or `None` when absent; problems are located
    /// errors in `options`.
    pub fn parse(options: &mut Options) -> Option<EventCodes> {
        let node = options.raw("event_codes")?;
        let Node::Table(entries) = node.get_ref() else {
            options.error_at(
                "event_codes",
                format!(
                    "`event_codes` must be a table of marker = code, found {}",
                    node.get_ref().describe()
                ),
                "for example event_codes = { \"stimulus_start:*\" = 1, \"stimulus_end:*\" = 2 }",
            );
            return None;
        };
        if entries.is_empty() {
            options.error_at(
                "event_codes",
                "`event_codes` is empty: no marker would be published",
                "give each marker a code, e.g. event_codes = { \"stimulus_start:*\" = 1 }, or leave `event_codes` out to publish strings",
            );
            return None;
        }
        if entries.len() > MAX_EVENT_CODES {
            options.error_at(
                "event_codes",
                format!(
                    "`event_codes` gives {} names, more than {MAX_EVENT_CODES}",
                    entries.len()
                ),
                "group markers with patterns, e.g. \"stimulus_start:*\" = 1",
            );
            return None;
        }
        let mut codes = EventCodes::default();
        for (name, value) in entries {
            if name.get_ref().is_empty() {
                options.error_at_span(
                    name.span(),
                    "an event code needs a non-empty marker name",
                    "for example \"rest\" = 3",
                );
                continue;
            }
            match value.get_ref() {
                Node::Int(code) if CODE_RANGE.contains(code) => {
                    codes.entries.push((name.get_ref().clone(), *code as i32))
                }
                other => options.error_at_span(
                    value.span(),
                    format!(
                        "the event code of \"{}\" must be an integer from {} to {}, found {}",
                        name.get_ref(),
                        CODE_RANGE.start(),
                        CODE_RANGE.end(),
                        other.describe()
                    ),
                    "codes are positive: MNE reads 0 as \"no event\"",
                ),
            }
        }
        Some(codes)
    }

    /// The code of `marker`: the first exact name, else the first pattern it matches.
    pub fn code(&self, marker: &str) -> Option<i32> {
        let exact = self
            .entries
            .iter()
            .find(|(name, _)| !name.contains('*') && name == marker);
        exact
            .or_else(|| {
                self.entries
                    .iter()
                    .find(|(name, _)| name.contains('*') && matches(name, marker))
            })
            .map(|(_, code)| *code)
    }
}

/// Whether `text` matches `pattern`, where `*` stands for any text.
fn matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(entries: &[(&str, i32)]) -> EventCodes {
        EventCodes {
            entries: entries.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
        }
    }

    #[test]
    fn patterns_match_any_text_in_place_of_a_star() {
        for (pattern, text, want) in [
            ("a*", "a", true),
            ("a*", "abc", true),
            ("*c", "abc", true),
            ("a*c", "ac", true),
            ("a*c", "abc", true),
            ("a*c", "abd", false),
            ("a*b*c", "axbyc", true),
            ("a*b*c", "acb", false),
            ("*", "", true),
            ("ab*ab", "ab", false),
            ("ab*ab", "abab", true),
            ("x", "x", true),
            ("x", "xy", false),
        ] {
            assert_eq!(matches(pattern, text), want, "{pattern} ~ {text}");
        }
    }

    #[test]
    fn exact_names_win_over_patterns_then_file_order() {
        let table = codes(&[
            ("stimulus_start:*", 1),
            ("stimulus_*", 9),
            ("stimulus_start:clip_07", 7),
        ]);
        assert_eq!(table.code("stimulus_start:clip_07"), Some(7));
        assert_eq!(table.code("stimulus_start:clip_01"), Some(1));
        assert_eq!(table.code("stimulus_end:clip_01"), Some(9));
        assert_eq!(table.code("rest"), None);
    }
}
