//! Minimal complex arithmetic for filter design, following numpy's formulas so that designs
//! round the same way as scipy's.

use std::ops::{Add, Mul, Neg, Sub};

/// A double-precision complex number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct C64 {
    pub re: f64,
    pub im: f64,
}

impl C64 {
    pub const fn new(re: f64, im: f64) -> Self {
        Self { re, im }
    }

    pub const fn real(re: f64) -> Self {
        Self { re, im: 0.0 }
    }

    pub fn conj(self) -> Self {
        Self::new(self.re, -self.im)
    }

    pub fn abs(self) -> f64 {
        self.re.hypot(self.im)
    }

    /// True when the imaginary part is exactly zero, like `numpy.isreal`.
    pub fn is_real(self) -> bool {
        self.im == 0.0
    }

    /// Complex division with Smith's algorithm, exactly as numpy's `complex128` divide loop.
    pub fn div(self, d: Self) -> Self {
        let (ar, ai, br, bi) = (self.re, self.im, d.re, d.im);
        if br.abs() >= bi.abs() {
            if br == 0.0 && bi == 0.0 {
                return Self::new(ar / br.abs(), ai / br.abs());
            }
            let rat = bi / br;
            let scl = 1.0 / (br + bi * rat);
            Self::new((ar + ai * rat) * scl, (ai - ar * rat) * scl)
        } else {
            let rat = br / bi;
            let scl = 1.0 / (bi + br * rat);
            Self::new((ar * rat + ai) * scl, (ai * rat - ar) * scl)
        }
    }

    /// Principal square root (branch cut on the negative real axis), as C99 `csqrt`.
    pub fn sqrt(self) -> Self {
        let (x, y) = (self.re, self.im);
        if x == 0.0 && y == 0.0 {
            return Self::new(0.0, y);
        }
        let t = ((x.abs() + self.abs()) / 2.0).sqrt();
        if x >= 0.0 {
            Self::new(t, y / (2.0 * t))
        } else {
            Self::new(y.abs() / (2.0 * t), t.copysign(y))
        }
    }

    /// Scales by a real factor the way numpy multiplies a complex array by a real scalar.
    pub fn scale(self, s: f64) -> Self {
        self * Self::real(s)
    }
}

impl Add for C64 {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self::new(self.re + o.re, self.im + o.im)
    }
}

impl Sub for C64 {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self::new(self.re - o.re, self.im - o.im)
    }
}

impl Mul for C64 {
    type Output = Self;
    fn mul(self, o: Self) -> Self {
        Self::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }
}

impl Neg for C64 {
    type Output = Self;
    fn neg(self) -> Self {
        Self::new(-self.re, -self.im)
    }
}

/// Product of all elements, left to right (1 for an empty slice), like `numpy.prod`.
pub(crate) fn prod(v: &[C64]) -> C64 {
    v.iter().fold(C64::real(1.0), |acc, &x| acc * x)
}
