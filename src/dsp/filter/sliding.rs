//! Zero-phase filtering of overlapping windows of one stream, equal (to rounding) to
//! [`sosfiltfilt`](super::sosfiltfilt) run on each window alone, with the recurrences run about
//! once per sample instead of once per window holding it.
//!
//! Filtering is linear, so window `w`'s forward pass over its samples is the stream's running
//! forward pass `G` plus the decaying response to the difference between their states at the
//! window's start; its backward pass is the backward pass over `G` from the window's end plus the
//! backward response to that decaying term. The backward pass over `G` is carried from one window
//! to the next: only the samples past the previous window's end are filtered, the rest is corrected
//! by the decaying response to the change of the backward state at the previous end.
//!
//! Both corrections are zero-input responses of the filter's own state-space system `(A, C)`: the
//! carried part's from the state change, the window start's from `M * delta` with
//! `M = sum_m h[m] A^m` (`h` the impulse response), because the backward pass over `C A^k delta`
//! is `sum_m h[m] C A^(k+m) delta`. They are generated 32 samples at a time from precomputed
//! block matrices, which keeps them cheap next to the recurrences they replace. Windows shorter than
//! the responses' decay, or not overlapping the previous one, are filtered from scratch.

use super::block::pass_from_states;
use super::filtfilt::{sosfiltfilt, sosfiltfilt_padlen};
use super::sosfilt::{filter_sample, sosfilt_zi, steady_state};
use super::{FilterError, Sos};
use crate::dsp::cpu::avx2_fma;
use std::sync::{Arc, Mutex};

/// A zero-input response is negligible once every state is below this (for unit initial states):
/// its remainder is then below 1e-15 of the state difference it answers, under the rounding of the
/// passes themselves.
const NEGLIGIBLE: f64 = 1e-15;

/// Longest decay (samples) worth using; slower filters always filter from scratch.
const MAX_DECAY: usize = 1 << 20;

/// Samples generated per step of a zero-input response.
const BLOCK: usize = 32;

/// Per-section DF2T states, `[z0, z1]` each.
type State = Vec<[f64; 2]>;

/// Zero-phase filter for consecutive overlapping windows of one stream (see the module docs).
#[derive(Clone, Debug)]
pub struct SlidingFiltfilt {
    sos: Sos,
    zi: Vec<[f64; 2]>,
    pad: usize,
    /// Zero-input responses in blocks (shared by every filter with these sections); `None` when
    /// the filter decays too slowly.
    decay: Option<Arc<Decay>>,
    track: Option<Track>,
}

/// Block matrices of the zero-input system over flattened states (`2 * section + slot`).
#[derive(Clone, Debug)]
struct Decay {
    /// `outputs[j][r]`: output `r` steps after starting from unit state `j`.
    outputs: Vec<[f64; BLOCK]>,
    /// `advance[j]`: the state `BLOCK` steps after unit state `j` (column `j` of `A^BLOCK`).
    advance: Vec<Vec<f64>>,
    /// `backward[j]`: column `j` of `M = sum_m h[m] A^m`.
    backward: Vec<Vec<f64>>,
    /// Samples after which every zero-input response is negligible.
    len: usize,
}

/// Where [`Decay::add`] puts a zero-input response `r`.
enum Target<'a> {
    /// `data[len - 1 - k] += r[k]`.
    Backward(&'a mut [f64]),
    /// Appends `source[k] + r[k]` to `out` (then the rest of `source`).
    Append {
        source: &'a [f64],
        out: &'a mut Vec<f64>,
    },
}

/// Block matrices already computed in this process, by sections: every subject's stream through
/// the same filter design shares them.
static SHARED_DECAYS: Mutex<Vec<SharedDecay>> = Mutex::new(Vec::new());

/// A filter's sections and their block matrices (`None`: too slow to decay).
type SharedDecay = (Vec<[f64; 6]>, Option<Arc<Decay>>);

