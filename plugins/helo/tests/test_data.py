import json

import numpy as np
import pytest
import scipy.io

from helo.data import load_dmer, load_dmer_subject, load_recording


def write_dmer(path, windows=12, videos=3, video_dim=8, seed=0):
    rng = np.random.default_rng(seed)
    scipy.io.savemat(path, {
        "feas": rng.normal(size=(windows, 145 + video_dim)),
        "dis_label": rng.integers(1, 20, size=(videos, 10)).astype(float),
        "vids": rng.integers(0, videos, size=(windows, 1)),
    })


def test_dmer_subject_files_load_as_published(tmp_path):
    write_dmer(tmp_path / "1.mat")
    write_dmer(tmp_path / "2.mat", seed=1)
    data = load_dmer(tmp_path)
    assert data.eeg.shape == (24, 90) and data.gsr.shape == (24, 28)
    assert data.ppg.shape == (24, 27) and data.video.shape == (24, 8)
    assert np.allclose(data.target.sum(axis=1), 1)
    assert sorted(set(data.subjects)) == ["1", "2"]
    raw = scipy.io.loadmat(tmp_path / "1.mat")
    first_video = int(raw["vids"][0, 0])
    expected = raw["dis_label"][first_video] / raw["dis_label"][first_video].sum()
    assert np.allclose(data.target[0], expected)


def test_dmer_errors_name_the_file_and_the_problem(tmp_path):
    scipy.io.savemat(tmp_path / "bad.mat", {"feas": np.zeros((2, 150))})
    with pytest.raises(ValueError, match="bad.mat: not a DMER feature file, `dis_label` is missing"):
        load_dmer_subject(tmp_path / "bad.mat")
    with pytest.raises(ValueError, match="no DMER subject files"):
        load_dmer(tmp_path / "empty")


def test_recordings_join_streams_per_window_and_drop_quality_channels(tmp_path):
    rows = []
    for subject in ("S01", "S02"):
        for t in ("1.000000000", "2.000000000"):
            rows.append({"t": float(t), "stream": "eeg_de", "subject": subject,
                         "values": {f"c{i}": i + 0.5 for i in range(90)} | {"coverage": 1.0}})
            rows.append({"t": float(t), "stream": "gsr_features", "subject": subject,
                         "values": {f"g{i}": 1.0 for i in range(28)}})
            rows.append({"t": float(t), "stream": "ppg_features", "subject": subject,
                         "values": {f"p{i}": 1.0 for i in range(27)}})
            rows.append({"t": float(t), "stream": "face_features", "subject": subject,
                         "values": {"AU12_r_mean": None if t.startswith("2") and subject == "S02" else 1.0}})
            rows.append({"t": float(t), "stream": "emotion", "subject": subject,
                         "values": {"joy": 0.6, "fear": 0.2}})
    path = tmp_path / "rec.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    data = load_recording(path)
    assert len(data) == 3  # the window with a null face feature is left out
    assert data.eeg.shape == (3, 90) and data.video.shape == (3, 1)
    assert data.columns["eeg"][0] == "c0" and "coverage" not in data.columns["eeg"]
    assert data.labels == ["joy", "fear"]
    assert np.allclose(data.target, [[0.75, 0.25]] * 3)
