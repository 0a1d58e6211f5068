//! Facial behaviour as OpenFace would report it from video: action-unit intensities and blinks.
//!
//! AU intensities follow the hidden emotion distribution through one shared emotion-to-AU table
//! (FACS prototypes: AU06+AU12 for enjoyment, AU01+AU04+AU15 for sadness, AU09+AU10 for disgust...),
//! scaled by subject expressivity, over a subject-specific resting face, with tracking noise and
//! occasional lost frames. Blinks are a shared latent process (also seen as EEG eye artefacts).

use std::collections::VecDeque;

use rand_chacha::ChaCha8Rng;

use super::emotion::N_EMOTIONS;
use super::noise::{exponential, finite_or, gauss, uniform, Ar1};
use super::subject::{Profile, SubjectWorld};
use crate::stream::Nanos;

/// OpenFace action-unit intensity channels, in output order.
pub const AU_LABELS: [&str; 17] = [
    "AU01_r", "AU02_r", "AU04_r", "AU05_r", "AU06_r", "AU07_r", "AU09_r", "AU10_r", "AU12_r",
    "AU14_r", "AU15_r", "AU17_r", "AU20_r", "AU23_r", "AU25_r", "AU26_r", "AU45_r",
];

/// Index of AU45 (blink) in [`AU_LABELS`].
const AU45: usize = 16;

/// Expected AU intensity when the subject fully feels one emotion (rows in label order).
///
/// Columns follow [`AU_LABELS`]; AU45 (blink) is driven by the blink process instead.
const AU_TABLE: [[f64; 17]; N_EMOTIONS] = [
    // 01  02   04   05   06   07   09   10   12   14   15   17   20   23   25   26   45
    [
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    ], // neutral
    [
        0.0, 0.0, 0.0, 0.0, 2.5, 0.5, 0.0, 0.6, 3.2, 0.5, 0.0, 0.0, 0.0, 0.0, 2.0, 1.2, 0.0,
    ], // amusement
    [
        0.0, 0.0, 0.0, 0.0, 2.2, 0.3, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.2, 0.0, 0.0,
    ], // joy
    [
        0.4, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.8, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    ], // tenderness
    [
        1.0, 0.8, 0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0,
    ], // inspiration
    [
        2.5, 2.3, 0.0, 2.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.8, 2.5, 0.0,
    ], // surprise
    [
        1.8, 0.0, 1.8, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.3, 2.2, 1.5, 0.0, 0.0, 0.0, 0.0, 0.0,
    ], // sadness
    [
        2.2, 1.5, 1.8, 2.2, 0.0, 0.8, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 1.2, 1.5, 0.0,
    ], // fear
    [
        0.0, 0.0, 2.8, 1.2, 0.0, 2.2, 0.6, 0.8, 0.0, 0.0, 0.0, 1.2, 0.0, 2.2, 0.0, 0.0, 0.0,
    ], // anger
    [
        0.0, 0.0, 1.5, 0.0, 0.0, 0.8, 2.8, 2.5, 0.0, 0.0, 1.2, 1.0, 0.0, 0.0, 0.6, 0.0, 0.0,
    ], // disgust
];

/// Shared eye-blink events: a renewal process at the subject's spontaneous blink rate.
#[derive(Debug)]
pub struct BlinkSchedule {
    rng: ChaCha8Rng,
    mean_gap: f64,
    next: f64,
    events: VecDeque<(f64, f64)>,
}

impl BlinkSchedule {
    /// Builds the process from its own generator and the subject's blink rate.
    pub fn new(mut rng: ChaCha8Rng, profile: &Profile) -> BlinkSchedule {
        let mean_gap = (60.0 / profile.blink_rate.max(1.0) - 0.3).max(0.5);
        let next = exponential(&mut rng, mean_gap);
        BlinkSchedule {
            rng,
            mean_gap,
            next,
            events: VecDeque::new(),
        }
    }

    /// Eyelid closure (0 open .. about 1 closed) at `secs` seconds since the start.
    pub fn at(&mut self, secs: f64) -> f64 {
        // The bound keeps a pathological `secs` (huge or infinite) from looping forever.
        let target = (secs + 0.5).min(self.next + 1e7);
        while self.next <= target {
            let amp = uniform(&mut self.rng, 0.7, 1.0);
            self.events.push_back((self.next, amp));
            self.next += 0.3 + exponential(&mut self.rng, self.mean_gap);
        }
        let mut closure: f64 = 0.0;
        for &(t, amp) in &self.events {
            let u = secs - t;
            if u < -0.4 {
                break;
            }
            if u < 0.5 {
                // Lids close faster than they open.
                let w = if u < 0.0 { 0.05 } else { 0.09 };
                closure = closure.max(amp * (-0.5 * (u / w) * (u / w)).exp());
            }
        }
        closure
    }

    /// Drops blinks before `secs` seconds since the start.
    pub fn prune(&mut self, secs: f64) {
        while self.events.front().is_some_and(|&(t, _)| t < secs) {
            self.events.pop_front();
        }
    }
}

/// The face stream (OpenFace-style, 30 Hz): 17 AU intensities, `confidence`, `success`.
#[derive(Debug)]
pub struct FaceGen {
    rng: ChaCha8Rng,
    noise: Vec<Ar1>,
    confidence: Ar1,
    lost_frames: u32,
    loss_prob: f64,
}

impl FaceGen {
    /// Builds the stream generator for frame rate `hz`.
    pub fn new(rng: ChaCha8Rng, hz: f64) -> FaceGen {
        let dt = 1.0 / hz;
        FaceGen {
            rng,
            noise: (0..AU_LABELS.len())
                .map(|_| Ar1::new(dt, 0.8, 0.12))
                .collect(),
            confidence: Ar1::new(dt, 5.0, 0.015),
            lost_frames: 0,
            // About one tracking loss every 40 s.
            loss_prob: 1.0 / (40.0 * hz),
        }
    }

    /// Appends the frame at event time `t` (`secs` seconds since the start).
    pub fn sample(&mut self, world: &mut SubjectWorld, t: Nanos, secs: f64, out: &mut Vec<f64>) {
        let state = world.emotion(t);
        let blink = world.blink(secs);
        let profile = &world.profile;
        if self.lost_frames == 0 && uniform(&mut self.rng, 0.0, 1.0) < self.loss_prob {
            self.lost_frames = uniform(&mut self.rng, 3.0, 60.0) as u32;
        }
        let confidence = (0.955 + self.confidence.step(&mut self.rng)).clamp(0.88, 0.99);
        let mut aus = [0.0; 17];
        for (au, value) in aus.iter_mut().enumerate() {
            let noise = self.noise[au].step(&mut self.rng);
            let v = if au == AU45 {
                0.3 * profile.au_bias[au] + 3.2 * blink + 0.5 * noise
            } else {
                let drive: f64 = state
                    .probs
                    .iter()
                    .zip(&AU_TABLE)
                    .map(|(p, row)| p * row[au])
                    .sum();
                profile.au_bias[au] + profile.expressivity * drive + noise
            };
            *value = finite_or(v + 0.04 * gauss(&mut self.rng), 0.0).clamp(0.0, 5.0);
        }
        if self.lost_frames > 0 {
            self.lost_frames -= 1;
            out.extend_from_slice(&[0.0; 17]);
            out.push(uniform(&mut self.rng, 0.0, 0.2));
            out.push(0.0);
        } else {
            out.extend_from_slice(&aus);
            out.push(confidence);
            out.push(1.0);
        }
    }
}
