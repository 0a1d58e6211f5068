//! Placing a sender's timestamps in event time, so that a sender's broken clock cannot break the
//! pipeline: a burst of timestamps from the future must not advance event time, and a clock that
//! steps back must not make a stream that still delivers look lost.
//!
//! Every sample's *lag* is the local clock at its arrival minus its timestamp on the local clock
//! (the sender's stamp plus the clock offset): network latency, a few milliseconds, for a sender
//! whose clock is right. Like pyxdf's clock reset detection (`src/xdf/sync.rs`), which looks for
//! a sustained jump in a stream's clock offsets, this watches for a sustained jump in the lag:
//!
//! - a stamp more than [`Rules::max_ahead_s`] (1 s) after its own arrival is impossible, and a
//!   stamp more than [`Rules::step_s`] (1 s, pyxdf's `clock_reset_threshold_offset_seconds`)
//!   before the stream's previous one is impossible for in-order data: such a sample is set aside;
//! - when the samples set aside keep one lag (within `step_s`) for [`Rules::confirm_s`] (1 s) of
//!   their stamps or of their arrival, the sender's clock stepped: the stream is re-anchored (from
//!   then on its stamps are shifted so that their lag is what it was before the step) and the
//!   samples set aside are placed through the new shift;
//! - when a sample in place comes first, the samples set aside were a glitch: they are dropped and
//!   counted, and event time never followed them.
//!
//! Event time therefore never runs more than `max_ahead_s` past the local clock, and samples that
//! cannot be placed (late, ahead, behind, non-finite) are counted in [`TimestampDrops`].
//!
//! ```
//! use heloflow::sources::lsl::placement::{Notice, Placement, Rules};
//!
//! let mut placement = Placement::new(Rules::default());
//! let (mut placed, mut notices) = (Vec::new(), Vec::new());
//! // 100 Hz, stamped at arrival; after 2 s the sender's clock steps back by 60 s.
//! for i in 0..400 {
//!     let arrival = 100.0 + i as f64 / 100.0;
//!     let stamp = if i < 200 { arrival } else { arrival - 60.0 };
//!     placement.offer(stamp, arrival, i64::MIN, i, &mut placed, &mut notices);
//! }
//! assert!(matches!(notices[0], Notice::Stepped { shift_s, .. } if (shift_s - 60.0).abs() < 1e-6));
//! assert_eq!(placed.len(), 400);
//! assert_eq!(placement.drops.total(), 0);
//! ```

use crate::metrics::TimestampDrops;
use crate::sources::playback::MAX_TIME_S;
use crate::stream::{secs_to_nanos, Nanos};

/// The thresholds of placement, in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rules {
    /// A stamp later than its arrival by more than this is out of place (ahead of the clock).
    pub max_ahead_s: f64,
    /// A stamp earlier than the stream's previous one by more than this is out of place; samples
    /// set aside belong together while their lags differ by at most this.
    pub step_s: f64,
    /// Samples set aside with one lag for this long (their stamps' span or their arrivals') are a
    /// clock step.
    pub confirm_s: f64,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            max_ahead_s: 1.0,
            step_s: 1.0,
            confirm_s: 1.0,
        }
    }
}

/// Most samples set aside at once: a step is taken as confirmed when this many agree.
const MAX_HELD: usize = 100_000;

/// Where out-of-place samples lie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misplaced {
    /// After their arrival on the local clock.
    Ahead,
    /// Before the stream's previous sample.
    Behind,
}

/// Something worth telling the user, returned by [`Placement::offer`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Notice {
    /// Samples set aside were dropped: the stream's next sample was in place again.
    Dropped {
        /// Where they lay.
        why: Misplaced,
        /// How many.
        samples: u64,
        /// How far they lay from their arrival (negative: ahead), seconds.
        lag_s: f64,
    },
    /// The sender's clock stepped: its stamps are shifted by `shift_s` more from now on.
    Stepped {
        /// Seconds added to the stamps from now on (positive: the clock stepped back).
        shift_s: f64,
        /// Event time of the first sample placed after the step, if any was.
        at: Option<Nanos>,
        /// Samples set aside and placed after all.
        placed: u64,
        /// Samples set aside that fell before event time already passed.
        late: u64,
    },
}

