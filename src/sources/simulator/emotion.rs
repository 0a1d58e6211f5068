//! The hidden emotion state: a per-subject 10-class distribution that drifts over time.
//!
//! Logits follow an Ornstein-Uhlenbeck process around subject-specific baselines; while a stimulus
//! clip plays, the mean of the clip's target emotion is pushed up. The state is evaluated on a fixed
//! 100 ms grid (lazily extended, old entries dropped) and interpolated, so any stream can query it at
//! any time and the result never depends on how `advance` was stepped.

use std::collections::VecDeque;

use rand_chacha::ChaCha8Rng;

use super::noise::{gauss, ou_coeffs, uniform};
use super::EMOTION_LABELS;
use crate::stream::{Nanos, NANOS_PER_SEC};

/// Number of emotion classes.
pub const N_EMOTIONS: usize = EMOTION_LABELS.len();

/// (valence, arousal) of each label in [`EMOTION_LABELS`] order, both in `[-1, 1]`.
///
/// Shared by every subject, so physiology driven by arousal/valence generalises across subjects.
pub const VALENCE_AROUSAL: [(f64, f64); N_EMOTIONS] = [
    (0.0, 0.0),   // neutral
    (0.7, 0.5),   // amusement
    (0.8, 0.5),   // joy
    (0.6, -0.3),  // tenderness
    (0.6, 0.3),   // inspiration
    (0.1, 0.7),   // surprise
    (-0.7, -0.4), // sadness
    (-0.6, 0.8),  // fear
    (-0.6, 0.7),  // anger
    (-0.7, 0.3),  // disgust
];

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

/// The hidden state at one instant: the distribution and the arousal/valence derived from it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EmotionState {
    /// Probability of each label, in [`EMOTION_LABELS`] order; sums to 1.
    pub probs: [f64; N_EMOTIONS],
    /// Expected arousal under `probs`, in `[-1, 1]`.
    pub arousal: f64,
    /// Expected valence under `probs`, in `[-1, 1]`.
    pub valence: f64,
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

    /// Builds the state from a distribution, deriving arousal and valence.
    fn from_probs(probs: [f64; N_EMOTIONS]) -> EmotionState {
        let (mut valence, mut arousal) = (0.0, 0.0);
        for (p, (v, a)) in probs.iter().zip(VALENCE_AROUSAL) {
            valence += p * v;
            arousal += p * a;
        }
        EmotionState {
            probs,
            arousal,
            valence,
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
    logits: [f64; N_EMOTIONS],
    first_index: u64,
    grid: VecDeque<EmotionState>,
    /// The stimulus clips driving the state (also the source of the marker stream).
    pub schedule: StimulusSchedule,
    a: f64,
    b: f64,
}

impl EmotionTrack {
    /// Builds the process from its generator, the subject's baseline logits and responsiveness.
    pub fn new(
        mut rng: ChaCha8Rng,
        schedule: StimulusSchedule,
        start: Nanos,
        baseline: [f64; N_EMOTIONS],
        responsiveness: f64,
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
            logits,
            first_index: 0,
            grid: VecDeque::new(),
            schedule,
            a,
            b,
        }
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
                let mut mean = self.baseline;
                if let Some(s) = self.schedule.active_at(t) {
                    let push = self.responsiveness * s.intensity;
                    let target = clip_target(s.clip);
                    mean[target] += push;
                    if target != 0 {
                        mean[0] -= 0.4 * push;
                    }
                }
                for (z, m) in self.logits.iter_mut().zip(mean) {
                    *z = m + self.a * (*z - m) + self.b * LOGIT_SD * gauss(&mut self.rng);
                }
            }
            self.grid.push_back(EmotionState::from_logits(&self.logits));
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

    /// Arousal and valence at event time `t`; cheaper than [`EmotionTrack::at`].
    pub fn affect(&mut self, t: Nanos) -> (f64, f64) {
        let (index, frac) = self.locate(t);
        self.ensure(index + 1);
        let i = (index - self.first_index) as usize;
        match (self.grid.get(i), self.grid.get(i + 1)) {
            (Some(a), Some(b)) => (
                a.arousal + (b.arousal - a.arousal) * frac,
                a.valence + (b.valence - a.valence) * frac,
            ),
            _ => (0.0, 0.0),
        }
    }

    /// Arousal and valence at `secs` seconds since the start of the recording.
    pub fn affect_secs(&mut self, secs: f64) -> (f64, f64) {
        let t = self
            .start
            .saturating_add((secs * NANOS_PER_SEC as f64).round() as Nanos);
        self.affect(t)
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
