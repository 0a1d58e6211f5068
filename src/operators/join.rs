//! `join`: one row per window end from several windowed streams of the same subject.
//!
//! The inputs are regular streams at one common rate (feature streams whose windows share the
//! hop-aligned event-time boundaries), so their samples meet on identical timestamps. A row for
//! time `t` is emitted once every input's frontier has passed `t`; it concatenates each input's
//! channels in input order. Missing data (`missing`): `emit` (default) fills the absent input's
//! channels with NaN, `fill` repeats that input's last row (NaN before its first), `skip` drops
//! rows where any input is absent; `coverage` (optional last channel) is the fraction of inputs
//! present. Late data (a sample for a row already emitted) is dropped and counted.
//!
//! ```toml
//! [operators.helo_input]
//! kind = "join"
//! inputs = ["eeg_de", "gsr", "ppg", "face"]
//! missing = "emit"
//! coverage = false
//! ```

use std::collections::BTreeMap;

use super::feature_output::Rows;
use super::{Operator, OperatorLogic, PortError, PortSite};
use crate::config::options::Options;
use crate::stream::{
    Batch, Channel, ChannelFormat, Modality, Nanos, Rate, StreamSchema, Values, QUALITY_KIND,
};

/// Policy for a row where some input has no sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// Emit with NaN for the absent input.
    Emit,
    /// Emit with the absent input's previous row.
    Fill,
    /// Leave the row out.
    Skip,
}

/// Options of a `join` operator.
#[derive(Clone, Debug, PartialEq)]
pub struct JoinConfig {
    /// Policy for rows with an absent input.
    pub missing: Missing,
    /// Append a `coverage` channel.
    pub coverage: bool,
    /// Prefix every label with its input's name.
    pub prefix: bool,
}

impl JoinConfig {
    /// Reads `missing` (`emit`), `coverage` (true) and `prefix` (false).
    pub fn parse(options: &mut Options) -> Self {
        let missing = match options.choice("missing", "emit", &["emit", "fill", "skip"]) {
            "fill" => Missing::Fill,
            "skip" => Missing::Skip,
            _ => Missing::Emit,
        };
        JoinConfig {
            missing,
            coverage: options.boolean("coverage", true),
            prefix: options.boolean("prefix", false),
        }
    }

    /// Logic for one subject.
    pub fn instantiate(
        &self,
        inputs: &[&StreamSchema],
        output_id: u32,
        subject: &str,
    ) -> JoinLogic {
        let widths: Vec<usize> = inputs.iter().map(|s| s.channel_count()).collect();
        JoinLogic {
            config: self.clone(),
            last: widths.iter().map(|&w| vec![f64::NAN; w]).collect(),
            widths,
            pending: BTreeMap::new(),
            emitted_until: Nanos::MIN,
            late: 0,
            output_id,
            subject: subject.to_string(),
        }
    }
}

impl Operator for JoinConfig {
    /// Output: every input's channels in input order (then `coverage`), at the common rate.
    fn output_schema(
        &self,
        name: &str,
        inputs: &[&StreamSchema],
    ) -> Result<StreamSchema, PortError> {
        if inputs.len() < 2 {
            return Err(PortError {
                site: PortSite::Inputs,
                message: format!(
                    "`join` combines two or more streams, found {}",
                    inputs.len()
                ),
                help: "list the windowed streams to combine".into(),
            });
        }
        let mut rate = None;
        let mut channels: Vec<Channel> = Vec::new();
        for (index, input) in inputs.iter().enumerate() {
            let Some(hz) = input.rate.hz().filter(|_| input.format.is_numeric()) else {
                return Err(PortError::input(
                    index,
                    format!(
                        "`join` needs regular numeric streams, but `{}` is {} with {} values",
                        input.name,
                        input.rate,
                        input.format.lsl_name()
                    ),
                    "join windowed feature streams",
                ));
            };
            match rate {
                None => rate = Some(hz),
                Some(first) if (first - hz).abs() > 1e-9 * first => {
                    return Err(PortError::input(index, format!("`{}` has {hz} samples per second but `{}` has {first}: their windows do not meet", input.name, inputs[0].name), "give every input the same hop_s"));
                }
                Some(_) => {}
            }
            for c in &input.channels {
                let label = if self.prefix {
                    format!("{}.{}", input.name, c.label)
                } else {
                    c.label.clone()
                };
                if channels.iter().any(|other| other.label == label)
                    || (self.coverage && label == "coverage")
                {
                    return Err(PortError::input(
                        index,
                        format!(
                            "channel `{label}` of `{}` is already taken by an earlier input",
                            input.name
                        ),
                        "set prefix = true, or turn the quality/coverage channels off upstream",
                    ));
                }
                channels.push(Channel { label, ..c.clone() });
            }
        }
        if self.coverage {
            channels.push(Channel::new("coverage", "fraction", QUALITY_KIND));
        }
        Ok(StreamSchema {
            name: name.to_string(),
            modality: Modality::Features,
            channels,
            format: ChannelFormat::Double64,
            rate: Rate::Regular(rate.unwrap_or(1.0)),
            subjects: inputs[0].subjects.clone(),
        })
    }

    fn logic(
        &self,
        inputs: &[&StreamSchema],
        output_id: u32,
        _output: &StreamSchema,
        subject: &str,
    ) -> Box<dyn OperatorLogic> {
        Box::new(self.instantiate(inputs, output_id, subject))
    }
}

/// Per-subject state of `join`: rows waiting for the frontier, each input's last row, late count.
pub struct JoinLogic {
    config: JoinConfig,
    widths: Vec<usize>,
    last: Vec<Vec<f64>>,
    pending: BTreeMap<Nanos, Vec<Option<Vec<f64>>>>,
    emitted_until: Nanos,
    late: u64,
    output_id: u32,
    subject: String,
}

impl OperatorLogic for JoinLogic {
    fn late_samples(&self) -> u64 {
        self.late
    }

    fn on_batch(&mut self, input: usize, batch: &Batch, _out: &mut Vec<Batch>) {
        let Values::Numeric(values) = &batch.values else {
            return;
        };
        let width = self.widths[input];
        let inputs = self.widths.len();
        for (frame, &time) in values.chunks_exact(width.max(1)).zip(&batch.timestamps) {
            if time < self.emitted_until {
                self.late += 1;
                continue;
            }
            self.pending
                .entry(time)
                .or_insert_with(|| vec![None; inputs])[input] = Some(frame.to_vec());
        }
    }

    fn on_frontier(&mut self, frontier: Nanos, out: &mut Vec<Batch>) {
        let later = self.pending.split_off(&frontier);
        let ready = std::mem::replace(&mut self.pending, later);
        let (mut timestamps, mut values) = (Vec::new(), Vec::new());
        for (time, parts) in ready {
            let present = parts.iter().filter(|p| p.is_some()).count();
            if present < parts.len() && self.config.missing == Missing::Skip {
                continue;
            }
            for (index, part) in parts.into_iter().enumerate() {
                match part {
                    Some(row) => {
                        values.extend_from_slice(&row);
                        self.last[index] = row;
                    }
                    None if self.config.missing == Missing::Fill => {
                        values.extend_from_slice(&self.last[index])
                    }
                    None => values.extend(std::iter::repeat_n(f64::NAN, self.widths[index])),
                }
            }
            if self.config.coverage {
                values.push(present as f64 / self.widths.len() as f64);
            }
            timestamps.push(time);
        }
        self.emitted_until = self.emitted_until.max(frontier);
        Rows { timestamps, values }.flush(self.output_id, &self.subject, out);
    }
}
