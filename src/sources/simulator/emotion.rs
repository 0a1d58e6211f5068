//! The hidden emotion state: a per-subject 10-class distribution that drifts over time.
//!
//! Logits follow an Ornstein-Uhlenbeck process around subject-specific baselines; while a stimulus
//! clip plays, the mean of the clip's target emotion is pushed up, that of its co-occurring partner
//! ([`PARTNER`]) less, and that of neutral down. The state is evaluated on a fixed 100 ms grid
//! (lazily extended, old entries dropped) and interpolated, so any stream can query it at any time
//! and the result never depends on how `advance` was stepped. Physiology reads it only through the
//! latent factors of [`super::physiology`], scaled by the subject's gains.

use std::collections::VecDeque;

use rand_chacha::ChaCha8Rng;

use super::noise::{gauss, ou_coeffs, uniform};
use super::physiology::Physio;
use super::EMOTION_LABELS;
use crate::stream::{Nanos, NANOS_PER_SEC};

/// Number of emotion classes.
pub const N_EMOTIONS: usize = EMOTION_LABELS.len();

/// The label each label co-occurs with, in [`EMOTION_LABELS`] order: a clip aimed at one also pushes
/// the other. Pairs: amusement-joy, tenderness-sadness, surprise-fear, anger-disgust; neutral and
/// inspiration have none.
pub const PARTNER: [Option<usize>; N_EMOTIONS] = [
    None,    // neutral
    Some(2), // amusement - joy
    Some(1), // joy - amusement
    Some(6), // tenderness - sadness
    None,    // inspiration
    Some(7), // surprise - fear
    Some(3), // sadness - tenderness
    Some(5), // fear - surprise
    Some(9), // anger - disgust
    Some(8), // disgust - anger
];

/// Share of a clip's push that goes to its target's partner, for clips 1-10, 11-20 and 21-30: the
/// three clips aimed at one label mix in its partner to different degrees.
const PARTNER_SHARE: [f64; 3] = [0.35, 0.55, 0.75];

/// How far a clip lowers the neutral logit, as a share of its push (for clips not aimed at neutral).
const NEUTRAL_SHARE: f64 = 0.4;

/// Number of distinct stimulus clips (`clip_01` .. `clip_30`).
pub const N_CLIPS: u32 = 30;

/// Spacing of the hidden-state grid.
pub const GRID_NS: i64 = NANOS_PER_SEC / 10;

/// Time constant of the logit random walk, seconds (tens of seconds, as for film-clip paradigms).
const LOGIT_TAU: f64 = 15.0;

/// Stationary spread of the logits around their mean.
const LOGIT_SD: f64 = 0.6;

/// The emotion a clip is meant to elicit: clip `n` targets label `(n - 1) % 10`.
pub fn clip_target(clip: u32) -> usize {
    (clip.saturating_sub(1) % N_EMOTIONS as u32) as usize
}

/// Share of clip `clip`'s push that goes to its target's [`PARTNER`].
pub fn partner_share(clip: u32) -> f64 {
    let round = (clip.saturating_sub(1) / N_EMOTIONS as u32) as usize;
    PARTNER_SHARE[round.min(PARTNER_SHARE.len() - 1)]
}

/// The mean logits while `stimulus` plays, given the subject's resting logits and responsiveness.
fn pushed(
    baseline: &[f64; N_EMOTIONS],
    responsiveness: f64,
    stimulus: &Stimulus,
) -> [f64; N_EMOTIONS] {
    let mut mean = *baseline;
    let push = responsiveness * stimulus.intensity;
    let target = clip_target(stimulus.clip);
    mean[target] += push;
    if let Some(partner) = PARTNER[target] {
        mean[partner] += partner_share(stimulus.clip) * push;
    }
    if target != 0 {
        mean[0] -= NEUTRAL_SHARE * push;
    }
    mean
}

/// The hidden state at one instant: the distribution and the physiological factors it implies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EmotionState {
    /// Probability of each label, in [`EMOTION_LABELS`] order; sums to 1.
    pub probs: [f64; N_EMOTIONS],
    /// Expected physiological loadings under `probs`, before the subject's gains.
    pub physio: Physio,
}

impl EmotionState {
    /// Builds the state from logits via a numerically stable softmax.
    fn from_logits(logits: &[f64; N_EMOTIONS]) -> EmotionState {
        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut probs = [0.0; N_EMOTIONS];
        let mut sum = 0.0;
        for (p, &z) in probs.iter_mut().zip(logits) {
            *p = if max.is_finite() {
                (z - max).exp()
            } else {
                1.0
            };
            sum += *p;
        }
        for p in probs.iter_mut() {
            *p /= sum;
        }
        Self::from_probs(probs)
    }

