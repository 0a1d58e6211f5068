//! Sinks: where streams leave the pipeline.
//!
//! Each sink kind is one module with its config and its writer. The runtime hands a sink its rows
//! in a deterministic order (event time, then input order, then subject; see [`ordering`]), so the
//! bytes a sink writes do not depend on thread timing or the number of workers. A writer whose
//! inputs leave by separate channels (LSL: one outlet per input) asks for [`RowOrder::PerInput`]:
//! each input's rows are then in that order as soon as that input is complete, without waiting for
//! the sink's other inputs.

mod csv;
pub mod destination;
pub mod event_codes;
mod jsonl;
pub mod lsl;
pub mod ordering;
pub mod tap;
mod xdf;

pub use self::csv::CsvConfig;
pub use self::destination::Destination;
pub use self::jsonl::JsonlConfig;
pub use self::lsl::LslSinkConfig;
pub use self::xdf::XdfSinkConfig;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use crate::config::options::Options;
use crate::config::PortError;
use crate::origin::Origins;
use crate::stream::{Nanos, StreamSchema};

/// What every sink kind provides. A kind implements it once and is registered once, in
/// [`SinkConfig`]'s list below.
pub trait Sink {
    /// Reads the sink's options; problems are recorded in `options` with their location.
    fn parse(options: &mut Options) -> Self
    where
        Self: Sized;

    /// Where the sink writes: a file path, `-` for standard output, or `None` when it writes to
    /// the network. Two sinks may not write to the same place.
    fn destination(&self) -> Option<&str>;

    /// Checks that the sink can write these input streams.
    fn check_inputs(&self, _inputs: &[&StreamSchema]) -> Result<(), PortError> {
        Ok(())
    }

    /// Opens the destination and returns a writer for these inputs.
    fn open(
        &self,
        inputs: &[StreamSchema],
        run: &SinkContext,
    ) -> Result<Box<dyn SinkWriter>, String>;
}

/// What a sink learns about the run it writes for.
pub struct SinkContext<'a> {
    /// The pipeline's name.
    pub pipeline: &'a str,
    /// Where each stream of each subject came from (filled in by the sources as they connect).
    pub origins: &'a Arc<Origins>,
    /// The pipeline file's full text (recordings keep it as provenance).
    pub pipeline_text: &'a str,
    /// The pipeline's ids of the sink's inputs, in input order (the keys of `origins`).
    pub input_ids: &'a [u32],
    /// Every model the pipeline runs, with the stream it produces.
    pub models: &'a [ModelProvenance],
}

/// A model the pipeline runs, as recordings describe it (from its manifest).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelProvenance {
    /// The operator running it (also the name of its output stream).
    pub operator: String,
    /// The pipeline's id of its output stream.
    pub output: u32,
    /// Model name.
    pub name: String,
    /// Model version.
    pub version: String,
    /// SHA-256 of the model file.
    pub sha256: String,
    /// Output labels, in order.
    pub labels: Vec<String>,
    /// Window the input features cover, seconds.
    pub window_s: f64,
    /// Hop between outputs, seconds.
    pub hop_s: f64,
}

crate::registry! {
    /// The validated configuration of one sink.
    pub enum SinkConfig: Sink, SINK_KINDS {
        /// Comma-separated values, one row per sample of a single stream.
        "csv" => Csv(CsvConfig),
        /// JSON Lines, one object per sample.
        "jsonl" => Jsonl(JsonlConfig),
        /// Lab Streaming Layer outlets.
        "lsl" => Lsl(LslSinkConfig),
        /// An XDF 1.0 recording (LabRecorder's format), crash-safe.
        "xdf" => Xdf(XdfSinkConfig),
    }
}

/// One output sample as a sink sees it.
pub struct Row<'a> {
    /// Event time of the sample.
    pub time: Nanos,
    /// Schema of the stream it belongs to.
    pub schema: &'a StreamSchema,
    /// Subject id.
    pub subject: &'a str,
    /// The sample's values.
    pub values: RowValues<'a>,
}

