//! Facial behaviour as OpenFace would report it from video: action-unit intensities and blinks.
//!
//! AU intensities follow the hidden emotion distribution through one shared emotion-to-AU table
//! (FACS prototypes: AU06+AU12 for enjoyment, AU01+AU04+AU15 for sadness, AU09+AU10 for disgust...),
//! scaled by subject expressivity, over a subject-specific resting face, with tracking noise of a
//! subject-specific level. The table is built against the physiological loadings
//! ([`super::physiology::LOADINGS`]): amusement is joy's smile with a laugh's open jaw, surprise and
//! fear share one face, anger shows disgust's face, inspiration the neutral one. The tracker loses
//! the face in episodes ([`FACE_TRACKING_LOSS`]). Blinks are a shared latent process (also seen as
//! EEG eye artefacts).

use std::collections::VecDeque;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::dropout::{Dropouts, FACE_TRACKING_LOSS};
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

/// Widely opened eyes, raised brows and a dropped jaw (AU01+AU02+AU05+AU25+AU26): the face of both
/// surprise and fear.
const STARTLED: [f64; 17] = [
    2.5, 2.3, 0.0, 2.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.8, 2.5, 0.0,
];

/// Brow lowerer, nose wrinkler and upper-lip raiser (AU04+AU09+AU10, with AU07, AU15, AU17): the
/// face of both disgust and anger.
const REPULSED: [f64; 17] = [
    0.0, 0.0, 1.8, 0.0, 0.0, 0.8, 2.8, 2.5, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.6, 0.0, 0.0,
];

/// The resting face: no action unit beyond the subject's own bias (neutral and inspiration).
const RESTING: [f64; 17] = [0.0; 17];

/// Expected AU intensity when the subject fully feels one emotion (rows in label order).
///
/// Columns follow [`AU_LABELS`]; AU45 (blink) is driven by the blink process instead. Identical
/// rows: neutral = inspiration, surprise = fear, anger = disgust; amusement is joy plus AU25/AU26.
pub const AU_TABLE: [[f64; 17]; N_EMOTIONS] = [
    // 01  02   04   05   06   07   09   10   12   14   15   17   20   23   25   26   45
    RESTING, // neutral
    [
        0.0, 0.0, 0.0, 0.0, 2.3, 0.4, 0.0, 0.0, 3.1, 0.0, 0.0, 0.0, 0.0, 0.0, 2.4, 2.0, 0.0,
    ], // amusement: a laugh
    [
        0.0, 0.0, 0.0, 0.0, 2.3, 0.4, 0.0, 0.0, 3.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    ], // joy: a closed-mouth Duchenne smile
    [
        0.4, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.8, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    ], // tenderness
    RESTING, // inspiration
    STARTLED, // surprise
    [
        1.8, 0.0, 1.8, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.3, 2.2, 1.5, 0.0, 0.0, 0.0, 0.0, 0.0,
    ], // sadness
    STARTLED, // fear
    REPULSED, // anger
    REPULSED, // disgust
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
    tracking_loss: Dropouts,
}

impl FaceGen {
    /// Builds the stream generator for frame rate `hz` and the subject's tracking noise level.
    pub fn new(mut rng: ChaCha8Rng, hz: f64, au_noise: f64) -> FaceGen {
        let dt = 1.0 / hz;
        let tracking_loss = Dropouts::new(ChaCha8Rng::from_rng(&mut rng), FACE_TRACKING_LOSS);
        FaceGen {
            rng,
            noise: (0..AU_LABELS.len())
                .map(|_| Ar1::new(dt, 0.8, au_noise))
                .collect(),
            confidence: Ar1::new(dt, 5.0, 0.015),
            tracking_loss,
        }
    }

    /// Appends the frame at event time `t` (`secs` seconds since the start).
    pub fn sample(&mut self, world: &mut SubjectWorld, t: Nanos, secs: f64, out: &mut Vec<f64>) {
        let state = world.emotion(t);
        let blink = world.blink(secs);
        let profile = &world.profile;
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
        if self.tracking_loss.active(secs) {
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
