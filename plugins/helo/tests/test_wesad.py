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
from helo.wesad import (
    COLUMNS, SELF_REPORT_ITEMS, SELF_REPORT_LABELS, WESAD_LABELS, WesadWarning, band_differential_entropy,
    load_wesad, load_wesad_subject, load_wesad_subject_report, minutes_seconds, read_quest,
)

REFERENCE = Path(__file__).resolve().parents[3] / "fixtures" / "features" / "dmer_reference.py"

#: Label blocks of the synthetic recordings: (start s, end s, WESAD label id).
BLOCKS = [(0, 10, 0), (10, 30, 1), (30, 45, 2), (45, 55, 3), (55, 60, 6)]

#: The published questionnaire items in file order (wesad_readme.pdf): PANAS (the row after the TSST
#: also asks Angry and Irritated, before Sad), STAI, SAM.
PANAS = ["Active", "Distressed", "Interested", "Inspired", "Annoyed", "Strong", "Guilty", "Scared", "Hostile",
         "Excited", "Proud", "Irritable", "Enthusiastic", "Ashamed", "Alert", "Nervous", "Determined",
         "Attentive", "Jittery", "Afraid", "Stressed", "Frustrated", "Happy", "Sad"]
PANAS_TSST = PANAS[:-1] + ["Angry", "Irritated", "Sad"]
STAI = ["at ease", "nervous", "jittery", "relaxed", "worried", "pleasant"]

#: Self-report label order of the targets.
LABELS = ["joviality", "self_assurance", "attentiveness", "serenity", "fear", "hostility", "guilt", "sadness"]


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


def report(name, panas=None, stai=None, sam=(5, 5)):
    """One study condition's answers: every item at 1 unless given."""
    items = PANAS_TSST if name == "TSST" else PANAS
    return ([(panas or {}).get(item, 1) for item in items], [(stai or {}).get(item, 1) for item in STAI],
            list(sam))


def quest_text(subject, schedule, reports, header="# Subj"):
    """A quest.csv in the published layout: `schedule` = [(ORDER name, START, END)] (minutes.seconds
    text), `reports` = one `report(...)` per study condition in ORDER order; rows padded to 27 cells."""
    def row(*cells):
        cells = [str(c) for c in cells]
        return ";".join(cells + [""] * (27 - len(cells)))

    lines = [row(header, subject), row("# ORDER", *(s[0] for s in schedule)),
             row("# START", *(s[1] for s in schedule)), row("# END", *(s[2] for s in schedule)), row()]
    for index, kind in enumerate(("# PANAS", "# STAI", "# DIM")):
        lines += [row(kind, *answers[index]) for answers in reports] + [row()]
    lines.append(row("# SSSQ", 3, 2, 4, 1, 5, 2))
    return "\n".join(lines) + "\n"


def write_quest(directory, subject, schedule, reports, **kwargs):
    path = Path(directory) / subject / f"{subject}_quest.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(quest_text(subject, schedule, reports, **kwargs))
    return path


#: S2's schedule on the RespiBAN clock (3 s before the pickle starts): Base, TSST, Fun, then sRead.
S2_SCHEDULE = [("Base", "0.13", "0.33"), ("TSST", "0.33", "0.48"), ("Fun", "0.48", "0.58"), ("sRead", "0.58", "1.03")]
S2_REPORTS = [
    report("Base", {"Happy": 3, "Excited": 3}, {"at ease": 4, "relaxed": 4, "pleasant": 2}, (7, 2)),
    report("TSST", {"Nervous": 5, "Stressed": 5, "Angry": 3, "Frustrated": 5}, {"nervous": 4, "worried": 4}, (3, 7)),
    report("Fun", {"Happy": 5, "Excited": 4, "Enthusiastic": 5, "Inspired": "Nan", "Attentive": 3},
           {"at ease": 3, "pleasant": 4}, (8, 5)),
]
# By hand: weight = (answer - 1) / 4 for PANAS, (answer - 1) / 3 for STAI; a label is the mean weight of
# its answered items; the distribution is the labels over their sum.
# Base: joviality (Happy .5, Excited .5, Enthusiastic 0, Inspired 0) = 1/4; serenity (at ease 1,
#   relaxed 1, pleasant 1/3) = 7/9; sum 37/36.
S2_BASE = np.array([9, 0, 0, 28, 0, 0, 0, 0]) / 37
# TSST: fear (PANAS Nervous 1, Stressed 1, Afraid/Scared/Jittery/Distressed 0; STAI nervous 1, worried 1,
#   jittery 0) = 4/9; hostility (Angry .5, Frustrated 1, Hostile/Irritable/Annoyed/Irritated 0) = 1/4;
#   sum 25/36.
S2_TSST = np.array([0, 0, 0, 0, 16, 9, 0, 0]) / 25
# Fun: joviality (Happy 1, Excited .75, Enthusiastic 1; Inspired not answered) = 11/12; attentiveness
#   (Attentive .5 of 5 items) = 1/10; serenity (at ease 2/3, relaxed 0, pleasant 1) = 5/9; sum 283/180.
S2_FUN = np.array([165, 0, 18, 100, 0, 0, 0, 0]) / 283

