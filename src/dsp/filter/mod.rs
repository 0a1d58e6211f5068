//! IIR filters for physiological streams: Butterworth and notch design, causal streaming
//! filtering and offline zero-phase filtering, numerically matching `scipy.signal`.
//!
//! Filters are represented as second-order sections ([`Sos`]), the numerically robust form
//! scipy recommends: [`butter`] and [`notch`] design them, [`SosFilter`] runs them causally over
//! multichannel chunks with state kept across chunks, and [`sosfiltfilt`] runs them forward and
//! backward over a whole recording for zero phase distortion.

mod block;
mod complex;
mod design;
mod error;
mod filtfilt;
mod sliding;
mod sosfilt;

#[cfg(test)]
mod tests;

pub use design::{butter, notch, BandType, MAX_ORDER};
pub use error::FilterError;
pub use filtfilt::{sosfiltfilt, sosfiltfilt_into, sosfiltfilt_padlen};
pub use sliding::SlidingFiltfilt;
pub use sosfilt::{sosfilt_zi, SosFilter};

/// Second-order sections, one row `[b0, b1, b2, a0, a1, a2]` per section with `a0 == 1`, applied in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Sos(pub Vec<[f64; 6]>);

impl Sos {
    /// Number of second-order sections, which sets the per-channel state size and the filtfilt padding.
    pub fn n_sections(&self) -> usize {
        self.0.len()
    }

    /// Checks the sections are usable for filtering (at least one, all finite, `a0 == 1`) so filters never misbehave.
    pub fn validate(&self) -> Result<(), FilterError> {
        if self.0.is_empty() {
            return Err(FilterError::InvalidSos {
                section: None,
                reason:
                    "it has no sections; a filter needs at least one [b0, b1, b2, 1, a1, a2] row"
                        .to_string(),
            });
        }
        for (i, row) in self.0.iter().enumerate() {
            if row.iter().any(|v| !v.is_finite()) {
                return Err(FilterError::InvalidSos {
                    section: Some(i),
                    reason: format!("it has a non-finite coefficient in {row:?}; all six coefficients must be finite"),
                });
            }
            if row[3] != 1.0 {
                return Err(FilterError::InvalidSos {
                    section: Some(i),
                    reason: format!(
                        "its a0 coefficient is {} but must be exactly 1 (divide the row by a0 first)",
                        row[3]
                    ),
                });
            }
        }
        Ok(())
    }
    /// Whether every section's poles lie strictly inside the unit circle (the stability triangle
    /// `|a2| < 1`, `|a1| < 1 + a2`), so the filter's output stays bounded: a design pushed to its
    /// numerical limits (a cutoff a hair above 0 Hz, a notch of enormous Q) can put them on it.
    pub fn is_stable(&self) -> bool {
        self.0
            .iter()
            .all(|row| row[5].abs() < 1.0 && row[4].abs() < 1.0 + row[5])
    }
}
