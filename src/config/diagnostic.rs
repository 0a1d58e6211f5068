//! Diagnostics: errors in a pipeline file that name the file, line and column, quote the text and say
//! what would be valid.

use std::fmt;
use std::ops::Range;

use super::source_text::SourceText;

/// One problem found in a pipeline file.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// File path as given by the user.
    pub path: String,
    /// 1-based line of the offending text.
    pub line: usize,
    /// 1-based column of the offending text.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// What would be valid, when known.
    pub help: Option<String>,
    /// The full line containing the offending text.
    pub line_text: String,
    /// Number of characters to underline, starting at `column`.
    pub underline: usize,
}

impl Diagnostic {
    /// A problem located at `span` of `source`.
    pub fn new(source: &SourceText, span: Range<usize>, message: impl Into<String>) -> Self {
        let (line, column) = source.line_col(span.start);
        let line_text = source.line_text(line).to_string();
        let quoted = source.slice(&span);
        let first_line = quoted.lines().next().unwrap_or("");
        let underline = first_line.chars().count().max(1);
        Diagnostic {
            path: source.path.clone(),
            line,
            column,
            message: message.into(),
            help: None,
            line_text,
            underline,
        }
    }

    /// Adds what would be valid.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let gutter = self.line.to_string().len();
        writeln!(f, "error: {}", self.message)?;
        writeln!(
            f,
            "{:gutter$}--> {}:{}:{}",
            "", self.path, self.line, self.column
        )?;
        writeln!(f, "{:gutter$} |", "")?;
        writeln!(f, "{} | {}", self.line, self.line_text)?;
        let pad: String = self
            .line_text
            .chars()
            .take(self.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(f, "{:gutter$} | {pad}{}", "", "^".repeat(self.underline))?;
        if let Some(help) = &self.help {
            write!(f, "\n{:gutter$} = help: {help}", "")?;
        }
        Ok(())
    }
}

/// All problems found in one pipeline file.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        if self.0.len() > 1 {
            write!(f, "\n\n{} errors in the pipeline file", self.0.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_location_quote_and_help() {
        let source = SourceText::new("p.toml", "[operators.x]\nkind = \"band_powr\"\n");
        let start = source.text.find("\"band").unwrap();
        let d = Diagnostic::new(
            &source,
            start..start + 11,
            "unknown operator kind `band_powr`",
        )
        .with_help("did you mean `band_power`?");
        let shown = d.to_string();
        assert!(shown.contains("--> p.toml:2:8"), "{shown}");
        assert!(shown.contains("2 | kind = \"band_powr\""), "{shown}");
        assert!(shown.contains("  |        ^^^^^^^^^^^"), "{shown}");
        assert!(
            shown.ends_with("= help: did you mean `band_power`?"),
            "{shown}"
        );
    }
}