/// Samples set aside as a possible clock step.
struct Candidate<T> {
    why: Misplaced,
    /// The least lag among them (the least delayed sample), seconds.
    lag_s: f64,
    first_arrival_s: f64,
    first_stamp_s: f64,
    /// Stamps (before any shift), arrivals and payloads.
    held: Vec<(f64, f64, T)>,
}

impl<T> Candidate<T> {
    fn new(why: Misplaced, stamp_s: f64, arrival_s: f64, lag_s: f64, payload: T) -> Self {
        Candidate {
            why,
            lag_s,
            first_arrival_s: arrival_s,
            first_stamp_s: stamp_s,
            held: vec![(stamp_s, arrival_s, payload)],
        }
    }

    fn confirmed(&self, confirm_s: f64) -> bool {
        let (stamp, arrival) = self.held.last().map_or((0.0, 0.0), |h| (h.0, h.1));
        (stamp - self.first_stamp_s).abs() >= confirm_s
            || arrival - self.first_arrival_s >= confirm_s
            || self.held.len() >= MAX_HELD
    }
}

/// The least lag of the samples placed in the current and the previous second of arrivals: the
/// lag a re-anchored stream is given (a chunked sender's least delayed sample sets it).
#[derive(Clone, Copy, Debug)]
struct RecentLag {
    bucket_start_s: f64,
    current: f64,
    previous: f64,
}

impl RecentLag {
    const EMPTY: RecentLag = RecentLag {
        bucket_start_s: f64::NEG_INFINITY,
        current: f64::INFINITY,
        previous: f64::INFINITY,
    };

    /// A window holding only `lag_s`, as if noted long ago.
    fn starting_at(lag_s: f64) -> RecentLag {
        RecentLag {
            current: lag_s,
            ..RecentLag::EMPTY
        }
    }

    fn note(&mut self, arrival_s: f64, lag_s: f64) {
        if arrival_s - self.bucket_start_s >= 1.0 {
            if self.current.is_finite() {
                self.previous = self.current;
            }
            self.current = lag_s;
            self.bucket_start_s = arrival_s;
        } else {
            self.current = self.current.min(lag_s);
        }
    }

    fn least(&self) -> Option<f64> {
        Some(self.current.min(self.previous)).filter(|l| l.is_finite())
    }
}

/// The placement state of one stream; `T` is what travels with each sample (its values).
pub struct Placement<T> {
    rules: Rules,
    shift_s: f64,
    last: Option<Nanos>,
    recent: RecentLag,
    candidate: Option<Candidate<T>>,
    /// Samples dropped so far.
    pub drops: TimestampDrops,
}

impl<T> Placement<T> {
    /// A stream with nothing placed yet.
    pub fn new(rules: Rules) -> Self {
        Placement {
            rules,
            shift_s: 0.0,
            last: None,
            recent: RecentLag::EMPTY,
            candidate: None,
            drops: TimestampDrops::default(),
        }
    }

    /// Seconds added to the stream's stamps by the clock steps seen so far.
    pub fn shift_s(&self) -> f64 {
        self.shift_s
    }

    /// The least lag (arrival minus timestamp) of the samples placed in the last second or two:
    /// how far behind the sender the pipeline reads this stream, seconds.
    pub fn recent_lag_s(&self) -> Option<f64> {
        self.recent.least()
    }

    /// Event time of the last sample placed.
    pub fn last(&self) -> Option<Nanos> {
        self.last
    }

    /// Samples set aside now (a possible clock step being confirmed).
    pub fn held(&self) -> usize {
        self.candidate.as_ref().map_or(0, |c| c.held.len())
    }