impl Decay {
    /// [`Decay::new`], computed once per process for each distinct filter.
    fn shared(sos: &[[f64; 6]]) -> Option<Arc<Decay>> {
        let mut known = SHARED_DECAYS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, decay)) = known.iter().find(|(sections, _)| sections == sos) {
            return decay.clone();
        }
        let decay = Decay::new(sos).map(Arc::new);
        known.push((sos.to_vec(), decay.clone()));
        decay
    }

    /// Block matrices for `sos`, or `None` when its responses outlast [`MAX_DECAY`].
    fn new(sos: &[[f64; 6]]) -> Option<Decay> {
        let n = 2 * sos.len();
        let unit = |j: usize| -> State {
            let mut state = vec![[0.0; 2]; sos.len()];
            state[j / 2][j % 2] = 1.0;
            state
        };
        let flat = |state: &State| -> Vec<f64> { state.iter().flatten().copied().collect() };
        let mut outputs = Vec::with_capacity(n);
        let mut advance = Vec::with_capacity(n);
        for j in 0..n {
            let mut state = unit(j);
            outputs.push(std::array::from_fn(|_| filter_sample(sos, &mut state, 0.0)));
            advance.push(flat(&state));
        }
        // The decay length: unit states run until every one is negligible.
        let mut states: Vec<State> = (0..n).map(unit).collect();
        let mut len = 0;
        while states
            .iter()
            .flatten()
            .flatten()
            .any(|v| v.abs() >= NEGLIGIBLE)
        {
            if len >= MAX_DECAY {
                return None;
            }
            for state in &mut states {
                for _ in 0..BLOCK {
                    filter_sample(sos, state, 0.0);
                }
            }
            len += BLOCK;
        }
        // M's columns: the impulse response's weighted sum of A^m e_j.
        let mut impulse_state = vec![[0.0; 2]; sos.len()];
        let mut impulse = Vec::with_capacity(len + 1);
        impulse.push(filter_sample(sos, &mut impulse_state, 1.0));
        while impulse.len() <= len {
            impulse.push(filter_sample(sos, &mut impulse_state, 0.0));
        }
        let backward = (0..n)
            .map(|j| {
                let mut state = unit(j);
                let mut sum = vec![0.0; n];
                for &h in &impulse {
                    for (s, v) in sum.iter_mut().zip(state.iter().flatten()) {
                        *s += h * v;
                    }
                    filter_sample(sos, &mut state, 0.0);
                }
                sum
            })
            .collect();
        Some(Decay {
            outputs,
            advance,
            backward,
            len,
        })
    }

    /// Adds the zero-input response from `state` to `target` (see [`Target`]).
    fn add(&self, target: Target<'_>, state: &[f64]) {
        #[cfg(target_arch = "x86_64")]
        if avx2_fma() {
            // SAFETY: the CPU supports the features `add_avx2` is compiled for (checked above).
            unsafe { self.add_avx2(target, state) };
            return;
        }
        self.add_any::<false>(target, state);
    }

    /// [`Decay::add`] compiled for AVX2 (four-lane vectors), chosen at run time.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn add_avx2(&self, target: Target<'_>, state: &[f64]) {
        self.add_any::<true>(target, state);
    }

    /// [`Decay::add`] for the state count at hand; `FUSED` uses fused multiply-adds (only where
    /// the CPU has them: elsewhere `mul_add` is a slow library call).
    #[inline(always)]
    fn add_any<const FUSED: bool>(&self, target: Target<'_>, state: &[f64]) {
        match state.len() {
            2 => self.add_fixed::<2, 4, FUSED>(target, state),
            4 => self.add_fixed::<4, 4, FUSED>(target, state),
            6 => self.add_fixed::<6, 8, FUSED>(target, state),
            8 => self.add_fixed::<8, 8, FUSED>(target, state),
            10 => self.add_fixed::<10, 12, FUSED>(target, state),
            12 => self.add_fixed::<12, 12, FUSED>(target, state),
            14 => self.add_fixed::<14, 16, FUSED>(target, state),
            _ => self.add_fixed::<16, 16, FUSED>(target, state),
        }
    }

    /// [`Decay::add`] for `N` states (fewer are padded with zero states), with fixed-size arrays
    /// the compiler keeps in registers and vectorises; the state update works on `P >= N` lanes
    /// (a multiple of the vector width, the extra ones staying zero).
    #[inline(always)]
    fn add_fixed<const N: usize, const P: usize, const FUSED: bool>(
        &self,
        mut target: Target<'_>,
        state: &[f64],
    ) {
        let madd = |a: f64, b: f64, c: f64| if FUSED { a.mul_add(b, c) } else { a * b + c };
        let outputs: [[f64; BLOCK]; N] =
            std::array::from_fn(|j| self.outputs.get(j).copied().unwrap_or([0.0; BLOCK]));
        let advance: [[f64; P]; N] = std::array::from_fn(|j| {
            std::array::from_fn(|i| {
                self.advance
                    .get(j)
                    .and_then(|c| c.get(i))
                    .copied()
                    .unwrap_or(0.0)
            })
        });
        let mut s: [f64; N] = std::array::from_fn(|j| state.get(j).copied().unwrap_or(0.0));
        let len = match &target {
            Target::Backward(data) => data.len(),
            Target::Append { source, .. } => source.len(),
        };
        let span = len.min(self.len);
        let mut k = 0;
        while k < span {
            let mut block = [0.0; BLOCK];
            for (column, &sj) in outputs.iter().zip(&s) {
                for (b, c) in block.iter_mut().zip(column) {
                    *b = madd(*c, sj, *b);
                }
            }
            // Two partial sums halve the dependent chain of the state update.
            let mut even = [0.0; P];
            let mut odd = [0.0; P];
            for (j, (column, &sj)) in advance.iter().zip(&s).enumerate() {
                let target = if j % 2 == 0 { &mut even } else { &mut odd };
                for (x, c) in target.iter_mut().zip(column) {
                    *x = madd(*c, sj, *x);
                }
            }
            s = std::array::from_fn(|i| even[i] + odd[i]);
            let count = BLOCK.min(span - k);
            match &mut target {
                Target::Backward(data) => {
                    let top = len - k;
                    for (d, b) in data[top - count..top].iter_mut().rev().zip(&block) {
                        *d += b;
                    }
                }
                Target::Append { source, out } => {
                    out.extend(source[k..k + count].iter().zip(&block).map(|(s, b)| s + b));
                }
            }
            k += BLOCK;
        }
        if let Target::Append { source, out } = target {
            out.extend_from_slice(&source[span..]);
        }
    }

    /// `M * difference`: the state whose zero-input response is the backward pass over the
    /// zero-input response from `difference`.
    fn backward_state(&self, difference: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; difference.len()];
        for (column, &d) in self.backward.iter().zip(difference) {
            for (o, c) in out.iter_mut().zip(column) {
                *o += c * d;
            }
        }
        out
    }
}

