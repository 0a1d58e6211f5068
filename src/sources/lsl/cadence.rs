//! What a regular stream promises about its next sample, so that windows close when their last
//! sample arrives rather than when the next one does.
//!
//! A regular stream's event time could only pass its last sample (`last + 1 ns`): a window ending
//! between two samples then closed when the *next* sample arrived, up to a sample period later
//! (250 ms for a 4 Hz wrist EDA stream). Its next sample is due one period after the last, so event
//! time may advance to `last + period - margin` as soon as a sample arrives. The margin follows the
//! stream's timing: [`MARGIN_FACTOR`] times the most an interval strayed from the period lately
//! (a decaying envelope, [`MEMORY_S`]), and at least [`MIN_MARGIN_S`]. Intervals that are too long
//! count as much as intervals that are too short: a sender that stamps samples when it pushes them
//! and was held up (one long interval) catches up with short ones, which the long one announces.
//! While the stream's timing is being learnt ([`LEARN_INTERVALS`] intervals, again after a gap or
//! a clock step) and whenever the margin reaches a period (a sender that stamps bursts of samples
//! with one time, a lost sample), the promise is only `last + 1 ns`, until the envelope has
//! decayed. A sample stamped before the promise anyway is late (dropped and counted, as any late
//! sample) and widens the margin.
//!
//! ```
//! use heloflow::sources::lsl::cadence::{Cadence, MIN_MARGIN_S};
//!
//! let mut eda = Cadence::new(4.0);
//! for n in 0..32 {
//!     eda.note(n * 250_000_000);
//! }
//! // The last sample is at 7.75 s: event time may pass 8 s (the window ending there is complete).
//! let floor = eda.next_floor().unwrap();
//! assert_eq!(floor, 8_000_000_000 - (MIN_MARGIN_S * 1e9) as i64);
//! ```

use crate::stream::{secs_to_nanos, Nanos};

/// The least margin, seconds: clock-offset refreshes move a stream's timestamps by microseconds.
pub const MIN_MARGIN_S: f64 = 2.5e-4;

/// The margin is this many times the most an interval strayed from the period lately.
pub const MARGIN_FACTOR: f64 = 3.0;

/// How long a strayed interval weighs in the envelope: it decays by a factor e every this many
/// seconds.
pub const MEMORY_S: f64 = 10.0;

/// Intervals to see (after the start, a gap or a clock step) before promising more than `last`.
pub const LEARN_INTERVALS: u32 = 16;

/// The timing of one regular stream as its samples are placed.
#[derive(Clone, Debug)]
pub struct Cadence {
    period_s: f64,
    decay: f64,
    last: Option<Nanos>,
    intervals: u32,
    /// Decaying envelope of how far intervals strayed from the period, seconds.
    strayed_s: f64,
}

impl Cadence {
    /// A stream of nominal rate `rate_hz` (> 0) with nothing placed yet.
    pub fn new(rate_hz: f64) -> Self {
        let period_s = 1.0 / rate_hz;
        Cadence {
            period_s,
            decay: (-period_s / MEMORY_S).exp(),
            last: None,
            intervals: 0,
            strayed_s: 0.0,
        }
    }

    /// A sample was placed at `time` (event time, after the previous one).
    pub fn note(&mut self, time: Nanos) {
        if let Some(last) = self.last {
            let strayed_s = ((time - last) as f64 / 1e9 - self.period_s).abs();
            self.strayed_s = (self.strayed_s * self.decay).max(strayed_s.min(self.period_s));
            self.intervals = self.intervals.saturating_add(1);
        }
        self.last = Some(time);
    }

    /// A sample stamped `time` came before the promise and was dropped as late: the margin widens
    /// to cover it (up to a period, which suspends the promise until the envelope decays).
    pub fn missed(&mut self, time: Nanos) {
        if let Some(last) = self.last {
            let short_s = self.period_s - (time - last) as f64 / 1e9;
            self.strayed_s = self.strayed_s.max(short_s.clamp(0.0, self.period_s));
        }
    }

    /// The stream's timing must be learnt again (after a gap or a clock step).
    pub fn reset(&mut self) {
        self.last = None;
        self.intervals = 0;
    }