    /// Offers one sample: `stamp_s` is its timestamp on the local clock by the clock offset,
    /// `arrival_s` the local clock when it was pulled, `floor` the event time already passed.
    /// Samples placed (this one, or ones set aside before) are appended to `placed` in order.
    pub fn offer(
        &mut self,
        stamp_s: f64,
        arrival_s: f64,
        floor: Nanos,
        payload: T,
        placed: &mut Vec<(Nanos, T)>,
        notices: &mut Vec<Notice>,
    ) {
        let time_s = stamp_s + self.shift_s;
        if !time_s.is_finite() || time_s.abs() > MAX_TIME_S {
            self.drops.invalid += 1;
            return;
        }
        let lag_s = arrival_s - time_s;
        let misplaced = self.judge(time_s, arrival_s, floor);
        match (self.candidate.as_mut(), misplaced) {
            (None, None) => {
                self.place(time_s, arrival_s, floor, payload, placed);
            }
            (None, Some(why)) => {
                self.candidate = Some(Candidate::new(why, stamp_s, arrival_s, lag_s, payload));
            }
            (Some(_), None) => {
                self.abandon(notices);
                self.place(time_s, arrival_s, floor, payload, placed);
            }
            (Some(candidate), Some(why)) => {
                if (lag_s - candidate.lag_s).abs() <= self.rules.step_s {
                    candidate.lag_s = candidate.lag_s.min(lag_s);
                    candidate.held.push((stamp_s, arrival_s, payload));
                    if candidate.confirmed(self.rules.confirm_s) {
                        self.reanchor(floor, placed, notices);
                    }
                } else {
                    self.abandon(notices);
                    self.candidate = Some(Candidate::new(why, stamp_s, arrival_s, lag_s, payload));
                }
            }
        }
    }

    /// TimestampDrops the samples set aside, if any (the stream ended before a step was confirmed).
    pub fn finish(&mut self, notices: &mut Vec<Notice>) {
        self.abandon(notices);
    }

    /// Where a sample at `time_s` lies, if out of place: after its arrival, or before the
    /// stream's previous sample (before the event time already passed, for a stream's first).
    fn judge(&self, time_s: f64, arrival_s: f64, floor: Nanos) -> Option<Misplaced> {
        let reference = self.last.unwrap_or(floor);
        if time_s > arrival_s + self.rules.max_ahead_s {
            Some(Misplaced::Ahead)
        } else if reference != Nanos::MIN && secs_to_nanos(time_s + self.rules.step_s) < reference {
            Some(Misplaced::Behind)
        } else {
            None
        }
    }

    fn place(
        &mut self,
        time_s: f64,
        arrival_s: f64,
        floor: Nanos,
        payload: T,
        placed: &mut Vec<(Nanos, T)>,
    ) -> bool {
        let time = secs_to_nanos(time_s);
        if time < floor || self.last.is_some_and(|last| time < last) {
            self.drops.late += 1;
            return false;
        }
        placed.push((time, payload));
        self.last = Some(time);
        self.recent.note(arrival_s, arrival_s - time_s);
        true
    }

    fn abandon(&mut self, notices: &mut Vec<Notice>) {
        let Some(candidate) = self.candidate.take() else {
            return;
        };
        let samples = candidate.held.len() as u64;
        match candidate.why {
            Misplaced::Ahead => self.drops.ahead += samples,
            Misplaced::Behind => self.drops.behind += samples,
        }
        notices.push(Notice::Dropped {
            why: candidate.why,
            samples,
            lag_s: candidate.lag_s,
        });
    }

