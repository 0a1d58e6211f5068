//! `csv`: one stream as comma-separated values, a header then one row per sample.
//!
//! ```toml
//! [sinks.bands_csv]
//! kind = "csv"
//! inputs = ["eeg_bands"]
//! path = "out/bands.csv"
//! ```
//!
//! Columns: `timestamp` (event time, seconds), `subject`, then one column per channel label. NaN and
//! infinite values are written as empty fields.

use std::io::{self, Write};

use super::{
    format_number, format_time, open_output, parse_path, Row, RowValues, Sink, SinkContext,
    SinkWriter,
};
use crate::config::options::Options;
use crate::config::PortError;
use crate::stream::StreamSchema;

/// Options of a `csv` sink.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvConfig {
    /// `-` for standard output, or a file path.
    pub path: String,
}

impl Sink for CsvConfig {
    fn parse(options: &mut Options) -> Self {
        CsvConfig {
            path: parse_path(options),
        }
    }

    fn destination(&self) -> Option<&str> {
        Some(&self.path)
    }

    /// A CSV file holds exactly one stream (one set of columns).
    fn check_inputs(&self, inputs: &[&StreamSchema]) -> Result<(), PortError> {
        if inputs.len() == 1 {
            Ok(())
        } else {
            Err(PortError::needs_one_input("csv", inputs.len()))
        }
    }

    fn open(
        &self,
        inputs: &[StreamSchema],
        _run: &SinkContext,
    ) -> Result<Box<dyn SinkWriter>, String> {
        Ok(Box::new(self.writer(open_output(&self.path)?, &inputs[0])))
    }
}

impl CsvConfig {
    /// A writer onto an opened destination for `schema`'s columns.
    pub fn writer<W: Write + Send>(&self, output: W, schema: &StreamSchema) -> CsvWriter<W> {
        let mut header = String::from("timestamp,subject");
        for channel in &schema.channels {
            header.push(',');
            header.push_str(&quote(&channel.label));
        }
        header.push('\n');
        CsvWriter {
            output,
            header: Some(header),
            line: String::new(),
        }
    }
}

fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// Writes rows as CSV, the header before the first row.
pub struct CsvWriter<W> {
    output: W,
    header: Option<String>,
    line: String,
}

impl<W: Write + Send> CsvWriter<W> {
    fn write_header(&mut self) -> io::Result<()> {
        match self.header.take() {
            Some(header) => self.output.write_all(header.as_bytes()),
            None => Ok(()),
        }
    }
}

impl<W: Write + Send> SinkWriter for CsvWriter<W> {
    fn write_row(&mut self, row: &Row<'_>) -> io::Result<()> {
        self.write_header()?;
        let line = &mut self.line;
        line.clear();
        line.push_str(&format_time(row.time));
        line.push(',');
        line.push_str(&quote(row.subject));
        match row.values {
            RowValues::Numeric(values) => {
                for value in values {
                    line.push(',');
                    if let Some(text) = format_number(*value, row.schema) {
                        line.push_str(&text);
                    }
                }
            }
            RowValues::Text(values) => {
                for value in values {
                    line.push(',');
                    line.push_str(&quote(value));
                }
            }
        }
        line.push('\n');
        self.output.write_all(line.as_bytes())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_header()?;
        self.output.flush()
    }
}
