//! Block state-space ("look-ahead") form of one second-order section for offline passes.
//!
//! The direct form II transposed recurrence is latency-bound: every sample waits on the previous
//! one. Over a block of [`L`] samples the section is linear in its state `s = [z0, z1]` and the
//! inputs, so `y = P s + T x` and `s' = A^L s + R x` (with `A = [[-a1, 1], [-a2, 0]]`,
//! `B = [b1 - a1 b0, b2 - a2 b0]`, `T` the lower-triangular Toeplitz matrix of the impulse
//! response). Only the two-element state update is sequential; the outputs are independent
//! multiply-adds, which AVX2/FMA runs four at a time. Sections are applied one after another over
//! the whole buffer (section-major), which measured faster than cascading each block.

use super::sosfilt::steady_state;
use crate::dsp::cpu::avx2_fma;
use std::cell::RefCell;
use std::rc::Rc;

/// Samples per block: 8 outputs are two AVX2 vectors, and the state chain per block is short
/// enough that the kernel is bound by multiply-add throughput, not latency.
pub(crate) const L: usize = 8;

/// Largest entry of `A^j` (`j <= L`) a section may have for the block form; larger ones would
/// amplify rounding, so they keep the exact recurrence.
const MAX_GROWTH: f64 = 1e3;

/// Smallest distance of a section's poles from the unit circle for the block form. Nearer poles
/// (very narrow low cutoffs, e.g. 0.05 Hz at 1000 Hz) integrate the block kernel's rounding of large
/// offsets, which the recurrence with exact `[1, -2, 1]` numerators avoids: against a long-double
/// reference the block form stayed within 6x of the recurrence's error down to a margin of
/// 1.4e-3 (order-5 0.5 Hz highpass at 700 Hz) but was 8-20x worse at 7e-4 and 2e-4.
const MIN_POLE_MARGIN: f64 = 1e-3;

/// Largest pole magnitude of `z^2 + a1 z + a2`.
fn pole_radius(a1: f64, a2: f64) -> f64 {
    let disc = a1 * a1 - 4.0 * a2;
    if disc < 0.0 {
        a2.sqrt()
    } else {
        (a1.abs() + disc.sqrt()) / 2.0
    }
}

/// Which implementation runs the forward and backward passes of `sosfiltfilt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// The exact sample-by-sample recurrence, on any CPU.
    Recurrence,
    /// The block kernel with AVX2 and FMA; falls back to the recurrence where the CPU lacks them.
    Avx2,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub(crate) fn detect() -> Self {
        if avx2_fma() {
            Kernel::Avx2
        } else {
            Kernel::Recurrence
        }
    }
}

/// Block coefficients of one section, lanes in memory order for the pass direction.
#[derive(Clone, Debug)]
pub(crate) struct Block {
    /// `t[i][m]`: weight of the input in lane `i` in the output in lane `m`.
    t: [[f64; L]; L],
    /// Weights of the state's `z0` and `z1` in each output lane.
    p0: [f64; L],
    p1: [f64; L],
    /// `r[k][i]`: weight of the input in lane `i` in the next block's state `z_k`.
    r: [[f64; L]; 2],
    /// Columns of `A^L`: the weights of `z0` and of `z1` in the next state.
    q0: [f64; 2],
    q1: [f64; 2],
}

/// Double-double number `hi + lo`: block coefficients are computed in about 106 bits and rounded
/// once, because `b1 - a1 * b0` and the powers of `A` cancel heavily when poles are near z = 1.
#[derive(Clone, Copy)]
struct Dd(f64, f64);

impl Dd {
    fn from(v: f64) -> Self {
        Dd(v, 0.0)
    }
    fn add(self, o: Dd) -> Dd {
        let s = self.0 + o.0;
        let bb = s - self.0;
        let err = (self.0 - (s - bb)) + (o.0 - bb);
        let lo = err + self.1 + o.1;
        let hi = s + lo;
        Dd(hi, lo - (hi - s))
    }
    fn mul(self, o: Dd) -> Dd {
        let p = self.0 * o.0;
        let err = self.0.mul_add(o.0, -p);
        let lo = err + (self.0 * o.1 + self.1 * o.0);
        let hi = p + lo;
        Dd(hi, lo - (hi - p))
    }
    fn round(self) -> f64 {
        self.0 + self.1
    }
}

