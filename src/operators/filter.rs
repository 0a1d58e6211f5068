//! `filter`: Butterworth low/high/band-pass, band-stop and notch filters on every channel.
//!
//! Causal by default: second-order sections run sample by sample with each channel's state kept
//! across chunks (the output equals `scipy.signal.sosfilt` over the whole recording). A NaN or
//! infinite sample gives NaN and leaves the state untouched; `after_gap = "restart"` re-primes a
//! channel at its steady state for the first finite sample after such a gap (no ringing).
//! `initial = "steady_state"` starts each channel that way too, at `scipy.signal.sosfilt_zi(sos)`
//! times its first sample, so a signal with an offset does not ring at the start; the default,
//! `"zero"`, starts from rest like `sosfilt` without `zi`.
//! `zero_phase = true` filters forward and backward like `scipy.signal.sosfiltfilt`: it needs the
//! whole recording, so it buffers each subject until the end of input and is accepted only when no
//! upstream source runs in real time (offline replay).
//!
//! ```toml
//! [operators.eeg_clean]
//! kind = "filter"
//! inputs = ["sim.eeg"]
//! type = "bandpass"       # lowpass, highpass, bandpass, bandstop, notch
//! order = 4
//! cutoff_hz = [1, 45]     # one number for lowpass/highpass/notch
//! ```

use toml::Spanned;

use super::{require_regular_numeric, Operator, OperatorLogic, PortError};
use crate::config::document::Node;
use crate::config::options::Options;
use crate::dsp::filter::{
    butter, notch, sosfiltfilt, sosfiltfilt_padlen, BandType, Sos, SosFilter, MAX_ORDER,
};
use crate::stream::{Batch, Nanos, StreamSchema, Values};

/// Filter types a pipeline file may name.
pub const FILTER_TYPES: [&str; 5] = ["lowpass", "highpass", "bandpass", "bandstop", "notch"];

/// Notch quality factors a pipeline may ask for (centre frequency over bandwidth).
const Q_RANGE: std::ops::RangeInclusive<f64> = 0.01..=10_000.0;

/// Options of a `filter` operator.
#[derive(Clone, Debug, PartialEq)]
pub struct FilterConfig {
    /// One of [`FILTER_TYPES`].
    pub filter_type: &'static str,
    /// Butterworth order (ignored by notch).
    pub order: usize,
    /// One cutoff, or `[low, high]` band edges, Hz.
    pub cutoff_hz: Vec<f64>,
    /// Notch quality factor.
    pub q: f64,
    /// Forward-backward (offline only) instead of causal.
    pub zero_phase: bool,
    /// Re-prime a channel's state after a gap of non-finite samples.
    pub restart_after_gap: bool,
    /// Start each channel at its steady state for its first finite sample instead of at rest.
    pub steady_state_start: bool,
}

