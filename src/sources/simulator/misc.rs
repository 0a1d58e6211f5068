//! Respiration (shared latent and belt stream), skin temperature and wrist accelerometer.
//!
//! All three follow the subject's sympathetic arousal only: faster, shallower breathing, cooler
//! skin, more fidgeting.

use std::collections::VecDeque;
use std::f64::consts::TAU;

use rand_chacha::ChaCha8Rng;

use super::emotion::EmotionTrack;
use super::noise::{finite_or, gauss, uniform, Ar1, Resonator};
use super::subject::{Profile, SubjectWorld};

/// Rate of the latent respiration grid, Hz (the resp stream samples exactly on it).
const RESP_GRID_HZ: f64 = 50.0;

/// The respiration state at one instant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RespPoint {
    /// Unwrapped breathing phase, radians (inspiration while `cos(phase) > 0`).
    pub phase: f64,
    /// Relative breath depth (around 1).
    pub depth: f64,
    /// Normalised chest expansion, roughly in `[-1.2, 1.2]`.
    pub signal: f64,
}

/// Shared breathing process: phase advanced at an arousal-dependent rate, depth drifting.
///
/// Seen by the resp stream and, through sinus arrhythmia and baseline wander, by ECG and PPG.
#[derive(Debug)]
pub struct RespLatent {
    rng: ChaCha8Rng,
    rate_noise: Ar1,
    depth_noise: Ar1,
    phase: f64,
    first_index: u64,
    grid: VecDeque<(f64, f64)>,
}

impl RespLatent {
    /// Builds the process from its own generator.
    pub fn new(mut rng: ChaCha8Rng) -> RespLatent {
        let dt = 1.0 / RESP_GRID_HZ;
        let phase = uniform(&mut rng, 0.0, TAU);
        RespLatent {
            rng,
            rate_noise: Ar1::new(dt, 20.0, 0.08),
            depth_noise: Ar1::new(dt, 8.0, 0.18),
            phase,
            first_index: 0,
            grid: VecDeque::new(),
        }
    }

    /// Generates grid points up to and including `index`.
    fn ensure(&mut self, index: u64, emotion: &mut EmotionTrack, profile: &Profile) {
        while self.first_index + (self.grid.len() as u64) <= index {
            let next = self.first_index + self.grid.len() as u64;
            let secs = next as f64 / RESP_GRID_HZ;
            let arousal = emotion.drive_secs(secs).arousal;
            let noise = self.rate_noise.step(&mut self.rng);
            let depth_noise = self.depth_noise.step(&mut self.rng);
            if next > 0 {
                let bpm = profile.resp_rate * (1.0 + profile.resp_gain * arousal) * (1.0 + noise);
                let hz = (bpm / 60.0).clamp(0.1, 0.7);
                self.phase += TAU * hz / RESP_GRID_HZ;
            }
            let depth = (1.0 + depth_noise - 0.15 * arousal).clamp(0.3, 2.0);
            self.grid.push_back((self.phase, depth));
        }
    }

    /// The respiration state at `secs` seconds since the start.
    pub fn at(&mut self, secs: f64, emotion: &mut EmotionTrack, profile: &Profile) -> RespPoint {
        let pos = (secs.max(0.0) * RESP_GRID_HZ).min(1e15);
        let mut index = pos.floor() as u64;
        let mut frac = pos - index as f64;
        if index < self.first_index {
            index = self.first_index;
            frac = 0.0;
        }
        self.ensure(index + 1, emotion, profile);
        let i = (index - self.first_index) as usize;
        let (Some(&(p0, d0)), Some(&(p1, d1))) = (self.grid.get(i), self.grid.get(i + 1)) else {
            return RespPoint {
                phase: 0.0,
                depth: 1.0,
                signal: 0.0,
            };
        };
        let phase = p0 + (p1 - p0) * frac;
        let depth = d0 + (d1 - d0) * frac;
        RespPoint {
            phase,
            depth,
            signal: depth * breath_shape(phase),
        }
    }

    /// Drops grid points before `secs` seconds since the start.
    pub fn prune(&mut self, secs: f64) {
        let index = (secs.max(0.0) * RESP_GRID_HZ) as u64;
        while self.grid.len() > 2 && self.first_index < index {
            self.grid.pop_front();
            self.first_index += 1;
        }
    }
}

/// Chest expansion over one breath: slightly faster inspiration than expiration.
fn breath_shape(phase: f64) -> f64 {
    phase.sin() - 0.18 * (2.0 * phase).cos()
}

/// The respiration belt stream (RespiBAN-like): latent breathing plus drift and sensor noise.
#[derive(Debug)]
pub struct RespGen {
    rng: ChaCha8Rng,
    drift: Ar1,
}

impl RespGen {
    /// Builds the stream generator for sampling rate `hz`.
    pub fn new(rng: ChaCha8Rng, hz: f64) -> RespGen {
        RespGen {
            rng,
            drift: Ar1::new(1.0 / hz, 30.0, 0.4),
        }
    }