/// The values of one sample.
pub enum RowValues<'a> {
    /// Numbers, one per channel.
    Numeric(&'a [f64]),
    /// Strings, one per channel.
    Text(&'a [String]),
}

/// Which rows a sink may receive before which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowOrder {
    /// One order across all inputs: a row is written once every input has passed its time
    /// (files, whose bytes must not depend on timing).
    AcrossInputs,
    /// Each input in order on its own: a row is written once its own input has passed its time
    /// (destinations with one channel per input, such as LSL outlets).
    PerInput,
}

/// Writes rows somewhere; owned by the runtime for the whole run.
pub trait SinkWriter: Send {
    /// Which order the rows must come in (one order across inputs unless overridden).
    fn order(&self) -> RowOrder {
        RowOrder::AcrossInputs
    }

    /// Writes one row.
    fn write_row(&mut self, row: &Row<'_>) -> io::Result<()>;
    /// Pushes buffered output to its destination.
    fn flush(&mut self) -> io::Result<()>;
    /// Every row with an event time below `frontier` has been written (`Nanos::MAX`: the input
    /// is complete). Called before [`SinkWriter::flush`]; sinks that group rows by event time
    /// close their groups here.
    fn advance(&mut self, _frontier: Nanos) -> io::Result<()> {
        Ok(())
    }
}

/// Opens standard output (`-` and its device paths) or a file (creating its parent directories).
fn open_output(path: &str) -> Result<BufWriter<Box<dyn Write + Send>>, String> {
    if Destination::parse(path).is_stdout() {
        return Ok(BufWriter::with_capacity(1 << 16, Box::new(io::stdout())));
    }
    let path_ref = Path::new(path);
    if let Some(parent) = path_ref.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create directory {}: {e}", parent.display()))?;
    }
    let file = File::create(path_ref).map_err(|e| format!("cannot create {path}: {e}"))?;
    Ok(BufWriter::with_capacity(1 << 16, Box::new(file)))
}

/// Reads the `path` option shared by file sinks (default: standard output); an empty path, a
/// NUL byte or an existing directory is refused at the option.
fn parse_path(options: &mut Options) -> String {
    let Some(path) = options.string("path").map(|p| p.into_inner()) else {
        return "-".to_string();
    };
    if let Err(message) = check_file_path(&path) {
        options.error_at(
            "path",
            message,
            "give a file name, for example path = \"out/rows.jsonl\", or path = \"-\" for standard output",
        );
    }
    path
}

/// Why `path` cannot name a file to write, if it cannot.
fn check_file_path(path: &str) -> Result<(), String> {
    if path.trim().is_empty() {
        return Err("`path` is empty".to_string());
    }
    if path.contains('\0') {
        return Err("`path` contains a NUL character, which no file name can hold".to_string());
    }
    if !Destination::parse(path).is_stdout() && Path::new(path).is_dir() {
        return Err(format!("`path` names the directory {path}, not a file"));
    }
    Ok(())
}

/// Formats a number as the stream's format would carry it: float32 streams print the shortest
/// float32 text, others the shortest float64 text. `None` for NaN and infinities.
pub fn format_number(value: f64, schema: &StreamSchema) -> Option<String> {
    if !value.is_finite() {
        return None;
    }
    Some(match schema.format {
        crate::stream::ChannelFormat::Float32 => (value as f32).to_string(),
        _ => value.to_string(),
    })
}

/// Formats event time as seconds with nine decimals, exactly (no float rounding).
pub fn format_time(time: Nanos) -> String {
    let sign = if time < 0 { "-" } else { "" };
    let magnitude = time.unsigned_abs();
    format!(
        "{sign}{}.{:09}",
        magnitude / 1_000_000_000,
        magnitude % 1_000_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_exact_seconds() {
        assert_eq!(format_time(12_003_333_333), "12.003333333");
        assert_eq!(format_time(-5), "-0.000000005");
        assert_eq!(format_time(0), "0.000000000");
    }
}