/// What is carried from one window to the next. The buffers start at stream index `origin`
/// (at or before the last window's start) and are compacted once they hold a window's worth of
/// samples that no later window needs.
#[derive(Clone, Debug)]
struct Track {
    /// Stream index of the buffers' first sample.
    origin: u64,
    /// Stream index of the last window's first sample.
    start: u64,
    /// Stream index one past the last window's last sample (the buffers end here).
    end: u64,
    /// The samples over `origin..end` (to restart `G` between checkpoints).
    samples: Vec<f64>,
    /// `G`'s state entering `end`.
    forward_state: State,
    /// `G`'s state entering each earlier window end still inside the buffers.
    checkpoints: Vec<(u64, State)>,
    /// The last window's backward pass over `G` alone, over `origin..end` (only `start..end` is
    /// meaningful).
    backward: Vec<f64>,
    /// That backward pass's state entering sample `end - 1` (after the right padding).
    backward_state: State,
}

impl SlidingFiltfilt {
    /// Prepares `sos` for sliding windows (its zero-input block matrices are computed once).
    pub fn new(sos: &Sos) -> Result<Self, FilterError> {
        sos.validate()?;
        Ok(SlidingFiltfilt {
            zi: sosfilt_zi(sos),
            pad: sosfiltfilt_padlen(sos),
            decay: Decay::shared(&sos.0),
            sos: sos.clone(),
            track: None,
        })
    }

