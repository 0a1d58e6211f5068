//! One matched LSL stream: its inlet, clock correction, timestamps placed on the local clock (see
//! [`super::placement`]: glitches dropped, clock steps re-anchored), how far it lets event time
//! advance (see [`super::cadence`] for regular streams), gap detection and the figures telemetry
//! shows (offset, jitter, effective rate, gaps, dropped samples, clock steps).

use std::time::{Duration, Instant};

use lsl::{Pullable, StreamInlet};

use super::cadence::Cadence;
use super::metadata::StreamMetadata;
use super::placement::{Misplaced, Notice, Placement, Rules};
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
    /// Clock steps and dropped glitches to announce.
    pub notices: Vec<Notice>,
}

/// One sample's values, while its place in event time is being decided.
enum Row {
    Numbers(Vec<f64>),
    Texts(Vec<String>),
}

/// How often, at most, dropped glitches of one stream are announced.
const GLITCH_REPORT_EVERY: Duration = Duration::from_secs(1);

/// Glitches dropped since they were last announced: samples and the largest distance from the
/// local clock, ahead and behind.
#[derive(Debug, Default)]
struct GlitchTally {
    ahead: (u64, f64),
    behind: (u64, f64),
    announced: Option<Instant>,
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
    placement: Placement<Row>,
    /// The next sample's expected time, for regular streams when `expected_next` is on.
    cadence: Option<Cadence>,
    glitches: GlitchTally,
    stalled: bool,
    segment: Option<(Nanos, u64)>,
    jitter_var: f64,
    numbers: Vec<f64>,
    strings: Vec<String>,
    /// Per-channel factors into the declared unit (`on_unit_mismatch = "convert"`).
    scale: Option<Vec<f64>>,
    /// Live figures, copied into the source's metrics.
    pub stats: InletStats,
}

impl Link {
    /// Wraps an open inlet whose metadata has been checked; `offset_s` is its first clock offset,
    /// `rules` how its timestamps are placed; with `expected_next`, a regular stream lets event
    /// time advance to its next sample's expected time (see [`super::cadence`]).
    pub fn new(
        inlet: StreamInlet,
        meta: StreamMetadata,
        subject: String,
        offset_s: f64,
        rules: Rules,
        expected_next: bool,
    ) -> Link {
        let stats = InletStats {
            name: meta.name.clone(),
            source_id: meta.source_id.clone(),
            subject: subject.clone(),
            clock_offset_s: offset_s,
            live: true,
            ..InletStats::default()
        };
        let rate = (meta.nominal_srate > 0.0).then_some(meta.nominal_srate);
        Link {
            inlet,
            rate,
            cadence: rate.filter(|_| expected_next).map(Cadence::new),
            numeric: meta.format != "string",
            meta,
            subject,
            offset_s,
            last_refresh: Instant::now(),
            last_ts: None,
            last_data: Instant::now(),
            placement: Placement::new(rules),
            glitches: GlitchTally::default(),
            stalled: false,
            segment: None,
            jitter_var: 0.0,
            numbers: Vec::new(),
            strings: Vec::new(),
            scale: None,
            stats,
        }
    }