#: S10 (labels: meditation 5-25 s, stress 25-60 s): Medi 1, then TSST.
S10_SCHEDULE = [("Medi 1", "0.02", "0.22"), ("TSST", "0.22", "0.58")]
S10_REPORTS = [report("Medi 1", stai={"at ease": 4, "relaxed": 4}),
               report("TSST", {"Nervous": 5, "Angry": 5})]
S10_MEDI = np.array([0, 0, 0, 1, 0, 0, 0, 0])  # serenity (1 + 1 + 0) / 3, nothing else
S10_TSST = np.array([0, 0, 0, 0, 2, 3, 0, 0]) / 5  # fear 1/9, hostility 1/6; sum 5/18


@pytest.fixture(scope="module")
def wesad_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("wesad")
    write(directory, recording("S2", seed=0))
    write_quest(directory, "S2", S2_SCHEDULE, S2_REPORTS)
    write(directory, recording("S10", seed=1, blocks=[(0, 5, 0), (5, 25, 4), (25, 60, 2)]))
    write_quest(directory, "S10", S10_SCHEDULE, S10_REPORTS)
    return directory


def test_condition_task_gives_condition_fractions(wesad_dir):
    data = load_wesad(wesad_dir, target="condition")
    # S2: windows k = 0..53 (BVP lasts 58 s); [k, k+5) holds a labelled sample for k = 6..53.
    # S10: windows k = 1..53 (the first one is transient only).
    assert list(np.unique(data.subjects)) == ["S10", "S2"]
    assert (data.subjects == "S2").sum() == 48 and (data.subjects == "S10").sum() == 53
    assert data.eeg.shape == (101, 10) and data.gsr.shape == (101, 28)
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


def test_self_report_targets_are_the_questionnaire_distributions(wesad_dir):
    data = load_wesad(wesad_dir)
    assert data.labels == LABELS == SELF_REPORT_LABELS
    assert data.target.shape == (101, 8) and np.allclose(data.target.sum(axis=1), 1)
    s2 = data.target[data.subjects == "S2"]
    assert np.allclose(s2[0], S2_BASE)                              # [6, 11): baseline only
    assert np.allclose(s2[15 - 6], S2_BASE)                         # [15, 20)
    assert np.allclose(s2[27 - 6], 0.6 * S2_BASE + 0.4 * S2_TSST)   # [27, 32): 3 s Base, 2 s TSST
    assert np.allclose(s2[35 - 6], S2_TSST)
    assert np.allclose(s2[42 - 6], 0.6 * S2_TSST + 0.4 * S2_FUN)    # [42, 47): 3 s TSST, 2 s Fun
    assert np.allclose(s2[53 - 6], S2_FUN)                          # [53, 58): 2 s Fun, 3 s sRead (6)
    s10 = data.target[data.subjects == "S10"]
    assert np.allclose(s10[0], S10_MEDI)                            # [1, 6): 1 s Medi 1
    assert np.allclose(s10[22 - 1], 0.6 * S10_MEDI + 0.4 * S10_TSST)
    # the inputs are the same in both tasks
    condition = load_wesad(wesad_dir, target="condition")
    assert np.array_equal(data.eeg, condition.eeg) and np.array_equal(data.subjects, condition.subjects)