    /// Appends the sample at `secs` seconds since the start.
    pub fn sample(&mut self, world: &mut SubjectWorld, secs: f64, out: &mut Vec<f64>) {
        let point = world.resp(secs);
        let drift = self.drift.step(&mut self.rng);
        let v = world.profile.resp_amp * point.signal + drift + 0.03 * gauss(&mut self.rng);
        out.push(finite_or(v, 0.0));
    }
}

/// The skin temperature stream (E4-like, 4 Hz): slow drift, cooling with sustained arousal.
#[derive(Debug)]
pub struct TempGen {
    rng: ChaCha8Rng,
    drift: Ar1,
    smooth: Option<f64>,
    alpha: f64,
}

impl TempGen {
    /// Builds the stream generator for sampling rate `hz`.
    pub fn new(rng: ChaCha8Rng, hz: f64) -> TempGen {
        TempGen {
            rng,
            drift: Ar1::new(1.0 / hz, 400.0, 0.25),
            smooth: None,
            alpha: 1.0 - (-1.0 / (hz * 40.0)).exp(),
        }
    }

    /// Appends the sample at `secs` seconds since the start.
    pub fn sample(&mut self, world: &mut SubjectWorld, secs: f64, out: &mut Vec<f64>) {
        let arousal = world.drive_secs(secs).arousal;
        let smooth = match self.smooth {
            Some(s) => s + self.alpha * (arousal - s),
            None => arousal,
        };
        self.smooth = Some(smooth);
        let drift = self.drift.step(&mut self.rng);
        let v = world.profile.temp_base + drift - world.profile.temp_gain * smooth
            + 0.01 * gauss(&mut self.rng);
        // The E4 thermopile reports in steps of 0.02 degC.
        out.push(finite_or((v / 0.02).round() * 0.02, 34.0));
    }
}

/// The wrist accelerometer stream: gravity, posture shifts and movement bursts (more when aroused).
#[derive(Debug)]
pub struct AccelGen {
    rng: ChaCha8Rng,
    dt: f64,
    axes: [Resonator; 3],
    tilt: (f64, f64),
    burst_left: f64,
    burst_amp: f64,
}

impl AccelGen {
    /// Builds the stream generator for sampling rate `hz`.
    pub fn new(rng: ChaCha8Rng, hz: f64) -> AccelGen {
        let axes = [
            Resonator::new(2.5, 3.0, hz),
            Resonator::new(3.0, 3.0, hz),
            Resonator::new(2.0, 3.0, hz),
        ];
        AccelGen {
            rng,
            dt: 1.0 / hz,
            axes,
            tilt: (f64::NAN, f64::NAN),
            burst_left: 0.0,
            burst_amp: 0.0,
        }
    }

    /// Appends the sample (x, y, z in g) at `secs` seconds since the start.
    pub fn sample(&mut self, world: &mut SubjectWorld, secs: f64, out: &mut Vec<f64>) {
        let rest = world.profile.tilt;
        if !self.tilt.0.is_finite() {
            self.tilt = rest;
        }
        let arousal = world.drive_secs(secs).arousal;
        let per_sec = world.profile.fidget * 2.0 / 60.0 * (1.4 * arousal).exp();
        let start_burst = self.rng_uniform() < per_sec * self.dt;
        if self.burst_left <= 0.0 && start_burst {
            self.burst_left = uniform(&mut self.rng, 0.5, 3.0);
            self.burst_amp = uniform(&mut self.rng, 0.03, 0.25) * (1.0 + 0.5 * arousal.max(0.0));
        }
        let amp = if self.burst_left > 0.0 {
            self.burst_left -= self.dt;
            if self.burst_left <= 0.0 {
                // Posture shifts at the end of a movement, pulled back towards the resting pose.
                self.tilt.0 = 0.7 * self.tilt.0 + 0.3 * rest.0 + 0.06 * gauss(&mut self.rng);
                self.tilt.1 = 0.7 * self.tilt.1 + 0.3 * rest.1 + 0.06 * gauss(&mut self.rng);
            }
            self.burst_amp
        } else {
            0.0
        };
        let (tx, ty) = (self.tilt.0.clamp(-0.6, 0.6), self.tilt.1.clamp(-0.6, 0.6));
        let gz = (1.0 - tx * tx - ty * ty).max(0.0).sqrt();
        let gravity = [tx, ty, gz];
        for (axis, g) in self.axes.iter_mut().zip(gravity) {
            let motion = axis.step(amp, &mut self.rng);
            let v = g + motion + 0.004 * gauss(&mut self.rng);
            out.push(finite_or(v, g));
        }
    }

    /// One uniform draw in `[0, 1)`.
    fn rng_uniform(&mut self) -> f64 {
        uniform(&mut self.rng, 0.0, 1.0)
    }
}
