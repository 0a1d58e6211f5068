//! `window_stats`: per-channel statistics over event-time sliding windows.
//!
//! Non-finite samples (NaN, Inf) are left out of the statistics and lower the window's coverage, so a
//! burst of bad samples never poisons later windows. Averaging an emotion stream with
//! `stats = ["mean"]` keeps it an emotion stream (same labels, renormalised to sum to one).
//!
//! ```toml
//! [operators.truth]
//! kind = "window_stats"
//! inputs = ["sim.emotion"]
//! window_s = 2.0
//! hop_s = 1.0
//! stats = ["mean"]
//! ```

use super::feature_output::Rows;
use super::window::{Window, WindowPlan, WindowSpec};
use super::{Operator, OperatorLogic, PortError};
use crate::config::options::Options;
use crate::stream::{
    Batch, Channel, ChannelFormat, Modality, Nanos, Rate, StreamSchema, FEATURE_KIND, QUALITY_KIND,
};

/// Statistics `window_stats` can compute.
pub const STATS: [&str; 5] = ["mean", "std", "min", "max", "count"];

/// What to do with a window that holds no valid sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmptyWindows {
    /// Emit it, with NaN statistics and coverage 0.
    Emit,
    /// Leave it out of the output.
    Skip,
}

/// Options of a `window_stats` operator.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowStatsConfig {
    /// Window length and hop.
    pub window: WindowSpec,
    /// Statistics, in output order.
    pub stats: Vec<&'static str>,
    /// Policy for windows without valid samples.
    pub empty: EmptyWindows,
}

impl WindowStatsConfig {
    /// Reads `window_s` (default 1), `hop_s` (default 1), `stats` (default mean, std) and `empty`.
    pub fn parse(options: &mut Options) -> Self {
        let window = WindowSpec::parse(options, 1.0, 1.0);
        let mut stats = Vec::new();
        for stat in options.string_list("stats").unwrap_or_default() {
            match STATS.iter().find(|s| **s == stat.get_ref()) {
                Some(s) if !stats.contains(s) => stats.push(*s),
                Some(s) => options.error_at_span(
                    stat.span(),
                    format!("statistic \"{s}\" is listed twice in `stats`"),
                    "list each statistic once",
                ),
                None => options.error_at(
                    "stats",
                    format!("unknown statistic \"{}\"", stat.get_ref()),
                    crate::config::document::suggest_or_list(stat.get_ref(), &STATS),
                ),
            }
        }
        if stats.is_empty() {
            stats = vec!["mean", "std"];
        }
        let empty = match options.choice("empty", "emit", &["emit", "skip"]) {
            "skip" => EmptyWindows::Skip,
            _ => EmptyWindows::Emit,
        };
        WindowStatsConfig {
            window,
            stats,
            empty,
        }
    }

    fn keeps_emotion(&self, input: &StreamSchema) -> bool {
        input.modality == Modality::Emotion && self.stats == ["mean"]
    }

    /// Logic for one subject.
    pub fn instantiate(
        &self,
        input: &StreamSchema,
        output_id: u32,
        output: &StreamSchema,
        subject: &str,
    ) -> WindowStatsLogic {
        WindowStatsLogic {
            config: self.clone(),
            emotion: self.keeps_emotion(input),
            plan: WindowPlan::new(self.window, input.channel_count(), input.rate.hz()),
            width: input.channel_count(),
            output_width: output.channel_count(),
            output_id,
            subject: subject.to_string(),
        }
    }
}

impl Operator for WindowStatsConfig {
    fn window(&self) -> Option<WindowSpec> {
        Some(self.window)
    }

