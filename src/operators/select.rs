//! `select`: keeps a subset of a stream's channels, by label, in the order given.
//!
//! ```toml
//! [operators.frontal]
//! kind = "select"
//! inputs = ["sim.eeg"]
//! channels = ["F3", "F4"]
//! ```

use super::{channel_indices, unique_labels, Operator, OperatorLogic, PortError};
use crate::config::options::Options;
use crate::stream::{Batch, Nanos, StreamSchema, Values};

/// Options of a `select` operator.
#[derive(Clone, Debug, PartialEq)]
pub struct SelectConfig {
    /// Channel labels to keep, in output order.
    pub channels: Vec<String>,
}

impl SelectConfig {
    /// Reads `channels` (required, non-empty).
    pub fn parse(options: &mut Options) -> Self {
        let channels = unique_labels(options, "channels");
        if channels.is_empty() {
            options.error_at(
                "channels",
                "`select` needs a non-empty `channels` list",
                "for example channels = [\"F3\", \"F4\"]",
            );
        }
        SelectConfig { channels }
    }

    fn indices(&self, input: &StreamSchema) -> Result<Vec<usize>, PortError> {
        channel_indices(input, &self.channels, "channels")
    }

    /// Logic for one subject.
    pub fn instantiate(&self, input: &StreamSchema, output_id: u32, _subject: &str) -> SelectLogic {
        SelectLogic {
            indices: self.indices(input).unwrap_or_default(),
            width: input.channel_count(),
            output_id,
        }
    }
}

impl Operator for SelectConfig {
    /// Output keeps the input's modality, format and rate with the chosen channels.
    fn output_schema(
        &self,
        name: &str,
        inputs: &[&StreamSchema],
    ) -> Result<StreamSchema, PortError> {
        let [input] = inputs else {
            return Err(PortError::needs_one_input("select", inputs.len()));
        };
        let indices = self.indices(input)?;
        Ok(StreamSchema {
            name: name.to_string(),
            channels: indices.iter().map(|&i| input.channels[i].clone()).collect(),
            ..(*input).clone()
        })
    }

    fn logic(
        &self,
        inputs: &[&StreamSchema],
        output_id: u32,
        _output: &StreamSchema,
        subject: &str,
    ) -> Box<dyn OperatorLogic> {
        Box::new(self.instantiate(inputs[0], output_id, subject))
    }
}

/// Per-subject state of `select` (none but the channel map).
pub struct SelectLogic {
    indices: Vec<usize>,
    width: usize,
    output_id: u32,
}

impl OperatorLogic for SelectLogic {
    fn on_batch(&mut self, _input: usize, batch: &Batch, out: &mut Vec<Batch>) {
        let values = match &batch.values {
            Values::Numeric(v) => Values::Numeric(
                v.chunks_exact(self.width)
                    .flat_map(|row| self.indices.iter().map(move |&i| row[i]))
                    .collect(),
            ),
            Values::Text(v) => Values::Text(
                v.chunks_exact(self.width)
                    .flat_map(|row| self.indices.iter().map(move |&i| row[i].clone()))
                    .collect(),
            ),
        };
        out.push(batch.with_values(self.output_id, values));
    }

    fn on_frontier(&mut self, _frontier: Nanos, _out: &mut Vec<Batch>) {}
}
