import json

import numpy as np
import onnxruntime
import torch

from helo.data import Dataset
from helo.export import Deployed, export_onnx
from helo.model import HeLo, HeloConfig, helo_loss
from helo.metrics import score
from helo.train import Standardiser, train_helo


def synthetic(n=96, seed=0, video=12):
    """Windows whose target depends on the inputs, so a model can learn it."""
    rng = np.random.default_rng(seed)
    eeg, gsr, ppg, vid = rng.normal(size=(n, 90)), rng.normal(size=(n, 28)), rng.normal(size=(n, 27)), rng.normal(size=(n, video))
    logits = np.stack([eeg[:, 0] + vid[:, 0], gsr[:, 0], ppg[:, 0] - vid[:, 1]], axis=1)
    target = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    subjects = np.array([f"S{i % 4}" for i in range(n)])
    columns = {k: [f"{k}{i}" for i in range(x.shape[1])] for k, x in (("eeg", eeg), ("gsr", gsr), ("ppg", ppg), ("video", vid))}
    return Dataset(eeg, gsr, ppg, vid, target, subjects, ["a", "b", "c"], columns)


def small_config(**kw):
    return HeloConfig(dim_video=12, emotion_classes=3, feature_dim=32, hidden_size=16, **kw)


def test_label_embedding_is_learned_and_evaluation_is_deterministic():
    torch.manual_seed(0)
    model = HeLo(small_config())
    assert model.label_embedding.requires_grad
    x = [torch.randn(5, d) for d in (90, 28, 27, 12)]
    model.eval()
    with torch.no_grad():
        first, second = model(*x), model(*x)
    assert torch.equal(first, second)
    assert torch.allclose(first.sum(dim=1), torch.ones(5))
    before = model.label_embedding.detach().clone()
    model.train()
    loss, _, _ = helo_loss(model, model(*x), torch.softmax(torch.randn(5, 3), dim=1))
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert not torch.equal(before, model.label_embedding.detach())


def test_training_is_seeded_and_learns():
    data = synthetic()
    settings = dict(epochs=30, seed=3, batch_size=32, feature_dim=32, hidden_size=16, dropout=0.1, drop_key=0.1)
    a, std_a = train_helo(data, **settings)
    b, std_b = train_helo(data, **settings)
    with torch.no_grad():
        pa, pb = a(*std_a.apply(data)), b(*std_b.apply(data))
    assert torch.equal(pa, pb)
    target = torch.tensor(data.target, dtype=torch.float32)
    uniform = torch.full_like(target, 1 / 3)
    kl = lambda p: torch.nn.functional.kl_div(torch.log(p), target, reduction="batchmean")
    assert kl(pa) < 0.5 * kl(uniform)


def test_onnx_export_matches_pytorch_for_any_batch(tmp_path):
    torch.manual_seed(1)
    data = synthetic()
    model = HeLo(small_config()).eval()
    deployed = Deployed(model, Standardiser(data)).eval()
    example = [torch.tensor(x[:2], dtype=torch.float32) for x in data.inputs()]
    path = tmp_path / "m.onnx"
    export_onnx(deployed, example, path)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 7):
        inputs = [torch.tensor(x[:batch], dtype=torch.float32) for x in data.inputs()]
        with torch.no_grad():
            expected = deployed(*inputs).numpy()
        got = session.run(None, dict(zip(("eeg", "gsr", "ppg", "video"), (x.numpy() for x in inputs))))[0]
        assert got.shape == (batch, 3)
        assert np.abs(got - expected).max() < 1e-5


def test_folds_hold_out_whole_subjects():
    from helo.train import subject_folds

    subjects = ["S3", "S1", "S2", "S1", "S4", "S2"]
    assert subject_folds(subjects, "loso") == [["S1"], ["S2"], ["S3"], ["S4"]]
    folds = subject_folds(subjects, "2")
    assert sorted(sum(folds, [])) == ["S1", "S2", "S3", "S4"]
    assert all(not set(a) & set(b) for a in folds for b in folds if a is not b)