def test_published_protocol_tells_medi_1_from_medi_2(tmp_path):
    blocks = [(0, 2, 0), (2, 14, 1), (14, 26, 2), (26, 36, 4), (36, 46, 3), (46, 58, 4), (58, 60, 0)]
    write(tmp_path, recording("S3", bvp_seconds=60, blocks=blocks))
    # as published: the five study conditions in the order run, then the reading tasks out of order
    schedule = [("Base", "0.12", "0.24"), ("TSST", "0.24", "0.36"), ("Medi 1", "0.36", "0.46"),
                ("Fun", "0.46", "0.56"), ("Medi 2", "0.56", "1.08"), ("sRead", "0.3", "0.32"),
                ("fRead", "1.1", "1.12")]
    reports = [report("Base", {"Alert": 5}), report("TSST", {"Afraid": 5}), report("Medi 1", stai={"relaxed": 4}),
               report("Fun", {"Happy": 5}), report("Medi 2", {"Guilty": 5})]
    path = write_quest(tmp_path, "S3", schedule, reports, header="# Subj:")
    quest = read_quest(path)
    assert quest.subject == "S3" and [c.name for c in quest.conditions] == ["Base", "TSST", "Medi 1", "Fun", "Medi 2"]
    assert [c.label for c in quest.conditions] == [1, 2, 4, 3, 4]
    assert [(c.start_s, c.end_s) for c in quest.conditions][:2] == [(12, 24), (24, 36)]
    assert quest.readings == [("sRead", 30, 32), ("fRead", 70, 72)]
    assert list(quest.conditions[1].answers["PANAS"]) == PANAS_TSST and len(quest.conditions[0].answers["PANAS"]) == 24
    assert quest.conditions[0].answers["STAI"] == dict.fromkeys(STAI, 1.0)
    assert quest.conditions[0].answers["DIM"] == {"valence": 5.0, "arousal": 5.0} and quest.sssq == [3, 2, 4, 1, 5, 2]
    data = load_wesad_subject(tmp_path / "S3" / "S3.pkl")
    one_hot = {name: np.eye(8)[LABELS.index(name)] for name in LABELS}
    # window k (row k - 0: the first window [0, 5) holds baseline) covers [k, k + 5)
    assert np.allclose(data.target[0], one_hot["attentiveness"])
    assert np.allclose(data.target[16], one_hot["fear"])
    assert np.allclose(data.target[28], one_hot["serenity"])                                # Medi 1
    assert np.allclose(data.target[33], 0.6 * one_hot["serenity"] + 0.4 * one_hot["joviality"])
    assert np.allclose(data.target[48], one_hot["guilt"])                                   # Medi 2
    assert np.allclose(data.target[55], one_hot["guilt"])                                   # [55, 60): 3 s Medi 2


def test_minutes_seconds():
    assert minutes_seconds("7.08") == 428 and minutes_seconds("39.55") == 2395
    assert minutes_seconds("50.3") == 3030  # the writer drops a trailing zero: 50 min 30 s
    assert minutes_seconds("12") == 720
    for text in ("1.60", "7.081", "-1", "a"):
        with pytest.raises(ValueError):
            minutes_seconds(text)


def test_every_panas_and_stai_item_is_one_labels_item():
    used = [item for items in SELF_REPORT_ITEMS.values() for item in items]
    assert sorted(used) == sorted([("PANAS", item) for item in PANAS_TSST] + [("STAI", item) for item in STAI])


def test_a_report_at_the_scale_minimum_is_uniform_and_reported(tmp_path):
    write(tmp_path, recording("S2"))
    write_quest(tmp_path, "S2", S2_SCHEDULE, S2_REPORTS[:2] + [report("Fun")])
    with pytest.warns(WesadWarning, match="S2_quest.csv: the self-report of Fun is at the scale minimum on every"):
        data = load_wesad_subject(tmp_path / "S2" / "S2.pkl")
    assert np.allclose(data.target[53 - 6], np.full(8, 1 / 8))
    assert np.allclose(data.target[42 - 6], 0.6 * S2_TSST + 0.4 / 8)
    _, window_report = load_wesad_subject_report(tmp_path / "S2" / "S2.pkl")
    assert window_report.uniform == ["Fun"]


def test_non_finite_windows_are_counted_and_reported(tmp_path):
    data = recording("S2")
    data["signal"]["chest"]["EMG"][700 * 20:700 * 30] = 0  # no power: windows k = 20..25 lie inside
    path = write(tmp_path, data)
    with pytest.warns(WesadWarning, match=r"S2.pkl: 6 of 48 labelled windows left out for a non-finite "
                                          r"feature \(eeg 6\)"):
        dataset = load_wesad_subject(path, target="condition")
    assert len(dataset) == 42 and np.all(np.isfinite(dataset.eeg))
    _, window_report = load_wesad_subject_report(path, target="condition")
    assert (window_report.windows, window_report.unlabelled, window_report.kept) == (54, 6, 42)
    assert window_report.nonfinite == {"eeg": 6, "gsr": 0, "ppg": 0, "video": 0}
    assert window_report.dropped_nonfinite == 6


