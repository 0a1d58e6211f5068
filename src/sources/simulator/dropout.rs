//! Sensor dropout: episodes during which a sensor reports nothing useful (tracker lost, no contact).
//!
//! Episodes form an alternating renewal process: an exponential gap (mean `mean_gap_s`) then an
//! episode of uniform length in `min_s..max_s`, again and again. Each sensor stream owns its own
//! process and generator and queries it in time order, so dropouts are a pure function of the seed.

use rand_chacha::ChaCha8Rng;

use super::noise::{exponential, uniform};

/// How often and for how long a sensor drops out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DropoutSpec {
    /// Mean time between the end of one episode and the start of the next, seconds.
    pub mean_gap_s: f64,
    /// Shortest episode, seconds.
    pub min_s: f64,
    /// Longest episode, seconds.
    pub max_s: f64,
}

impl DropoutSpec {
    /// Mean episode length, seconds.
    pub fn mean_len_s(&self) -> f64 {
        0.5 * (self.min_s + self.max_s)
    }

    /// Long-run fraction of the time spent in an episode.
    pub fn fraction(&self) -> f64 {
        self.mean_len_s() / (self.mean_gap_s + self.mean_len_s())
    }

    /// Long-run number of episodes per hour.
    pub fn per_hour(&self) -> f64 {
        3600.0 / (self.mean_gap_s + self.mean_len_s())
    }
}

/// Face-tracking loss (face turned away, occluded, out of frame): about one a minute, 1-5 s long.
pub const FACE_TRACKING_LOSS: DropoutSpec = DropoutSpec {
    mean_gap_s: 60.0,
    min_s: 1.0,
    max_s: 5.0,
};

/// EDA electrode contact loss (wristband slipping, electrode lifting): about one every four
/// minutes, 3-12 s long, per sensor.
pub const EDA_CONTACT_LOSS: DropoutSpec = DropoutSpec {
    mean_gap_s: 240.0,
    min_s: 3.0,
    max_s: 12.0,
};

/// The dropout episodes of one sensor, generated lazily one after the other.
#[derive(Debug)]
pub struct Dropouts {
    rng: ChaCha8Rng,
    spec: DropoutSpec,
    start: f64,
    end: f64,
}

impl Dropouts {
    /// Builds the process from its own generator; the first episode starts after one gap.
    pub fn new(mut rng: ChaCha8Rng, spec: DropoutSpec) -> Dropouts {
        let start = exponential(&mut rng, spec.mean_gap_s);
        let end = start + uniform(&mut rng, spec.min_s, spec.max_s);
        Dropouts {
            rng,
            spec,
            start,
            end,
        }
    }

    /// Whether the sensor is out at `secs` seconds since the start; queries must not go back in time.
    pub fn active(&mut self, secs: f64) -> bool {
        // The bound keeps a pathological `secs` (huge or infinite) from looping forever.
        let target = secs.min(self.end + 1e7);
        while self.end <= target {
            self.start = self.end + exponential(&mut self.rng, self.spec.mean_gap_s);
            self.end = self.start + uniform(&mut self.rng, self.spec.min_s, self.spec.max_s);
        }
        self.start <= secs && secs < self.end
    }
}
