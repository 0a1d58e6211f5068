//! One simulated subject: fixed physiological parameters and the shared latent processes.
//!
//! Latent processes (emotion, respiration, heart beats, electrodermal activity, blinks) are shared
//! by the streams that observe them, each with its own generator, and are generated lazily in time
//! order, so their values never depend on which streams are requested or how time is stepped.

use rand_chacha::ChaCha8Rng;

use super::cardiac::{Beat, BeatSchedule};
use super::eda::EdaLatent;
use super::emotion::{EmotionState, EmotionTrack, StimulusSchedule, N_EMOTIONS};
use super::face::BlinkSchedule;
use super::misc::{RespLatent, RespPoint};
use super::noise::{gauss, rng_for, tag, uniform};
use super::physiology::Physio;
use crate::stream::{Nanos, NANOS_PER_SEC};

/// How far back (seconds) any stream may query a latent process; older state can be dropped.
const KEEP_SECS: f64 = 10.0;

/// Per-subject parameters: baselines and gains that make subjects differ.
///
/// The dependence of signals on the hidden state is shared (same tables and signs for everyone);
/// only its scale (a gain on each physiological factor, facial expressivity), the resting levels
/// and the sensor noise differ, so models must generalise across subjects.
#[derive(Clone, Debug)]
pub struct Profile {
    /// Resting logits of the emotion distribution (neutral dominates).
    pub emotion_baseline: [f64; N_EMOTIONS],
    /// How far a stimulus clip pushes the target emotion's logit.
    pub responsiveness: f64,
    /// Resting heart rate, beats per minute (60-80).
    pub hr_base: f64,
    /// Heart-rate increase per unit of arousal, beats per minute.
    pub hr_gain: f64,
    /// Heart-rate decrease per unit of vagal drive, beats per minute.
    pub hr_vagal_gain: f64,
    /// Respiratory sinus arrhythmia amplitude at rest, seconds of RR interval.
    pub rsa_amp: f64,
    /// Low-frequency (Mayer wave, ~0.1 Hz) RR modulation amplitude, seconds.
    pub lf_amp: f64,
    /// Frequency of the low-frequency RR modulation, Hz.
    pub lf_freq: f64,
    /// Phase of the low-frequency RR modulation, radians.
    pub lf_phase: f64,
    /// Beat-to-beat random RR jitter, seconds.
    pub rr_jitter: f64,
    /// ECG amplitude scale (electrode placement, body build).
    pub ecg_gain: f64,
    /// T-wave amplitude scale relative to the QRS.
    pub t_gain: f64,
    /// Resting pulse transit time from R peak to pulse foot, seconds.
    pub ptt: f64,
    /// PPG amplitude scale.
    pub ppg_gain: f64,
    /// Resting breathing rate, breaths per minute.
    pub resp_rate: f64,
    /// Relative breathing-rate increase per unit of arousal.
    pub resp_gain: f64,
    /// Breathing amplitude, percent of belt stretch.
    pub resp_amp: f64,
    /// Tonic skin conductance at rest, microsiemens (2-10).
    pub eda_base: f64,
    /// Spontaneous SCR rate at zero arousal, per minute.
    pub scr_rate: f64,
    /// Typical SCR amplitude, microsiemens.
    pub scr_amp: f64,
    /// SCR rise time constant, seconds.
    pub scr_rise: f64,
    /// SCR decay time constant, seconds.
    pub scr_decay: f64,
    /// Resting skin temperature, degrees Celsius.
    pub temp_base: f64,
    /// Temperature drop per unit of arousal, degrees Celsius.
    pub temp_gain: f64,
    /// Peak alpha frequency, Hz.
    pub alpha_freq: f64,
    /// Alpha amplitude scale.
    pub alpha_gain: f64,
    /// Beta amplitude scale.
    pub beta_gain: f64,
    /// Theta amplitude scale.
    pub theta_gain: f64,
    /// Background (1/f) EEG amplitude scale.
    pub eeg_gain: f64,
    /// Resting device tilt on X and Y, in g.
    pub tilt: (f64, f64),
    /// Movement-burst propensity scale.
    pub fidget: f64,
    /// Facial expressivity scale.
    pub expressivity: f64,
    /// Resting intensity of each action unit (face shape, OpenFace bias).
    pub au_bias: [f64; 17],
    /// Spontaneous blink rate, blinks per minute.
    pub blink_rate: f64,
    /// Gain on each physiological factor: how strongly this body expresses the hidden state.
    pub physio_gain: Physio,
    /// Standard deviation of the face tracker's action-unit noise (lighting, head pose, face).
    pub au_noise: f64,
    /// Scale of the EDA sensors' noise (skin, electrode gel).
    pub eda_noise: f64,
    /// Standard deviation of the PPG sensor noise (fit of the wristband, skin tone).
    pub ppg_noise: f64,
}