    /// Builds the state from a distribution, deriving its physiological factors.
    fn from_probs(probs: [f64; N_EMOTIONS]) -> EmotionState {
        EmotionState {
            physio: Physio::of(&probs),
            probs,
        }
    }

    /// Linear interpolation between two states (keeps the distribution normalised).
    fn lerp(&self, other: &EmotionState, f: f64) -> EmotionState {
        let mut probs = self.probs;
        for (p, q) in probs.iter_mut().zip(other.probs) {
            *p += (q - *p) * f;
        }
        Self::from_probs(probs)
    }
}

/// One presentation of a stimulus clip.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stimulus {
    /// Clip number, 1..=[`N_CLIPS`].
    pub clip: u32,
    /// How strongly this presentation moves the subject (multiplies the subject's responsiveness).
    pub intensity: f64,
    /// Event time the clip starts.
    pub onset: Nanos,
    /// Event time the clip ends.
    pub offset: Nanos,
}

/// The deterministic, lazily generated sequence of stimulus clips shown to one subject.
///
/// Rest periods of 10-20 s alternate with clips of 20-40 s; clips are drawn in shuffled rounds.
#[derive(Debug)]
pub struct StimulusSchedule {
    rng: ChaCha8Rng,
    items: VecDeque<Stimulus>,
    next_onset: Nanos,
    pool: Vec<u32>,
}

impl StimulusSchedule {
    /// Builds the schedule of a subject whose recording starts at `start`.
    pub fn new(mut rng: ChaCha8Rng, start: Nanos) -> StimulusSchedule {
        let first = secs_to_ms_nanos(uniform(&mut rng, 15.0, 30.0));
        StimulusSchedule {
            rng,
            items: VecDeque::new(),
            next_onset: start.saturating_add(first),
            pool: Vec::new(),
        }
    }

    /// Generates clips until the schedule covers event time `t`.
    fn extend_to(&mut self, t: Nanos) {
        while self.items.back().is_none_or(|s| s.offset <= t) {
            if self.pool.is_empty() {
                self.pool = (1..=N_CLIPS).collect();
                for i in (1..self.pool.len()).rev() {
                    let j = (uniform(&mut self.rng, 0.0, (i + 1) as f64) as usize).min(i);
                    self.pool.swap(i, j);
                }
            }
            let clip = self.pool.pop().unwrap_or(1);
            let duration = secs_to_ms_nanos(uniform(&mut self.rng, 20.0, 40.0));
            let rest = secs_to_ms_nanos(uniform(&mut self.rng, 10.0, 20.0));
            let intensity = uniform(&mut self.rng, 0.7, 1.3);
            let onset = self.next_onset;
            let offset = onset.saturating_add(duration);
            self.items.push_back(Stimulus {
                clip,
                intensity,
                onset,
                offset,
            });
            self.next_onset = offset.saturating_add(rest);
            if offset == Nanos::MAX {
                break;
            }
        }
    }

    /// The clip playing at event time `t`, if any.
    pub fn active_at(&mut self, t: Nanos) -> Option<Stimulus> {
        self.extend_to(t);
        self.items
            .iter()
            .find(|s| s.onset <= t && t < s.offset)
            .copied()
    }

    /// Marker events with `from <= time < until`, in time order, appended to `out`.
    pub fn markers(&mut self, from: Nanos, until: Nanos, out: &mut Vec<(Nanos, String)>) {
        self.extend_to(until);
        for s in &self.items {
            if s.onset >= from && s.onset < until {
                out.push((s.onset, format!("stimulus_start:clip_{:02}", s.clip)));
            }
            if s.offset >= from && s.offset < until {
                out.push((s.offset, format!("stimulus_end:clip_{:02}", s.clip)));
            }
        }
    }

    /// Drops clips that ended before `before`.
    fn prune(&mut self, before: Nanos) {
        while self.items.len() > 1 && self.items.front().is_some_and(|s| s.offset < before) {
            self.items.pop_front();
        }
    }
}

/// Seconds to nanoseconds, rounded to whole milliseconds (schedules use round times).
fn secs_to_ms_nanos(secs: f64) -> Nanos {
    ((secs * 1000.0).round() as i64).saturating_mul(1_000_000)
}

/// The hidden emotion process of one subject, on a lazily extended 100 ms grid.
#[derive(Debug)]
pub struct EmotionTrack {
    rng: ChaCha8Rng,
    start: Nanos,
    baseline: [f64; N_EMOTIONS],
    responsiveness: f64,
    gain: Physio,
    pinned: Option<EmotionState>,
    logits: [f64; N_EMOTIONS],
    first_index: u64,
    grid: VecDeque<EmotionState>,
    /// The stimulus clips driving the state (also the source of the marker stream).
    pub schedule: StimulusSchedule,
    a: f64,
    b: f64,
}

