//! Physical activity from a three-axis accelerometer (in g).

/// Activity indices of one window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Activity {
    /// Mean vector magnitude, g.
    pub magnitude_mean: f64,
    /// Standard deviation of the vector magnitude (movement intensity), g.
    pub magnitude_std: f64,
    /// Euclidean norm minus one, negatives set to zero, averaged (ENMO, van Hees 2013), g.
    pub enmo: f64,
}

/// Activity of interleaved `x, y, z` samples; NaN for an empty window.
pub fn activity(xyz: &[f64]) -> Activity {
    let magnitudes: Vec<f64> = xyz
        .chunks_exact(3)
        .map(|s| (s[0] * s[0] + s[1] * s[1] + s[2] * s[2]).sqrt())
        .collect();
    let n = magnitudes.len() as f64;
    let mean = magnitudes.iter().sum::<f64>() / n;
    let std = (magnitudes.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / n).sqrt();
    let enmo = magnitudes.iter().map(|m| (m - 1.0).max(0.0)).sum::<f64>() / n;
    Activity {
        magnitude_mean: mean,
        magnitude_std: std,
        enmo,
    }
}
