//! The physiological signature of each emotion: latent factors that drive EEG, EDA, heart and breath.
//!
//! Physiology sees the hidden emotion distribution only through four latent factors, each the
//! expectation under the distribution of a per-label loading ([`LOADINGS`]), as the face sees it
//! through a per-label action-unit table. The two tables are built so that fusing them matters:
//! amusement and joy load identically here (they differ only in the face), fear and surprise, and
//! anger and disgust, share a face and differ here, anger has fear's physiology and disgust's face,
//! and inspiration has the neutral face and a signature of its own here.

use super::emotion::N_EMOTIONS;

/// Values of the physiological latent factors (or per-subject gains on them).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Physio {
    /// Sympathetic arousal: raises heart rate, SCR rate and amplitude, tonic conductance, breathing
    /// rate, EEG beta and movement; shortens pulse transit; lowers pulse amplitude, alpha, skin
    /// temperature.
    pub arousal: f64,
    /// Vagal orienting (parasympathetic): slows the heart and deepens respiratory sinus
    /// arrhythmia without electrodermal activity, the cardiac signature of attending to something
    /// new.
    pub vagal: f64,
    /// Approach (positive) against withdrawal (negative): frontal alpha asymmetry, less alpha over
    /// the more active (left for approach) hemisphere.
    pub valence: f64,
    /// Internally directed absorption: frontal-midline theta and posterior alpha rise together.
    pub absorption: f64,
}

/// A loading row, in declaration order of the [`Physio`] fields.
const fn row(arousal: f64, vagal: f64, valence: f64, absorption: f64) -> Physio {
    Physio {
        arousal,
        vagal,
        valence,
        absorption,
    }
}

/// Physiological factors of a subject fully feeling each label, in [`super::EMOTION_LABELS`] order.
///
/// Shared by every subject (subjects differ by per-factor gains), so physiology generalises across
/// subjects. Identical rows: amusement = joy, fear = anger; every other pair differs.
pub const LOADINGS: [Physio; N_EMOTIONS] = [
    row(0.0, 0.0, 0.0, 0.0),   // neutral
    row(0.5, 0.0, 0.8, 0.0),   // amusement
    row(0.5, 0.0, 0.8, 0.0),   // joy
    row(-0.4, 0.6, 0.6, 0.2),  // tenderness
    row(0.3, 0.0, 0.5, 1.0),   // inspiration
    row(0.1, 1.0, 0.0, 0.0),   // surprise
    row(-0.5, 0.2, -0.7, 0.0), // sadness
    row(1.0, 0.0, -0.7, 0.0),  // fear
    row(1.0, 0.0, -0.7, 0.0),  // anger
    row(0.0, 0.5, -0.7, 0.0),  // disgust
];

impl Physio {
    /// The expectation of [`LOADINGS`] under the distribution `probs`.
    pub fn of(probs: &[f64; N_EMOTIONS]) -> Physio {
        let mut sum = Physio::default();
        for (p, loading) in probs.iter().zip(&LOADINGS) {
            sum.arousal += p * loading.arousal;
            sum.vagal += p * loading.vagal;
            sum.valence += p * loading.valence;
            sum.absorption += p * loading.absorption;
        }
        sum
    }

    /// Linear interpolation from `self` (`f = 0`) to `other` (`f = 1`).
    pub fn lerp(&self, other: &Physio, f: f64) -> Physio {
        row(
            self.arousal + (other.arousal - self.arousal) * f,
            self.vagal + (other.vagal - self.vagal) * f,
            self.valence + (other.valence - self.valence) * f,
            self.absorption + (other.absorption - self.absorption) * f,
        )
    }

    /// Factor by factor product: `self` scaled by the gains `gain`.
    pub fn scaled(&self, gain: &Physio) -> Physio {
        row(
            self.arousal * gain.arousal,
            self.vagal * gain.vagal,
            self.valence * gain.valence,
            self.absorption * gain.absorption,
        )
    }

    /// The factors as an array, in declaration order (for tables and tests).
    pub fn to_array(self) -> [f64; 4] {
        [self.arousal, self.vagal, self.valence, self.absorption]
    }
}
