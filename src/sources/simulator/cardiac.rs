//! Heart: a shared beat schedule with realistic heart-rate variability, observed as ECG and PPG.
//!
//! Heart rate rises with sympathetic arousal and falls with vagal drive; sinus arrhythmia deepens
//! with vagal drive and flattens with arousal; arousal shortens pulse transit and lowers the pulse
//! (vasoconstriction). Beats are generated one after the other (each RR interval from the state at
//! the previous beat), so the schedule is the same whatever streams ask for it and however time is
//! stepped. ECG draws a McSharry-style sum of Gaussians (P, Q, R, S and a two-part T wave) around
//! each R peak; PPG draws a pulse wave (systolic peak, dicrotic notch, diastolic wave) after a pulse
//! transit delay.

use std::f64::consts::TAU;

use rand_chacha::ChaCha8Rng;

use super::emotion::EmotionTrack;
use super::misc::RespLatent;
use super::noise::{finite_or, gauss, uniform, Ar1};
use super::subject::{Profile, SubjectWorld};

/// One heart beat.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Beat {
    /// R-peak time, seconds since the start of the recording.
    pub t: f64,
    /// Interval since the previous beat, seconds.
    pub rr: f64,
    /// Beat-to-beat QRS amplitude factor (around 1), including respiratory axis shift.
    pub amp: f64,
    /// Pulse transit time from R peak to the foot of the pulse wave, seconds.
    pub ptt: f64,
    /// Pulse amplitude factor (vasoconstriction lowers it).
    pub pulse_amp: f64,
}

/// The lazily generated sequence of beats of one subject.
#[derive(Debug)]
pub struct BeatSchedule {
    rng: ChaCha8Rng,
    beats: Vec<Beat>,
}

impl BeatSchedule {
    /// Builds the schedule from its own generator.
    pub fn new(rng: ChaCha8Rng) -> BeatSchedule {
        BeatSchedule {
            rng,
            beats: Vec::new(),
        }
    }

    /// Generates beats until one lies beyond `secs`.
    pub fn extend_to(
        &mut self,
        secs: f64,
        emotion: &mut EmotionTrack,
        resp: &mut RespLatent,
        profile: &Profile,
    ) {
        if self.beats.is_empty() {
            let rr = 60.0 / profile.hr_base;
            let t = -uniform(&mut self.rng, 0.0, rr);
            self.beats.push(Beat {
                t,
                rr,
                amp: 1.0,
                ptt: profile.ptt,
                pulse_amp: 1.0,
            });
        }
        let Some(mut last) = self.beats.last().copied() else {
            return;
        };
        // The bound keeps a pathological `secs` (huge or infinite) from looping forever.
        let target = secs.min(last.t + 1e7);
        while last.t <= target {
            let drive = emotion.drive_secs(last.t);
            let arousal = drive.arousal;
            let breath = resp.at(last.t, emotion, profile);
            let hr = (profile.hr_base + profile.hr_gain * arousal
                - profile.hr_vagal_gain * drive.vagal)
                .clamp(40.0, 180.0);
            let rsa = profile.rsa_amp * (1.0 - 0.6 * arousal + 0.8 * drive.vagal).clamp(0.3, 2.2);
            let lf = profile.lf_amp * (TAU * profile.lf_freq * last.t + profile.lf_phase).sin();
            let rr = 60.0 / hr - rsa * breath.phase.cos()
                + lf
                + profile.rr_jitter * gauss(&mut self.rng);
            let rr = finite_or(rr, 0.8).clamp(0.33, 1.6);
            let beat = Beat {
                t: last.t + rr,
                rr,
                amp: (1.0 + 0.04 * gauss(&mut self.rng)) * (1.0 + 0.06 * breath.signal),
                ptt: profile.ptt * (1.0 - 0.12 * arousal),
                pulse_amp: (1.0 - 0.35 * arousal) * (1.0 + 0.03 * gauss(&mut self.rng)),
            };
            self.beats.push(beat);
            last = beat;
        }
    }

    /// The beats generated and not yet pruned, in time order.
    pub fn slice(&self) -> &[Beat] {
        &self.beats
    }

    /// Drops beats well before `secs` (keeping a few so the schedule can continue).
    pub fn prune(&mut self, secs: f64) {
        let old = self.beats.iter().take_while(|b| b.t < secs).count();
        let drop = old.min(self.beats.len().saturating_sub(2));
        self.beats.drain(..drop);
    }
}

