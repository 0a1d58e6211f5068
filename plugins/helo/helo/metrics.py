"""The six standard label-distribution-learning metrics (Geng, 2016), over rows of distributions.

Lower is better for Chebyshev, Clark, Canberra and KL divergence; higher for cosine and intersection.
`target` is the ground truth, `predicted` the model output; both are [N, L] arrays of probabilities.
The same definitions (and the same epsilon) are implemented in Rust (`src/metrics/ldl.rs`).
"""

import numpy as np

EPSILON = 1e-12

#: Metric names in report order, each with True when higher is better.
METRICS = [
    ("chebyshev", False),
    ("clark", False),
    ("canberra", False),
    ("kl_divergence", False),
    ("cosine", True),
    ("intersection", True),
]


def chebyshev(target, predicted):
    return np.max(np.abs(target - predicted), axis=1)


def clark(target, predicted):
    return np.sqrt(np.sum((target - predicted) ** 2 / ((target + predicted) ** 2 + EPSILON), axis=1))


def canberra(target, predicted):
    return np.sum(np.abs(target - predicted) / (target + predicted + EPSILON), axis=1)


def kl_divergence(target, predicted):
    return np.sum(target * (np.log(target + EPSILON) - np.log(predicted + EPSILON)), axis=1)


def cosine(target, predicted):
    norms = np.linalg.norm(target, axis=1) * np.linalg.norm(predicted, axis=1)
    return np.sum(target * predicted, axis=1) / (norms + EPSILON)


def intersection(target, predicted):
    return np.sum(np.minimum(target, predicted), axis=1)


def score(target, predicted):
    """Mean of every metric over the rows, as a dict in report order."""
    target = np.asarray(target, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.float64)
    functions = {
        "chebyshev": chebyshev,
        "clark": clark,
        "canberra": canberra,
        "kl_divergence": kl_divergence,
        "cosine": cosine,
        "intersection": intersection,
    }
    return {name: float(np.mean(functions[name](target, predicted))) for name, _ in METRICS}


def better_on(model, baseline):
    """The metrics on which `model` is strictly better than `baseline`, in report order."""
    return [name for name, higher in METRICS
            if (model[name] > baseline[name] if higher else model[name] < baseline[name])]
