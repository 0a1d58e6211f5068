import numpy as np
import onnxruntime
import torch

from helo.data import Dataset
from helo.export import Deployed, export_onnx
from helo.model import HeLo, HeloConfig, helo_loss
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


def test_subject_independent_evaluation_scores_every_window_against_baselines():
    from helo.train import evaluate

    data = synthetic(n=48)
    scores = evaluate(data, "2", epochs=1, seed=0, batch_size=16, feature_dim=16, hidden_size=8)
    assert set(scores) == {"helo", "uniform", "training_mean", "linear"}
    for values in scores.values():
        assert set(values) == {"chebyshev", "clark", "canberra", "kl_divergence", "cosine", "intersection"}
    # The uniform baseline's Chebyshev distance is computed over all 48 held-out windows.
    expected = np.mean(np.max(np.abs(data.target - 1 / 3), axis=1))
    assert abs(scores["uniform"]["chebyshev"] - expected) < 1e-12
