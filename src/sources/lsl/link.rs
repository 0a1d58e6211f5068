//! One matched LSL stream: its inlet, clock correction, timestamps on the local clock, gap
//! detection and the figures telemetry shows (offset, jitter, effective rate, gaps, late samples).

use std::time::{Duration, Instant};

use lsl::{Pullable, StreamInlet};

use super::metadata::StreamMetadata;
use super::StallPolicy;
use crate::metrics::InletStats;
use crate::stream::{secs_to_nanos, Nanos, Values};

/// Samples pulled from one stream in one step, on the local clock.
#[derive(Debug, Default)]
pub struct Pulled {
    /// Timestamps (local clock, nanoseconds), non-decreasing and at or above the floor given.
    pub timestamps: Vec<Nanos>,
    /// Values, row-major.
    pub values: Option<Values>,
    /// Set when these samples end a gap: the event time lost, in seconds.
    pub resumed_after_s: Option<f64>,
}

/// State of one inlet, owned by the source thread (liblsl objects are not `Send`).
pub struct Link {
    inlet: StreamInlet,
    /// Metadata read when the stream was matched.
    pub meta: StreamMetadata,
    /// Subject the stream feeds.
    pub subject: String,
    /// Nominal rate (None for irregular streams).
    rate: Option<f64>,
    numeric: bool,
    offset_s: f64,
    last_refresh: Instant,
    last_ts: Option<Nanos>,
    last_data: Instant,
    stalled: bool,
    segment: Option<(Nanos, u64)>,
    jitter_var: f64,
    numbers: Vec<f64>,
    strings: Vec<String>,
    /// Live figures, copied into the source's metrics.
    pub stats: InletStats,
}

impl Link {
    /// Wraps an open inlet whose metadata has been checked; `offset_s` is its first clock offset.
    pub fn new(inlet: StreamInlet, meta: StreamMetadata, subject: String, offset_s: f64) -> Link {
        let stats = InletStats {
            name: meta.name.clone(),
            source_id: meta.source_id.clone(),
            subject: subject.clone(),
            clock_offset_s: offset_s,
            live: true,
            ..InletStats::default()
        };
        Link {
            inlet,
            rate: (meta.nominal_srate > 0.0).then_some(meta.nominal_srate),
            numeric: meta.format != "string",
            meta,
            subject,
            offset_s,
            last_refresh: Instant::now(),
            last_ts: None,
            last_data: Instant::now(),
            stalled: false,
            segment: None,
            jitter_var: 0.0,
            numbers: Vec::new(),
            strings: Vec::new(),
            stats,
        }
    }

    /// Re-reads the clock offset every `every_s` seconds (liblsl keeps it current in the background,
    /// so this does not block once the first estimate exists); returns the new measurement.
    pub fn refresh_clock(&mut self, every_s: f64) -> Option<f64> {
        if self.last_refresh.elapsed().as_secs_f64() < every_s {
            return None;
        }
        self.last_refresh = Instant::now();
        let offset = self.inlet.time_correction(0.05).ok()?;
        self.offset_s = offset;
        self.stats.clock_offset_s = offset;
        Some(offset)
    }

    /// Pulls up to `max` waiting samples; samples below `floor` (event time already passed) or
    /// before the previous sample are dropped and counted as late.
    pub fn pull(&mut self, floor: Nanos, max: usize) -> Result<Pulled, lsl::Error> {
        let mut pulled = Pulled::default();
        let mut numbers = Vec::new();
        let mut strings = Vec::new();
        for _ in 0..max {
            let stamp = if self.numeric {
                self.inlet.pull_sample_buf(&mut self.numbers, 0.0)?
            } else {
                self.inlet.pull_sample_buf(&mut self.strings, 0.0)?
            };
            if stamp == 0.0 {
                break;
            }
            let time = secs_to_nanos(stamp + self.offset_s);
            if time < floor || self.last_ts.is_some_and(|last| time < last) {
                self.stats.late += 1;
                continue;
            }
            if self.stalled {
                self.stalled = false;
                self.stats.live = true;
                self.stats.gaps += 1;
                let gap = self.last_ts.map_or(0.0, |last| (time - last) as f64 / 1e9);
                self.stats.gap_s += gap;
                pulled.resumed_after_s = Some(gap);
                self.segment = None;
            }
            self.track(time);
            pulled.timestamps.push(time);
            if self.numeric {
                numbers.extend_from_slice(&self.numbers);
            } else {
                strings.extend(self.strings.iter().cloned());
            }
        }
        if !pulled.timestamps.is_empty() {
            self.last_data = Instant::now();
            self.stats.samples += pulled.timestamps.len() as u64;
            pulled.values = Some(if self.numeric {
                Values::Numeric(numbers)
            } else {
                Values::Text(strings)
            });
        }
        Ok(pulled)
    }

    fn track(&mut self, time: Nanos) {
        if let (Some(rate), Some(last)) = (self.rate, self.last_ts) {
            if self.segment.is_some() {
                let deviation = (time - last) as f64 / 1e9 - 1.0 / rate;
                self.jitter_var = 0.99 * self.jitter_var + 0.01 * deviation * deviation;
                self.stats.jitter_s = self.jitter_var.sqrt();
            }
        }
        let (first, count) = self.segment.get_or_insert((time, 0));
        *count += 1;
        if *count > 1 && time > *first {
            self.stats.effective_rate_hz = (*count - 1) as f64 / ((time - *first) as f64 / 1e9);
        }
        self.last_ts = Some(time);
    }

    /// Marks a regular stream silent for longer than `stall` as stalled; returns true when this
    /// call is the one that noticed (the gap starts now).
    pub fn check_stall(&mut self, stall: Duration) -> bool {
        if self.rate.is_none() || self.stalled || self.last_data.elapsed() < stall {
            return false;
        }
        self.stalled = true;
        self.stats.live = false;
        true
    }

    /// Event time of the last sample received.
    pub fn last_time(&self) -> Option<Nanos> {
        self.last_ts
    }

    /// How far this stream lets event time advance: past its last sample while it flows; for
    /// irregular streams at least `now - lateness`; for a stalled stream with the `advance` policy
    /// `now - stall_timeout`.
    pub fn watermark(
        &self,
        now: Nanos,
        lateness: Nanos,
        stall: Nanos,
        policy: StallPolicy,
    ) -> Nanos {
        let after_last = self.last_ts.map_or(Nanos::MIN, |t| t + 1);
        match self.rate {
            None => after_last.max(now - lateness),
            Some(_) if self.stalled && policy == StallPolicy::Advance => {
                after_last.max(now - stall)
            }
            Some(_) => after_last,
        }
    }
}