/// A Gaussian wave of amplitude `a`, centre `c` and width `w` evaluated at `x`.
#[inline]
fn wave(x: f64, c: f64, w: f64, a: f64) -> f64 {
    let z = (x - c) / w;
    if z.abs() > 7.0 {
        0.0
    } else {
        a * (-0.5 * z * z).exp()
    }
}

/// ECG voltage (millivolts, before gain) of the beats in `beats` at `secs`.
fn ecg_morphology(beats: &[Beat], secs: f64, t_gain: f64) -> f64 {
    let mut v = 0.0;
    for b in beats {
        if b.t > secs + 0.5 {
            break;
        }
        if b.t < secs - 0.9 {
            continue;
        }
        let x = secs - b.t;
        let sq = b.rr.sqrt();
        v += wave(x, -0.17 * sq, 0.022, 0.12);
        v += wave(x, -0.028, 0.009, -0.10 * b.amp);
        v += wave(x, 0.0, 0.010, 1.10 * b.amp);
        v += wave(x, 0.028, 0.011, -0.22 * b.amp);
        v += wave(x, 0.25 * sq, 0.055, 0.20 * t_gain);
        v += wave(x, 0.31 * sq, 0.035, 0.12 * t_gain);
    }
    v
}

/// The ECG stream (chest lead, 700 Hz): P-QRS-T beats, respiratory baseline wander, noise.
#[derive(Debug)]
pub struct EcgGen {
    rng: ChaCha8Rng,
    drift: Ar1,
    mains_phase: f64,
}

impl EcgGen {
    /// Builds the stream generator for sampling rate `hz`.
    pub fn new(mut rng: ChaCha8Rng, hz: f64) -> EcgGen {
        let mains_phase = uniform(&mut rng, 0.0, TAU);
        EcgGen {
            rng,
            drift: Ar1::new(1.0 / hz, 3.0, 0.04),
            mains_phase,
        }
    }

    /// Appends the sample at `secs` seconds since the start.
    pub fn sample(&mut self, world: &mut SubjectWorld, secs: f64, out: &mut Vec<f64>) {
        let breath = world.resp(secs);
        let t_gain = world.profile.t_gain;
        let gain = world.profile.ecg_gain;
        let heart = ecg_morphology(world.beats(secs), secs, t_gain);
        let mains = 0.004 * (TAU * 50.0 * secs + self.mains_phase).sin();
        let v = gain * heart
            + 0.05 * breath.signal
            + self.drift.step(&mut self.rng)
            + mains
            + 0.008 * gauss(&mut self.rng);
        out.push(finite_or(v, 0.0));
    }
}

/// Pulse wave shape `u` seconds after the pulse foot, for a beat interval `rr`.
fn pulse_shape(u: f64, rr: f64) -> f64 {
    if !(0.0..=1.2).contains(&u) {
        return 0.0;
    }
    let systolic = if u < 0.12 {
        wave(u, 0.12, 0.045, 1.0)
    } else {
        wave(u, 0.12, 0.065, 1.0)
    };
    let diastolic = wave(u, 0.06 + 0.33 * rr.sqrt(), 0.05, 0.35);
    let runoff = if u > 0.12 {
        0.12 * (-(u - 0.12) / 0.35).exp()
    } else {
        0.0
    };
    systolic + diastolic + runoff
}

/// The PPG stream (wrist blood volume pulse, 100 Hz): one pulse per beat after the transit delay.
#[derive(Debug)]
pub struct PpgGen {
    rng: ChaCha8Rng,
    drift: Ar1,
}

impl PpgGen {
    /// Builds the stream generator for sampling rate `hz`.
    pub fn new(rng: ChaCha8Rng, hz: f64) -> PpgGen {
        PpgGen {
            rng,
            drift: Ar1::new(1.0 / hz, 6.0, 3.0),
        }
    }

    /// Appends the sample at `secs` seconds since the start.
    pub fn sample(&mut self, world: &mut SubjectWorld, secs: f64, out: &mut Vec<f64>) {
        let breath = world.resp(secs);
        let gain = world.profile.ppg_gain;
        let mut pulse = 0.0;
        for b in world.beats(secs) {
            let u = secs - (b.t + b.ptt);
            if u < 0.0 {
                break;
            }
            pulse += b.pulse_amp * pulse_shape(u, b.rr);
        }
        let v = 60.0 * gain * pulse
            + 4.0 * breath.signal
            + self.drift.step(&mut self.rng)
            + world.profile.ppg_noise * gauss(&mut self.rng);
        out.push(finite_or(v, 0.0));
    }
}