def test_subject_independent_evaluation_scores_every_window_against_tuned_baselines():
    from helo.train import BASELINES, evaluate

    data = synthetic(n=64)
    results, runs = evaluate(data, "2", epochs=1, seeds=[0, 1], batch_size=16, feature_dim=16, hidden_size=8)
    assert set(results) == {"helo", *BASELINES}
    assert len(runs) == 4 and all(len(r) == 4 for r in results.values())
    for run in runs:
        # The validation subjects are training subjects, never the fold's test subjects.
        assert run["validation"] and not set(run["validation"]) & set(run["test"])
    for values in sum(results.values(), []):
        assert set(values) == {"chebyshev", "clark", "canberra", "kl_divergence", "cosine", "intersection"}
    # The uniform baseline's Chebyshev distance is computed over all held-out windows of the fold.
    held_out = np.isin(data.subjects, runs[0]["test"])
    expected = np.mean(np.max(np.abs(data.target[held_out] - 1 / 3), axis=1))
    assert abs(results["uniform"][0]["chebyshev"] - expected) < 1e-12


def test_tuned_baselines_learn_what_the_inputs_determine():
    from helo.train import train_knn, train_linear, train_mlp

    data = synthetic(n=400, seed=4)
    train, validation, test = data.select(np.arange(400) < 240), data.select((np.arange(400) >= 240) & (np.arange(400) < 320)), data.select(np.arange(400) >= 320)
    uniform = score(test.target, np.full_like(test.target, 1 / 3))["kl_divergence"]
    for trainer, bound in ((train_linear, 0.5), (train_mlp, 0.5), (train_knn, 0.95)):  # kNN: 3 of 157 dims matter
        got = score(test.target, trainer(train, validation, seed=0)(test))["kl_divergence"]
        assert got < bound * uniform, (trainer.__name__, got, uniform)
    # The target is a softmax of a linear function of the inputs: converged softmax regression is near exact.
    assert score(test.target, train_linear(train, validation, seed=0)(test))["kl_divergence"] < 0.01


def test_paper_protocol_splits_each_subject_80_20_and_holds_no_subject_out():
    from helo.train import paper_split

    data = synthetic(n=80)
    splits = paper_split(data, seed=0)
    assert sorted(splits) == ["S0", "S1", "S2", "S3"]
    for subject, (train, test) in splits.items():
        own = data.subjects == subject
        assert not (train & test).any() and ((train | test) == own).all()
        assert test.sum() == 4 and train.sum() == 16
    assert paper_split(data, seed=0)["S1"][1].tolist() == splits["S1"][1].tolist()


def _marginal_errors(plan):
    """Largest relative deviation of the plan's row and column sums from uniform marginals."""
    n, m = plan.shape[1], plan.shape[2]
    return (float((plan.sum(dim=2) * n - 1).abs().max()), float((plan.sum(dim=1) * m - 1).abs().max()))


def test_gromov_wasserstein_plan_is_finite_with_exact_marginals_for_adversarial_tokens():
    from helo.model import gromov_wasserstein_plan

    torch.manual_seed(0)
    x, y = torch.randn(4, 36, 128), torch.randn(4, 36, 128)
    cases = {
        "plain": (x, y),
        "scaled x1e3": (x * 1e3, y * 1e3),
        "constant tokens": (torch.ones(4, 36, 128), torch.full((4, 36, 128), 7.0)),
        "zero tokens": (torch.zeros(4, 36, 128), y),
        "one constant side": (x * 1e3, torch.ones(4, 36, 128)),
    }
    for name, (a, b) in cases.items():
        plan = gromov_wasserstein_plan(a, b, beta=0.1, gw_iterations=5, ot_iterations=20)
        assert torch.isfinite(plan).all(), name
        assert (plan >= 0).all(), name
        rows, columns = _marginal_errors(plan)
        assert rows < 1e-3 and columns < 1e-3, (name, rows, columns)