    /// Samples after which the filter's zero-input responses are negligible; windows must be
    /// longer than this (plus the padding) to reuse the overlap (`None`: the filter decays too
    /// slowly, every window is filtered from scratch).
    pub fn decay_len(&self) -> Option<usize> {
        self.decay.as_ref().map(|d| d.len)
    }

    /// Forgets the carried state, e.g. after samples that were not passed to [`Self::filter`].
    pub fn reset(&mut self) {
        self.track = None;
    }

    /// Zero-phase filters the window `signal` whose first sample is sample `first_index` of the
    /// stream, appending the result to `out` (so callers can lay it after a margin); as
    /// `sosfiltfilt(sos, signal)` to rounding.
    ///
    /// Consecutive calls must pass windows of one stream (the same index always holds the same
    /// value) in order of their ends; a window that does not overlap the previous one, or that is
    /// shorter than [`Self::decay_len`], is filtered from scratch.
    pub fn filter(
        &mut self,
        first_index: u64,
        signal: &[f64],
        out: &mut Vec<f64>,
    ) -> Result<(), FilterError> {
        let n = signal.len();
        let usable = self.decay_len().is_some_and(|d| n > d + self.pad);
        if !usable {
            self.track = None;
            out.extend_from_slice(&sosfiltfilt(&self.sos, signal)?);
            return Ok(());
        }
        let start = first_index;
        let end = first_index + n as u64;
        let continues = self
            .track
            .as_ref()
            .is_some_and(|t| t.start <= start && start <= t.end && t.end <= end);
        // Samples an earlier window already passed were checked then; the left padding reads the
        // first `pad + 1`, the rest of the work the samples past the previous window.
        let checked_up_to = match (&self.track, continues) {
            (Some(track), true) => (track.end - start) as usize,
            _ => 0,
        };
        let unchecked = (0..=self.pad).chain(checked_up_to.max(self.pad + 1)..n);
        if let Some(i) = unchecked.into_iter().find(|&i| !signal[i].is_finite()) {
            self.track = None;
            return Err(FilterError::NonFinite {
                what: format!("signal sample {i} (value {})", signal[i]),
            });
        }
        let window_state = self.left_padded_state(signal);
        let stream_state = if continues {
            let state = self.state_entering(start);
            let track = self.track.as_mut().expect("continuing");
            if !track.checkpoints.iter().any(|(index, _)| *index == start) {
                track.checkpoints.push((start, state.clone()));
            }
            state
        } else {
            // A fresh `G` starts in the window's own padded state: no correction for this window.
            self.track = Some(Track {
                origin: start,
                start,
                end: start,
                samples: Vec::with_capacity(2 * n),
                forward_state: window_state.clone(),
                checkpoints: vec![(start, window_state.clone())],
                backward: Vec::with_capacity(2 * n),
                backward_state: vec![[0.0; 2]; self.sos.0.len()],
            });
            window_state.clone()
        };
        let sos = &self.sos.0;
        let decay = self.decay.as_ref().expect("usable implies a decay");
        let track = self.track.as_mut().expect("track set above");
        // Extend `G` over the samples past the previous window.
        let previous_end = track.end;
        let new_samples = &signal[(previous_end - start) as usize..];
        track.samples.extend_from_slice(new_samples);
        let new_from = (previous_end - track.origin) as usize;
        // `G` over the new samples is computed in the backward buffer's tail, where the backward
        // pass over it then goes.
        track.backward.truncate(new_from);
        track.backward.extend_from_slice(new_samples);
        pass_from_states(
            sos,
            &mut track.forward_state,
            &mut track.backward[new_from..],
            false,
        );
        track.end = end;
        track.checkpoints.push((end, track.forward_state.clone()));
        // The window's forward pass over its right padding starts from `G`'s state (the decaying
        // term has died out over the window), then the backward pass starts in its steady state.
        let last = signal[n - 1];
        let mut state = track.forward_state.clone();
        let right: Vec<f64> = (1..=self.pad)
            .map(|i| filter_sample(sos, &mut state, 2.0 * last - signal[n - 1 - i]))
            .collect();
        let edge = right[right.len() - 1];
        let mut backward_state = steady_state(&self.zi, edge);
        for &v in right.iter().rev() {
            filter_sample(sos, &mut backward_state, v);
        }
        // Backward over `G`'s new part (into the buffer's tail), then correct the carried part for
        // the change of the backward state where the previous window's pass began.
        let carried_from = (start - track.origin) as usize;
        let mut state = backward_state.clone();
        pass_from_states(sos, &mut state, &mut track.backward[new_from..], true);
        if new_from > carried_from {
            let change = state_difference(&state, &track.backward_state);
            decay.add(
                Target::Backward(&mut track.backward[carried_from..new_from]),
                &change,
            );
        }
        track.start = start;
        track.backward_state = backward_state;
        track.checkpoints.retain(|(index, _)| *index >= start);
        // The window's output: the backward pass over `G` plus the backward response to the
        // decaying difference between the window's and `G`'s forward states at its start.
        let difference = state_difference(&window_state, &stream_state);
        out.reserve(n);
        decay.add(
            Target::Append {
                source: &track.backward[carried_from..],
                out,
            },
            &decay.backward_state(&difference),
        );
        if carried_from >= n {
            track.samples.drain(..carried_from);
            track.backward.drain(..carried_from);
            track.origin = start;
        }
        Ok(())
    }

