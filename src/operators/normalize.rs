//! `normalize`: running per-subject z-score of every channel.
//!
//! Each output sample is `(x - mean) / std` with the mean and population standard deviation of all
//! finite samples of that channel and subject so far, the current one included (Welford's update).
//! During the warm-up (`warmup_s` of event time from the subject's first sample) the statistics are
//! still settling and the output is NaN; non-finite input gives NaN and leaves the statistics as
//! they were; a channel with zero spread so far gives NaN.
//!
//! ```toml
//! [operators.eda_z]
//! kind = "normalize"
//! inputs = ["sim.eda"]
//! warmup_s = 30
//! ```

use super::{Operator, OperatorLogic, PortError};
use crate::config::options::Options;
use crate::stream::{secs_to_nanos, Batch, Nanos, StreamSchema, Values};

/// Options of a `normalize` operator.
#[derive(Clone, Debug, PartialEq)]
pub struct NormalizeConfig {
    /// Warm-up, event-time nanoseconds from the subject's first sample, during which output is NaN.
    pub warmup: Nanos,
}

impl NormalizeConfig {
    /// Reads `warmup_s` (default 10 s; 0 to a day).
    pub fn parse(options: &mut Options) -> Self {
        let warmup_s = options.number_in("warmup_s", 10.0, 0.0..=86_400.0);
        NormalizeConfig {
            warmup: secs_to_nanos(warmup_s),
        }
    }

    /// Logic for one subject.
    pub fn instantiate(&self, input: &StreamSchema, output_id: u32) -> NormalizeLogic {
        let width = input.channel_count().max(1);
        NormalizeLogic {
            warmup: self.warmup,
            start: None,
            stats: vec![(0, 0.0, 0.0); width],
            width,
            output_id,
        }
    }
}

impl Operator for NormalizeConfig {
    /// Output: the input's schema, renamed, in standard-deviation units.
    fn output_schema(
        &self,
        name: &str,
        inputs: &[&StreamSchema],
    ) -> Result<StreamSchema, PortError> {
        let [input] = inputs else {
            return Err(PortError::needs_one_input("normalize", inputs.len()));
        };
        if !input.format.is_numeric() {
            return Err(PortError::input(
                0,
                format!(
                    "`normalize` needs numbers, but `{}` holds {} values",
                    input.name,
                    input.format.lsl_name()
                ),
                "connect a numeric stream",
            ));
        }
        let mut schema = StreamSchema {
            name: name.to_string(),
            ..(*input).clone()
        };
        for channel in &mut schema.channels {
            channel.unit = "z".to_string();
        }
        Ok(schema)
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

/// Per-subject state of `normalize`: count, mean and sum of squared deviations per channel.
pub struct NormalizeLogic {
    warmup: Nanos,
    start: Option<Nanos>,
    stats: Vec<(u64, f64, f64)>,
    width: usize,
    output_id: u32,
}

impl OperatorLogic for NormalizeLogic {
    fn on_batch(&mut self, _input: usize, batch: &Batch, out: &mut Vec<Batch>) {
        let Values::Numeric(values) = &batch.values else {
            return;
        };
        let mut result = Vec::with_capacity(values.len());
        for (frame, &time) in values.chunks_exact(self.width).zip(&batch.timestamps) {
            let start = *self.start.get_or_insert(time);
            let warm = time - start >= self.warmup;
            for (x, (count, mean, m2)) in frame.iter().zip(&mut self.stats) {
                if !x.is_finite() {
                    result.push(f64::NAN);
                    continue;
                }
                *count += 1;
                let delta = x - *mean;
                *mean += delta / *count as f64;
                *m2 += delta * (x - *mean);
                let std = (*m2 / *count as f64).sqrt();
                result.push(if warm && std > 0.0 {
                    (x - *mean) / std
                } else {
                    f64::NAN
                });
            }
        }
        out.push(batch.with_values(self.output_id, Values::Numeric(result)));
    }

    fn on_frontier(&mut self, _frontier: Nanos, _out: &mut Vec<Batch>) {}
}