def welch_band_de(x, fs, lo, hi):
    """By hand: mean over 1 s Hann segments (half overlap, mean removed) of the one-sided power
    density, summed over lo <= f < hi except within 2 Hz of a 50 Hz harmonic; 0.5 ln(2 pi e P)."""
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(fs) / fs)  # periodic Hann
    density = []
    for start in range(0, len(x) - fs + 1, fs // 2):
        segment = x[start:start + fs] - x[start:start + fs].mean()
        spectrum = np.abs(np.fft.rfft(segment * hann)) ** 2 / (fs * (hann ** 2).sum())
        spectrum[1:-1] *= 2  # one-sided: DC and Nyquist (fs is even) once
        density.append(spectrum)
    freqs = np.arange(len(density[0]))  # 1 Hz bins
    mains = [f for f in freqs if f >= 48 and min(f % 50, 50 - f % 50) <= 2]
    band = [i for i, f in enumerate(freqs) if lo <= f < hi and f not in mains]
    return 0.5 * np.log(2 * np.pi * np.e * np.mean(density, axis=0)[band].sum())


def test_chest_features_are_band_differential_entropy(wesad_dir):
    data = load_wesad_subject(wesad_dir / "S2" / "S2.pkl", target="condition")
    with open(wesad_dir / "S2" / "S2.pkl", "rb") as handle:
        chest = pickle.load(handle, encoding="latin1")["signal"]["chest"]
    bands = {"ECG": [(1, 4), (4, 8), (8, 16), (16, 32), (32, 45)],
             "EMG": [(20, 50), (50, 100), (100, 150), (150, 250), (250, 350)]}
    for row, k in ((0, 6), (30, 36)):  # the whole window [k, k + 5) s
        expected = [welch_band_de(chest[name][700 * k:700 * (k + 5), 0], 700, lo, hi)
                    for name in ("ECG", "EMG") for lo, hi in bands[name]]
        assert np.allclose(data.eeg[row], expected, rtol=1e-9)
    # a sine of amplitude 2 has power 2 in its band and none elsewhere; the 50 Hz mains counts nowhere
    t = np.arange(3500) / 700
    sine = 2 * np.sin(2 * np.pi * 10 * t)
    mains = 3 * np.sin(2 * np.pi * 50 * t)
    de = band_differential_entropy(np.stack([sine, sine + mains]), 700, bands["ECG"] + bands["EMG"])
    assert np.allclose(de[:, 2], 0.5 * np.log(2 * np.pi * np.e * 2), rtol=1e-6)
    assert np.all(de[:, [0, 1, 3, 4, 5, 6, 7, 8, 9]] < -20)


def test_wrist_features_follow_the_dmer_definitions(wesad_dir):
    reference = dmer_reference()
    data = load_wesad_subject(wesad_dir / "S2" / "S2.pkl")
    with open(wesad_dir / "S2" / "S2.pkl", "rb") as handle:
        wrist = pickle.load(handle, encoding="latin1")["signal"]["wrist"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reference's Welch call warns that nperseg shrinks to 20
        gsr = reference.gsr_features(wrist["EDA"][:, 0], fs=4)
    ppg = reference.ppg_features(wrist["BVP"][:, 0], fs=64)
    first = 6  # the first window holding a labelled sample
    for row, k in ((0, first), (30, first + 30)):
        assert np.allclose(data.gsr[row], gsr[k], rtol=1e-9, atol=1e-12)
        assert np.allclose(data.ppg[row], ppg[k], rtol=1e-9, atol=1e-12)
        acc = wrist["ACC"][32 * k:32 * k + 160]
        assert np.allclose(data.video[row], np.column_stack([acc.mean(axis=0), acc.std(axis=0)]).reshape(-1))


def test_columns_are_named():
    assert COLUMNS["eeg"] == ["chest_ECG_de_1_4hz", "chest_ECG_de_4_8hz", "chest_ECG_de_8_16hz",
                              "chest_ECG_de_16_32hz", "chest_ECG_de_32_45hz", "chest_EMG_de_20_50hz",
                              "chest_EMG_de_50_100hz", "chest_EMG_de_100_150hz", "chest_EMG_de_150_250hz",
                              "chest_EMG_de_250_350hz"]
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
        load_wesad_subject(path, target="condition")


def replace_line(number, text):
    return lambda lines: lines[:number - 1] + [text] + lines[number:]


#: Lines of the one-condition quest.csv below: 1 Subj, 2 ORDER, 3 START, 4 END, 6 PANAS, 8 STAI, 10 DIM, 12 SSSQ.


@pytest.mark.parametrize("damage, message", [
    (None, r"S3_quest.csv: missing; the self_report target reads each subject's quest.csv"),
    (replace_line(1, "# Subject;S3"), r"S3_quest.csv:1: expected the `# Subj` row first, found `# Subject`"),
    (replace_line(2, ""), r"S3_quest.csv: expected one `# ORDER` row, found 0"),
    (replace_line(2, "# ORDER;Base;Fun"), r"S3_quest.csv:2: `# ORDER` lists 2 entries, `# START` \(line 3\) 1"),
    (replace_line(2, "# ORDER;Rest"), r"S3_quest.csv:2: unknown condition `Rest` in column 2"),
    (replace_line(3, "# START;0.75"), r"S3_quest.csv:3: `# START` of Base \(column 2\): `0.75` has 75 seconds"),
    (replace_line(4, "# END;0.01"), r"S3_quest.csv:4: `Base` ends \(0.01\) no later than it starts \(0.03\)"),
    (replace_line(6, "# PANAS;" + ";".join(["1"] * 23)),
     r"S3_quest.csv:6: `# PANAS` row of Base has 23 answers, expected 24 \(or 26 after the TSST\)"),
    (replace_line(6, "# PANAS;6;" + ";".join(["1"] * 23)),
     r"S3_quest.csv:6: `# PANAS` row of Base: Active = 6 is outside the 1-5 scale"),
    (replace_line(8, "# STAI;1;1;x;1;1;1"),
     r"S3_quest.csv:8: `# STAI` row of Base: jittery is `x`, not a number or `Nan`"),
    (replace_line(10, ""), r"S3_quest.csv: 0 `# DIM` rows for 1 study conditions \(Base\)"),
    (replace_line(6, "# PANAS;" + ";".join(["1"] * 23) + ";Nan"),
     r"S3_quest.csv: Base \(PANAS line 6\): no item of sadness \(Sad\) is answered"),
    (replace_line(12, "# SSQ;1"), r"S3_quest.csv:12: unknown row `# SSQ`"),
    (lambda lines: [line.replace("Base", "TSST") for line in lines],
     r"S3.pkl: the labelled runs \(baseline\) do not match the study conditions of .*S3_quest.csv in START "
     r"order \(TSST \(stress\)\)"),
])
def test_malformed_quest_files_are_named_with_file_and_line(tmp_path, damage, message):
    path = write(tmp_path, recording("S3", seconds=10, bvp_seconds=10, blocks=[(0, 10, 1)]))
    if damage is not None:
        lines = quest_text("S3", [("Base", "0.03", "0.13")], [report("Base", {"Happy": 2})]).splitlines()
        assert lines[5].startswith("# PANAS;") and lines[11].startswith("# SSSQ;")
        (tmp_path / "S3" / "S3_quest.csv").write_text("\n".join(damage(lines)) + "\n")
    with pytest.raises(ValueError, match=message):
        load_wesad_subject(path)
    load_wesad_subject(path, target="condition")  # the condition task does not read quest.csv


def test_files_that_are_not_wesad_pickles(tmp_path):
    (tmp_path / "S4").mkdir()
    (tmp_path / "S4" / "S4.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="S4.pkl: not a WESAD subject pickle"):
        load_wesad(tmp_path)
    with pytest.raises(ValueError, match="no WESAD subject files"):
        load_wesad(tmp_path / "missing")
    with pytest.raises(ValueError, match="unknown WESAD target `valence`"):
        load_wesad_subject(tmp_path / "S4" / "S4.pkl", target="valence")


def test_helo_trains_on_wesad_windows(wesad_dir, tmp_path):
    data = load_wesad(wesad_dir)
    config = config_for(data)
    dims = (config.n_channels, config.dim_gsr, config.dim_ppg, config.dim_video, config.emotion_classes)
    assert dims == (2, 28, 27, 6, 8)
    model, standardiser = train_helo(data, epochs=2, seed=0, batch_size=32, feature_dim=32, hidden_size=16)
    assert isinstance(model, HeLo)
    with torch.no_grad():
        predicted = model(*standardiser.apply(data))
    assert predicted.shape == (len(data), 8) and torch.allclose(predicted.sum(dim=1), torch.ones(len(data)))
    loss, _, _ = helo_loss(model, predicted, torch.tensor(data.target, dtype=torch.float32))
    assert torch.isfinite(loss)
    for target in ("self_report", "condition"):
        scores = tmp_path / f"{target}.json"
        # Two subjects leave no training subject for validation under leave-one-out: the paper protocol.
        main(["--wesad", str(wesad_dir), "--wesad-target", target, "--protocol", "paper", "--epochs", "1", "--seeds", "0",
              "--models", "helo", "uniform", "linear", "--scores", str(scores)])
        written = json.loads(scores.read_text())
        assert set(written["scores"]) == {"helo", "uniform", "linear"}
        assert [r["subject"] for r in written["runs"]] == ["S10", "S2"] and len(written["scores"]["helo"]) == 2
