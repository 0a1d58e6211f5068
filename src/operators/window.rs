//! Event-time sliding windows: which windows exist, which samples they hold and when they close.
//!
//! By default windows are aligned on multiples of the hop on the event-time axis, so every stream
//! and every subject shares the same boundaries: the window ending at `e` holds samples with
//! timestamps in `[e - length, e)` and is complete once the input frontier reaches `e`. Its output
//! sample carries the timestamp `e`. With `align = "first_sample"` a subject's first window starts
//! at its first sample instead (window 0 = the first `window_s` of a recorded trial, as offline
//! feature extraction such as DMER's defines it), and later windows follow every hop. A subject's
//! first window is the first whole one: with clock alignment the samples before its start (less
//! than a hop) are in no window. A sample that arrives after its windows closed, or before an
//! earlier sample, is dropped and counted as late.
//!
//! ```
//! use heloflow::operators::{WindowPlan, WindowSpec};
//! use heloflow::stream::{Batch, Values, NANOS_PER_SEC};
//!
//! let spec = WindowSpec::new(NANOS_PER_SEC, NANOS_PER_SEC / 2);
//! let mut plan = WindowPlan::new(spec, 1, Some(4.0));
//! let times = (0..8).map(|i| i * NANOS_PER_SEC / 4).collect();
//! plan.push(&Batch { stream: 0, subject: "S01".into(), timestamps: times,
//!                    values: Values::Numeric((0..8).map(f64::from).collect()) });
//! let mut ends = Vec::new();
//! plan.close(2 * NANOS_PER_SEC, |window| ends.push((window.end, window.values.len())));
//! assert_eq!(ends, vec![(NANOS_PER_SEC, 4), (3 * NANOS_PER_SEC / 2, 4), (2 * NANOS_PER_SEC, 4)]);
//! ```

use crate::config::options::Options;
use crate::config::PortError;
use crate::stream::{secs_to_nanos, Batch, Nanos, StreamSchema, Values};

/// Window lengths and hops a pipeline may ask for, seconds: from a millisecond to a day.
pub const WINDOW_RANGE_S: std::ops::RangeInclusive<f64> = 1e-3..=86_400.0;

/// Most windows one sample may fall into (`window_s / hop_s`): each window re-reads its samples,
/// so a longer window per hop multiplies the work per sample.
pub const MAX_WINDOWS_PER_SAMPLE: i64 = 1_000;

/// Most bytes one window of one input may hold per subject (timestamps and values): beyond it a
/// run would exhaust memory long before the first window closes.
pub const MAX_WINDOW_BYTES: f64 = (1u64 << 30) as f64;

/// Where a subject's first window starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowAlign {
    /// Window ends on multiples of the hop on the event-time axis, shared by every stream.
    Clock,
    /// The first window starts at the subject's first sample; later ones follow every hop.
    FirstSample,
}

/// Length, hop and alignment of sliding windows, in event-time nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowSpec {
    /// Window length.
    pub length: Nanos,
    /// Distance between consecutive window ends.
    pub hop: Nanos,
    /// Where the first window starts.
    pub align: WindowAlign,
}