    /// The window's forward state after its odd-extension padding, as `sosfiltfilt` starts it.
    fn left_padded_state(&self, signal: &[f64]) -> State {
        let first = signal[0];
        let x0 = 2.0 * first - signal[self.pad];
        let mut state = steady_state(&self.zi, x0);
        for i in (1..=self.pad).rev() {
            filter_sample(&self.sos.0, &mut state, 2.0 * first - signal[i]);
        }
        state
    }

    /// `G`'s state entering stream index `index` (inside the carried span).
    fn state_entering(&self, index: u64) -> State {
        let track = self.track.as_ref().expect("carried state");
        let (at, state) = track
            .checkpoints
            .iter()
            .filter(|(i, _)| *i <= index)
            .max_by_key(|(i, _)| *i)
            .expect("a checkpoint at the carried start");
        let mut state = state.clone();
        let from = (*at - track.origin) as usize;
        let to = (index - track.origin) as usize;
        for &x in &track.samples[from..to] {
            filter_sample(&self.sos.0, &mut state, x);
        }
        state
    }
}

/// `a - b`, flattened to one value per unit state.
fn state_difference(a: &State, b: &State) -> Vec<f64> {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| [x[0] - y[0], x[1] - y[1]])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::filter::{butter, sosfiltfilt, BandType};

    fn stream(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let t = i as f64 / 700.0;
                (t * 7.0).sin() + 0.4 * (t * 0.3).cos() + 0.05 * ((i * 7919) % 101) as f64 + 2.0
            })
            .collect()
    }

    fn max_error(got: &[f64], want: &[f64]) -> f64 {
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        got.iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs() / scale)
            .fold(0.0, f64::max)
    }

    #[test]
    fn sliding_windows_equal_sosfiltfilt_on_each_window() {
        let sos = butter(5, &[0.5], BandType::Highpass, 700.0).unwrap();
        let x = stream(700 * 200);
        let mut sliding = SlidingFiltfilt::new(&sos).unwrap();
        let decay = sliding.decay_len().expect("decays");
        assert!(decay < 700 * 60, "decay {decay}");
        let mut out = Vec::new();
        // 60 s windows every 10 s, then a hop that does not divide the length, then a gap.
        let mut windows: Vec<(usize, usize)> = (60..=120)
            .step_by(10)
            .map(|e| ((e - 60) * 700, e * 700))
            .collect();
        windows.extend([(61 * 700 + 13, 121 * 700 + 13), (64 * 700, 124 * 700)]);
        windows.extend([(135 * 700, 195 * 700), (136 * 700, 196 * 700)]);
        for (a, b) in windows {
            out.clear();
            sliding.filter(a as u64, &x[a..b], &mut out).unwrap();
            let want = sosfiltfilt(&sos, &x[a..b]).unwrap();
            let error = max_error(&out, &want);
            assert!(error < 1e-10, "window {a}..{b}: error {error:e}");
        }
    }

    #[test]
    fn errors_do_not_grow_over_a_long_stream() {
        let sos = butter(5, &[0.5], BandType::Highpass, 700.0).unwrap();
        let x = stream(700 * 600);
        let mut sliding = SlidingFiltfilt::new(&sos).unwrap();
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for end in (60..=600).step_by(10) {
            let (a, b) = ((end - 60) * 700, end * 700);
            out.clear();
            sliding.filter(a as u64, &x[a..b], &mut out).unwrap();
            errors.push(max_error(&out, &sosfiltfilt(&sos, &x[a..b]).unwrap()));
        }
        let worst = errors.iter().fold(0.0f64, |m, e| m.max(*e));
        assert!(worst < 1e-10, "errors {errors:?}");
        let late = errors[errors.len() - 10..]
            .iter()
            .fold(0.0f64, |m, e| m.max(*e));
        let early = errors[1..11].iter().fold(0.0f64, |m, e| m.max(*e));
        assert!(
            late < 10.0 * early.max(1e-13),
            "early {early:e}, late {late:e}"
        );
    }

    #[test]
    fn non_finite_samples_are_refused_and_the_next_window_starts_afresh() {
        let sos = butter(5, &[0.5], BandType::Highpass, 700.0).unwrap();
        let mut x = stream(700 * 90);
        let mut sliding = SlidingFiltfilt::new(&sos).unwrap();
        let mut out = Vec::new();
        sliding.filter(0, &x[..42000], &mut out).unwrap();
        // A NaN among the samples past the previous window, then one in the left padding.
        x[45000] = f64::NAN;
        let error = sliding.filter(7000, &x[7000..49000], &mut out).unwrap_err();
        assert!(error.to_string().contains("38000"), "{error}");
        x[45000] = 1.0;
        x[14001] = f64::INFINITY;
        assert!(sliding.filter(14000, &x[14000..56000], &mut out).is_err());
        x[14001] = 1.0;
        out.clear();
        sliding.filter(21000, &x[21000..63000], &mut out).unwrap();
        let want = sosfiltfilt(&sos, &x[21000..63000]).unwrap();
        assert!(max_error(&out, &want) < 1e-10);
    }

    #[test]
    fn short_windows_and_slow_filters_fall_back_to_sosfiltfilt() {
        let sos = butter(5, &[0.5], BandType::Highpass, 700.0).unwrap();
        let x = stream(700 * 30);
        let mut sliding = SlidingFiltfilt::new(&sos).unwrap();
        let mut out = vec![7.0];
        sliding.filter(0, &x, &mut out).unwrap();
        assert_eq!(out[0], 7.0, "appends");
        assert_eq!(out[1..], sosfiltfilt(&sos, &x).unwrap());
        let slow = butter(2, &[0.05], BandType::Highpass, 32.0).unwrap();
        let mut sliding = SlidingFiltfilt::new(&slow).unwrap();
        let x = stream(32 * 60);
        out.clear();
        sliding.filter(0, &x, &mut out).unwrap();
        assert_eq!(out, sosfiltfilt(&slow, &x).unwrap());
        let mut bad = x.clone();
        bad[5] = f64::NAN;
        assert!(sliding.filter(0, &bad, &mut out).is_err());
    }
}
