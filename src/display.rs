//! User-provided text made safe to print: names of streams, sinks and channels come from pipeline
//! files, CSV and XDF headers and LSL outlets on the network, and may hold control characters. Raw,
//! an escape sequence would repaint the terminal, a carriage return would overwrite the status
//! line, a newline would forge a message. Every message and status line shows such text through
//! [`escaped`] (one name) or [`escaped_lines`] (a whole multi-line message).
//!
//! ```
//! use heloflow::display::{escaped, escaped_lines};
//! assert_eq!(escaped("EEG\u{1b}[2J"), "EEG\\u{1b}[2J");
//! assert_eq!(escaped("a\nb"), "a\\nb");
//! assert_eq!(escaped_lines("error: `a\u{7}`\n --> p.toml:1:1"), "error: `a\\u{7}`\n --> p.toml:1:1");
//! assert_eq!(escaped("Fp1 µV"), "Fp1 µV");
//! ```

use std::borrow::Cow;

/// `eprintln!` for one-line notices about user-provided things (streams, subjects, files): the
/// whole line is printed through [`escaped`], so a name inside cannot repaint or forge output.
#[macro_export]
macro_rules! notice {
    ($($arg:tt)*) => {
        eprintln!("{}", $crate::display::escaped(&format!($($arg)*)))
    };
}

/// Whether `c` must not reach a terminal raw: control characters (C0, DEL, C1) and the Unicode
/// controls that reorder or hide text (bidirectional overrides and isolates, zero-width marks).
fn unsafe_to_print(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// `text` with every character that is unsafe to print written as an escape (`\n`, `\t`,
/// `\u{1b}`), backslashes left as they are; borrowed when nothing needed escaping.
pub fn escaped(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// Like [`escaped`], but newlines stay newlines: for messages made of several lines, whose names
/// inside are escaped all the same (tabs stay too, for quoted pipeline lines).
pub fn escaped_lines(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

fn escape(text: &str, keep_lines: bool) -> Cow<'_, str> {
    let kept = |c: char| keep_lines && (c == '\n' || c == '\t');
    if !text.chars().any(|c| unsafe_to_print(c) && !kept(c)) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !unsafe_to_print(c) || kept(c) {
            shown.push(c);
            continue;
        }
        match c {
            '\n' => shown.push_str("\\n"),
            '\r' => shown.push_str("\\r"),
            '\t' => shown.push_str("\\t"),
            other => shown.push_str(&format!("\\u{{{:x}}}", u32::from(other))),
        }
    }
    Cow::Owned(shown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the name, what is printed holds no character a terminal would act on, and
        /// text that needed nothing is printed unchanged.
        #[test]
        fn escaped_text_is_printable(text in any::<String>()) {
            let shown = escaped(&text);
            prop_assert!(!shown.chars().any(unsafe_to_print), "{:?}", shown);
            if !text.chars().any(unsafe_to_print) {
                prop_assert_eq!(&*shown, &*text);
            }
            let lines = escaped_lines(&text);
            prop_assert!(
                !lines.chars().any(|c| unsafe_to_print(c) && c != '\n' && c != '\t'),
                "{:?}",
                lines
            );
            prop_assert_eq!(lines.lines().count(), text.lines().count());
        }

        /// Different names stay different once escaped, unless one already spells the other's
        /// escape (a name with a backslash), so two streams are never shown as one by accident.
        #[test]
        fn distinct_names_stay_distinct(a in any::<String>(), b in any::<String>()) {
            prop_assume!(a != b && !a.contains('\\') && !b.contains('\\'));
            prop_assert_ne!(escaped(&a), escaped(&b));
        }
    }

    #[test]
    fn terminal_controls_are_escaped() {
        assert_eq!(escaped("a\rb\u{7f}c\u{9b}d"), "a\\rb\\u{7f}c\\u{9b}d");
        assert_eq!(escaped("\u{202e}gpj.exe"), "\\u{202e}gpj.exe");
        assert_eq!(escaped_lines("x\u{1b}\ny\tz"), "x\\u{1b}\ny\tz");
    }
}