impl EmotionTrack {
    /// Builds the process from its generator, the subject's baseline logits and responsiveness,
    /// and the subject's gains on the physiological factors.
    pub fn new(
        mut rng: ChaCha8Rng,
        schedule: StimulusSchedule,
        start: Nanos,
        baseline: [f64; N_EMOTIONS],
        responsiveness: f64,
        gain: Physio,
    ) -> EmotionTrack {
        let mut logits = baseline;
        for z in logits.iter_mut() {
            *z += LOGIT_SD * gauss(&mut rng);
        }
        let (a, b) = ou_coeffs(GRID_NS as f64 / NANOS_PER_SEC as f64, LOGIT_TAU);
        EmotionTrack {
            rng,
            start,
            baseline,
            responsiveness,
            gain,
            pinned: None,
            logits,
            first_index: 0,
            grid: VecDeque::new(),
            schedule,
            a,
            b,
        }
    }

    /// Holds the distribution at `probs` for ever (stimuli still play and are announced but move
    /// nothing): what a subject fully feeling one emotion looks like, for tests of the signatures.
    #[cfg(test)]
    pub fn pin(&mut self, probs: [f64; N_EMOTIONS]) {
        self.pinned = Some(EmotionState::from_probs(probs));
    }

    /// Event time of grid point `index`.
    fn grid_time(&self, index: u64) -> Nanos {
        self.start
            .saturating_add((index as i64).saturating_mul(GRID_NS))
    }

    /// Generates grid points up to and including `index`.
    fn ensure(&mut self, index: u64) {
        while self.first_index + (self.grid.len() as u64) <= index {
            let next = self.first_index + self.grid.len() as u64;
            if next > 0 {
                let t = self.grid_time(next);
                let mean = match self.schedule.active_at(t) {
                    Some(s) => pushed(&self.baseline, self.responsiveness, &s),
                    None => self.baseline,
                };
                for (z, m) in self.logits.iter_mut().zip(mean) {
                    *z = m + self.a * (*z - m) + self.b * LOGIT_SD * gauss(&mut self.rng);
                }
            }
            let state = match self.pinned {
                Some(state) => state,
                None => EmotionState::from_logits(&self.logits),
            };
            self.grid.push_back(state);
        }
    }

    /// The grid index just before (or at) `t` and the fraction towards the next grid point.
    fn locate(&self, t: Nanos) -> (u64, f64) {
        let rel = t.saturating_sub(self.start).max(0);
        let index = (rel / GRID_NS) as u64;
        let frac = (rel % GRID_NS) as f64 / GRID_NS as f64;
        if index < self.first_index {
            (self.first_index, 0.0)
        } else {
            (index, frac)
        }
    }

    /// The hidden state at event time `t` (linear interpolation between grid points).
    pub fn at(&mut self, t: Nanos) -> EmotionState {
        let (index, frac) = self.locate(t);
        self.ensure(index + 1);
        let i = (index - self.first_index) as usize;
        let (Some(a), Some(b)) = (self.grid.get(i), self.grid.get(i + 1)) else {
            return EmotionState::from_probs(uniform_probs());
        };
        if frac == 0.0 {
            *a
        } else {
            a.lerp(b, frac)
        }
    }

    /// The subject's physiological drive at event time `t`: the factors of the state scaled by the
    /// subject's gains; cheaper than [`EmotionTrack::at`].
    pub fn drive(&mut self, t: Nanos) -> Physio {
        let (index, frac) = self.locate(t);
        self.ensure(index + 1);
        let i = (index - self.first_index) as usize;
        match (self.grid.get(i), self.grid.get(i + 1)) {
            (Some(a), Some(b)) => a.physio.lerp(&b.physio, frac).scaled(&self.gain),
            _ => Physio::default(),
        }
    }

    /// The subject's physiological drive at `secs` seconds since the start of the recording.
    pub fn drive_secs(&mut self, secs: f64) -> Physio {
        let t = self
            .start
            .saturating_add((secs * NANOS_PER_SEC as f64).round() as Nanos);
        self.drive(t)
    }

    /// Drops grid points and clips that no stream can ask for any more (before `before`).
    pub fn prune(&mut self, before: Nanos) {
        let (index, _) = self.locate(before);
        while self.grid.len() > 2 && self.first_index < index {
            self.grid.pop_front();
            self.first_index += 1;
        }
        let generated_until = self.grid_time(self.first_index + self.grid.len() as u64);
        self.schedule.prune(before.min(generated_until));
    }
}

/// The uniform distribution (fallback that keeps outputs valid).
fn uniform_probs() -> [f64; N_EMOTIONS] {
    [1.0 / N_EMOTIONS as f64; N_EMOTIONS]
}
