//! `rereference`: common average reference, as used for EEG.
//!
//! Every sample of every channel has the mean of the reference channels at that instant subtracted
//! (by default all channels; `channels` names a subset). Non-finite reference values are left out
//! of the mean; an instant with no finite reference value gives NaN.
//!
//! ```toml
//! [operators.eeg_car]
//! kind = "rereference"
//! inputs = ["sim.eeg"]
//! ```

use super::{channel_indices, unique_labels, Operator, OperatorLogic, PortError};
use crate::config::options::Options;
use crate::stream::{Batch, Nanos, StreamSchema, Values};

/// Options of a `rereference` operator.
#[derive(Clone, Debug, PartialEq)]
pub struct RereferenceConfig {
    /// Labels of the reference channels (empty: all channels).
    pub channels: Vec<String>,
}

impl RereferenceConfig {
    /// Reads `channels` (optional).
    pub fn parse(options: &mut Options) -> Self {
        let channels = unique_labels(options, "channels");
        RereferenceConfig { channels }
    }

    fn reference(&self, input: &StreamSchema) -> Result<Vec<usize>, PortError> {
        if self.channels.is_empty() {
            return Ok((0..input.channel_count()).collect());
        }
        channel_indices(input, &self.channels, "channels")
    }

    /// Logic for one subject.
    pub fn instantiate(&self, input: &StreamSchema, output_id: u32) -> RereferenceLogic {
        RereferenceLogic {
            reference: self.reference(input).unwrap_or_default(),
            width: input.channel_count().max(1),
            output_id,
        }
    }
}

impl Operator for RereferenceConfig {
    /// Output: the input's schema, renamed.
    fn output_schema(
        &self,
        name: &str,
        inputs: &[&StreamSchema],
    ) -> Result<StreamSchema, PortError> {
        let [input] = inputs else {
            return Err(PortError::needs_one_input("rereference", inputs.len()));
        };
        if !input.format.is_numeric() || input.channel_count() < 2 {
            return Err(PortError::input(0, format!("`rereference` needs a numeric stream of two or more channels, but `{}` has {} {} channel(s)", input.name, input.channel_count(), input.format.lsl_name()), "connect a multichannel signal such as EEG"));
        }
        self.reference(input)?;
        Ok(StreamSchema {
            name: name.to_string(),
            ..(*input).clone()
        })
    }

    fn logic(
        &self,
        inputs: &[&StreamSchema],
        output_id: u32,
        _output: &StreamSchema,
        _subject: &str,
    ) -> Box<dyn OperatorLogic> {
        Box::new(self.instantiate(inputs[0], output_id))
    }
}

/// Per-subject state of `rereference` (only the channel map).
pub struct RereferenceLogic {
    reference: Vec<usize>,
    width: usize,
    output_id: u32,
}

impl OperatorLogic for RereferenceLogic {
    fn on_batch(&mut self, _input: usize, batch: &Batch, out: &mut Vec<Batch>) {
        let Values::Numeric(values) = &batch.values else {
            return;
        };
        let mut result = values.clone();
        for frame in result.chunks_exact_mut(self.width) {
            let (sum, count) = self
                .reference
                .iter()
                .map(|&i| frame[i])
                .filter(|v| v.is_finite())
                .fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
            let mean = if count > 0 {
                sum / count as f64
            } else {
                f64::NAN
            };
            frame.iter_mut().for_each(|v| *v -= mean);
        }
        out.push(batch.with_values(self.output_id, Values::Numeric(result)));
    }

    fn on_frontier(&mut self, _frontier: Nanos, _out: &mut Vec<Batch>) {}
}