impl FilterConfig {
    /// Reads `type`, `order` (4), `cutoff_hz`, `q` (30, notch), `zero_phase` (false), `after_gap`
    /// and `initial` (zero or steady_state).
    pub fn parse(options: &mut Options) -> Self {
        let filter_type = options.choice("type", "bandpass", &FILTER_TYPES);
        if options.value_span("type").is_none() {
            options.error_at(
                "type",
                "`filter` needs a `type`",
                "for example type = \"bandpass\"",
            );
        }
        let order = options.integer("order", 4, 1..MAX_ORDER as i64 + 1) as usize;
        let cutoff_hz = match options.raw("cutoff_hz") {
            None => {
                options.error_at(
                    "cutoff_hz",
                    "`filter` needs `cutoff_hz`",
                    "for example cutoff_hz = [1, 45]",
                );
                Vec::new()
            }
            Some(node) => read_cutoffs(options, &node),
        };
        let wanted = if matches!(filter_type, "bandpass" | "bandstop") {
            2
        } else {
            1
        };
        if !cutoff_hz.is_empty() && cutoff_hz.len() != wanted {
            options.error_at(
                "cutoff_hz",
                format!(
                    "a {filter_type} filter takes {wanted} cutoff(s), found {}",
                    cutoff_hz.len()
                ),
                if wanted == 2 {
                    "write cutoff_hz = [low, high]"
                } else {
                    "write cutoff_hz = <Hz>"
                },
            );
        }
        let q = options.number_in("q", 30.0, Q_RANGE);
        let zero_phase = options.boolean("zero_phase", false);
        let restart_after_gap =
            options.choice("after_gap", "continue", &["continue", "restart"]) == "restart";
        let steady_state_start =
            options.choice("initial", "zero", &["zero", "steady_state"]) == "steady_state";
        if steady_state_start && zero_phase {
            options.error_at(
                "initial",
                "`initial` applies to causal filtering; zero_phase = true pads and primes each run itself, as sosfiltfilt",
                "remove `initial`, or set zero_phase = false",
            );
        }
        FilterConfig {
            filter_type,
            order,
            cutoff_hz,
            q,
            zero_phase,
            restart_after_gap,
            steady_state_start,
        }
    }

    /// The sections for an input sampled at `rate` Hz, or why they cannot be designed.
    pub fn design(&self, rate: f64) -> Result<Sos, String> {
        let band = match self.filter_type {
            "lowpass" => BandType::Lowpass,
            "highpass" => BandType::Highpass,
            "bandstop" => BandType::Bandstop,
            "notch" => {
                let freq = self.cutoff_hz.first().copied().unwrap_or(0.0);
                return notch(freq, self.q, rate).map_err(|e| e.to_string());
            }
            _ => BandType::Bandpass,
        };
        butter(self.order, &self.cutoff_hz, band, rate).map_err(|e| e.to_string())
    }

    /// The sections for an input at `rate` Hz, refusing designs that would not stay stable.
    fn stable_design(&self, rate: f64) -> Result<Sos, String> {
        let sos = self.design(rate)?;
        if sos.is_stable() {
            Ok(sos)
        } else {
            Err("its poles reach the unit circle, so it would not stay stable (a cutoff too close to 0 Hz or the Nyquist frequency for this order, or too high a q)".to_string())
        }
    }

    /// Logic for one subject.
    pub fn instantiate(&self, input: &StreamSchema, output_id: u32, subject: &str) -> FilterLogic {
        let width = input.channel_count().max(1);
        let sos = self
            .design(input.rate.hz().unwrap_or(1.0))
            .unwrap_or_else(|_| Sos(vec![[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]]));
        FilterLogic {
            filter: SosFilter::new(&sos, width).expect("validated sections"),
            sos,
            width,
            zero_phase: self.zero_phase,
            restart_after_gap: self.restart_after_gap,
            unprimed: vec![self.steady_state_start; width],
            times: Vec::new(),
            values: Vec::new(),
            output_id,
            subject: subject.to_string(),
        }
    }
}

impl Operator for FilterConfig {
    /// Output: the input's schema, renamed.
    fn output_schema(
        &self,
        name: &str,
        inputs: &[&StreamSchema],
    ) -> Result<StreamSchema, PortError> {
        let [input] = inputs else {
            return Err(PortError::needs_one_input("filter", inputs.len()));
        };
        let rate = require_regular_numeric("filter", input)?;
        self.stable_design(rate).map_err(|reason| {
            PortError::option(
                "cutoff_hz",
                format!(
                    "cannot design this filter for `{}` sampled at {rate} Hz: {reason}",
                    input.name
                ),
                format!(
                    "keep cutoffs between 0 and the Nyquist frequency, {} Hz",
                    rate / 2.0
                ),
            )
        })?;
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
        subject: &str,
    ) -> Box<dyn OperatorLogic> {
        Box::new(self.instantiate(inputs[0], output_id, subject))
    }

