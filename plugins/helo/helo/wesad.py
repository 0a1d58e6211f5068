"""WESAD loader: the published subject files (`S<n>/S<n>.pkl`, `S<n>/S<n>_quest.csv`) as HeLo windows.

WESAD (Schmidt et al., ICMI 2018) stores one Python 2 pickle per subject: a dict with `subject`,
`signal` = {`chest`: RespiBAN `ACC` (N, 3), `ECG`, `EMG`, `EDA`, `Temp`, `Resp` (N, 1), all 700 Hz;
`wrist`: Empatica E4 `ACC` (n, 3) 32 Hz, `BVP` (n, 1) 64 Hz, `EDA` (n, 1) 4 Hz, `TEMP` (n, 1) 4 Hz}
and `label` (N,) at 700 Hz (0 transient, 1 baseline, 2 stress, 3 amusement, 4 meditation, 5-7 ignore).
Beside it, `S<n>_quest.csv` holds the protocol schedule and the self-reports filled in after each
condition (`read_quest` describes the layout).

Windows of 5 s slide by 1 s from the start of the recording (the wrist EDA 4 Hz clock: window k covers
[k, k + 5) s on every device). Per window:
- target, one of two tasks (`WESAD_TARGETS`):
  - "self_report" (default, label distribution learning): each study condition's self-report becomes
    a distribution over `SELF_REPORT_LABELS` (`self_report_distribution`); a window takes the mix of
    the distributions of the conditions its samples belong to, weighted by sample count;
  - "condition" (classification): the fraction of each condition among the window's samples labelled
    1-4, over `WESAD_LABELS`;
  windows holding no sample labelled 1-4 are left out in both tasks;
- "eeg" branch (WESAD has no EEG): differential entropy of the chest ECG and EMG in five bands each
  where the signal carries power (`CHEST_BANDS`, `band_differential_entropy`), over the whole window;
- "gsr": DMER's 28 GSR features of the wrist EDA (4 Hz); "ppg": DMER's 27 PPG features of the wrist BVP
  (64 Hz, order-3 Butterworth 0.5-8 Hz band-pass, filtfilt over the whole recording);
- "video" (behavioural): mean and std of each wrist ACC axis (32 Hz).
Windows with a non-finite feature are left out, counted per branch and reported (`WindowReport`, and
a `WesadWarning`). The GSR/PPG definitions are DMER's (fixtures/features/dmer_reference.py;
the tests compare against it). Pickles can run code when loaded: load only the published files.
"""

import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import signal

from .data import Dataset

#: The four study conditions, in target column order of the "condition" task (WESAD label ids 1-4).
WESAD_LABELS = ["baseline", "stress", "amusement", "meditation"]

#: Target tasks: distributions from the self-reports (default), or the protocol condition fractions.
WESAD_TARGETS = ("self_report", "condition")

CHEST_HZ, WRIST_EDA_HZ, WRIST_BVP_HZ, WRIST_ACC_HZ = 700, 4, 64, 32
WINDOW_S, HOP_S = 5, 1

#: Published sensors: (device, name, columns, sampling rate in Hz).
SENSORS = [
    ("chest", "ACC", 3, CHEST_HZ), ("chest", "ECG", 1, CHEST_HZ), ("chest", "EMG", 1, CHEST_HZ),
    ("chest", "EDA", 1, CHEST_HZ), ("chest", "Temp", 1, CHEST_HZ), ("chest", "Resp", 1, CHEST_HZ),
    ("wrist", "ACC", 3, WRIST_ACC_HZ), ("wrist", "BVP", 1, WRIST_BVP_HZ),
    ("wrist", "EDA", 1, WRIST_EDA_HZ), ("wrist", "TEMP", 1, WRIST_EDA_HZ),
]

#: The "eeg" branch: chest channels and their five bands (Hz, [lo, hi)) where each carries power.
#: ECG: heart-rate fundamental and harmonics with the P/T waves (1-4, 4-8), the QRS complex (8-16,
#: 16-32) and its high-frequency tail below the 50 Hz mains (32-45). EMG (surface): its
#: 20-350 Hz band, split at the mains harmonics, up to the 350 Hz Nyquist frequency.
CHEST_BANDS = {
    "ECG": [(1, 4), (4, 8), (8, 16), (16, 32), (32, 45)],
    "EMG": [(20, 50), (50, 100), (100, 150), (150, 250), (250, 350)],
}

