//! The pipeline parser (TOML text -> validated pipeline) on arbitrary and mutated input: it never
//! panics, and every error it reports is located (a line and column inside the text, quoting it).
//!
//! Mutations start from the shipped pipelines in `pipelines/`: bytes deleted, inserted or
//! replaced, lines dropped, repeated or swapped, and numbers swapped for extremes.

use std::path::Path;

use heloflow::pipeline;
use proptest::prelude::*;

/// The shipped pipeline files' texts.
fn shipped() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    let mut texts: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect();
    texts.sort();
    assert!(texts.len() >= 5, "expected the shipped pipelines");
    texts
}

/// One edit of a pipeline text.
#[derive(Clone, Debug)]
enum Mutation {
    /// Deletes `len` bytes at a position (as a fraction of the text).
    Delete(f64, usize),
    /// Inserts a string at a position.
    Insert(f64, String),
    /// Drops a line.
    DropLine(f64),
    /// Repeats a line.
    RepeatLine(f64),
    /// Swaps two lines.
    SwapLines(f64, f64),
    /// Replaces the n-th number in the text by another.
    Number(usize, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let fragment = prop_oneof![
        Just("[".to_string()),
        Just("]".to_string()),
        Just("\"".to_string()),
        Just("=".to_string()),
        Just("\n".to_string()),
        Just("{".to_string()),
        Just("\n[sources.x]\n".to_string()),
        Just("\n[operators.y]\nkind = \"filter\"\n".to_string()),
        Just("inputs = [\"sim.eeg\", \"sim.eeg\"]\n".to_string()),
        Just("\u{0}".to_string()),
        Just("é\u{202e}".to_string()),
        "[ -~]{0,12}",
        any::<String>().prop_map(|s| s.chars().take(8).collect()),
    ];
    let number = prop_oneof![
        Just("nan".to_string()),
        Just("-inf".to_string()),
        Just("1e300".to_string()),
        Just("1e-12".to_string()),
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("9223372036854775807".to_string()),
        Just("99999999999999999999".to_string()),
        Just("\"1\"".to_string()),
        Just("[]".to_string()),
        any::<f64>().prop_map(|v| format!("{v:?}")),
    ];
    prop_oneof![
        1 => (0.0..1.0, 1usize..40).prop_map(|(at, len)| Mutation::Delete(at, len)),
        2 => (0.0..1.0, fragment).prop_map(|(at, s)| Mutation::Insert(at, s)),
        2 => (0.0..1.0).prop_map(Mutation::DropLine),
        1 => (0.0..1.0).prop_map(Mutation::RepeatLine),
        1 => (0.0..1.0, 0.0..1.0).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        5 => (0usize..40, number).prop_map(|(n, v)| Mutation::Number(n, v)),
    ]
}

/// The char boundary nearest below `fraction` of `text`.
fn boundary(text: &str, fraction: f64) -> usize {
    let mut at = ((text.len() as f64) * fraction) as usize;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &str, mutation: &Mutation) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    let line = |fraction: f64, count: usize| ((count as f64 * fraction) as usize).min(count - 1);
    match mutation {
        Mutation::Delete(at, len) => {
            let start = boundary(text, *at);
            let end = boundary(text, ((start + len) as f64 / text.len() as f64).min(1.0));
            format!("{}{}", &text[..start], &text[end.max(start)..])
        }
        Mutation::Insert(at, fragment) => {
            let at = boundary(text, *at);
            format!("{}{fragment}{}", &text[..at], &text[at..])
        }
        Mutation::DropLine(at) => {
            lines.remove(line(*at, lines.len()));
            lines.join("\n")
        }
        Mutation::RepeatLine(at) => {
            let index = line(*at, lines.len());
            lines.insert(index, lines[index]);
            lines.join("\n")
        }
        Mutation::SwapLines(a, b) => {
            let count = lines.len();
            lines.swap(line(*a, count), line(*b, count));
            lines.join("\n")
        }
        Mutation::Number(n, value) => {
            let numbers: Vec<(usize, usize)> = number_spans(text);
            match numbers.get(n % numbers.len().max(1)) {
                Some((start, end)) => format!("{}{value}{}", &text[..*start], &text[*end..]),
                None => text.to_string(),
            }
        }
    }
}

/// Byte spans of the unquoted numbers after `=` signs.
fn number_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if let Some(eq) = line.find('=') {
            let value = &line[eq + 1..];
            let trimmed = value.trim_start();
            let start = offset + eq + 1 + (value.len() - trimmed.len());
            let len = trimmed
                .find(|c: char| !(c.is_ascii_digit() || ".-+e_".contains(c)))
                .unwrap_or(trimmed.len());
            if len > 0 && trimmed.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
                spans.push((start, start + len));
            }
        }
        offset += line.len();
    }
    spans
}

/// Parses `text`: must not panic; every error must have a line and column within the text.
fn check_located(text: &str) -> Result<(), TestCaseError> {
    let Err(diagnostics) = pipeline::parse("fuzz.toml", text) else {
        return Ok(());
    };
    prop_assert!(!diagnostics.0.is_empty(), "refused without a diagnostic");
    let lines = text.lines().count().max(1);
    for diagnostic in &diagnostics.0 {
        prop_assert!(
            diagnostic.line >= 1 && diagnostic.line <= lines + 1 && diagnostic.column >= 1,
            "not located within the text: {diagnostic}\n--- text ---\n{text}"
        );
        prop_assert!(!diagnostic.message.trim().is_empty(), "an empty message");
        prop_assert_eq!(&diagnostic.path, "fuzz.toml");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_pipelines_never_panic_and_every_error_is_located(
        file in 0usize..64,
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let texts = shipped();
        let mut text = texts[file % texts.len()].clone();
        for mutation in &mutations {
            text = apply(&text, mutation);
        }
        check_located(&text)?;
    }

    #[test]
    fn arbitrary_text_never_panics_and_every_error_is_located(text in any::<String>()) {
        check_located(&text)?;
    }

    #[test]
    fn toml_shaped_text_never_panics_and_every_error_is_located(
        text in "(\\[(sources|operators|sinks|pipeline)\\.[a-z]{1,3}\\]\n|kind = \"(simulator|filter|jsonl|csv|lsl|xdf|select|join)\"\n|inputs = \\[\"[a-z.]{1,8}\"\\]\n|[a-z_]{1,10} = (-?[0-9.e]{1,6}|\"[a-z]{0,4}\"|\\[\\]|true|nan|inf)\n){1,14}"
    ) {
        check_located(&text)?;
    }
}
