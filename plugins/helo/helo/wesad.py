"""WESAD loader: the published subject pickles (`S<n>/S<n>.pkl`) as HeLo windows and label distributions.

WESAD (Schmidt et al., ICMI 2018) stores one Python 2 pickle per subject: a dict with `subject`,
`signal` = {`chest`: RespiBAN `ACC` (N, 3), `ECG`, `EMG`, `EDA`, `Temp`, `Resp` (N, 1), all 700 Hz;
`wrist`: Empatica E4 `ACC` (n, 3) 32 Hz, `BVP` (n, 1) 64 Hz, `EDA` (n, 1) 4 Hz, `TEMP` (n, 1) 4 Hz}
and `label` (N,) at 700 Hz (0 transient, 1 baseline, 2 stress, 3 amusement, 4 meditation, 5-7 ignore).

Windows of 5 s slide by 1 s from the start of the recording (the wrist EDA 4 Hz clock: window k covers
[k, k + 5) s on every device). Per window:
- target: the fraction of each condition among the window's samples labelled 1-4 (windows with none are
  left out), a distribution over `baseline, stress, amusement, meditation`;
- "eeg" branch: DMER differential entropy (five bands) of the 8 chest channels ECG, EMG, EDA, Temp, Resp,
  ACC x/y/z over the window's last second (as DMER pairs the EEG second ending with the GSR window),
  DMER's formula at fs = 700 with a 1024-point FFT (see `differential_entropy`);
- "gsr": DMER's 28 GSR features of the wrist EDA (4 Hz); "ppg": DMER's 27 PPG features of the wrist BVP
  (64 Hz, order-3 Butterworth 0.5-8 Hz band-pass, filtfilt over the whole recording);
- "video" (behavioural): mean and std of each wrist ACC axis (32 Hz).
The feature definitions are DMER's (fixtures/features/dmer_reference.py; the tests compare against it).
Pickles can run code when loaded: load only the published files.
"""

import pickle
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import signal

from .data import Dataset

#: The four study conditions, in target column order (WESAD label ids 1-4).
WESAD_LABELS = ["baseline", "stress", "amusement", "meditation"]

#: DMER's EEG bands (Hz), used for the chest channels' differential entropy.
BANDS = [("delta", 1, 4), ("theta", 4, 8), ("alpha", 8, 14), ("beta", 14, 31), ("gamma", 31, 49)]

CHEST_HZ, WRIST_EDA_HZ, WRIST_BVP_HZ, WRIST_ACC_HZ = 700, 4, 64, 32
WINDOW_S, HOP_S = 5, 1

#: FFT length of the chest differential entropy: the smallest power of two holding a whole 1 s window at
#: 700 Hz, so that nothing is cropped and round(fs / n) = 1 keeps DMER's constant term 0.5 ln(2 pi e).
CHEST_NFFT = 1024

#: Published sensors: (device, name, columns, sampling rate in Hz).
SENSORS = [
    ("chest", "ACC", 3, CHEST_HZ), ("chest", "ECG", 1, CHEST_HZ), ("chest", "EMG", 1, CHEST_HZ),
    ("chest", "EDA", 1, CHEST_HZ), ("chest", "Temp", 1, CHEST_HZ), ("chest", "Resp", 1, CHEST_HZ),
    ("wrist", "ACC", 3, WRIST_ACC_HZ), ("wrist", "BVP", 1, WRIST_BVP_HZ),
    ("wrist", "EDA", 1, WRIST_EDA_HZ), ("wrist", "TEMP", 1, WRIST_EDA_HZ),
]

#: Chest channels of the "eeg" branch, in column order.
CHEST_CHANNELS = ["ECG", "EMG", "EDA", "Temp", "Resp", "ACC_x", "ACC_y", "ACC_z"]

STAT_NAMES = ["median", "mean", "std", "min", "max", "minratio", "maxratio"]
SPECTRUM_NAMES = ["median", "mean", "std", "min", "max", "range"]