#: Mains frequency (WESAD was recorded in Germany) and the half-width of the guard band: frequencies
#: within MAINS_GUARD_HZ of a mains harmonic (50, 100, ... Hz) count towards no band.
MAINS_HZ, MAINS_GUARD_HZ = 50, 2

STAT_NAMES = ["median", "mean", "std", "min", "max", "minratio", "maxratio"]
SPECTRUM_NAMES = ["median", "mean", "std", "min", "max", "range"]

#: WESAD's PANAS items in file order (1 = not at all .. 5 = extremely). The questionnaire after the
#: stress condition (TSST) also asks "Angry" and "Irritated", before "Sad": 26 answers instead of 24.
PANAS_ITEMS = [
    "Active", "Distressed", "Interested", "Inspired", "Annoyed", "Strong", "Guilty", "Scared", "Hostile",
    "Excited", "Proud", "Irritable", "Enthusiastic", "Ashamed", "Alert", "Nervous", "Determined",
    "Attentive", "Jittery", "Afraid", "Stressed", "Frustrated", "Happy", "Sad",
]
PANAS_STRESS_ITEMS = PANAS_ITEMS[:-1] + ["Angry", "Irritated", "Sad"]

#: WESAD's six STAI (state anxiety) items in file order (1 = not at all .. 4 = very much so).
STAI_ITEMS = ["at ease", "nervous", "jittery", "relaxed", "worried", "pleasant"]

#: SAM ratings of a `# DIM` row in file order (1-9).
SAM_ITEMS = ["valence", "arousal"]

#: Answer scale (minimum, maximum) of each questionnaire.
SCALES = {"PANAS": (1, 5), "STAI": (1, 4), "DIM": (1, 9)}

#: The self-report labels and the questionnaire items that measure each, (questionnaire, item).
#: The groups are the PANAS-X specific affect scales (Watson & Clark 1994) that WESAD's items cover;
#: an item of a PANAS-X scale goes to that scale, the others (WESAD's additions and the general
#: PA/NA items) to the scale of the same meaning; the STAI's anxiety-absent items are PANAS-X's
#: serenity items (at ease, relaxed) and the STAI's anxiety-present items join fear. Every PANAS and
#: STAI item is used exactly once; SAM is not used (see `self_report_distribution`).
SELF_REPORT_ITEMS = {
    "joviality": [("PANAS", "Happy"), ("PANAS", "Excited"), ("PANAS", "Enthusiastic"), ("PANAS", "Inspired")],
    "self_assurance": [("PANAS", "Proud"), ("PANAS", "Strong")],
    "attentiveness": [("PANAS", "Alert"), ("PANAS", "Attentive"), ("PANAS", "Determined"),
                      ("PANAS", "Interested"), ("PANAS", "Active")],
    "serenity": [("STAI", "at ease"), ("STAI", "relaxed"), ("STAI", "pleasant")],
    "fear": [("PANAS", "Afraid"), ("PANAS", "Scared"), ("PANAS", "Nervous"), ("PANAS", "Jittery"),
             ("PANAS", "Distressed"), ("PANAS", "Stressed"),
             ("STAI", "nervous"), ("STAI", "jittery"), ("STAI", "worried")],
    "hostility": [("PANAS", "Hostile"), ("PANAS", "Irritable"), ("PANAS", "Angry"), ("PANAS", "Annoyed"),
                  ("PANAS", "Frustrated"), ("PANAS", "Irritated")],
    "guilt": [("PANAS", "Guilty"), ("PANAS", "Ashamed")],
    "sadness": [("PANAS", "Sad")],
}

#: The "self_report" task's labels, in target column order.
SELF_REPORT_LABELS = list(SELF_REPORT_ITEMS)

#: Study conditions of an `# ORDER` row (lower case, spaces removed) and their WESAD label ids.
STUDY_CONDITIONS = {"base": 1, "tsst": 2, "fun": 3, "medi1": 4, "medi2": 4}