    fn offline_only(&self) -> Option<&'static str> {
        self.zero_phase.then_some("zero_phase")
    }
}

fn read_cutoffs(options: &mut Options, node: &Spanned<Node>) -> Vec<f64> {
    let number = |n: &Node| match n {
        Node::Int(i) => Some(*i as f64),
        Node::Float(f) => Some(*f),
        _ => None,
    };
    let found = match node.get_ref() {
        Node::Array(items) => items
            .iter()
            .map(|i| number(i.get_ref()))
            .collect::<Option<Vec<f64>>>(),
        other => number(other).map(|v| vec![v]),
    };
    found.unwrap_or_else(|| {
        options.error_at_span(
            node.span(),
            "`cutoff_hz` must be a number or [low, high] in Hz",
            "for example cutoff_hz = [1, 45]",
        );
        Vec::new()
    })
}

/// Per-subject state of `filter`: causal filter state, or the buffered recording for zero phase.
pub struct FilterLogic {
    filter: SosFilter,
    sos: Sos,
    width: usize,
    zero_phase: bool,
    restart_after_gap: bool,
    /// Channels whose next finite sample sets their state to its steady state.
    unprimed: Vec<bool>,
    times: Vec<Nanos>,
    values: Vec<f64>,
    output_id: u32,
    subject: String,
}

impl FilterLogic {
    fn causal(&mut self, values: &[f64]) -> Vec<f64> {
        let mut out = values.to_vec();
        for frame in out.chunks_exact_mut(self.width) {
            for (channel, &x) in frame.iter().enumerate() {
                if !x.is_finite() {
                    self.unprimed[channel] |= self.restart_after_gap;
                } else if std::mem::take(&mut self.unprimed[channel]) {
                    let _ = self.filter.prime_channel(channel, x);
                }
            }
            let _ = self.filter.process(frame);
        }
        out
    }

    /// Zero-phase filters each channel; runs of finite samples are filtered separately (NaN kept).
    fn zero_phase_all(&self) -> Vec<f64> {
        let n = self.times.len();
        let mut out = vec![f64::NAN; self.values.len()];
        let padlen = sosfiltfilt_padlen(&self.sos);
        for channel in 0..self.width {
            let column: Vec<f64> = self
                .values
                .iter()
                .skip(channel)
                .step_by(self.width)
                .copied()
                .collect();
            let mut start = 0;
            while start < n {
                if !column[start].is_finite() {
                    start += 1;
                    continue;
                }
                let end = (start..n).find(|&i| !column[i].is_finite()).unwrap_or(n);
                if end - start > padlen {
                    if let Ok(filtered) = sosfiltfilt(&self.sos, &column[start..end]) {
                        for (i, v) in filtered.into_iter().enumerate() {
                            out[(start + i) * self.width + channel] = v;
                        }
                    }
                }
                start = end;
            }
        }
        out
    }
}

impl OperatorLogic for FilterLogic {
    fn on_batch(&mut self, _input: usize, batch: &Batch, out: &mut Vec<Batch>) {
        let Values::Numeric(values) = &batch.values else {
            return;
        };
        if self.zero_phase {
            self.times.extend_from_slice(&batch.timestamps);
            self.values.extend_from_slice(values);
            return;
        }
        let filtered = self.causal(values);
        out.push(batch.with_values(self.output_id, Values::Numeric(filtered)));
    }

    fn on_frontier(&mut self, frontier: Nanos, out: &mut Vec<Batch>) {
        if self.zero_phase && frontier == Nanos::MAX && !self.times.is_empty() {
            let values = self.zero_phase_all();
            out.push(Batch {
                stream: self.output_id,
                subject: self.subject.clone(),
                timestamps: std::mem::take(&mut self.times),
                values: Values::Numeric(values),
            });
            self.values.clear();
        }
    }

    fn hold(&self) -> Option<Nanos> {
        self.times.first().copied()
    }
}
