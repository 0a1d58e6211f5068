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

use std::collections::BTreeMap;

use super::feature_output::Rows;
use super::window::{Window, WindowPlan, WindowSpec};
use super::{Operator, OperatorLogic, PortError};
use crate::config::options::Options;
use crate::dsp::moments::Moments;
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
        // Blocks of one hop's samples: a regular stream's windows are then whole blocks.
        let block = input.rate.hz().map_or(64, |hz| {
            ((self.window.hop as f64 / 1e9 * hz).round() as usize).clamp(1, 1 << 20)
        });
        WindowStatsLogic {
            config: self.clone(),
            emotion: self.keeps_emotion(input),
            plan: WindowPlan::new(self.window, input.channel_count(), input.rate.hz()),
            blocks: BlockMoments {
                block,
                moments: BTreeMap::new(),
            },
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

/// Per-subject state of `window_stats`: the buffered window and its blocks' summaries.
pub struct WindowStatsLogic {
    config: WindowStatsConfig,
    emotion: bool,
    plan: WindowPlan,
    blocks: BlockMoments,
    width: usize,
    output_width: usize,
    output_id: u32,
    subject: String,
}

/// Per-channel summaries of the blocks of `block` samples that start at multiples of `block`
/// (positions among all the subject's samples), kept while later windows may still hold them.
struct BlockMoments {
    block: usize,
    moments: BTreeMap<u64, Vec<Moments>>,
}

impl BlockMoments {
    /// The summary of every channel of `window`: its whole blocks from the cache (summarised
    /// once), the partial blocks at either end directly.
    fn window(&mut self, width: usize, window: &Window<'_>) -> Vec<Moments> {
        let block = self.block as u64;
        let first = window.first_sample;
        let end = first + window.times.len() as u64;
        let aligned = first.div_ceil(block) * block;
        let aligned_end = end / block * block;
        let rows = |from: u64, to: u64| {
            &window.values[(from - first) as usize * width..(to - first) as usize * width]
        };
        let direct = |from: u64, to: u64| -> Vec<Moments> {
            let values = rows(from, to);
            (0..width)
                .map(|c| Moments::of_column(values, width, c))
                .collect()
        };
        if aligned >= aligned_end {
            return direct(first, end);
        }
        self.moments = self.moments.split_off(&aligned);
        let mut total = direct(first, aligned);
        let mut start = aligned;
        while start < aligned_end {
            let summary = self
                .moments
                .entry(start)
                .or_insert_with(|| direct(start, start + block));
            total
                .iter_mut()
                .zip(summary.iter())
                .for_each(|(t, m)| *t = t.merge(*m));
            start += block;
        }
        total
            .iter_mut()
            .zip(direct(aligned_end, end))
            .for_each(|(t, m)| *t = t.merge(m));
        total
    }
}

/// Appends the configured statistics of every channel to `row`.
fn summarise(stats: &[&'static str], moments: &[Moments], row: &mut Vec<f64>) {
    for m in moments {
        for stat in stats {
            row.push(match *stat {
                "mean" => m.mean(),
                "std" => m.std(),
                "min" => m.min(),
                "max" => m.max(),
                _ => m.count(),
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
        let (config, width, emotion, blocks) =
            (&self.config, self.width, self.emotion, &mut self.blocks);
        let mut timestamps = Vec::new();
        let mut values = Vec::new();
        self.plan.close(frontier, |window| {
            let moments = blocks.window(width, &window);
            let finite: f64 = moments.iter().map(Moments::count).sum();
            let valid_coverage = if window.values.is_empty() {
                0.0
            } else {
                window.coverage * finite / window.values.len() as f64
            };
            if valid_coverage == 0.0 && config.empty == EmptyWindows::Skip {
                return;
            }
            let start = values.len();
            summarise(&config.stats, &moments, &mut values);
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
