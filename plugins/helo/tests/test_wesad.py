import importlib.util
import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from helo.model import HeLo, helo_loss
from helo.train import config_for, main, train_helo
from helo.wesad import COLUMNS, WESAD_LABELS, differential_entropy, load_wesad, load_wesad_subject

REFERENCE = Path(__file__).resolve().parents[3] / "fixtures" / "features" / "dmer_reference.py"

#: Label blocks of the synthetic recordings: (start s, end s, WESAD label id).
BLOCKS = [(0, 10, 0), (10, 30, 1), (30, 45, 2), (45, 55, 3), (55, 60, 6)]


def dmer_reference():
    spec = importlib.util.spec_from_file_location("dmer_reference", REFERENCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def recording(subject="S2", seconds=60, bvp_seconds=58, seed=0, blocks=BLOCKS):
    """A subject dict in the published layout: signals with some structure, labels in blocks."""
    rng = np.random.default_rng(seed)

    def wave(fs, n, columns, hz):
        t = np.arange(n)[:, None] / fs
        return np.sin(2 * np.pi * hz * t * np.arange(1, columns + 1)) + 0.3 * rng.normal(size=(n, columns))

    n = 700 * seconds
    label = np.zeros(n, dtype=np.int32)
    for start, end, value in blocks:
        label[700 * start:700 * end] = value
    chest = {"ACC": wave(700, n, 3, 1.5), "ECG": wave(700, n, 1, 1.2), "EMG": wave(700, n, 1, 40),
             "EDA": 5 + wave(700, n, 1, 0.1), "Temp": 33 + 0.1 * wave(700, n, 1, 0.05),
             "Resp": wave(700, n, 1, 0.3)}
    wrist = {"ACC": 64 * wave(32, 32 * seconds, 3, 0.7), "BVP": 50 * wave(64, 64 * bvp_seconds, 1, 1.1),
             "EDA": 1 + wave(4, 4 * seconds, 1, 0.05), "TEMP": 32 + wave(4, 4 * seconds, 1, 0.01)}
    return {"subject": subject, "signal": {"chest": chest, "wrist": wrist}, "label": label}


def write(directory, data):
    folder = Path(directory) / data["subject"]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{data['subject']}.pkl"
    with open(path, "wb") as handle:
        pickle.dump(data, handle, protocol=2)
    return path


@pytest.fixture(scope="module")
def wesad_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("wesad")
    write(directory, recording("S2", seed=0))
    write(directory, recording("S10", seed=1, blocks=[(0, 5, 0), (5, 25, 4), (25, 60, 2)]))
    return directory


def test_subjects_load_as_windows_with_condition_fractions(wesad_dir):
    data = load_wesad(wesad_dir)
    # S2: windows k = 0..53 (BVP lasts 58 s); [k, k+5) holds a labelled sample for k = 6..53.
    # S10: windows k = 1..53 (the first one is transient only).
    assert list(np.unique(data.subjects)) == ["S10", "S2"]
    assert (data.subjects == "S2").sum() == 48 and (data.subjects == "S10").sum() == 53
    assert data.eeg.shape == (101, 40) and data.gsr.shape == (101, 28)
    assert data.ppg.shape == (101, 27) and data.video.shape == (101, 6) and data.target.shape == (101, 4)
    assert data.labels == WESAD_LABELS == ["baseline", "stress", "amusement", "meditation"]
    assert np.allclose(data.target.sum(axis=1), 1)
    s2 = data.target[data.subjects == "S2"]
    assert np.allclose(s2[0], [1, 0, 0, 0])          # [6, 11): 1 s of baseline, the rest transient
    assert np.allclose(s2[27 - 6], [0.6, 0.4, 0, 0])  # [27, 32): 3 s baseline, 2 s stress
    assert np.allclose(s2[42 - 6], [0, 0.6, 0.4, 0])  # [42, 47): 3 s stress, 2 s amusement
    assert np.allclose(s2[53 - 6], [0, 0, 1, 0])      # [53, 58): 2 s amusement, 3 s "ignore" (6)
    s10 = data.target[data.subjects == "S10"]
    assert np.allclose(s10[22 - 1], [0, 0.4, 0, 0.6])  # [22, 27): 3 s meditation, 2 s stress
    for branch in ("eeg", "gsr", "ppg", "video"):
        assert np.all(np.isfinite(getattr(data, branch)))


def test_features_follow_the_dmer_definitions(wesad_dir):
    reference = dmer_reference()
    data = load_wesad_subject(wesad_dir / "S2" / "S2.pkl")
    with open(wesad_dir / "S2" / "S2.pkl", "rb") as handle:
        raw = pickle.load(handle, encoding="latin1")
    chest, wrist = raw["signal"]["chest"], raw["signal"]["wrist"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reference's Welch call warns that nperseg shrinks to 20
        gsr = reference.gsr_features(wrist["EDA"][:, 0], fs=4)
    ppg = reference.ppg_features(wrist["BVP"][:, 0], fs=64)
    channels = np.column_stack([chest[c] for c in ("ECG", "EMG", "EDA", "Temp", "Resp")] + [chest["ACC"]]).T
    eeg = reference.eeg_de(channels, fs=700, stft_n=1024)
    first = 6  # the first window holding a labelled sample
    for row, k in ((0, first), (30, first + 30)):
        assert np.allclose(data.gsr[row], gsr[k], rtol=1e-9, atol=1e-12)
        assert np.allclose(data.ppg[row], ppg[k], rtol=1e-9, atol=1e-12)
        assert np.allclose(data.eeg[row], eeg[k + 4], rtol=1e-9, atol=1e-12)  # the window's last second
        acc = wrist["ACC"][32 * k:32 * k + 160]
        assert np.allclose(data.video[row], np.column_stack([acc.mean(axis=0), acc.std(axis=0)]).reshape(-1))
    # at DMER's own rate and FFT length the chest DE is DMER's EEG DE
    rng = np.random.default_rng(3)
    eeg300 = rng.normal(size=(4, 300 * 7))
    assert np.allclose(differential_entropy(eeg300, 300, 256, chunk=3), reference.eeg_de(eeg300), rtol=1e-12)


def test_columns_are_named():
    assert COLUMNS["eeg"][:6] == ["chest_ECG_de_delta", "chest_ECG_de_theta", "chest_ECG_de_alpha",
                                  "chest_ECG_de_beta", "chest_ECG_de_gamma", "chest_EMG_de_delta"]
    assert COLUMNS["eeg"][-1] == "chest_ACC_z_de_gamma" and len(COLUMNS["eeg"]) == 40
    assert COLUMNS["gsr"][0] == "gsr_median" and COLUMNS["gsr"][7] == "gsr_d1_median"
    assert COLUMNS["gsr"][-1] == "gsr_psd_mean" and len(COLUMNS["gsr"]) == 28
    assert COLUMNS["ppg"][-1] == "ppg_fft_range" and len(COLUMNS["ppg"]) == 27
    assert COLUMNS["video"] == ["wrist_ACC_x_mean", "wrist_ACC_x_std", "wrist_ACC_y_mean",
                                "wrist_ACC_y_std", "wrist_ACC_z_mean", "wrist_ACC_z_std"]


@pytest.mark.parametrize("damage, message", [
    (lambda d: d.pop("label"), "not a WESAD subject file, `label` is missing"),
    (lambda d: d["signal"].pop("wrist"), "not a WESAD subject file, `signal/wrist` is missing"),
    (lambda d: d["signal"]["chest"].pop("Resp"), "not a WESAD subject file, `signal/chest/Resp` is missing"),
    (lambda d: d["signal"]["wrist"].update(ACC=np.zeros((100, 2))),
     r"`signal/wrist/ACC` must be \(samples, 3\), found \(100, 2\)"),
    (lambda d: d["signal"]["chest"].update(EMG=np.zeros((700, 1))),
     "`signal/chest/EMG` has 700 samples but `label` has 7000 \\(both are 700 Hz\\)"),
    (lambda d: d.update(label=np.zeros((7000, 2))), r"`label` must be \(samples,\), found \(7000, 2\)"),
    (lambda d: d["signal"]["wrist"].update(BVP=np.zeros((200, 1))),
     "`signal/wrist/BVP` lasts 3.12 s, shorter than one 5 s window"),
    (lambda d: d.update(label=np.zeros(7000, dtype=np.int32)), "no 5 s window holds a sample labelled 1-4"),
])
def test_malformed_pickles_are_named_with_the_problem(tmp_path, damage, message):
    data = recording("S3", seconds=10, bvp_seconds=10, blocks=[(0, 10, 1)])
    damage(data)
    path = write(tmp_path, data)
    with pytest.raises(ValueError, match=f"S3.pkl: {message}"):
        load_wesad_subject(path)


def test_files_that_are_not_wesad_pickles(tmp_path):
    (tmp_path / "S4").mkdir()
    (tmp_path / "S4" / "S4.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="S4.pkl: not a WESAD subject pickle"):
        load_wesad(tmp_path)
    with pytest.raises(ValueError, match="no WESAD subject files"):
        load_wesad(tmp_path / "missing")


def test_helo_trains_on_wesad_windows(wesad_dir, tmp_path):
    data = load_wesad(wesad_dir)
    config = config_for(data)
    dims = (config.n_channels, config.dim_gsr, config.dim_ppg, config.dim_video, config.emotion_classes)
    assert dims == (8, 28, 27, 6, 4)
    model, standardiser = train_helo(data, epochs=2, seed=0, batch_size=32, feature_dim=32, hidden_size=16)
    assert isinstance(model, HeLo)
    with torch.no_grad():
        predicted = model(*standardiser.apply(data))
    assert predicted.shape == (len(data), 4) and torch.allclose(predicted.sum(dim=1), torch.ones(len(data)))
    loss, _, _ = helo_loss(model, predicted, torch.tensor(data.target, dtype=torch.float32))
    assert torch.isfinite(loss)
    scores = tmp_path / "scores.json"
    main(["--wesad", str(wesad_dir), "--epochs", "1", "--scores", str(scores)])
    assert set(json.loads(scores.read_text())) == {"helo", "uniform", "training_mean", "linear"}