type M2 = [[Dd; 2]; 2];

fn mul2(m: &M2, n: &M2) -> M2 {
    std::array::from_fn(|i| std::array::from_fn(|j| m[i][0].mul(n[0][j]).add(m[i][1].mul(n[1][j]))))
}

/// Sections whose blocks were built most recently on this thread; a stream's filters are applied
/// window after window, so their blocks are built once.
type BlockCache = Vec<([f64; 6], bool, Option<Rc<Block>>)>;

/// Distinct sections [`Block::cached`] keeps per thread before starting over.
const CACHED_BLOCKS: usize = 32;

thread_local! {
    static BLOCKS: RefCell<BlockCache> = const { RefCell::new(Vec::new()) };
}

impl Block {
    /// [`Block::new`], reused while the section is among the last [`CACHED_BLOCKS`] built on this
    /// thread.
    fn cached(row: &[f64; 6], rev: bool) -> Option<Rc<Self>> {
        BLOCKS.with_borrow_mut(|blocks| {
            if let Some((_, _, block)) = blocks.iter().find(|(r, v, _)| r == row && *v == rev) {
                return block.clone();
            }
            if blocks.len() >= CACHED_BLOCKS {
                blocks.clear();
            }
            let block = Block::new(row, rev).map(Rc::new);
            blocks.push((*row, rev, block.clone()));
            block
        })
    }

    /// Block coefficients of `row` for a forward (`rev == false`) or backward pass, or `None`
    /// when the block form would be less accurate than the recurrence (poles within
    /// [`MIN_POLE_MARGIN`] of the unit circle or outside it, fast-growing state).
    pub(crate) fn new(row: &[f64; 6], rev: bool) -> Option<Self> {
        let (b0, b1, b2, a1, a2) = (row[0], row[1], row[2], row[4], row[5]);
        let stable = pole_radius(a1, a2) < 1.0 - MIN_POLE_MARGIN;
        let d = Dd::from;
        let a = [[d(-a1), d(1.0)], [d(-a2), d(0.0)]];
        let bv = [d(b1).add(d(-a1).mul(d(b0))), d(b2).add(d(-a2).mul(d(b0)))];
        let mut pow = [[[d(1.0), d(0.0)], [d(0.0), d(1.0)]]; L + 1];
        for j in 1..=L {
            pow[j] = mul2(&a, &pow[j - 1]);
        }
        let growth = pow
            .iter()
            .flatten()
            .flatten()
            .fold(0.0f64, |m, v| m.max(v.0.abs()));
        if !stable || growth.is_nan() || growth > MAX_GROWTH {
            return None;
        }
        // Impulse response: h[0] = D = b0, h[m] = C A^(m-1) B with C = [1, 0].
        let h: [f64; L] = std::array::from_fn(|m| {
            if m == 0 {
                b0
            } else {
                pow[m - 1][0][0]
                    .mul(bv[0])
                    .add(pow[m - 1][0][1].mul(bv[1]))
                    .round()
            }
        });
        // Time index of memory lane m: a backward pass runs each block from its last lane.
        let time = |m: usize| if rev { L - 1 - m } else { m };
        let block = Block {
            t: std::array::from_fn(|i| {
                std::array::from_fn(|m| {
                    let (ti, tm) = (time(i), time(m));
                    if ti <= tm {
                        h[tm - ti]
                    } else {
                        0.0
                    }
                })
            }),
            p0: std::array::from_fn(|m| pow[time(m)][0][0].round()),
            p1: std::array::from_fn(|m| pow[time(m)][0][1].round()),
            r: std::array::from_fn(|k| {
                std::array::from_fn(|i| {
                    let p = &pow[L - 1 - time(i)];
                    p[k][0].mul(bv[0]).add(p[k][1].mul(bv[1])).round()
                })
            }),
            q0: [pow[L][0][0].round(), pow[L][1][0].round()],
            q1: [pow[L][0][1].round(), pow[L][1][1].round()],
        };
        let finite = block
            .t
            .iter()
            .flatten()
            .chain(&block.r[0])
            .chain(&block.r[1]);
        finite.into_iter().all(|v| v.is_finite()).then_some(block)
    }
}