    /// The margin below the next sample's expected timestamp, seconds; `None` while learning or
    /// when it would reach a period.
    pub fn margin_s(&self) -> Option<f64> {
        let margin = (MARGIN_FACTOR * self.strayed_s).max(MIN_MARGIN_S);
        (self.intervals >= LEARN_INTERVALS && margin < self.period_s).then_some(margin)
    }

    /// Event time the stream's next sample cannot come before: its expected timestamp minus the
    /// margin; `None` when only the last sample bounds it.
    pub fn next_floor(&self) -> Option<Nanos> {
        let last = self.last?;
        let ahead = secs_to_nanos(self.period_s - self.margin_s()?);
        (ahead > 0).then(|| last.saturating_add(ahead))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;

    fn fed(rate: f64, times: impl IntoIterator<Item = Nanos>) -> Cadence {
        let mut cadence = Cadence::new(rate);
        for time in times {
            cadence.note(time);
        }
        cadence
    }

    #[test]
    fn nothing_is_promised_while_the_timing_is_learnt() {
        let cadence = fed(4.0, (0..LEARN_INTERVALS as i64).map(|n| n * 250 * MS));
        assert_eq!(cadence.next_floor(), None);
        let cadence = fed(4.0, (0..=LEARN_INTERVALS as i64).map(|n| n * 250 * MS));
        assert_eq!(
            cadence.next_floor(),
            Some((LEARN_INTERVALS as i64 + 1) * 250 * MS - secs_to_nanos(MIN_MARGIN_S))
        );
    }

    #[test]
    fn jitter_widens_the_margin_and_it_decays() {
        // 100 Hz with one interval 2 ms short: margin 6 ms.
        let mut times: Vec<Nanos> = (0..40).map(|n| n * 10 * MS).collect();
        times.push(398 * MS);
        let mut cadence = fed(100.0, times);
        let margin = cadence.margin_s().unwrap();
        assert!((margin - 6e-3).abs() < 1e-9, "{margin}");
        assert_eq!(cadence.next_floor(), Some(398 * MS + 4 * MS));
        // 10 s of regular samples later, the envelope has decayed by e.
        for n in 0..1000 {
            cadence.note(398 * MS + (n + 1) * 10 * MS);
        }
        let margin = cadence.margin_s().unwrap();
        assert!(
            (margin - 6e-3 / std::f64::consts::E).abs() < 1e-5,
            "{margin}"
        );
    }

    #[test]
    fn a_held_up_sender_stops_the_promise_before_it_catches_up() {
        // 30 Hz stamped at the push: one sample 20 ms late, then the next on time (13 ms later).
        let mut times: Vec<Nanos> = (0..40).map(|n| n * 100 * MS / 3).collect();
        let late = times[39] + 100 * MS / 3 + 20 * MS;
        times.push(late);
        let cadence = fed(30.0, times);
        // The long interval alone suspends the promise, so the short one cannot break it.
        assert_eq!(cadence.margin_s(), None);
        assert_eq!(cadence.next_floor(), None);
    }

    #[test]
    fn samples_stamped_in_bursts_promise_nothing() {
        // A sender stamping ten samples of a 100 Hz stream with one time, every 100 ms.
        let times = (0..100).map(|n| (n / 10) * 100 * MS);
        let cadence = fed(100.0, times);
        assert_eq!(cadence.margin_s(), None);
        assert_eq!(cadence.next_floor(), None);
    }

    #[test]
    fn a_missed_promise_widens_the_margin_and_a_reset_relearns() {
        let mut cadence = fed(4.0, (0..32).map(|n| n * 250 * MS));
        assert!(cadence.next_floor().is_some());
        // A sample 30 ms before its expected time arrived after the promise.
        cadence.missed(31 * 250 * MS + 220 * MS);
        let margin = cadence.margin_s().unwrap();
        assert!((margin - 0.09).abs() < 1e-9, "{margin}");
        cadence.reset();
        assert_eq!(cadence.next_floor(), None);
        cadence.note(100 * 250 * MS);
        assert_eq!(cadence.next_floor(), None);
    }
}
