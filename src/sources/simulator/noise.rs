//! Shared noise helpers: deterministic seeding, Gaussian draws and small linear noise processes.
//!
//! Every random process of the simulator owns its own ChaCha8 generator, seeded from the session
//! seed, the subject index and a fixed tag naming the process, so processes never share draws.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Fixed tags naming each random process; a stream's tag is its identity, never its position.
pub mod tag {
    /// Per-subject physiological parameters (baselines, gains).
    pub const PROFILE: u64 = 1;
    /// Hidden emotion state (Ornstein-Uhlenbeck logits).
    pub const EMOTION: u64 = 2;
    /// Stimulus schedule (clip order and timing).
    pub const STIMULI: u64 = 3;
    /// Shared respiration process.
    pub const RESP_LATENT: u64 = 4;
    /// Shared heart-beat schedule.
    pub const BEATS: u64 = 5;
    /// Shared electrodermal process (tonic drift and SCR events).
    pub const EDA_LATENT: u64 = 6;
    /// Shared eye-blink events (seen by the face and as EEG artefacts).
    pub const BLINKS: u64 = 7;
    /// Base of the per-stream tags: `STREAM_BASE + stream identity`.
    pub const STREAM_BASE: u64 = 100;
}

/// SplitMix64 finaliser: a cheap, well-mixing bijection on `u64` used to derive seeds.
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The generator of process `tag` of subject `subject` in a session seeded with `seed`.
pub fn rng_for(seed: u64, subject: usize, tag: u64) -> ChaCha8Rng {
    let mut state = splitmix(seed ^ 0x6865_6C6F_666C_6F77);
    state = splitmix(state ^ (subject as u64).wrapping_mul(0xA24B_AED4_963E_E407));
    state = splitmix(state ^ tag.wrapping_mul(0x9FB2_1C65_1E98_DF25));
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        state = splitmix(state);
        chunk.copy_from_slice(&state.to_le_bytes());
    }
    ChaCha8Rng::from_seed(bytes)
}

/// One standard normal draw.
#[inline]
pub fn gauss(rng: &mut ChaCha8Rng) -> f64 {
    rng.sample(StandardNormal)
}

/// A uniform draw in `[lo, hi)`.
#[inline]
pub fn uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// An exponential draw with the given mean (used for Poisson inter-event times).
#[inline]
pub fn exponential(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
    let u: f64 = rng.random::<f64>();
    -mean * (1.0 - u).ln()
}

/// Exact Ornstein-Uhlenbeck step coefficients for time step `dt` and time constant `tau`.
///
/// Returns `(a, b)` such that `x' = mean + a (x - mean) + b * sd * N(0,1)` keeps the stationary
/// standard deviation `sd`.
pub fn ou_coeffs(dt: f64, tau: f64) -> (f64, f64) {
    let a = (-dt / tau.max(1e-9)).exp();
    (a, (1.0 - a * a).max(0.0).sqrt())
}

/// A first-order autoregressive process with unit-free stationary standard deviation `sd`.
#[derive(Clone, Debug)]
pub struct Ar1 {
    a: f64,
    b: f64,
    x: f64,
}

impl Ar1 {
    /// Builds a process with time constant `tau` seconds, stepped every `dt` seconds, of spread `sd`.
    pub fn new(dt: f64, tau: f64, sd: f64) -> Ar1 {
        let (a, b) = ou_coeffs(dt, tau);
        Ar1 {
            a,
            b: b * sd,
            x: 0.0,
        }
    }

    /// Advances one step and returns the new value.
    #[inline]
    pub fn step(&mut self, rng: &mut ChaCha8Rng) -> f64 {
        self.x = self.a * self.x + self.b * gauss(rng);
        self.x
    }
}

/// A damped resonator (AR(2)) driven by white noise: narrow-band noise that waxes and wanes.
///
/// Used for EEG rhythms and movement tremor; the innovation scale is normalised so that a drive of
/// 1 gives a stationary output standard deviation of 1.
#[derive(Clone, Debug)]
pub struct Resonator {
    c1: f64,
    c2: f64,
    norm: f64,
    y1: f64,
    y2: f64,
}

impl Resonator {
    /// Builds a resonator centred on `freq` Hz with roughly `bandwidth` Hz at sampling rate `fs`.
    pub fn new(freq: f64, bandwidth: f64, fs: f64) -> Resonator {
        let r = (-std::f64::consts::PI * bandwidth / fs)
            .exp()
            .clamp(0.0, 0.9999);
        let w = 2.0 * std::f64::consts::PI * freq / fs;
        let c1 = 2.0 * r * w.cos();
        let c2 = -r * r;
        let r2 = r * r;
        let denom = (1.0 - r2) * ((1.0 + r2).powi(2) - c1 * c1);
        let var = if denom > 0.0 { (1.0 + r2) / denom } else { 1.0 };
        Resonator {
            c1,
            c2,
            norm: 1.0 / var.max(1e-12).sqrt(),
            y1: 0.0,
            y2: 0.0,
        }
    }

    /// Advances one step with drive `amp` (the target standard deviation) and returns the output.
    #[inline]
    pub fn step(&mut self, amp: f64, rng: &mut ChaCha8Rng) -> f64 {
        let y = self.c1 * self.y1 + self.c2 * self.y2 + amp * self.norm * gauss(rng);
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// A value that is finite or replaced by `fallback` (guards outputs against NaN/inf).
#[inline]
pub fn finite_or(x: f64, fallback: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        fallback
    }
}
