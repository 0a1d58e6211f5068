//! Per-window signal quality: non-finite samples, flat lines and clipping, so feature operators can
//! flag bad windows instead of failing or silently emitting garbage.

/// Quality channels feature operators append (after `coverage`), in output order.
pub const QUALITY_LABELS: [&str; 3] = ["nonfinite", "flat", "clipped"];

/// Shortest run of identical samples at a window's extreme that counts as clipping.
pub const CLIP_RUN: usize = 3;

/// Quality of one window, accumulated over its channels.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct WindowQuality {
    /// NaN and infinite samples, all channels together.
    pub nonfinite: usize,
    /// Channels whose finite samples (at least two) are all equal.
    pub flat: usize,
    /// Largest fraction, over channels, of finite samples sitting in runs of at least
    /// [`CLIP_RUN`] identical values at the channel's window minimum or maximum.
    pub clipped: f64,
}

impl WindowQuality {
    /// Adds one channel's samples of the window.
    pub fn add_channel(&mut self, values: impl Iterator<Item = f64> + Clone) {
        let mut finite = 0usize;
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.clone() {
            if v.is_finite() {
                finite += 1;
                min = min.min(v);
                max = max.max(v);
            } else {
                self.nonfinite += 1;
            }
        }
        if finite >= 2 && min == max {
            self.flat += 1;
            return;
        }
        if finite < CLIP_RUN {
            return;
        }
        let mut clipped = 0usize;
        let mut run: Option<(f64, usize)> = None;
        let mut close = |run: Option<(f64, usize)>| {
            if let Some((value, length)) = run {
                if length >= CLIP_RUN && (value == min || value == max) {
                    clipped += length;
                }
            }
        };
        for v in values.filter(|v| v.is_finite()) {
            run = match run {
                Some((value, length)) if value == v => Some((value, length + 1)),
                other => {
                    close(other);
                    Some((v, 1))
                }
            };
        }
        close(run);
        self.clipped = self.clipped.max(clipped as f64 / finite as f64);
    }

    /// The values of [`QUALITY_LABELS`], in order.
    pub fn values(&self) -> [f64; 3] {
        [self.nonfinite as f64, self.flat as f64, self.clipped]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_nan_flat_and_clipped_channels() {
        let mut quality = WindowQuality::default();
        quality.add_channel([1.0, f64::NAN, 2.0, f64::INFINITY].into_iter());
        quality.add_channel([3.0, 3.0, 3.0].into_iter());
        quality.add_channel([0.0, 5.0, 5.0, 5.0, 5.0, 1.0, 2.0, 3.0].into_iter());
        assert_eq!(quality.nonfinite, 2);
        assert_eq!(quality.flat, 1);
        assert_eq!(quality.clipped, 0.5);
    }

    #[test]
    fn a_clean_signal_has_no_flags() {
        let mut quality = WindowQuality::default();
        quality.add_channel((0..100).map(|i| (i as f64 * 0.1).sin()));
        assert_eq!(quality.values(), [0.0, 0.0, 0.0]);
    }
}