impl Profile {
    /// Draws the parameters of one subject from its own generator.
    pub fn draw(rng: &mut ChaCha8Rng) -> Profile {
        let mut emotion_baseline = [0.0; N_EMOTIONS];
        for (i, z) in emotion_baseline.iter_mut().enumerate() {
            *z = if i == 0 {
                uniform(rng, 2.4, 3.2)
            } else {
                -0.5 + 0.4 * gauss(rng)
            };
        }
        let mut au_bias = [0.0; 17];
        for b in au_bias.iter_mut() {
            *b = uniform(rng, 0.0, 0.35);
        }
        Profile {
            emotion_baseline,
            au_bias,
            responsiveness: uniform(rng, 3.0, 4.5),
            hr_base: uniform(rng, 62.0, 76.0),
            hr_gain: uniform(rng, 15.0, 25.0),
            rsa_amp: uniform(rng, 0.03, 0.07),
            lf_amp: uniform(rng, 0.012, 0.03),
            lf_freq: uniform(rng, 0.08, 0.12),
            lf_phase: uniform(rng, 0.0, std::f64::consts::TAU),
            rr_jitter: uniform(rng, 0.006, 0.014),
            ecg_gain: uniform(rng, 0.8, 1.3),
            t_gain: uniform(rng, 0.7, 1.3),
            ptt: uniform(rng, 0.18, 0.25),
            ppg_gain: uniform(rng, 0.9, 1.1),
            resp_rate: uniform(rng, 12.0, 17.0),
            resp_gain: uniform(rng, 0.2, 0.4),
            resp_amp: uniform(rng, 2.0, 5.0),
            eda_base: uniform(rng, 2.0, 10.0),
            scr_rate: uniform(rng, 1.0, 3.0),
            scr_amp: uniform(rng, 0.2, 0.45),
            scr_rise: uniform(rng, 0.6, 1.0),
            scr_decay: uniform(rng, 5.0, 10.0),
            temp_base: uniform(rng, 33.0, 35.0),
            temp_gain: uniform(rng, 0.3, 0.8),
            alpha_freq: uniform(rng, 9.0, 11.0),
            alpha_gain: uniform(rng, 0.85, 1.15),
            beta_gain: uniform(rng, 0.9, 1.1),
            theta_gain: uniform(rng, 0.9, 1.1),
            eeg_gain: uniform(rng, 0.9, 1.1),
            tilt: (uniform(rng, -0.2, 0.2), uniform(rng, -0.2, 0.2)),
            fidget: uniform(rng, 0.5, 1.5),
            expressivity: uniform(rng, 0.6, 1.4),
            blink_rate: uniform(rng, 10.0, 25.0),
            hr_vagal_gain: uniform(rng, 9.0, 15.0),
            physio_gain: Physio {
                arousal: uniform(rng, 0.75, 1.25),
                vagal: uniform(rng, 0.75, 1.25),
                valence: uniform(rng, 0.75, 1.25),
                absorption: uniform(rng, 0.75, 1.25),
            },
            au_noise: uniform(rng, 0.08, 0.2),
            eda_noise: uniform(rng, 0.5, 2.0),
            ppg_noise: uniform(rng, 0.2, 0.6),
        }
    }
}

