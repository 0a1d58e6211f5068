"""Loaders: DMER (.mat, as published), heloflow recordings (JSON Lines of features and ground truth).

Every loader returns a `Dataset`: per-window inputs for the four HeLo branches, target distributions
and the subject of each window, so that training and evaluation can split by subject.
"""

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: DMER `feas` column layout: EEG DE (18 x 5), GSR (28), PPG (27), then the video vector.
DMER_LAYOUT = {"eeg": (0, 90), "gsr": (90, 118), "ppg": (118, 145), "video": (145, None)}


@dataclass
class Dataset:
    """Windows of one or more subjects."""

    eeg: np.ndarray
    gsr: np.ndarray
    ppg: np.ndarray
    video: np.ndarray
    target: np.ndarray
    subjects: np.ndarray
    labels: list
    #: Channel labels of each input ("eeg", "gsr", "ppg", "video"), in column order.
    columns: dict

    def __len__(self):
        return len(self.target)

    def select(self, mask):
        """The windows where `mask` is true."""
        return Dataset(
            self.eeg[mask], self.gsr[mask], self.ppg[mask], self.video[mask],
            self.target[mask], self.subjects[mask], self.labels, self.columns,
        )

    def inputs(self):
        """The four model inputs in order."""
        return [self.eeg, self.gsr, self.ppg, self.video]

    @staticmethod
    def concatenate(parts):
        """One dataset from several with the same labels."""
        return Dataset(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in
              ("eeg", "gsr", "ppg", "video", "target", "subjects")),
            parts[0].labels, parts[0].columns,
        )


def load_dmer_subject(path, subject=None, labels=None):
    """One DMER subject file (`feas`, `dis_label`, `vids`), as the published features are stored.

    `dis_label[v]` holds the annotation counts of video `v`; they are normalised to a distribution and
    each window takes the distribution of its video (`vids`).
    """
    import scipy.io

    path = Path(path)
    data = scipy.io.loadmat(path)
    for key in ("feas", "dis_label", "vids"):
        if key not in data:
            raise ValueError(f"{path}: not a DMER feature file, `{key}` is missing")
    feas = np.asarray(data["feas"], dtype=np.float64)
    if feas.ndim != 2 or feas.shape[1] <= DMER_LAYOUT["video"][0]:
        raise ValueError(f"{path}: `feas` must be [windows, >145], found {feas.shape}")
    videos = np.asarray(data["vids"]).reshape(-1).astype(int)
    counts = np.asarray(data["dis_label"], dtype=np.float64)
    if videos.min() < 0 or videos.max() >= len(counts):
        raise ValueError(f"{path}: `vids` refers to videos outside `dis_label` (0..{len(counts) - 1})")
    target = counts[videos]
    target = target / target.sum(axis=1, keepdims=True)
    part = {name: feas[:, a:b] for name, (a, b) in DMER_LAYOUT.items()}
    subject = subject if subject is not None else path.stem
    n_labels = target.shape[1]
    columns = {name: [f"{name}_{i}" for i in range(x.shape[1])] for name, x in part.items()}
    return Dataset(
        part["eeg"], part["gsr"], part["ppg"], part["video"], target,
        np.array([str(subject)] * len(target)), labels or [f"emotion_{i}" for i in range(n_labels)],
        columns,
    )


def load_dmer(directory, labels=None):
    """Every `*.mat` subject file of a DMER feature directory."""
    files = sorted(Path(directory).glob("*.mat"))
    if not files:
        raise ValueError(f"{directory}: no DMER subject files (*.mat)")
    return Dataset.concatenate([load_dmer_subject(f, labels=labels) for f in files])


#: Default stream names of a heloflow recording made with pipelines/helo-features.toml.
RECORDING_STREAMS = {
    "eeg": "eeg_de",
    "gsr": "gsr_features",
    "ppg": "ppg_features",
    "video": "face_features",
    "target": "emotion",
}


#: Window-quality channels of heloflow feature streams; they describe the data, they are not features.
QUALITY_CHANNELS = ("coverage", "nonfinite", "flat", "clipped")


def load_recording(path, streams=None, drop_channels=QUALITY_CHANNELS):
    """A heloflow JSON Lines recording: rows of feature streams and the ground-truth emotion stream.

    Windows are joined on (subject, timestamp); a window missing any stream, or holding a non-finite
    value, is left out. Quality channels (`coverage`, ...) are not model inputs.
    """
    streams = dict(RECORDING_STREAMS, **(streams or {}))
    wanted = {name: role for role, name in streams.items()}
    rows = defaultdict(dict)
    columns = {}
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not JSON: {error}") from None
            role = wanted.get(row.get("stream"))
            if role is None:
                continue
            values = row["values"]
            if isinstance(values, dict):
                keys = [k for k in values if k not in drop_channels]
                columns.setdefault(role, keys)
                values = [values[k] for k in columns[role]]
            rows[(row["subject"], row["t"])][role] = values
    missing = [role for role in streams if role not in columns and role in wanted.values()]
    if missing:
        raise ValueError(f"{path}: no rows for {', '.join(streams[r] for r in missing)}")
    keys = sorted(k for k, v in rows.items() if len(v) == len(streams))
    arrays = {role: [] for role in streams}
    subjects = []
    for key in keys:
        window = rows[key]
        vectors = {role: np.array([np.nan if v is None else v for v in window[role]], dtype=np.float64)
                   for role in streams}
        if all(np.all(np.isfinite(v)) for v in vectors.values()):
            for role, vector in vectors.items():
                arrays[role].append(vector)
            subjects.append(key[0])
    if not subjects:
        raise ValueError(f"{path}: no complete windows")
    target = np.stack(arrays["target"])
    target = np.clip(target, 0, None)
    target = target / target.sum(axis=1, keepdims=True)
    return Dataset(
        np.stack(arrays["eeg"]), np.stack(arrays["gsr"]), np.stack(arrays["ppg"]),
        np.stack(arrays["video"]), target, np.array(subjects), list(columns["target"]),
        {role: list(columns[role]) for role in ("eeg", "gsr", "ppg", "video")},
    )
