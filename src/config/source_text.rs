//! The text of a pipeline file with its path, for turning byte spans into lines and columns.

use std::ops::Range;

/// A pipeline file's path (as the user gave it) and contents.
#[derive(Clone, Debug)]
pub struct SourceText {
    /// Path shown in messages.
    pub path: String,
    /// The whole file.
    pub text: String,
}

impl SourceText {
    /// Wraps a file's text under the path to show in messages.
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> Self {
        SourceText {
            path: path.into(),
            text: text.into(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = self.text[line_start..offset].chars().count() + 1;
        (line, column)
    }

    /// The full text of the 1-based line `line`, without its newline.
    pub fn line_text(&self, line: usize) -> &str {
        self.text.lines().nth(line.saturating_sub(1)).unwrap_or("")
    }

    /// The text a span covers, clamped to the file.
    pub fn slice(&self, span: &Range<usize>) -> &str {
        let end = span.end.min(self.text.len());
        let start = span.start.min(end);
        self.text.get(start..end).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_are_one_based() {
        let source = SourceText::new("p.toml", "a = 1\nbb = \"é x\"\n");
        assert_eq!(source.line_col(0), (1, 1));
        assert_eq!(source.line_col(6), (2, 1));
        assert_eq!(source.line_col(source.text.find('x').unwrap()), (2, 9));
        assert_eq!(source.line_text(2), "bb = \"é x\"");
    }
}