/// Everything of one subject that several streams share: parameters and latent processes.
#[derive(Debug)]
pub struct SubjectWorld {
    /// The subject's parameters.
    pub profile: Profile,
    start: Nanos,
    emotion: EmotionTrack,
    resp: RespLatent,
    beats: BeatSchedule,
    eda: EdaLatent,
    blinks: BlinkSchedule,
}

impl SubjectWorld {
    /// Builds subject `index` of a session seeded with `seed` that starts at `start`.
    pub fn new(seed: u64, index: usize, start: Nanos) -> SubjectWorld {
        let profile = Profile::draw(&mut rng_for(seed, index, tag::PROFILE));
        let schedule = StimulusSchedule::new(rng_for(seed, index, tag::STIMULI), start);
        let emotion = EmotionTrack::new(
            rng_for(seed, index, tag::EMOTION),
            schedule,
            start,
            profile.emotion_baseline,
            profile.responsiveness,
            profile.physio_gain,
        );
        SubjectWorld {
            start,
            emotion,
            resp: RespLatent::new(rng_for(seed, index, tag::RESP_LATENT)),
            beats: BeatSchedule::new(rng_for(seed, index, tag::BEATS)),
            eda: EdaLatent::new(rng_for(seed, index, tag::EDA_LATENT), &profile),
            blinks: BlinkSchedule::new(rng_for(seed, index, tag::BLINKS), &profile),
            profile,
        }
    }

    /// Seconds since the start of the recording of event time `t`.
    pub fn rel_secs(&self, t: Nanos) -> f64 {
        t.saturating_sub(self.start) as f64 / NANOS_PER_SEC as f64
    }

    /// Event time of `secs` seconds since the start of the recording.
    fn abs_nanos(&self, secs: f64) -> Nanos {
        self.start
            .saturating_add((secs * NANOS_PER_SEC as f64).round() as Nanos)
    }

    /// The full hidden state at event time `t`.
    pub fn emotion(&mut self, t: Nanos) -> EmotionState {
        self.emotion.at(t)
    }

    /// Holds the hidden distribution at `probs` for the whole recording (see [`EmotionTrack::pin`]).
    #[cfg(test)]
    pub fn pin_emotion(&mut self, probs: [f64; N_EMOTIONS]) {
        self.emotion.pin(probs);
    }

    /// The subject's physiological drive (factors times gains) at event time `t`.
    pub fn drive(&mut self, t: Nanos) -> Physio {
        self.emotion.drive(t)
    }

    /// The subject's physiological drive at `secs` seconds since the start.
    pub fn drive_secs(&mut self, secs: f64) -> Physio {
        self.emotion.drive_secs(secs)
    }

    /// Marker events with `from <= time < until`.
    pub fn markers(&mut self, from: Nanos, until: Nanos, out: &mut Vec<(Nanos, String)>) {
        self.emotion.schedule.markers(from, until, out);
    }

    /// The respiration state at `secs` seconds since the start.
    pub fn resp(&mut self, secs: f64) -> RespPoint {
        self.resp.at(secs, &mut self.emotion, &self.profile)
    }

    /// The heart beats (R-peak times) around `secs`, generated at least one second beyond it.
    pub fn beats(&mut self, secs: f64) -> &[Beat] {
        self.beats
            .extend_to(secs + 1.0, &mut self.emotion, &mut self.resp, &self.profile);
        self.beats.slice()
    }

    /// Latent skin conductance at `secs` seconds since the start, microsiemens.
    pub fn eda(&mut self, secs: f64) -> f64 {
        self.eda.at(secs, &mut self.emotion, &self.profile)
    }

    /// Eyelid closure (0 open .. 1 closed) at `secs` seconds since the start.
    pub fn blink(&mut self, secs: f64) -> f64 {
        self.blinks.at(secs)
    }

    /// Drops latent state that no stream can need once everything before `until` is produced.
    pub fn prune(&mut self, until: Nanos) {
        let secs = self.rel_secs(until) - KEEP_SECS;
        self.emotion.prune(self.abs_nanos(secs));
        self.resp.prune(secs);
        self.beats.prune(secs);
        self.eda.prune(secs);
        self.blinks.prune(secs);
    }
}