#: Reading tasks of an `# ORDER` row: scheduled, but without a questionnaire and not labelled 1-4
#: (the WESAD readme says to ignore them).
READING_TASKS = {"bread", "fread", "sread"}


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


def band_differential_entropy(windows, fs, bands, chunk=256):
    """Differential entropy of each band of each row: (windows, samples) -> (windows, len(bands)).

    Band power P = the Welch power spectral density (1 s Hann segments, half overlap, mean removed)
    summed over the band's bins lo <= f < hi, times the bin width, bins within MAINS_GUARD_HZ of a
    mains harmonic left out; DE = 0.5 ln(2 pi e P), the entropy (nats) of a Gaussian signal of that
    variance, the quantity DMER's EEG differential entropy estimates. A band without power (a flat
    or zeroed stretch) gives -inf, which the loader counts and reports.
    """
    nperseg = int(fs)
    freqs = np.fft.rfftfreq(nperseg, 1 / fs)
    harmonic = np.round(freqs / MAINS_HZ)
    clean = ~((harmonic >= 1) & (np.abs(freqs - harmonic * MAINS_HZ) <= MAINS_GUARD_HZ))
    masks = np.array([(freqs >= lo) & (freqs < hi) & clean for lo, hi in bands], dtype=np.float64)
    power = np.empty((len(windows), len(bands)))
    for first in range(0, len(windows), chunk):
        _, psd = signal.welch(windows[first:first + chunk], fs, nperseg=nperseg, axis=-1)
        power[first:first + chunk] = psd @ masks.T * (freqs[1] - freqs[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        return 0.5 * np.log(2 * np.pi * np.e * power)


def chest_features(sensors, count):
    """The "eeg" branch of `count` windows: DE of the chest ECG and EMG in their `CHEST_BANDS`.

    Each channel is one HeLo EEG "channel" of five bands, so the model sees 2 channels x 5. The whole
    5 s window is used, the span of the GSR/PPG/ACC features beside it.
    """
    parts = []
    for name, bands in CHEST_BANDS.items():
        windows = sliding(sensors[("chest", name)][:, 0], CHEST_HZ)[:count]
        parts.append(band_differential_entropy(windows, CHEST_HZ, bands))
    return np.column_stack(parts)


#: Column names of the four branches.
COLUMNS = {
    "eeg": [f"chest_{name}_de_{lo}_{hi}hz" for name, bands in CHEST_BANDS.items() for lo, hi in bands],
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


#: Row kinds of a quest.csv after its `# Subj` row.
QUEST_ROWS = ("# ORDER", "# START", "# END", "# PANAS", "# STAI", "# DIM", "# SSSQ")


@dataclass
class QuestCondition:
    """One study condition of a quest.csv: its schedule and its self-report."""

    #: As written in `# ORDER`, e.g. "Medi 1".
    name: str
    #: WESAD label id of the condition (1-4).
    label: int
    #: Schedule in seconds on the RespiBAN recording's clock (not the pickle's, which is a crop of it).
    start_s: int
    end_s: int
    #: {"PANAS": {item: answer}, "STAI": {...}, "DIM": {"valence": .., "arousal": ..}}; NaN = not answered.
    answers: dict
    #: Line of each questionnaire's row, for error messages.
    lines: dict


@dataclass
class Quest:
    """A subject's quest.csv."""

    path: Path
    subject: str
    #: The study conditions in `# ORDER` order, which is the order of the questionnaire rows.
    conditions: list
    #: The reading tasks (name, start_s, end_s): scheduled, without questionnaire, not used.
    readings: list
    #: The `# SSSQ` answers (after the stress condition), not used; empty when the row is absent.
    sssq: list


def minutes_seconds(text):
    """Seconds of a quest.csv time written `minutes.seconds`: "7.08" is 7 min 8 s, and since the
    writer drops a trailing zero, "50.3" is 50 min 30 s; "12" is 12 min."""
    match = re.fullmatch(r"(\d+)(?:\.(\d{1,2}))?", text)
    if match is None:
        raise ValueError(f"`{text}` is not minutes.seconds")
    seconds = int((match.group(2) or "0").ljust(2, "0"))
    if seconds >= 60:
        raise ValueError(f"`{text}` has {seconds} seconds")
    return 60 * int(match.group(1)) + seconds


def read_quest(path):
    """A WESAD `S<n>_quest.csv`: the schedule and self-reports of each study condition.

    The published layout (semicolon-separated; rows padded with empty cells; blank rows between
    blocks):
        # Subj;S2                            (some files write `# Subj:`)
        # ORDER;Base;TSST;Medi 1;Fun;Medi 2;sRead;fRead
                   the five study conditions in the order run, then reading tasks (bRead/fRead/sRead)
        # START;7.08;39.55;...               minutes.seconds of each entry of ORDER
        # END;26.32;50.3;...
        # PANAS;...   one row per study condition, in ORDER order: 24 answers 1-5 (26 after the TSST)
        # STAI;...    one row per study condition: 6 answers 1-4
        # DIM;...     one row per study condition: SAM valence, arousal, 1-9
        # SSSQ;...    the stress-state questionnaire after the TSST (one row)
    An answer may be `Nan` (not answered). A file that is missing or does not fit raises ValueError
    naming the file and line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ValueError(f"{path}: missing; the self_report target reads each subject's quest.csv "
                         f"(target=\"condition\" does not)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not readable ({error})") from None
    subject, rows = None, {kind: [] for kind in QUEST_ROWS}
    for number, line in enumerate(text.splitlines(), 1):
        cells = [cell.strip() for cell in line.split(";")]
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            continue
        if subject is None:
            if not re.fullmatch(r"# Subj:?", cells[0]):
                raise ValueError(f"{path}:{number}: expected the `# Subj` row first, found `{cells[0]}`")
            subject = cells[1] if len(cells) > 1 else ""
        elif cells[0] in rows:
            rows[cells[0]].append((number, cells[1:]))
        else:
            raise ValueError(f"{path}:{number}: unknown row `{cells[0]}` (expected {', '.join(QUEST_ROWS)})")
    if subject is None:
        raise ValueError(f"{path}: empty, expected the `# Subj` row first")
    study, readings = _schedule(path, rows)
    conditions = []
    for kind in ("# PANAS", "# STAI", "# DIM"):
        if len(rows[kind]) != len(study):
            raise ValueError(f"{path}: {len(rows[kind])} `{kind}` rows for {len(study)} study conditions "
                             f"({', '.join(name for name, *_ in study)}); expected one per condition, in "
                             f"`# ORDER` order")
    for index, (name, label, start, end) in enumerate(study):
        answers, lines = {}, {}
        for questionnaire in SCALES:
            number, cells = rows[f"# {questionnaire}"][index]
            answers[questionnaire] = _answers(path, number, questionnaire, name, cells)
            lines[questionnaire] = number
        conditions.append(QuestCondition(name, label, start, end, answers, lines))
    if len(rows["# SSSQ"]) > 1:
        raise ValueError(f"{path}:{rows['# SSSQ'][1][0]}: a second `# SSSQ` row (the SSSQ is asked once)")
    sssq = []
    for number, cells in rows["# SSSQ"]:
        sssq = [_number(path, number, "`# SSSQ` row", f"answer {i}", cell) for i, cell in enumerate(cells, 1)]
    return Quest(path, subject, conditions, readings, sssq)


def _schedule(path, rows):
    """The study conditions (name, label id, start s, end s) and reading tasks of ORDER/START/END."""
    for kind in ("# ORDER", "# START", "# END"):
        if len(rows[kind]) != 1:
            raise ValueError(f"{path}: expected one `{kind}` row, found {len(rows[kind])}")
    order_line, names = rows["# ORDER"][0]
    start_line, starts = rows["# START"][0]
    end_line, ends = rows["# END"][0]
    if not len(names) == len(starts) == len(ends):
        raise ValueError(f"{path}:{order_line}: `# ORDER` lists {len(names)} entries, `# START` (line "
                         f"{start_line}) {len(starts)} and `# END` (line {end_line}) {len(ends)}")
    study, readings, seen = [], [], set()
    for column, (name, start_text, end_text) in enumerate(zip(names, starts, ends), 2):
        key = name.lower().replace(" ", "")
        if key not in STUDY_CONDITIONS and key not in READING_TASKS:
            raise ValueError(f"{path}:{order_line}: unknown condition `{name}` in column {column} (expected "
                             f"Base, TSST, Fun, Medi 1, Medi 2 or a reading task bRead, fRead, sRead)")
        if key in seen:
            raise ValueError(f"{path}:{order_line}: `{name}` is listed twice")
        seen.add(key)
        times = []
        for line, kind, text in ((start_line, "# START", start_text), (end_line, "# END", end_text)):
            try:
                times.append(minutes_seconds(text))
            except ValueError as error:
                raise ValueError(f"{path}:{line}: `{kind}` of {name} (column {column}): {error}") from None
        if times[1] <= times[0]:
            raise ValueError(f"{path}:{end_line}: `{name}` ends ({end_text}) no later than it starts "
                             f"({start_text})")
        if key in STUDY_CONDITIONS:
            study.append((name, STUDY_CONDITIONS[key], *times))
        else:
            readings.append((name, *times))
    if not study:
        raise ValueError(f"{path}:{order_line}: `# ORDER` lists no study condition")
    return study, readings


def _answers(path, number, questionnaire, condition, cells):
    """One questionnaire row of a condition as {item: answer}, each checked against its scale."""
    if questionnaire == "PANAS":
        items = {len(PANAS_ITEMS): PANAS_ITEMS, len(PANAS_STRESS_ITEMS): PANAS_STRESS_ITEMS}.get(len(cells))
        expected = f"{len(PANAS_ITEMS)} (or {len(PANAS_STRESS_ITEMS)} after the TSST)"
    else:
        items = STAI_ITEMS if questionnaire == "STAI" else SAM_ITEMS
        items, expected = (items if len(cells) == len(items) else None), str(len(items))
    kind = f"# {questionnaire}"
    if items is None:
        raise ValueError(f"{path}:{number}: `{kind}` row of {condition} has {len(cells)} answers, expected "
                         f"{expected}")
    lo, hi = SCALES[questionnaire]
    answers = {}
    for item, cell in zip(items, cells):
        value = _number(path, number, f"`{kind}` row of {condition}", item, cell)
        if not (np.isnan(value) or lo <= value <= hi):
            raise ValueError(f"{path}:{number}: `{kind}` row of {condition}: {item} = {cell} is outside the "
                             f"{lo}-{hi} scale")
        answers[item] = value
    return answers


def _number(path, number, where, item, cell):
    """A quest.csv answer: a number, or NaN for `Nan` (not answered)."""
    if cell.lower() == "nan":
        return np.nan
    try:
        return float(cell)
    except ValueError:
        raise ValueError(f"{path}:{number}: {where}: {item} is `{cell}`, not a number or `Nan`") from None


def self_report_distribution(condition):
    """One condition's self-report as a distribution over `SELF_REPORT_LABELS`, and whether it is uniform
    because every PANAS and STAI answer sits at its scale minimum.

    Each answer becomes a weight above its scale minimum, (answer - min) / (max - min), in [0, 1]: 0 is
    "not at all", 1 the top of the scale, so the 1-5 PANAS and the 1-4 STAI weigh alike. A label's
    intensity is the mean weight of its items (`SELF_REPORT_ITEMS`) that the condition's questionnaire
    asked and the subject answered (the 24-item PANAS has no Angry/Irritated; `Nan` is skipped); a
    label none of whose items was answered raises ValueError. The distribution is the intensities
    over their sum. A report at the minimum on every item ranks no label above another: uniform.
    SAM valence/arousal are read but not used: they are bipolar dimensions, not the intensity of one
    of these labels.
    """
    intensities = []
    for label, items in SELF_REPORT_ITEMS.items():
        weights = []
        for questionnaire, item in items:
            value = condition.answers[questionnaire].get(item, np.nan)
            if not np.isnan(value):
                lo, hi = SCALES[questionnaire]
                weights.append((value - lo) / (hi - lo))
        if not weights:
            lines = ", ".join(f"{q} line {condition.lines[q]}" for q in sorted({q for q, _ in items}))
            raise ValueError(f"{condition.name} ({lines}): no item of {label} "
                             f"({', '.join(item for _, item in items)}) is answered")
        intensities.append(np.mean(weights))
    intensities = np.array(intensities)
    if intensities.sum() == 0:
        return np.full(len(intensities), 1 / len(intensities)), True
    return intensities / intensities.sum(), False


def condition_segments(label, quest, path):
    """Per 700 Hz sample: the index in `quest.conditions` of the study condition it belongs to, or -1.

    The pickle's label (1-4) draws the boundaries: quest.csv's START/END are on the raw RespiBAN clock,
    of which the pickle is a crop, so they do not locate samples of the pickle. The runs of one label
    id (samples labelled 0 or 5-7 in between do not split a run) are matched, in time order, with the
    study conditions ordered by START; both must name the same conditions (Medi 1 and Medi 2 are then
    told apart by their place).
    """
    labelled = np.flatnonzero((label >= 1) & (label <= len(WESAD_LABELS)))
    values = np.asarray(label[labelled], dtype=int)
    first = np.diff(values, prepend=-1) != 0  # the first sample of each run
    run = np.cumsum(first) - 1
    run_labels = values[first].tolist()
    chronological = sorted(range(len(quest.conditions)), key=lambda i: quest.conditions[i].start_s)
    expected = [quest.conditions[i].label for i in chronological]
    if run_labels != expected:
        found = ", ".join(WESAD_LABELS[v - 1] for v in run_labels) or "none"
        listed = ", ".join(f"{quest.conditions[i].name} ({WESAD_LABELS[quest.conditions[i].label - 1]})"
                           for i in chronological)
        raise ValueError(f"{path}: the labelled runs ({found}) do not match the study conditions of "
                         f"{quest.path} in START order ({listed})")
    segment = np.full(len(label), -1)
    segment[labelled] = np.asarray(chronological, dtype=int)[run]
    return segment


def window_fractions(segment, n_segments, count):
    """Per window: the fraction of its samples in each segment 0..n-1 among those in any, and that count."""
    per_window, step = CHEST_HZ * WINDOW_S, CHEST_HZ * HOP_S
    starts = np.arange(count) * step
    counts = np.empty((count, n_segments))
    for column in range(n_segments):
        cumulative = np.concatenate([[0], np.cumsum(segment == column)])
        counts[:, column] = cumulative[starts + per_window] - cumulative[starts]
    labelled = counts.sum(axis=1)
    with np.errstate(invalid="ignore"):
        return counts / labelled[:, None], labelled


class WesadWarning(UserWarning):
    """Windows left out for non-finite features, or a self-report that ranks no label above another."""


@dataclass
class WindowReport:
    """What became of the windows of one subject, and why."""

    path: str
    #: 5 s windows of the recording.
    windows: int = 0
    #: Left out: no sample labelled 1-4.
    unlabelled: int = 0
    #: Per branch: labelled windows holding a non-finite value there (a window may count in several).
    nonfinite: dict = field(default_factory=dict)
    #: Labelled windows left out for a non-finite value in any branch.
    dropped_nonfinite: int = 0
    #: Windows in the dataset.
    kept: int = 0
    #: Study conditions whose self-report sits at the scale minimum on every item (uniform target).
    uniform: list = field(default_factory=list)


def quest_path(pickle_path):
    """The quest.csv beside a subject pickle: `S<n>/S<n>_quest.csv`."""
    pickle_path = Path(pickle_path)
    return pickle_path.with_name(f"{pickle_path.stem}_quest.csv")


def load_wesad_subject_report(path, target="self_report"):
    """One WESAD subject as a `Dataset`, with the `WindowReport` of its windows.

    `target` is "self_report" (distributions from `S<n>_quest.csv`, see `self_report_distribution`;
    a window mixes the distributions of the conditions of its samples by sample count) or "condition"
    (the fraction of each condition 1-4 among its samples). Windows holding no sample labelled 1-4 are
    left out; so are windows with a non-finite feature, counted per branch in the report.
    """
    if target not in WESAD_TARGETS:
        raise ValueError(f"unknown WESAD target `{target}` (expected one of {', '.join(WESAD_TARGETS)})")
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
    report = WindowReport(str(path), windows=int(count))
    if target == "self_report":
        quest = read_quest(quest_path(path))
        distributions = []
        for condition in quest.conditions:
            try:
                distribution, uniform = self_report_distribution(condition)
            except ValueError as error:
                raise ValueError(f"{quest.path}: {error}") from None
            distributions.append(distribution)
            if uniform:
                report.uniform.append(condition.name)
        segment = condition_segments(label, quest, path)
        fractions, labelled = window_fractions(segment, len(distributions), count)
        target_values, labels = fractions @ np.array(distributions), list(SELF_REPORT_LABELS)
    else:
        segment = np.where((label >= 1) & (label <= len(WESAD_LABELS)), label - 1, -1)
        target_values, labelled = window_fractions(segment, len(WESAD_LABELS), count)
        labels = list(WESAD_LABELS)

    branches = {"eeg": chest_features(sensors, count)}
    branches["gsr"] = peripheral_features(sliding(sensors[("wrist", "EDA")][:, 0], WRIST_EDA_HZ)[:count],
                                          WRIST_EDA_HZ)
    bvp = ppg_bandpass(sensors[("wrist", "BVP")][:, 0], WRIST_BVP_HZ)
    branches["ppg"] = peripheral_features(sliding(bvp, WRIST_BVP_HZ)[:count])
    acc = sliding(sensors[("wrist", "ACC")], WRIST_ACC_HZ)[:count]
    branches["video"] = np.stack([acc.mean(axis=2), acc.std(axis=2)], axis=2).reshape(count, -1)

    has_label = labelled > 0
    finite = np.ones(count, dtype=bool)
    for name, values in branches.items():
        branch_finite = np.isfinite(values).all(axis=1)
        report.nonfinite[name] = int((has_label & ~branch_finite).sum())
        finite &= branch_finite
    keep = has_label & finite
    report.unlabelled = int((~has_label).sum())
    report.dropped_nonfinite = int((has_label & ~finite).sum())
    report.kept = int(keep.sum())
    if not keep.any():
        raise ValueError(f"{path}: no {WINDOW_S} s window holds a sample labelled 1-4 "
                         f"({', '.join(WESAD_LABELS)}) with finite features")
    dataset = Dataset(
        *(branches[name][keep] for name in ("eeg", "gsr", "ppg", "video")), target_values[keep],
        np.array([subject] * report.kept), labels, {k: list(v) for k, v in COLUMNS.items()},
    )
    return dataset, report


def load_wesad_subject(path, target="self_report"):
    """One WESAD subject pickle (and, for the self_report target, its quest.csv) as a `Dataset`.

    As `load_wesad_subject_report`; what it leaves out is not silent: a `WesadWarning` gives the
    number of windows dropped for non-finite features (per branch) and names the conditions whose
    self-report is at the scale minimum throughout (their target is uniform).
    """
    dataset, report = load_wesad_subject_report(path, target)
    if report.dropped_nonfinite:
        branches = ", ".join(f"{name} {n}" for name, n in report.nonfinite.items() if n)
        warnings.warn(f"{path}: {report.dropped_nonfinite} of {report.windows - report.unlabelled} labelled "
                      f"windows left out for a non-finite feature ({branches}): a band without power (a "
                      f"flat or zeroed chest signal) or NaN samples", WesadWarning, stacklevel=2)
    if report.uniform:
        warnings.warn(f"{quest_path(path)}: the self-report of {', '.join(report.uniform)} is at the scale "
                      f"minimum on every item; its target is uniform", WesadWarning, stacklevel=2)
    return dataset


def load_wesad(directory, target="self_report"):
    """Every subject of a WESAD directory (`S*/S*.pkl` with `S*/S*_quest.csv`, as published).

    `target`: "self_report" (default, distributions from the questionnaires) or "condition"
    (protocol condition fractions, a classification task); see `load_wesad_subject_report`.
    """
    files = [f for f in Path(directory).glob("S*/S*.pkl") if f.stem == f.parent.name]
    files.sort(key=lambda f: (len(f.stem), f.stem))
    if not files:
        raise ValueError(f"{directory}: no WESAD subject files (S*/S*.pkl)")
    return Dataset.concatenate([load_wesad_subject(f, target) for f in files])
