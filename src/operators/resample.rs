//! `resample`: a regular stream at a lower rate, on a grid aligned to event time.
//!
//! Causal: an order-`order` Butterworth low-pass at `cutoff_ratio` times the new Nyquist frequency
//! (anti-aliasing, state kept across chunks) runs at the input rate, then each output instant
//! `t_k = round(k * 1e9 / rate_hz)` ns gets the linear interpolation of the two filtered samples
//! around it. Instants inside a gap longer than two input periods get NaN (nothing is invented).
//! Equals `np.interp(t_k, t, sosfilt(butter(order, cutoff, fs=rate), x))` on gap-free input.
//!
//! ```toml
//! [operators.eda_4hz]
//! kind = "resample"
//! inputs = ["sim.eda_700"]
//! rate_hz = 4
//! ```

use super::{require_regular_numeric, Operator, OperatorLogic, PortError};
use crate::config::options::Options;
use crate::dsp::filter::{butter, BandType, Sos, SosFilter, MAX_ORDER};
use crate::stream::{Batch, Nanos, Rate, StreamSchema, Values};

/// Options of a `resample` operator.
#[derive(Clone, Debug, PartialEq)]
pub struct ResampleConfig {
    /// Output rate, Hz.
    pub rate_hz: f64,
    /// Anti-aliasing filter order (0: no filter).
    pub order: usize,
    /// Anti-aliasing cutoff as a fraction of the output Nyquist frequency.
    pub cutoff_ratio: f64,
}

impl ResampleConfig {
    /// Reads `rate_hz` (required), `order` (4; 0 turns the anti-aliasing filter off), `cutoff_ratio` (0.8).
    pub fn parse(options: &mut Options) -> Self {
        let rate_hz = options.required_number_in("rate_hz", "Hz", 1e-3..=1e6);
        let order = options.integer("order", 4, 0..MAX_ORDER as i64 + 1) as usize;
        let cutoff_ratio = options.number_in("cutoff_ratio", 0.8, 0.01..=0.99);
        ResampleConfig {
            rate_hz,
            order,
            cutoff_ratio,
        }
    }

    /// The anti-aliasing low-pass for an input at `rate` Hz (`None` with `order = 0`), or why it
    /// cannot be designed.
    fn anti_aliasing(&self, rate: f64) -> Result<Option<Sos>, String> {
        let cutoff = self.cutoff_ratio * self.rate_hz / 2.0;
        if self.order == 0 || cutoff >= rate / 2.0 {
            return Ok(None);
        }
        let sos =
            butter(self.order, &[cutoff], BandType::Lowpass, rate).map_err(|e| e.to_string())?;
        if !sos.is_stable() {
            return Err(format!(
                "a {cutoff} Hz low-pass of order {} at {rate} Hz would not stay stable",
                self.order
            ));
        }
        Ok(Some(sos))
    }

    /// Logic for one subject.
    pub fn instantiate(&self, input: &StreamSchema, output_id: u32) -> ResampleLogic {
        let rate = input.rate.hz().unwrap_or(self.rate_hz);
        let width = input.channel_count().max(1);
        let filter = self
            .anti_aliasing(rate)
            .ok()
            .flatten()
            .and_then(|sos| SosFilter::new(&sos, width).ok());
        ResampleLogic {
            filter,
            rate_hz: self.rate_hz,
            max_gap: (2.0 * 1e9 / rate).round() as Nanos,
            width,
            previous: None,
            next: None,
            output_id,
        }
    }
}

impl Operator for ResampleConfig {
    /// Output: the input's channels at `rate_hz`.
    fn output_schema(
        &self,
        name: &str,
        inputs: &[&StreamSchema],
    ) -> Result<StreamSchema, PortError> {
        let [input] = inputs else {
            return Err(PortError::needs_one_input("resample", inputs.len()));
        };
        let rate = require_regular_numeric("resample", input)?;
        if self.rate_hz > rate {
            return Err(PortError::option(
                "rate_hz",
                format!(
                    "`resample` only lowers the rate, but {} Hz is above the {rate} Hz of `{}`",
                    self.rate_hz, input.name
                ),
                format!("use rate_hz <= {rate}"),
            ));
        }
        self.anti_aliasing(rate).map_err(|reason| {
            PortError::option(
                "order",
                format!(
                    "cannot design the anti-aliasing filter for `{}`: {reason}",
                    input.name
                ),
                "lower `order`, or raise `rate_hz` or `cutoff_ratio`",
            )
        })?;
        Ok(StreamSchema {
            name: name.to_string(),
            rate: Rate::Regular(self.rate_hz),
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

/// Per-subject state of `resample`: filter state, the last filtered sample and the next grid index.
pub struct ResampleLogic {
    filter: Option<SosFilter>,
    rate_hz: f64,
    max_gap: Nanos,
    width: usize,
    previous: Option<(Nanos, Vec<f64>)>,
    next: Option<i64>,
    output_id: u32,
}

impl ResampleLogic {
    fn grid(&self, k: i64) -> Nanos {
        (k as f64 * 1e9 / self.rate_hz).round() as Nanos
    }
}

impl OperatorLogic for ResampleLogic {
    fn on_batch(&mut self, _input: usize, batch: &Batch, out: &mut Vec<Batch>) {
        let Values::Numeric(values) = &batch.values else {
            return;
        };
        let mut filtered = values.clone();
        if let Some(filter) = &mut self.filter {
            let _ = filter.process(&mut filtered);
        }
        let (mut times, mut result) = (Vec::new(), Vec::new());
        for (frame, &time) in filtered.chunks_exact(self.width).zip(&batch.timestamps) {
            let mut k = *self.next.get_or_insert_with(|| {
                let mut k = (time as f64 * self.rate_hz / 1e9).ceil() as i64;
                while (k as f64 * 1e9 / self.rate_hz).round() as Nanos > time {
                    k -= 1;
                }
                while ((k as f64 * 1e9 / self.rate_hz).round() as Nanos) < time {
                    k += 1;
                }
                k
            });
            while self.grid(k) <= time {
                let at = self.grid(k);
                if at == time {
                    result.extend_from_slice(frame);
                } else if let Some((before, previous)) = &self.previous {
                    if time - before > self.max_gap {
                        result.extend(std::iter::repeat_n(f64::NAN, self.width));
                    } else {
                        let w = (at - before) as f64 / (time - before) as f64;
                        result.extend(previous.iter().zip(frame).map(|(a, b)| a + w * (b - a)));
                    }
                } else {
                    result.extend(std::iter::repeat_n(f64::NAN, self.width));
                }
                times.push(at);
                k += 1;
            }
            self.next = Some(k);
            self.previous = Some((time, frame.to_vec()));
        }
        if !times.is_empty() {
            out.push(Batch {
                stream: self.output_id,
                subject: batch.subject.clone(),
                timestamps: times,
                values: Values::Numeric(result),
            });
        }
    }

    fn on_frontier(&mut self, _frontier: Nanos, _out: &mut Vec<Batch>) {}

    fn hold(&self) -> Option<Nanos> {
        self.previous.as_ref().map(|(time, _)| time + 1)
    }
}
