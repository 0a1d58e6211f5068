//! The six standard label-distribution-learning metrics (Geng, 2016).
//!
//! Lower is better for Chebyshev, Clark, Canberra and KL divergence; higher for cosine and
//! intersection. Definitions and epsilon match `plugins/helo/helo/metrics.py` exactly.
//!
//! ```
//! use heloflow::model::ldl::{Metric, Scores};
//! let truth = [0.5, 0.5];
//! let mut scores = Scores::default();
//! scores.add(&truth, &truth);
//! assert_eq!(scores.mean(Metric::Chebyshev), 0.0);
//! assert!((scores.mean(Metric::Intersection) - 1.0).abs() < 1e-12);
//! ```

/// Guards divisions and logarithms.
pub const EPSILON: f64 = 1e-12;

/// One of the six metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// max |p - q|.
    Chebyshev,
    /// sqrt(sum (p - q)^2 / (p + q)^2).
    Clark,
    /// sum |p - q| / (p + q).
    Canberra,
    /// sum p ln(p / q), p the ground truth.
    KlDivergence,
    /// p.q / (|p| |q|).
    Cosine,
    /// sum min(p, q).
    Intersection,
}

impl Metric {
    /// All metrics in report order.
    pub const ALL: [Metric; 6] = [
        Metric::Chebyshev,
        Metric::Clark,
        Metric::Canberra,
        Metric::KlDivergence,
        Metric::Cosine,
        Metric::Intersection,
    ];

    /// Name as printed and as in the Python reports.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Chebyshev => "chebyshev",
            Metric::Clark => "clark",
            Metric::Canberra => "canberra",
            Metric::KlDivergence => "kl_divergence",
            Metric::Cosine => "cosine",
            Metric::Intersection => "intersection",
        }
    }

    /// Whether a higher value is better.
    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::Cosine | Metric::Intersection)
    }

    /// The metric for one pair of distributions (`truth`, `predicted`).
    pub fn compute(self, truth: &[f64], predicted: &[f64]) -> f64 {
        let pairs = truth.iter().zip(predicted);
        match self {
            Metric::Chebyshev => pairs.map(|(p, q)| (p - q).abs()).fold(0.0, f64::max),
            Metric::Clark => pairs
                .map(|(p, q)| (p - q).powi(2) / ((p + q).powi(2) + EPSILON))
                .sum::<f64>()
                .sqrt(),
            Metric::Canberra => pairs.map(|(p, q)| (p - q).abs() / (p + q + EPSILON)).sum(),
            Metric::KlDivergence => pairs
                .map(|(p, q)| p * ((p + EPSILON).ln() - (q + EPSILON).ln()))
                .sum(),
            Metric::Cosine => {
                let dot: f64 = pairs.map(|(p, q)| p * q).sum();
                let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
                dot / (norm(truth) * norm(predicted) + EPSILON)
            }
            Metric::Intersection => pairs.map(|(p, q)| p.min(*q)).sum(),
        }
    }
}

/// Running means of all six metrics over many windows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scores {
    sums: [f64; 6],
    count: usize,
}

impl Scores {
    /// Adds one window.
    pub fn add(&mut self, truth: &[f64], predicted: &[f64]) {
        for (sum, metric) in self.sums.iter_mut().zip(Metric::ALL) {
            *sum += metric.compute(truth, predicted);
        }
        self.count += 1;
    }

    /// Number of windows added.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Mean of `metric` over the windows (NaN when empty).
    pub fn mean(&self, metric: Metric) -> f64 {
        let index = Metric::ALL.iter().position(|m| *m == metric).unwrap_or(0);
        self.sums[index] / self.count as f64
    }

    /// The metrics on which these scores are strictly better than `other`, in report order.
    pub fn better_on(&self, other: &Scores) -> Vec<Metric> {
        Metric::ALL
            .iter()
            .copied()
            .filter(|&m| {
                let (mine, theirs) = (self.mean(m), other.mean(m));
                if m.higher_is_better() {
                    mine > theirs
                } else {
                    mine < theirs
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let p = [0.2, 0.3, 0.5];
        let q = [0.1, 0.4, 0.5];
        assert!((Metric::Chebyshev.compute(&p, &q) - 0.1).abs() < 1e-12);
        let clark = ((0.1f64 / 0.3).powi(2) + (0.1f64 / 0.7).powi(2)).sqrt();
        assert!((Metric::Clark.compute(&p, &q) - clark).abs() < 1e-9);
        assert!((Metric::Canberra.compute(&p, &q) - (0.1 / 0.3 + 0.1 / 0.7)).abs() < 1e-9);
        let kl = 0.2 * (2.0f64).ln() + 0.3 * (0.75f64).ln();
        assert!((Metric::KlDivergence.compute(&p, &q) - kl).abs() < 1e-9);
        assert!((Metric::Intersection.compute(&p, &q) - 0.9).abs() < 1e-12);
        let cosine = (0.02 + 0.12 + 0.25) / ((0.38f64).sqrt() * (0.42f64).sqrt());
        assert!((Metric::Cosine.compute(&p, &q) - cosine).abs() < 1e-9);
    }

    #[test]
    fn better_on_lists_the_metrics_won_in_either_direction() {
        let truth = [0.7, 0.3];
        let (mut good, mut bad) = (Scores::default(), Scores::default());
        good.add(&truth, &[0.65, 0.35]);
        bad.add(&truth, &[0.5, 0.5]);
        assert_eq!(good.better_on(&bad), Metric::ALL.to_vec());
        assert!(bad.better_on(&good).is_empty());
        assert!(good.better_on(&good).is_empty());
    }
}