    /// The sender's clock stepped: shift its stamps so that their least lag is the one before the
    /// step (the lag a sample stamped at its arrival has, 0, for a stream with nothing placed
    /// recently), then place what was set aside.
    fn reanchor(&mut self, floor: Nanos, placed: &mut Vec<(Nanos, T)>, notices: &mut Vec<Notice>) {
        let Some(candidate) = self.candidate.take() else {
            return;
        };
        let reference = self.recent.least().unwrap_or(0.0);
        let shift_s = candidate.lag_s - reference;
        self.shift_s += shift_s;
        let (mut at, mut placed_count, mut late) = (None, 0, 0);
        for (stamp_s, arrival_s, payload) in candidate.held {
            if self.place(stamp_s + self.shift_s, arrival_s, floor, payload, placed) {
                at = at.or(self.last);
                placed_count += 1;
            } else {
                late += 1;
            }
        }
        self.recent = RecentLag::starting_at(reference);
        notices.push(Notice::Stepped {
            shift_s,
            at,
            placed: placed_count,
            late,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Offers `(stamp, arrival)` pairs in order with a fixed floor; returns what was placed and
    /// said, and the placement.
    fn run(samples: &[(f64, f64)]) -> (Vec<(Nanos, usize)>, Vec<Notice>, Placement<usize>) {
        let mut placement = Placement::new(Rules::default());
        let (mut placed, mut notices) = (Vec::new(), Vec::new());
        for (index, &(stamp, arrival)) in samples.iter().enumerate() {
            placement.offer(stamp, arrival, Nanos::MIN, index, &mut placed, &mut notices);
        }
        (placed, notices, placement)
    }

    fn regular(from: usize, to: usize, rate: f64, start: f64, offset: f64) -> Vec<(f64, f64)> {
        (from..to)
            .map(|i| {
                let arrival = start + i as f64 / rate;
                (arrival + offset, arrival + 0.002)
            })
            .collect()
    }

    #[test]
    fn a_burst_stamped_in_the_future_is_dropped_and_never_placed() {
        let mut samples = regular(0, 200, 100.0, 50.0, 0.0);
        samples.extend(regular(200, 250, 100.0, 50.0, 950_400.0));
        samples.extend(regular(250, 450, 100.0, 50.0, 0.0));
        let (placed, notices, placement) = run(&samples);
        assert_eq!(placed.len(), 400);
        assert!(placed.iter().all(|(_, i)| !(200..250).contains(i)));
        assert_eq!(placement.drops.ahead, 50);
        assert_eq!(placement.drops.total(), 50);
        assert!(placed.iter().all(|(t, _)| *t < secs_to_nanos(60.0)));
        assert!(matches!(
            notices[..],
            [Notice::Dropped {
                why: Misplaced::Ahead,
                samples: 50,
                ..
            }]
        ));
        assert_eq!(placement.shift_s(), 0.0);
    }

    #[test]
    fn a_clock_that_steps_back_and_stays_is_re_anchored() {
        let mut samples = regular(0, 200, 100.0, 50.0, 0.0);
        samples.extend(regular(200, 600, 100.0, 50.0, -60.0));
        let (placed, notices, placement) = run(&samples);
        assert_eq!(placed.len(), 600, "{notices:?}");
        assert_eq!(placement.drops.total(), 0);
        let Notice::Stepped {
            shift_s,
            at,
            placed: held,
            late,
        } = notices[0]
        else {
            panic!("{notices:?}")
        };
        assert!((shift_s - 60.0).abs() < 1e-6, "{shift_s}");
        assert_eq!((held, late), (101, 0));
        // The stream continues on the local clock: sample i at 50 + i / 100 s.
        for (time, index) in &placed {
            let want = secs_to_nanos(50.0 + *index as f64 / 100.0);
            assert!((time - want).abs() < 1_000, "{index}: {time} vs {want}");
        }
        assert_eq!(at, Some(secs_to_nanos(52.0)));
    }

    #[test]
    fn a_clock_stepped_forward_into_the_future_is_re_anchored_too() {
        let mut samples = regular(0, 100, 50.0, 10.0, 0.0);
        samples.extend(regular(100, 300, 50.0, 10.0, 3600.0));
        let (placed, notices, placement) = run(&samples);
        assert_eq!(placed.len(), 300);
        assert!((placement.shift_s() + 3600.0).abs() < 1e-6);
        assert!(matches!(notices[..], [Notice::Stepped { .. }]));
    }

    #[test]
    fn small_disorder_is_late_not_a_step() {
        let samples = [
            (1.0, 1.0),
            (2.0, 2.0),
            (1.5, 2.0),
            (2.1, 2.1),
            (f64::NAN, 2.2),
        ];
        let (placed, notices, placement) = run(&samples);
        assert_eq!(placed.len(), 3);
        assert!(notices.is_empty());
        assert_eq!(
            placement.drops,
            TimestampDrops {
                late: 1,
                invalid: 1,
                ..TimestampDrops::default()
            }
        );
    }

    #[test]
    fn samples_set_aside_when_the_stream_ends_are_counted() {
        let mut samples = regular(0, 100, 100.0, 5.0, 0.0);
        samples.extend(regular(100, 120, 100.0, 5.0, -30.0));
        let (_, _, mut placement) = run(&samples);
        assert_eq!(placement.held(), 20);
        let mut notices = Vec::new();
        placement.finish(&mut notices);
        assert_eq!(placement.drops.behind, 20);
        assert_eq!(placement.held(), 0);
    }

    proptest! {
        /// Whatever the stamps: every sample is placed, dropped and counted, or set aside; placed
        /// times never decrease, never precede the floor and never run past the arrival by more
        /// than `max_ahead_s`.
        #[test]
        fn every_sample_is_placed_or_counted_and_event_time_stays_sane(
            steps in proptest::collection::vec((0.0f64..0.05, prop_oneof![
                8 => Just(0.0),
                1 => -1e6f64..1e6,
                1 => proptest::num::f64::ANY,
            ]), 1..400),
            floor_s in -10.0f64..10.0,
        ) {
            let mut placement = Placement::new(Rules::default());
            let (mut placed, mut notices) = (Vec::new(), Vec::new());
            let floor = secs_to_nanos(floor_s);
            let (mut arrival, mut clock_error) = (0.0, 0.0);
            for (index, (advance, error)) in steps.iter().enumerate() {
                arrival += advance;
                if index % 7 == 0 {
                    clock_error = *error;
                }
                let stamp = arrival - 0.001 + clock_error;
                let before = placed.len();
                placement.offer(stamp, arrival, floor, index, &mut placed, &mut notices);
                for (time, _) in &placed[before..] {
                    prop_assert!(*time >= floor);
                    prop_assert!((*time as f64) / 1e9 <= arrival + 1.0 + 1e-6);
                }
            }
            prop_assert!(placed.windows(2).all(|w| w[0].0 <= w[1].0));
            let accounted = placed.len() as u64 + placement.drops.total() + placement.held() as u64;
            prop_assert_eq!(accounted, steps.len() as u64);
            placement.finish(&mut notices);
            prop_assert_eq!(placed.len() as u64 + placement.drops.total(), steps.len() as u64);
        }

        /// A stream whose clock steps once by more than two seconds, either way, and stays there
        /// delivers every sample after the step, on the local clock.
        #[test]
        fn one_sustained_step_loses_nothing(
            step_s in prop_oneof![-1e5f64..-2.0, 2.0f64..1e5],
            before in 10usize..300,
            rate in 5.0f64..500.0,
        ) {
            let after = (2.5 * rate) as usize;
            let mut samples = regular(0, before, rate, 100.0, 0.0);
            samples.extend(regular(before, before + after, rate, 100.0, step_s));
            let (placed, notices, placement) = run(&samples);
            prop_assert_eq!(placed.len(), before + after, "{:?}", notices);
            prop_assert!((placement.shift_s() + step_s).abs() < 1e-3);
            for (time, index) in &placed {
                let want = 100.0 + *index as f64 / rate;
                prop_assert!(((*time as f64) / 1e9 - want).abs() < 1e-3);
            }
        }
    }
}