    /// Multiplies every sample's channels by these factors as it is pulled (a unit conversion).
    pub fn with_scale(mut self, factors: Option<Vec<f64>>) -> Link {
        self.scale = factors.filter(|f| f.len() == self.meta.channel_count);
        self
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

    /// Pulls up to `max` waiting samples and places them in event time (see
    /// [`super::placement`]); samples below `floor` (event time already passed) or before the
    /// previous sample are dropped and counted as late.
    pub fn pull(&mut self, floor: Nanos, max: usize) -> Result<Pulled, lsl::Error> {
        let mut pulled = Pulled::default();
        let mut placed = Vec::new();
        for _ in 0..max {
            let stamp = if self.numeric {
                self.inlet.pull_sample_buf(&mut self.numbers, 0.0)?
            } else {
                self.inlet.pull_sample_buf(&mut self.strings, 0.0)?
            };
            if stamp == 0.0 {
                break;
            }
            let row = if self.numeric {
                let mut numbers = self.numbers.clone();
                if let Some(factors) = &self.scale {
                    numbers.iter_mut().zip(factors).for_each(|(x, f)| *x *= f);
                }
                Row::Numbers(numbers)
            } else {
                Row::Texts(self.strings.clone())
            };
            let late = self.placement.drops.late;
            self.placement.offer(
                stamp + self.offset_s,
                lsl::local_clock(),
                floor,
                row,
                &mut placed,
                &mut pulled.notices,
            );
            if self.placement.drops.late > late {
                if let Some(cadence) = self.cadence.as_mut() {
                    cadence.missed(secs_to_nanos(
                        stamp + self.offset_s + self.placement.shift_s(),
                    ));
                }
            }
        }
        self.note(&pulled.notices);
        if let Some(&(first, _)) = placed.first() {
            if self.stalled {
                self.stalled = false;
                self.stats.live = true;
                if let Some(cadence) = self.cadence.as_mut() {
                    cadence.reset();
                }
                let gap = self.last_ts.map_or(0.0, |last| (first - last) as f64 / 1e9);
                self.stats.gap_s += gap;
                pulled.resumed_after_s = Some(gap);
                self.segment = None;
            }
            self.last_data = Instant::now();
            self.stats.samples += placed.len() as u64;
            let mut numbers = Vec::new();
            let mut strings = Vec::new();
            for (time, row) in placed {
                self.track(time);
                pulled.timestamps.push(time);
                match row {
                    Row::Numbers(values) => numbers.extend(values),
                    Row::Texts(values) => strings.extend(values),
                }
            }
            pulled.values = Some(if self.numeric {
                Values::Numeric(numbers)
            } else {
                Values::Text(strings)
            });
        }
        self.stats.dropped = self.placement.drops;
        Ok(pulled)
    }

    /// Seconds the source adds to this stream's timestamps now: the clock offset plus the shift
    /// of the clock steps seen.
    pub fn applied_offset_s(&self) -> f64 {
        self.offset_s + self.placement.shift_s()
    }

    /// How far behind its sender this stream is read (see [`Placement::recent_lag_s`]); `None`
    /// while it is silent.
    pub fn lag_s(&self) -> Option<f64> {
        self.placement.recent_lag_s().filter(|_| !self.stalled)
    }

    /// Drops what is still set aside as a possible clock step (the run is ending).
    pub fn finish(&mut self) -> Vec<Notice> {
        let mut notices = Vec::new();
        self.placement.finish(&mut notices);
        self.note(&notices);
        self.stats.dropped = self.placement.drops;
        notices
    }

    /// Counts clock steps and tallies dropped glitches for [`Link::glitch_report`].
    fn note(&mut self, notices: &[Notice]) {
        for notice in notices {
            match *notice {
                Notice::Stepped { shift_s, .. } => {
                    self.stats.clock_steps += 1;
                    self.stats.clock_shift_s += shift_s;
                    self.segment = None;
                    if let Some(cadence) = self.cadence.as_mut() {
                        cadence.reset();
                    }
                }
                Notice::Dropped {
                    why,
                    samples,
                    lag_s,
                } => {
                    let tally = match why {
                        Misplaced::Ahead => &mut self.glitches.ahead,
                        Misplaced::Behind => &mut self.glitches.behind,
                    };
                    tally.0 += samples;
                    tally.1 = tally.1.max(lag_s.abs());
                }
            }
        }
    }

    /// What was dropped as timestamp glitches since the last report, at most once a second unless
    /// `now` is set (e.g. at the end), as a sentence.
    pub fn glitch_report(&mut self, now: bool) -> Option<String> {
        let tally = &mut self.glitches;
        if tally.ahead.0 + tally.behind.0 == 0
            || (!now
                && tally
                    .announced
                    .is_some_and(|at| at.elapsed() < GLITCH_REPORT_EVERY))
        {
            return None;
        }
        let mut parts = Vec::new();
        if tally.ahead.0 > 0 {
            parts.push(format!(
                "{} sample(s) stamped up to {:.3} s ahead of the local clock",
                tally.ahead.0, tally.ahead.1
            ));
        }
        if tally.behind.0 > 0 {
            parts.push(format!(
                "{} sample(s) stamped up to {:.3} s behind its earlier samples",
                tally.behind.0, tally.behind.1
            ));
        }
        tally.ahead = (0, 0.0);
        tally.behind = (0, 0.0);
        tally.announced = Some(Instant::now());
        Some(format!(
            "dropped {} (timestamp glitches: the stream went back to its clock, so event time did not follow them)",
            parts.join(" and ")
        ))
    }

    fn track(&mut self, time: Nanos) {
        if let (Some(rate), Some(last)) = (self.rate, self.last_ts) {
            if self.segment.is_some() {
                let deviation = (time - last) as f64 / 1e9 - 1.0 / rate;
                self.jitter_var = 0.99 * self.jitter_var + 0.01 * deviation * deviation;
                self.stats.jitter_s = self.jitter_var.sqrt();
            }
        }
        if let Some(cadence) = self.cadence.as_mut() {
            cadence.note(time);
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
        self.stats.gaps += 1;
        true
    }

    /// Event time of the last sample received.
    pub fn last_time(&self) -> Option<Nanos> {
        self.last_ts
    }

    /// While the stream is silent (a gap that has not ended): how long since its last data, s.
    pub fn open_gap_s(&self) -> Option<f64> {
        self.stalled.then(|| self.last_data.elapsed().as_secs_f64())
    }

    /// How far this stream lets event time advance: past its last sample while it flows (for a
    /// regular stream, up to its next sample's expected time less a margin, see
    /// [`super::cadence`]); for irregular streams at least `now - lateness`; for a stalled stream
    /// with the `advance` policy `now - stall_timeout`.
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
            Some(_) if self.stalled => after_last,
            Some(_) => {
                let expected = self.cadence.as_ref().and_then(Cadence::next_floor);
                expected.map_or(after_last, |floor| floor.max(after_last))
            }
        }
    }
}