    /// Output: `<channel>_<stat>` per channel and statistic, then `coverage`; one sample per hop.
    fn output_schema(
        &self,
        name: &str,
        inputs: &[&StreamSchema],
    ) -> Result<StreamSchema, PortError> {
        let [input] = inputs else {
            return Err(PortError::needs_one_input("window_stats", inputs.len()));
        };
        if !input.format.is_numeric() {
            return Err(PortError::input(
                0,
                format!(
                    "`window_stats` needs numbers, but `{}` is a {} stream of {} values",
                    input.name,
                    input.modality.name(),
                    input.format.lsl_name()
                ),
                "connect a numeric stream",
            ));
        }
        let rate = Rate::Regular(self.window.output_rate_hz());
        if self.keeps_emotion(input) {
            return Ok(StreamSchema {
                name: name.to_string(),
                rate,
                ..(*input).clone()
            });
        }
        let mut channels = Vec::new();
        for channel in &input.channels {
            for stat in &self.stats {
                let unit = if *stat == "count" {
                    "samples"
                } else {
                    &channel.unit
                };
                channels.push(Channel::new(
                    format!("{}_{stat}", channel.label),
                    unit,
                    FEATURE_KIND,
                ));
            }
        }
        channels.push(Channel::new("coverage", "fraction", QUALITY_KIND));
        Ok(StreamSchema {
            name: name.to_string(),
            modality: Modality::Features,
            channels,
            format: ChannelFormat::Double64,
            rate,
            subjects: input.subjects.clone(),
        })
    }

    fn logic(
        &self,
        inputs: &[&StreamSchema],
        output_id: u32,
        output: &StreamSchema,
        subject: &str,
    ) -> Box<dyn OperatorLogic> {
        Box::new(self.instantiate(inputs[0], output_id, output, subject))
    }
}

/// Per-subject state of `window_stats`: the buffered window.
pub struct WindowStatsLogic {
    config: WindowStatsConfig,
    emotion: bool,
    plan: WindowPlan,
    width: usize,
    output_width: usize,
    output_id: u32,
    subject: String,
}

/// Appends the configured statistics of every channel of `window` to `row`, skipping non-finite values.
fn summarise(stats: &[&'static str], width: usize, window: &Window<'_>, row: &mut Vec<f64>) {
    for channel in 0..width {
        let mut count = 0usize;
        let (mut sum, mut sum_sq) = (0.0, 0.0);
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for value in window.values.iter().skip(channel).step_by(width) {
            if value.is_finite() {
                count += 1;
                sum += value;
                sum_sq += value * value;
                min = min.min(*value);
                max = max.max(*value);
            }
        }
        let n = count as f64;
        let mean = if count > 0 { sum / n } else { f64::NAN };
        for stat in stats {
            row.push(match *stat {
                "mean" => mean,
                "std" if count > 0 => (sum_sq / n - mean * mean).max(0.0).sqrt(),
                "min" if count > 0 => min,
                "max" if count > 0 => max,
                "count" => n,
                _ => f64::NAN,
            });
        }
    }
}

impl OperatorLogic for WindowStatsLogic {
    fn late_samples(&self) -> u64 {
        self.plan.late_samples()
    }

    fn on_batch(&mut self, _input: usize, batch: &Batch, _out: &mut Vec<Batch>) {
        self.plan.push(batch);
    }

    fn on_frontier(&mut self, frontier: Nanos, out: &mut Vec<Batch>) {
        let (config, width, emotion) = (&self.config, self.width, self.emotion);
        let mut timestamps = Vec::new();
        let mut values = Vec::new();
        self.plan.close(frontier, |window| {
            let finite = window.values.iter().filter(|v| v.is_finite()).count();
            let valid_coverage = if window.values.is_empty() {
                0.0
            } else {
                window.coverage * finite as f64 / window.values.len() as f64
            };
            if valid_coverage == 0.0 && config.empty == EmptyWindows::Skip {
                return;
            }
            let start = values.len();
            summarise(&config.stats, width, &window, &mut values);
            if emotion {
                let total: f64 = values[start..].iter().filter(|v| v.is_finite()).sum();
                if total > 0.0 {
                    values[start..].iter_mut().for_each(|v| *v /= total);
                }
            } else {
                values.push(valid_coverage);
            }
            timestamps.push(window.end);
        });
        debug_assert_eq!(values.len(), timestamps.len() * self.output_width);
        Rows { timestamps, values }.flush(self.output_id, &self.subject, out);
    }
}