def test_ipot_stays_finite_where_the_kernel_underflows_and_matches_it_where_it_does_not():
    from helo.model import ipot_uniform

    torch.manual_seed(1)
    # Costs up to 30 at beta 0.1: exp(-300) is 0 in float32, so a kernel-domain IPOT divides by zero.
    cost = torch.rand(3, 36, 36) * 30
    assert (torch.exp(-cost / 0.1) == 0).any()
    plan = ipot_uniform(cost, 0.1, 20)
    assert torch.isfinite(plan).all()
    assert max(_marginal_errors(plan)) < 1e-3
    # Benign costs: the same iteration in float64 and the kernel domain, then the same rounding.
    cost = torch.rand(3, 12, 9, dtype=torch.float64)
    plan = torch.ones_like(cost)
    sigma = torch.ones(3, 9, 1, dtype=torch.float64) / 9
    kernel = torch.exp(-cost / 0.5)
    for _ in range(20):
        q = kernel * plan
        delta = 1.0 / (12 * torch.matmul(q, sigma))
        sigma = 1.0 / (9 * torch.matmul(q.transpose(1, 2), delta))
        plan = delta * q * sigma.transpose(1, 2)
    from helo.model import round_to_marginals

    expected = round_to_marginals(plan, torch.full((3, 12), 1 / 12, dtype=torch.float64),
                                  torch.full((3, 9), 1 / 9, dtype=torch.float64))
    got = ipot_uniform(cost, 0.5, 20)
    assert torch.allclose(got, expected, atol=1e-12)


def test_every_ablation_variant_trains_and_exports_to_onnx(tmp_path):
    from helo.model import CORRELATION_BIAS

    data = synthetic(n=32)
    variants = [dict(correlation_bias=b) for b in CORRELATION_BIAS]
    variants += [dict(heterogeneity_mining=False), dict(alignment_weight=0.0)]
    for number, variant in enumerate(variants):
        model, standardiser = train_helo(data, epochs=1, seed=0, batch_size=16, feature_dim=16,
                                         hidden_size=8, **variant)
        deployed = Deployed(model, standardiser).eval()
        inputs = [torch.tensor(x[:3], dtype=torch.float32) for x in data.inputs()]
        path = tmp_path / f"v{number}.onnx"
        export_onnx(deployed, inputs, path)
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, dict(zip(("eeg", "gsr", "ppg", "video"), (x.numpy() for x in inputs))))[0]
        with torch.no_grad():
            expected = deployed(*inputs).numpy()
        assert np.abs(got - expected).max() < 5e-5, variant  # float32 graph vs eager: ~1.4e-5 measured
    try:
        HeloConfig(correlation_bias="sideways")
    except ValueError as error:
        assert "correlation_bias" in str(error)
    else:
        raise AssertionError("an unknown correlation_bias is accepted")


def test_ablation_and_merge_commands_score_the_named_variants(tmp_path, capsys):
    from test_data import write_dmer

    from helo.train import main

    for subject in (1, 2, 3):
        write_dmer(tmp_path / f"{subject}.mat", windows=24, seed=subject)
    scores = tmp_path / "ablations.json"
    main(["--dmer", str(tmp_path), "--ablations", "full", "no_heterogeneity_mining", "--validation-subjects", "2",
          "--test-subjects", "3", "--epochs", "1", "--seeds", "0", "1", "--scores", str(scores)])
    written = json.loads(scores.read_text())
    assert set(written["scores"]) == {"full", "no_heterogeneity_mining"}
    assert all(len(v) == 2 for v in written["scores"].values())
    capsys.readouterr()
    main(["--merge", str(scores), str(scores)])
    printed = capsys.readouterr().out
    assert "| full |" in printed and "| no_heterogeneity_mining |" in printed


def test_an_epoch_count_outside_its_range_is_refused(tmp_path, capsys):
    import pytest

    from helo.train import main

    for value in ("0", "1001", "-3"):
        with pytest.raises(SystemExit):
            main(["--dmer", str(tmp_path), "--epochs", value])
        assert "epochs must be between 1 and 1000" in capsys.readouterr().err