/// One exact DF2T step of section `s` (the operations of `filter_sample` for one section).
#[inline(always)]
fn step(s: &[f64; 6], z: &mut [f64; 2], x: f64) -> f64 {
    let y = s[0] * x + z[0];
    z[0] = s[1] * x - s[4] * y + z[1];
    z[1] = s[2] * x - s[5] * y;
    y
}

/// Filters `data` in place with every section of `sos`, forward or backward (`rev`), starting
/// each section from the steady state `zi * x0`, with the block kernel where it is available.
///
/// Sections whose block form would be inaccurate, and the samples that do not fill a block (at the
/// end of a forward pass, the start of a backward one), use the exact recurrence.
pub(crate) fn pass_blocked(
    sos: &[[f64; 6]],
    zi: &[[f64; 2]],
    x0: f64,
    data: &mut [f64],
    rev: bool,
) {
    let mut states = steady_state(zi, x0);
    pass_from_states(sos, &mut states, data, rev);
}

/// [`pass_blocked`] from the given per-section states, which are left as the states after the
/// pass (entering the sample after the last one filtered, in the pass's direction).
pub(crate) fn pass_from_states(
    sos: &[[f64; 6]],
    states: &mut [[f64; 2]],
    data: &mut [f64],
    rev: bool,
) {
    let n = data.len();
    let nb = n / L * L;
    for (row, state) in sos.iter().zip(states.iter_mut()) {
        let block = if avx2_fma() {
            Block::cached(row, rev)
        } else {
            None
        };
        if !rev {
            let (body, tail) = data.split_at_mut(nb);
            match &block {
                Some(b) => run_block(b, body, state, rev),
                None => body.iter_mut().for_each(|x| *x = step(row, state, *x)),
            }
            tail.iter_mut().for_each(|x| *x = step(row, state, *x));
        } else {
            let (head, body) = data.split_at_mut(n - nb);
            match &block {
                Some(b) => run_block(b, body, state, rev),
                None => body
                    .iter_mut()
                    .rev()
                    .for_each(|x| *x = step(row, state, *x)),
            }
            head.iter_mut()
                .rev()
                .for_each(|x| *x = step(row, state, *x));
        }
    }
}

