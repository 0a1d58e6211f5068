//! Causal filtering with second-order sections in direct form II transposed, bit-for-bit the
//! recurrence of `scipy.signal.sosfilt`, with per-channel state kept across chunks.

use super::{FilterError, Sos};

/// Runs one sample through all sections, updating `state` (one `[z0, z1]` per section).
///
/// Non-finite input yields NaN and leaves the state untouched, so a NaN burst does not poison
/// later samples.
#[inline]
pub(crate) fn filter_sample(sos: &[[f64; 6]], state: &mut [[f64; 2]], x: f64) -> f64 {
    if !x.is_finite() {
        return f64::NAN;
    }
    let mut x_cur = x;
    for (s, z) in sos.iter().zip(state.iter_mut()) {
        let x_new = s[0] * x_cur + z[0];
        z[0] = s[1] * x_cur - s[4] * x_new + z[1];
        z[1] = s[2] * x_cur - s[5] * x_new;
        x_cur = x_new;
    }
    x_cur
}

/// The per-section states `zi * level`: the steady state for an input that has always been `level`.
pub(crate) fn steady_state(zi: &[[f64; 2]], level: f64) -> Vec<[f64; 2]> {
    zi.iter().map(|z| [z[0] * level, z[1] * level]).collect()
}

/// Steady-state initial conditions of each section for a unit step, as `scipy.signal.sosfilt_zi`; scale by the first sample to start without a transient.
///
/// Sections are normalised by `a0` like scipy's `lfilter_zi`; a section with a pole at z = 1
/// (no steady state) or a zero `a0` gets zero initial conditions instead of failing.
pub fn sosfilt_zi(sos: &Sos) -> Vec<[f64; 2]> {
    let mut scale = 1.0;
    sos.0
        .iter()
        .map(|row| {
            let zi = lfilter_zi_2(row);
            let out = [scale * zi[0], scale * zi[1]];
            let b_sum = row[0] + row[1] + row[2];
            let a_sum = row[3] + row[4] + row[5];
            scale *= b_sum / a_sum;
            out
        })
        .collect()
}

/// Solves `(I - A^T) zi = b[1:] - a[1:] * b[0]` for one biquad by LU with partial pivoting, as `scipy.signal.lfilter_zi`.
fn lfilter_zi_2(row: &[f64; 6]) -> [f64; 2] {
    let a0 = row[3];
    if a0 == 0.0 || !a0.is_finite() {
        return [0.0, 0.0];
    }
    let (b0, b1, b2) = (row[0] / a0, row[1] / a0, row[2] / a0);
    let (a1, a2) = (row[4] / a0, row[5] / a0);
    // I - companion(a)^T = [[1 + a1, -1], [a2, 1]]
    let m = [[1.0 + a1, -1.0], [a2, 1.0]];
    let rhs = [b1 - a1 * b0, b2 - a2 * b0];
    let (m, rhs) = if m[1][0].abs() > m[0][0].abs() {
        ([m[1], m[0]], [rhs[1], rhs[0]])
    } else {
        (m, rhs)
    };
    if m[0][0] == 0.0 {
        return [0.0, 0.0];
    }
    let l = m[1][0] / m[0][0];
    let u11 = m[1][1] - l * m[0][1];
    if u11 == 0.0 {
        return [0.0, 0.0];
    }
    let y1 = rhs[1] - l * rhs[0];
    let x1 = y1 / u11;
    let x0 = (rhs[0] - m[0][1] * x1) / m[0][0];
    if x0.is_finite() && x1.is_finite() {
        [x0, x1]
    } else {
        [0.0, 0.0]
    }
}

/// Causal multichannel streaming filter: applies the same sections to every channel, keeping each channel's state between chunks.
///
/// Output for finite input is bit-identical to `scipy.signal.sosfilt` over the concatenated
/// chunks, whatever the chunk boundaries. NaN policy: a non-finite input sample produces NaN at
/// that position and is otherwise skipped (the channel's state is not updated), so NaN never
/// spreads to later samples; callers that prefer a clean restart after a burst of NaN call
/// [`SosFilter::reset_channel`] (zero state) or [`SosFilter::prime_channel`] (steady state).
#[derive(Clone, Debug)]
pub struct SosFilter {
    sos: Vec<[f64; 6]>,
    zi: Vec<[f64; 2]>,
    channels: usize,
    /// `channels * n_sections` states, channel-major.
    state: Vec<[f64; 2]>,
}

impl SosFilter {
    /// Creates a filter for `channels` interleaved channels with zero initial state (scipy's default), after validating `sos`.
    pub fn new(sos: &Sos, channels: usize) -> Result<Self, FilterError> {
        sos.validate()?;
        if channels == 0 {
            return Err(FilterError::ZeroChannels);
        }
        Ok(Self {
            sos: sos.0.clone(),
            zi: sosfilt_zi(sos),
            channels,
            state: vec![[0.0; 2]; channels * sos.0.len()],
        })
    }

    /// Number of interleaved channels each frame of input must have.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The sections this filter applies, e.g. for logging the design.
    pub fn sos(&self) -> Sos {
        Sos(self.sos.clone())
    }

    /// Filters a chunk in place; `data` is row-major `samples x channels`, so its length must be a multiple of the channel count.
    ///
    /// On error the data and state are left untouched.
    pub fn process(&mut self, data: &mut [f64]) -> Result<(), FilterError> {
        if !data.len().is_multiple_of(self.channels) {
            return Err(FilterError::RaggedChunk {
                len: data.len(),
                channels: self.channels,
            });
        }
        let n_sec = self.sos.len();
        for frame in data.chunks_exact_mut(self.channels) {
            for (x, state) in frame.iter_mut().zip(self.state.chunks_exact_mut(n_sec)) {
                *x = filter_sample(&self.sos, state, *x);
            }
        }
        Ok(())
    }

    /// Clears every channel's state to zero, as if the filter were new.
    pub fn reset(&mut self) {
        self.state.fill([0.0; 2]);
    }

    /// Clears one channel's state to zero, e.g. to recover cleanly after a burst of NaN on that channel.
    pub fn reset_channel(&mut self, channel: usize) -> Result<(), FilterError> {
        self.channel_state(channel)?.fill([0.0; 2]);
        Ok(())
    }

    /// Sets one channel's state to the steady state for a constant input `level` (`sosfilt_zi * level`), avoiding the start-up transient when restarting mid-signal.
    pub fn prime_channel(&mut self, channel: usize, level: f64) -> Result<(), FilterError> {
        if !level.is_finite() {
            return Err(FilterError::NonFinite {
                what: format!("priming level {level} for channel {channel}"),
            });
        }
        let zi = self.zi.clone();
        for (s, z) in self.channel_state(channel)?.iter_mut().zip(zi) {
            *s = [z[0] * level, z[1] * level];
        }
        Ok(())
    }

    fn channel_state(&mut self, channel: usize) -> Result<&mut [[f64; 2]], FilterError> {
        if channel >= self.channels {
            return Err(FilterError::ChannelOutOfRange {
                channel,
                channels: self.channels,
            });
        }
        let n_sec = self.sos.len();
        Ok(&mut self.state[channel * n_sec..(channel + 1) * n_sec])
    }
}
