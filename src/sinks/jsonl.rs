//! `jsonl`: one JSON object per output sample, to standard output or a file.
//!
//! ```toml
//! [sinks.out]
//! kind = "jsonl"
//! inputs = ["truth", "eeg_bands"]
//! path = "-"            # standard output (default) or a file path
//! layout = "object"     # values keyed by channel label, or "array"
//! ```
//!
//! A line: `{"t":12.500000000,"stream":"truth","subject":"S01","values":{"joy":0.31,...}}`; `t` is
//! event time in seconds on the LSL clock; NaN and infinite values are written as `null`.

use std::io::{self, Write};

use super::{
    format_number, format_time, open_output, parse_path, Row, RowValues, Sink, SinkContext,
    SinkWriter,
};
use crate::config::options::Options;
use crate::stream::StreamSchema;

/// Options of a `jsonl` sink.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonlConfig {
    /// `-` for standard output, or a file path.
    pub path: String,
    /// Values as an object keyed by channel label (true) or as an array (false).
    pub keyed: bool,
}

impl Sink for JsonlConfig {
    fn parse(options: &mut Options) -> Self {
        let path = parse_path(options);
        let keyed = options.choice("layout", "object", &["object", "array"]) == "object";
        JsonlConfig { path, keyed }
    }

    fn destination(&self) -> Option<&str> {
        Some(&self.path)
    }

    fn open(
        &self,
        _inputs: &[StreamSchema],
        _run: &SinkContext,
    ) -> Result<Box<dyn SinkWriter>, String> {
        Ok(Box::new(self.writer(open_output(&self.path)?)))
    }
}

impl JsonlConfig {
    /// A writer onto an opened destination.
    pub fn writer<W: Write + Send>(&self, output: W) -> JsonlWriter<W> {
        JsonlWriter {
            output,
            keyed: self.keyed,
            line: String::new(),
        }
    }
}

/// Writes rows as JSON Lines.
pub struct JsonlWriter<W> {
    output: W,
    keyed: bool,
    line: String,
}

/// Writes one row as a JSON object (one jsonl line without its newline) into `line`: the text
/// every live tap serves too, so a tap and a jsonl file carry the same rows byte for byte.
pub fn format_line(row: &Row<'_>, keyed: bool, line: &mut String) {
    line.push_str("{\"t\":");
    line.push_str(&format_time(row.time));
    line.push_str(",\"stream\":");
    line.push_str(&json_string(&row.schema.name));
    line.push_str(",\"subject\":");
    line.push_str(&json_string(row.subject));
    line.push_str(",\"values\":");
    line.push(if keyed { '{' } else { '[' });
    let count = match row.values {
        RowValues::Numeric(v) => v.len(),
        RowValues::Text(v) => v.len(),
    };
    for index in 0..count {
        if index > 0 {
            line.push(',');
        }
        if keyed {
            let label = row.schema.channels.get(index).map_or("", |c| &c.label);
            line.push_str(&json_string(label));
            line.push(':');
        }
        match row.values {
            RowValues::Numeric(v) => match format_number(v[index], row.schema) {
                Some(text) => line.push_str(&text),
                None => line.push_str("null"),
            },
            RowValues::Text(v) => line.push_str(&json_string(&v[index])),
        }
    }
    line.push(if keyed { '}' } else { ']' });
    line.push('}');
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string())
}

impl<W: Write + Send> SinkWriter for JsonlWriter<W> {
    fn write_row(&mut self, row: &Row<'_>) -> io::Result<()> {
        self.line.clear();
        format_line(row, self.keyed, &mut self.line);
        self.line.push('\n');
        self.output.write_all(self.line.as_bytes())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.output.flush()
    }
}