/// Runs one section's block kernel over `body` (a multiple of [`L`] samples).
fn run_block(b: &Block, body: &mut [f64], state: &mut [f64; 2], rev: bool) {
    debug_assert_eq!(body.len() % L, 0);
    #[cfg(target_arch = "x86_64")]
    {
        debug_assert!(avx2_fma());
        // SAFETY: a `Block` is only built after `avx2_fma()` found AVX2 and FMA on this CPU.
        unsafe {
            if rev {
                x86::section::<true>(b, body, state)
            } else {
                x86::section::<false>(b, body, state)
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (b, body, state, rev);
        unreachable!("block coefficients are only built where the AVX2 kernel runs");
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Block, L};
    use std::arch::x86_64::*;

    /// Loads lanes `4 * half .. 4 * half + 4` of an 8-lane array.
    #[inline(always)]
    fn ld(a: &[f64; L], half: usize) -> __m256d {
        assert!(half < 2);
        // SAFETY: `a` has 8 elements and `half` is 0 or 1, so the 4 lanes read are in bounds.
        unsafe { _mm256_loadu_pd(a.as_ptr().add(4 * half)) }
    }

    /// Stores `v` into lanes `4 * half .. 4 * half + 4` of an 8-lane array.
    #[inline(always)]
    fn st(a: &mut [f64; L], half: usize, v: __m256d) {
        assert!(half < 2);
        // SAFETY: `a` has 8 elements and `half` is 0 or 1, so the 4 lanes written are in bounds.
        unsafe { _mm256_storeu_pd(a.as_mut_ptr().add(4 * half), v) }
    }

    /// Filters `data` (whole blocks) with one section, forward or, with `REV`, from the end.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn section<const REV: bool>(b: &Block, data: &mut [f64], state: &mut [f64; 2]) {
        let t_lo: [__m256d; L] = std::array::from_fn(|i| ld(&b.t[i], 0));
        let t_hi: [__m256d; L] = std::array::from_fn(|i| ld(&b.t[i], 1));
        let (p0l, p0h, p1l, p1h) = (ld(&b.p0, 0), ld(&b.p0, 1), ld(&b.p1, 0), ld(&b.p1, 1));
        let (r0l, r0h) = (ld(&b.r[0], 0), ld(&b.r[0], 1));
        let (r1l, r1h) = (ld(&b.r[1], 0), ld(&b.r[1], 1));
        let q0 = _mm_setr_pd(b.q0[0], b.q0[1]);
        let q1 = _mm_setr_pd(b.q1[0], b.q1[1]);
        let mut s = _mm_setr_pd(state[0], state[1]);
        let mut body = |c: &mut [f64]| {
            let c: &mut [f64; L] = c.try_into().expect("chunks of L");
            let x: [__m256d; L] = std::array::from_fn(|i| _mm256_broadcast_sd(&c[i]));
            let (xl, xh) = (ld(c, 0), ld(c, 1));
            let s0 = _mm256_broadcastsd_pd(s);
            let s1 = _mm256_broadcastsd_pd(_mm_unpackhi_pd(s, s));
            // Next state: R x as [r0, r1] by two dot products, then A^L s + R x.
            let v0 = _mm256_fmadd_pd(r0h, xh, _mm256_mul_pd(r0l, xl));
            let v1 = _mm256_fmadd_pd(r1h, xh, _mm256_mul_pd(r1l, xl));
            let hsum = _mm256_hadd_pd(v0, v1);
            let r = _mm_add_pd(_mm256_castpd256_pd128(hsum), _mm256_extractf128_pd(hsum, 1));
            s = _mm_fmadd_pd(
                q0,
                _mm_movedup_pd(s),
                _mm_fmadd_pd(q1, _mm_unpackhi_pd(s, s), r),
            );
            // Outputs P s + T x; T is lower triangular in time, so each direction skips the
            // quarter of zero weights (inputs later in time than the outputs' half).
            let (full, full_t, part, part_t) = if REV {
                (0, &t_lo, 1, &t_hi)
            } else {
                (1, &t_hi, 0, &t_lo)
            };
            let (pf0, pf1, pp0, pp1) = if REV {
                (p0l, p1l, p0h, p1h)
            } else {
                (p0h, p1h, p0l, p1l)
            };
            let off = if REV { 4 } else { 0 };
            let a = _mm256_fmadd_pd(
                part_t[off + 1],
                x[off + 1],
                _mm256_mul_pd(part_t[off], x[off]),
            );
            let bb = _mm256_fmadd_pd(
                part_t[off + 3],
                x[off + 3],
                _mm256_mul_pd(part_t[off + 2], x[off + 2]),
            );
            let sp = _mm256_fmadd_pd(pp1, s1, _mm256_mul_pd(pp0, s0));
            let y_part = _mm256_add_pd(_mm256_add_pd(a, bb), sp);
            let mut a = _mm256_mul_pd(full_t[0], x[0]);
            a = _mm256_fmadd_pd(full_t[1], x[1], a);
            a = _mm256_fmadd_pd(full_t[2], x[2], a);
            a = _mm256_fmadd_pd(full_t[3], x[3], a);
            let mut bb = _mm256_mul_pd(full_t[4], x[4]);
            bb = _mm256_fmadd_pd(full_t[5], x[5], bb);
            bb = _mm256_fmadd_pd(full_t[6], x[6], bb);
            bb = _mm256_fmadd_pd(full_t[7], x[7], bb);
            let sp = _mm256_fmadd_pd(pf1, s1, _mm256_mul_pd(pf0, s0));
            let y_full = _mm256_add_pd(_mm256_add_pd(a, bb), sp);
            st(c, part, y_part);
            st(c, full, y_full);
        };
        if REV {
            data.rchunks_exact_mut(L).for_each(&mut body);
        } else {
            data.chunks_exact_mut(L).for_each(&mut body);
        }
        let mut out = [0.0; 2];
        // SAFETY: `out` has the two elements the 128-bit store writes.
        unsafe { _mm_storeu_pd(out.as_mut_ptr(), s) };
        *state = out;
    }
}