def differential_entropy(raw, fs, nfft, chunk=512):
    """DMER's EEG differential entropy of consecutive 1 s windows: raw (channels, samples) -> (windows, channels * 5).

    Per window: times a symmetric Hann window, `np.fft.fft(., n=nfft)`, |X[0:nfft/2]|, band power =
    mean |X[k]|^2 for k = floor(lo/fs*nfft) ..= floor(hi/fs*nfft), DE = 0.5 ln(power) + 0.5 ln(2 pi e /
    round(fs/nfft)); columns channel-major (ch0 delta..gamma, ch1 ...). DMER uses fs = 300, nfft = 256.
    """
    n_channels, n_samples = raw.shape
    count = n_samples // fs
    taper = signal.windows.hann(fs)
    ranges = [(int(np.floor(lo / fs * nfft)), int(np.floor(hi / fs * nfft))) for _, lo, hi in BANDS]
    power = np.empty((count, n_channels, len(BANDS)))
    for first in range(0, count, chunk):
        last = min(first + chunk, count)
        windows = raw[:, first * fs:last * fs].reshape(n_channels, last - first, fs).transpose(1, 0, 2)
        energy = np.abs(np.fft.fft(windows * taper, n=nfft)[..., :nfft // 2]) ** 2
        for b, (start, end) in enumerate(ranges):
            power[first:last, :, b] = energy[..., start:end + 1].mean(axis=-1)
    with np.errstate(divide="ignore"):
        de = 0.5 * np.log(power) + 0.5 * np.log(2 * np.pi * np.e / round(fs / nfft))
    return de.reshape(count, -1)


def sliding(x, fs, window_s=WINDOW_S, hop_s=HOP_S):
    """Windows of `window_s` seconds every `hop_s` seconds along the first axis: (windows, ..., samples)."""
    per_window = int(fs * window_s)
    if len(x) < per_window:
        return np.empty((0,) + x.shape[1:] + (per_window,))
    return sliding_window_view(x, per_window, axis=0)[::int(fs * hop_s)]


def statistics(windows):
    """DMER's `statisfeatures` of each row: median, mean, std, min, max, fractions equal to min and max."""
    lo = windows.min(axis=1, keepdims=True)
    hi = windows.max(axis=1, keepdims=True)
    n = windows.shape[1]
    return np.column_stack([
        np.median(windows, axis=1), windows.mean(axis=1), windows.std(axis=1), lo[:, 0], hi[:, 0],
        (windows == lo).sum(axis=1) / n, (windows == hi).sum(axis=1) / n,
    ])


def spectrum_statistics(windows):
    """DMER's `freqfeatures` of each row on the complex FFT (numpy orders complex numbers real part first)."""
    spectrum = np.fft.fft(windows, axis=1)
    lo, hi = spectrum.min(axis=1), spectrum.max(axis=1)
    return np.column_stack([
        np.median(spectrum, axis=1), spectrum.mean(axis=1), spectrum.std(axis=1), lo, hi, hi - lo,
    ])


def peripheral_features(windows, welch_fs=None):
    """DMER's GSR (`welch_fs` given: 28 values) or PPG (27 values) features of each row, real parts kept."""
    d1 = np.diff(windows, axis=1)
    parts = [statistics(windows), statistics(d1), statistics(np.diff(d1, axis=1)),
             spectrum_statistics(windows)]
    if welch_fs is not None:
        _, psd = signal.welch(windows, welch_fs, nperseg=min(256, windows.shape[1]), axis=1)
        parts.append(psd.mean(axis=1, keepdims=True))
    return np.column_stack(parts).real


def ppg_bandpass(x, fs):
    """DMER's PPG filter: order-3 Butterworth 0.5-8 Hz band-pass (b, a form), filtfilt."""
    nyq = 0.5 * fs
    b, a = signal.butter(3, [0.5 / nyq, 8 / nyq], btype="band")
    return signal.filtfilt(b, a, x)


def peripheral_columns(prefix, welch):
    """Feature names as heloflow's `gsr_features`/`ppg_features` operators label them."""
    names = [f"{prefix}_{part}{stat}" for part in ("", "d1_", "d2_") for stat in STAT_NAMES]
    names += [f"{prefix}_fft_{stat}" for stat in SPECTRUM_NAMES]
    return names + ([f"{prefix}_psd_mean"] if welch else [])


#: Column names of the four branches.
COLUMNS = {
    "eeg": [f"chest_{c}_de_{band}" for c in CHEST_CHANNELS for band, _, _ in BANDS],
    "gsr": peripheral_columns("gsr", welch=True),
    "ppg": peripheral_columns("ppg", welch=False),
    "video": [f"wrist_ACC_{axis}_{stat}" for axis in "xyz" for stat in ("mean", "std")],
}


def read_pickle(path):
    """The subject dict of a WESAD pickle, its sensors checked: {(device, name): array}, label, subject."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = pickle.load(handle, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, KeyError, TypeError,
            ValueError) as error:
        raise ValueError(f"{path}: not a WESAD subject pickle ({type(error).__name__}: {error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a WESAD subject file, expected a dict, found {type(data).__name__}")
    for key in ("signal", "label"):
        if key not in data:
            raise ValueError(f"{path}: not a WESAD subject file, `{key}` is missing")
    label = np.asarray(data["label"])
    if label.ndim == 2 and label.shape[1] == 1:
        label = label[:, 0]
    if label.ndim != 1:
        raise ValueError(f"{path}: `label` must be (samples,), found {label.shape}")
    sensors = {}
    for device, name, width, fs in SENSORS:
        where = f"signal/{device}/{name}"
        group = data["signal"].get(device) if isinstance(data["signal"], dict) else None
        if not isinstance(group, dict):
            raise ValueError(f"{path}: not a WESAD subject file, `signal/{device}` is missing")
        if name not in group:
            raise ValueError(f"{path}: not a WESAD subject file, `{where}` is missing")
        values = np.asarray(group[name], dtype=np.float64)
        if width == 1 and values.ndim == 1:
            values = values[:, None]
        if values.ndim != 2 or values.shape[1] != width:
            raise ValueError(f"{path}: `{where}` must be (samples, {width}), found {values.shape}")
        if device == "chest" and len(values) != len(label):
            raise ValueError(f"{path}: `{where}` has {len(values)} samples but `label` has {len(label)} "
                             f"(both are {CHEST_HZ} Hz)")
        sensors[(device, name)] = values
    subject = data.get("subject")
    if isinstance(subject, bytes):
        subject = subject.decode("latin1")
    subject = subject if isinstance(subject, str) and subject else path.stem
    return sensors, label, subject


def condition_fractions(label, count):
    """Per window: counts of the conditions 1-4 among its samples -> (fractions, labelled sample count)."""
    per_window, step = CHEST_HZ * WINDOW_S, CHEST_HZ * HOP_S
    starts = np.arange(count) * step
    counts = np.empty((count, len(WESAD_LABELS)))
    for column, condition in enumerate(range(1, len(WESAD_LABELS) + 1)):
        cumulative = np.concatenate([[0], np.cumsum(label == condition)])
        counts[:, column] = cumulative[starts + per_window] - cumulative[starts]
    labelled = counts.sum(axis=1)
    with np.errstate(invalid="ignore"):
        return counts / labelled[:, None], labelled


def load_wesad_subject(path):
    """One WESAD subject pickle as a `Dataset`.

    Windows holding no sample labelled 1-4, or a non-finite feature, are left out.
    """
    path = Path(path)
    sensors, label, subject = read_pickle(path)
    used = {"label": (len(label), CHEST_HZ)}
    used.update({f"signal/wrist/{name}": (len(sensors[("wrist", name)]), fs)
                 for name, fs in (("EDA", WRIST_EDA_HZ), ("BVP", WRIST_BVP_HZ), ("ACC", WRIST_ACC_HZ))})
    count = min((n - WINDOW_S * fs) // (HOP_S * fs) + 1 for n, fs in used.values())
    if count <= 0:
        shortest = min(used, key=lambda key: used[key][0] / used[key][1])
        n, fs = used[shortest]
        raise ValueError(f"{path}: `{shortest}` lasts {n / fs:.2f} s, shorter than one {WINDOW_S} s window")
    target, labelled = condition_fractions(label, count)

    chest = sensors[("chest", "ACC")]
    raw = np.column_stack([sensors[("chest", c)] for c in CHEST_CHANNELS[:5]] + [chest])
    last_second = (WINDOW_S - HOP_S) * CHEST_HZ
    eeg = differential_entropy(raw[last_second:last_second + count * CHEST_HZ].T, CHEST_HZ, CHEST_NFFT)
    gsr = peripheral_features(sliding(sensors[("wrist", "EDA")][:, 0], WRIST_EDA_HZ)[:count], WRIST_EDA_HZ)
    bvp = ppg_bandpass(sensors[("wrist", "BVP")][:, 0], WRIST_BVP_HZ)
    ppg = peripheral_features(sliding(bvp, WRIST_BVP_HZ)[:count])
    acc = sliding(sensors[("wrist", "ACC")], WRIST_ACC_HZ)[:count]
    video = np.stack([acc.mean(axis=2), acc.std(axis=2)], axis=2).reshape(count, -1)

    keep = labelled > 0
    for x in (eeg, gsr, ppg, video):
        keep &= np.isfinite(x).all(axis=1)
    if not keep.any():
        raise ValueError(f"{path}: no {WINDOW_S} s window holds a sample labelled 1-4 "
                         f"({', '.join(WESAD_LABELS)}) with finite features")
    return Dataset(
        eeg[keep], gsr[keep], ppg[keep], video[keep], target[keep],
        np.array([subject] * int(keep.sum())), list(WESAD_LABELS), {k: list(v) for k, v in COLUMNS.items()},
    )


def load_wesad(directory):
    """Every subject of a WESAD directory (`S*/S*.pkl`, as published)."""
    files = [f for f in Path(directory).glob("S*/S*.pkl") if f.stem == f.parent.name]
    files.sort(key=lambda f: (len(f.stem), f.stem))
    if not files:
        raise ValueError(f"{directory}: no WESAD subject files (S*/S*.pkl)")
    return Dataset.concatenate([load_wesad_subject(f) for f in files])
