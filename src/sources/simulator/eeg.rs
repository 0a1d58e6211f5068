//! EEG (DSI-24 10-20 montage, 300 Hz): 1/f background plus state-dependent band rhythms.
//!
//! Each channel sums three AR(1) processes (a cheap pink-ish spectrum), a shared reference
//! component, and damped resonators for theta, alpha, beta and gamma whose drive follows the
//! subject's physiological factors: alpha (occipito-parietal) falls and beta rises with arousal,
//! absorption raises frontal-midline theta and posterior alpha together, frontal alpha asymmetry
//! (F4 vs F3) follows valence. Vagal drive leaves the EEG alone. Blinks add frontal eye artefacts.

use rand_chacha::ChaCha8Rng;

use super::noise::{finite_or, Ar1, Resonator};
use super::subject::SubjectWorld;
use crate::stream::Nanos;

/// Channel labels of the DSI-24 10-20 layout, in output order.
pub const EEG_LABELS: [&str; 18] = [
    "Fp1", "Fp2", "Fz", "F3", "F4", "F7", "F8", "Cz", "C3", "C4", "T3", "T4", "T5", "T6", "P3",
    "P4", "O1", "O2",
];

/// Per-channel topography: (alpha, theta, beta weight, hemisphere for asymmetry, blink weight).
///
/// Hemisphere is -1 for left frontal sites, +1 for right frontal sites, 0 elsewhere.
const TOPOGRAPHY: [(f64, f64, f64, f64, f64); 18] = [
    (0.25, 0.8, 0.9, -1.0, 1.0), // Fp1
    (0.25, 0.8, 0.9, 1.0, 1.0),  // Fp2
    (0.35, 1.0, 1.0, 0.0, 0.4),  // Fz
    (0.35, 0.9, 1.0, -1.0, 0.4), // F3
    (0.35, 0.9, 1.0, 1.0, 0.4),  // F4
    (0.3, 0.7, 1.1, -1.0, 0.3),  // F7
    (0.3, 0.7, 1.1, 1.0, 0.3),   // F8
    (0.5, 0.6, 1.0, 0.0, 0.15),  // Cz
    (0.5, 0.6, 1.0, 0.0, 0.1),   // C3
    (0.5, 0.6, 1.0, 0.0, 0.1),   // C4
    (0.4, 0.5, 1.2, 0.0, 0.05),  // T3
    (0.4, 0.5, 1.2, 0.0, 0.05),  // T4
    (0.8, 0.4, 0.9, 0.0, 0.02),  // T5
    (0.8, 0.4, 0.9, 0.0, 0.02),  // T6
    (0.9, 0.4, 0.8, 0.0, 0.03),  // P3
    (0.9, 0.4, 0.8, 0.0, 0.03),  // P4
    (1.0, 0.3, 0.6, 0.0, 0.01),  // O1
    (1.0, 0.3, 0.6, 0.0, 0.01),  // O2
];

/// Alpha amplitude (standard deviation, microvolts) at the strongest site.
const ALPHA_UV: f64 = 12.0;
/// Theta amplitude at the strongest site.
const THETA_UV: f64 = 5.0;
/// Beta amplitude at weight 1.
const BETA_UV: f64 = 3.0;
/// Gamma amplitude at weight 1.
const GAMMA_UV: f64 = 0.8;
/// Peak eye-blink artefact at Fp1/Fp2.
const BLINK_UV: f64 = 100.0;

/// State of one channel.
#[derive(Clone, Debug)]
struct Channel {
    slow: Ar1,
    mid: Ar1,
    fast: Ar1,
    theta: Resonator,
    alpha: Resonator,
    beta: Resonator,
    gamma: Resonator,
}

/// The EEG stream generator of one subject.
#[derive(Debug)]
pub struct EegGen {
    rng: ChaCha8Rng,
    common: Ar1,
    channels: Vec<Channel>,
}

impl EegGen {
    /// Builds the stream generator for sampling rate `hz` and the subject's alpha peak frequency.
    pub fn new(rng: ChaCha8Rng, hz: f64, alpha_freq: f64, eeg_gain: f64) -> EegGen {
        let dt = 1.0 / hz;
        let nyquist_guard = (hz / 2.0 - 1.0).max(1.0);
        let channel = Channel {
            slow: Ar1::new(dt, 0.25, 7.0 * eeg_gain),
            mid: Ar1::new(dt, 0.04, 4.0 * eeg_gain),
            fast: Ar1::new(dt, 0.006, 2.0 * eeg_gain),
            theta: Resonator::new(6.0_f64.min(nyquist_guard), 2.5, hz),
            alpha: Resonator::new(alpha_freq.min(nyquist_guard), 1.5, hz),
            beta: Resonator::new(20.0_f64.min(nyquist_guard), 10.0, hz),
            gamma: Resonator::new(40.0_f64.min(nyquist_guard), 10.0, hz),
        };
        EegGen {
            rng,
            common: Ar1::new(dt, 0.05, 3.0 * eeg_gain),
            channels: vec![channel; EEG_LABELS.len()],
        }
    }

    /// Appends the sample at event time `t` (`secs` seconds since the start).
    pub fn sample(&mut self, world: &mut SubjectWorld, t: Nanos, secs: f64, out: &mut Vec<f64>) {
        let drive = world.drive(t);
        let blink = world.blink(secs);
        let p = &world.profile;
        let a = drive.arousal.clamp(-1.5, 1.5);
        let v = drive.valence.clamp(-1.5, 1.5);
        let absorbed = drive.absorption.clamp(0.0, 1.5);
        let alpha = ALPHA_UV * p.alpha_gain * (1.0 - 0.6 * a + 0.7 * absorbed).clamp(0.3, 2.2);
        let beta = BETA_UV * p.beta_gain * (1.0 + 1.2 * a).clamp(0.4, 2.8);
        let theta = THETA_UV * p.theta_gain * (1.0 + 0.1 * a + 1.5 * absorbed).clamp(0.5, 3.5);
        let gamma = GAMMA_UV * (1.0 + 0.3 * a).clamp(0.5, 1.5);
        let rng = &mut self.rng;
        let common = self.common.step(rng);
        for (ch, &(wa, wt, wb, side, wblink)) in self.channels.iter_mut().zip(&TOPOGRAPHY) {
            let asym = 1.0 + 0.4 * side * v;
            let x = ch.slow.step(rng)
                + ch.mid.step(rng)
                + ch.fast.step(rng)
                + ch.theta.step(theta * wt, rng)
                + ch.alpha.step(alpha * wa * asym, rng)
                + ch.beta.step(beta * wb, rng)
                + ch.gamma.step(gamma * wb, rng)
                + common
                + BLINK_UV * wblink * blink;
            out.push(finite_or(x, 0.0));
        }
    }
}
