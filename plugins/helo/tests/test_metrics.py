import math

import numpy as np

from helo.metrics import METRICS, better_on, score


def test_known_values_match_the_rust_implementation():
    # The same pair as src/model/ldl.rs `known_values`.
    p = np.array([[0.2, 0.3, 0.5]])
    q = np.array([[0.1, 0.4, 0.5]])
    s = score(p, q)
    assert math.isclose(s["chebyshev"], 0.1, abs_tol=1e-12)
    assert math.isclose(s["clark"], math.sqrt((0.1 / 0.3) ** 2 + (0.1 / 0.7) ** 2), rel_tol=1e-9)
    assert math.isclose(s["canberra"], 0.1 / 0.3 + 0.1 / 0.7, rel_tol=1e-9)
    assert math.isclose(s["kl_divergence"], 0.2 * math.log(2) + 0.3 * math.log(0.75), rel_tol=1e-9)
    assert math.isclose(s["intersection"], 0.9, abs_tol=1e-12)
    cosine = (0.02 + 0.12 + 0.25) / (math.sqrt(0.38) * math.sqrt(0.42))
    assert math.isclose(s["cosine"], cosine, rel_tol=1e-9)


def test_identical_distributions_are_perfect():
    p = np.array([[0.25, 0.25, 0.5], [1.0, 0.0, 0.0]])
    s = score(p, p)
    assert s["chebyshev"] == 0 and s["clark"] == 0 and s["canberra"] == 0
    assert abs(s["kl_divergence"]) < 1e-9
    assert abs(s["cosine"] - 1) < 1e-9 and abs(s["intersection"] - 1) < 1e-12


def test_better_on_lists_the_metrics_a_model_wins_in_either_direction():
    truth = np.array([[0.7, 0.3]])
    good = score(truth, np.array([[0.65, 0.35]]))
    bad = score(truth, np.array([[0.5, 0.5]]))
    every = [name for name, _ in METRICS]
    assert better_on(good, bad) == every and better_on(bad, good) == [] and better_on(good, good) == []
    mixed = dict(bad, cosine=good["cosine"] + 1.0)
    assert better_on(mixed, good) == ["cosine"]