impl WindowSpec {
    /// Refuses windows that cannot fit in memory: one window of a regular input holds
    /// `window_s x rate` samples of its channels and a timestamp each, at most [`MAX_WINDOW_BYTES`].
    pub fn check_memory(&self, inputs: &[&StreamSchema]) -> Result<(), PortError> {
        let length_s = self.length as f64 / 1e9;
        for input in inputs {
            let Some(rate) = input.rate.hz() else {
                continue;
            };
            let samples = length_s * rate;
            let bytes = samples * (input.channel_count() as f64 + 1.0) * 8.0;
            if bytes > MAX_WINDOW_BYTES {
                return Err(PortError::option(
                    "window_s",
                    format!(
                        "a window of {length_s} s of `{}` ({rate} Hz, {} channels) holds {:.0} MiB per subject, more than the {:.0} MiB a window may hold",
                        input.name,
                        input.channel_count(),
                        bytes / (1u64 << 20) as f64,
                        MAX_WINDOW_BYTES / (1u64 << 20) as f64
                    ),
                    format!(
                        "use window_s of at most {:.0} s for this stream, or resample it first",
                        (MAX_WINDOW_BYTES / ((input.channel_count() as f64 + 1.0) * 8.0 * rate)).floor()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Windows of `length` every `hop`, aligned on the clock.
    pub fn new(length: Nanos, hop: Nanos) -> Self {
        WindowSpec {
            length,
            hop,
            align: WindowAlign::Clock,
        }
    }

    /// Reads `window_s`, `hop_s` (seconds, with defaults) and `align` (`clock` or `first_sample`).
    pub fn parse(options: &mut Options, default_length_s: f64, default_hop_s: f64) -> Self {
        let length_s = options.number_in("window_s", default_length_s, WINDOW_RANGE_S);
        let hop_s = options.number_in("hop_s", default_hop_s, WINDOW_RANGE_S);
        let align = match options.choice("align", "clock", &["clock", "first_sample"]) {
            "first_sample" => WindowAlign::FirstSample,
            _ => WindowAlign::Clock,
        };
        let spec = WindowSpec {
            length: secs_to_nanos(length_s).max(1),
            hop: secs_to_nanos(hop_s).max(1),
            align,
        };
        if spec.hop > spec.length {
            options.error_at(
                "hop_s",
                format!("hop_s = {hop_s} is longer than window_s = {length_s}: samples between windows would be ignored"),
                format!("use hop_s <= {length_s}"),
            );
        } else if spec.length / spec.hop > MAX_WINDOWS_PER_SAMPLE {
            options.error_at(
                "hop_s",
                format!("hop_s = {hop_s} puts every sample into more than {MAX_WINDOWS_PER_SAMPLE} windows of window_s = {length_s}"),
                format!("use hop_s >= {}", length_s / MAX_WINDOWS_PER_SAMPLE as f64),
            );
        }
        spec
    }

    /// End of the first window for a subject whose first sample is at `first`.
    pub fn first_end(&self, first: Nanos) -> Nanos {
        let end = first.saturating_add(self.length);
        match self.align {
            WindowAlign::FirstSample => end,
            WindowAlign::Clock => {
                let past = end.rem_euclid(self.hop);
                if past == 0 {
                    end
                } else {
                    (end - past).saturating_add(self.hop)
                }
            }
        }
    }

    /// Output rate of a windowed stream: one sample per hop.
    pub fn output_rate_hz(&self) -> f64 {
        1e9 / self.hop as f64
    }
}

/// One complete window handed to an operator.
pub struct Window<'a> {
    /// Window end: the output timestamp.
    pub end: Nanos,
    /// Timestamps of the samples inside.
    pub times: &'a [Nanos],
    /// Their values, row-major.
    pub values: &'a [f64],
    /// Fraction of the expected samples present (1.0 when the rate is irregular and any sample is in).
    pub coverage: f64,
    /// Position of the first sample among all samples buffered so far, so consumers can tell how
    /// consecutive windows overlap.
    pub first_sample: u64,
}

/// Most sample rows a plan reserves up front (longer windows grow their buffers as they fill).
const MAX_RESERVED_ROWS: usize = 1 << 20;

/// Buffered samples of one subject's input and the clock of its next window.
pub struct WindowPlan {
    spec: WindowSpec,
    width: usize,
    rate_hz: Option<f64>,
    times: Vec<Nanos>,
    values: Vec<f64>,
    start: usize,
    /// Samples compacted away from the front of the buffers.
    dropped: u64,
    next_end: Option<Nanos>,
    /// Start of the subject's first window: earlier samples are in no window.
    first_start: Option<Nanos>,
    last_time: Option<Nanos>,
    late: u64,
}

impl WindowPlan {
    /// A plan for an input of `width` channels at `rate_hz` (`None` when irregular).
    pub fn new(spec: WindowSpec, width: usize, rate_hz: Option<f64>) -> Self {
        let width = width.max(1);
        // Room for the samples kept between compactions (up to three windows' worth, see
        // `compact`), so a regular stream never regrows the buffers.
        let rows = rate_hz.map_or(0, |hz| {
            let per_window = (spec.length as f64 / 1e9 * hz).ceil();
            (3.0 * per_window + 16.0).min(MAX_RESERVED_ROWS as f64) as usize
        });
        WindowPlan {
            spec,
            width,
            rate_hz,
            times: Vec::with_capacity(rows),
            values: Vec::with_capacity(rows * width),
            start: 0,
            dropped: 0,
            next_end: None,
            first_start: None,
            last_time: None,
            late: 0,
        }
    }

    /// Samples that arrived after their window had closed (dropped, counted here).
    pub fn late_samples(&self) -> u64 {
        self.late
    }

    /// Buffers a batch's numeric samples; string batches are ignored.
    pub fn push(&mut self, batch: &Batch) {
        let Values::Numeric(values) = &batch.values else {
            return;
        };
        let times = &batch.timestamps;
        // The usual batch, in order and after everything buffered, is appended at once.
        if let (Some(&first), Some(next_end)) = (times.first(), self.next_end) {
            let in_order = self.last_time.is_none_or(|t| first >= t)
                && first >= next_end - self.spec.length
                && times.is_sorted();
            if in_order {
                self.times.extend_from_slice(times);
                self.values
                    .extend_from_slice(&values[..times.len() * self.width]);
                self.last_time = times.last().copied();
                return;
            }
        }
        for (index, &time) in times.iter().enumerate() {
            let next_end = *self
                .next_end
                .get_or_insert_with(|| self.spec.first_end(time));
            let first_start = *self.first_start.get_or_insert(next_end - self.spec.length);
            let out_of_order = self.last_time.is_some_and(|t| time < t);
            if out_of_order || time < next_end - self.spec.length {
                // Samples before the first whole window, in order, belong to no window: not late.
                if out_of_order || time >= first_start {
                    self.late += 1;
                }
                continue;
            }
            self.times.push(time);
            self.values
                .extend_from_slice(&values[index * self.width..(index + 1) * self.width]);
            self.last_time = Some(time);
        }
    }

    /// Hands every window that `frontier` completes to `emit`, oldest first.
    ///
    /// At the end of input (`frontier == Nanos::MAX`) only windows that end within the data seen are
    /// emitted; before that, windows after a gap are emitted with low coverage.
    pub fn close(&mut self, frontier: Nanos, mut emit: impl FnMut(Window<'_>)) {
        let (Some(mut end), Some(last_time)) = (self.next_end, self.last_time) else {
            return;
        };
        let period = self
            .rate_hz
            .map_or(self.spec.length, |hz| (1e9 / hz).round() as Nanos);
        let limit = if frontier == Nanos::MAX {
            last_time + period
        } else {
            frontier
        };
        while end <= limit {
            let times = &self.times[self.start..];
            let from = times.partition_point(|&t| t < end - self.spec.length);
            let to = times.partition_point(|&t| t < end);
            let count = to - from;
            let coverage = match self.rate_hz {
                Some(hz) => (count as f64 / (self.spec.length as f64 * hz / 1e9)).min(1.0),
                None => f64::from(u8::from(count > 0)),
            };
            let base = self.start;
            emit(Window {
                end,
                times: &self.times[base + from..base + to],
                values: &self.values[(base + from) * self.width..(base + to) * self.width],
                coverage,
                first_sample: self.dropped + (base + from) as u64,
            });
            end += self.spec.hop;
            let keep_from = end - self.spec.length;
            self.start += self.times[self.start..].partition_point(|&t| t < keep_from);
        }
        self.next_end = Some(end);
        self.compact();
    }

    /// Drops the samples no window needs any more once they are at least as many as the live ones
    /// (and 1024): the buffers then hold at most about twice a window's samples, whatever the run's
    /// length, and each live sample is moved about once per window on average.
    fn compact(&mut self) {
        let live = self.times.len() - self.start;
        if self.start >= live.max(1024) {
            self.times.drain(..self.start);
            self.values.drain(..self.start * self.width);
            self.dropped += self.start as u64;
            self.start = 0;
            // A burst (data far ahead of the frontier) grew the buffers; give that memory back.
            if self.times.capacity() > 8 * self.times.len().max(1024) {
                self.times.shrink_to(2 * self.times.len());
                self.values.shrink_to(2 * self.values.len());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::NANOS_PER_SEC;

    fn batch(times: Vec<Nanos>) -> Batch {
        let values = times.iter().map(|&t| t as f64).collect();
        Batch {
            stream: 0,
            subject: "S".into(),
            timestamps: times,
            values: Values::Numeric(values),
        }
    }

    #[test]
    fn windows_align_on_hop_multiples() {
        let spec = WindowSpec::new(NANOS_PER_SEC, NANOS_PER_SEC);
        let mut plan = WindowPlan::new(spec, 1, Some(10.0));
        let start = NANOS_PER_SEC / 3;
        plan.push(&batch(
            (0..30).map(|i| start + i * NANOS_PER_SEC / 10).collect(),
        ));
        let mut seen = Vec::new();
        plan.close(Nanos::MAX, |w| {
            seen.push((w.end, w.times.len(), w.coverage))
        });
        assert_eq!(
            seen,
            vec![(2 * NANOS_PER_SEC, 10, 1.0), (3 * NANOS_PER_SEC, 10, 1.0)]
        );
    }

    #[test]
    fn first_sample_alignment_starts_at_the_first_sample() {
        let mut spec = WindowSpec::new(NANOS_PER_SEC, NANOS_PER_SEC);
        spec.align = WindowAlign::FirstSample;
        let mut plan = WindowPlan::new(spec, 1, Some(10.0));
        let start = NANOS_PER_SEC / 3;
        plan.push(&batch(
            (0..30).map(|i| start + i * NANOS_PER_SEC / 10).collect(),
        ));
        let mut seen = Vec::new();
        plan.close(Nanos::MAX, |w| {
            seen.push((w.end, w.times.len(), w.times[0]))
        });
        assert_eq!(
            seen,
            vec![
                (start + NANOS_PER_SEC, 10, start),
                (start + 2 * NANOS_PER_SEC, 10, start + NANOS_PER_SEC),
                (start + 3 * NANOS_PER_SEC, 10, start + 2 * NANOS_PER_SEC)
            ]
        );
        assert_eq!(WindowSpec::new(10, 4).first_end(3), 16);
        assert_eq!(WindowSpec::new(10, 4).first_end(2), 12);
        assert_eq!(WindowSpec::new(10, 4).first_end(-7), 4);
    }

    #[test]
    fn gaps_give_low_coverage_and_late_samples_are_counted() {
        let spec = WindowSpec::new(NANOS_PER_SEC, NANOS_PER_SEC);
        let mut plan = WindowPlan::new(spec, 1, Some(10.0));
        plan.push(&batch((0..10).map(|i| i * NANOS_PER_SEC / 10).collect()));
        let mut seen = Vec::new();
        plan.close(3 * NANOS_PER_SEC, |w| seen.push((w.end, w.coverage)));
        assert_eq!(
            seen,
            vec![
                (NANOS_PER_SEC, 1.0),
                (2 * NANOS_PER_SEC, 0.0),
                (3 * NANOS_PER_SEC, 0.0)
            ]
        );
        plan.push(&batch(vec![NANOS_PER_SEC]));
        assert_eq!(plan.late_samples(), 1);
    }

    #[test]
    fn samples_before_the_first_whole_window_are_in_none_and_not_late() {
        let spec = WindowSpec::new(NANOS_PER_SEC, NANOS_PER_SEC);
        let mut plan = WindowPlan::new(spec, 1, Some(10.0));
        // From 0.7 s: the first whole clock-aligned window is [1 s, 2 s).
        plan.push(&batch((7..20).map(|i| i * NANOS_PER_SEC / 10).collect()));
        let mut seen = Vec::new();
        plan.close(2 * NANOS_PER_SEC, |w| seen.push((w.end, w.values.len())));
        assert_eq!(seen, vec![(2 * NANOS_PER_SEC, 10)]);
        assert_eq!(plan.late_samples(), 0);
        // Out of order after that is late, also before the first window.
        plan.push(&batch(vec![NANOS_PER_SEC / 2]));
        assert_eq!(plan.late_samples(), 1);
    }
}
