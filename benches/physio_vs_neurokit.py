#!/usr/bin/env python3
"""NeuroKit2 and plain numpy/scipy halves of the `physio_vs_neurokit` benchmark.

Usage: physio_vs_neurokit.py OUT_DIR. Simulates 10 minutes of ECG (700 Hz) and EDA (32 Hz) with
NeuroKit2 (fixed seeds, rounded to 4 decimals), writes them to OUT_DIR/signals.json, then runs the
workload -- per 60 s window sliding by 10 s: ECG clean + R-peaks (Kubios-corrected, as
`ecg_process` reports them) + HRV (time and frequency), EDA clean + tonic/phasic + SCR peaks --
once with NeuroKit2 and once with a plain numpy/scipy transcription of the same algorithms (without
the artefact correction), and writes per-window values and best-of-3 times to OUT_DIR/python.json.
"""

import json
import sys
import time

import neurokit2 as nk
import numpy as np
import scipy.interpolate
import scipy.ndimage
import scipy.signal

ECG_FS, EDA_FS, MINUTES, WINDOW, HOP = 700, 32, 10, 60, 10


def windows(fs, n):
    return [(end * fs - WINDOW * fs, end * fs) for end in range(WINDOW, n // fs + 1, HOP)]


def neurokit_workload(ecg, eda):
    rows = []
    for a, b in windows(ECG_FS, len(ecg)):
        clean = nk.ecg_clean(ecg[a:b], sampling_rate=ECG_FS)
        # Artefact-corrected, as `ecg_process` reports them and heloflow's operator uses them.
        _, info = nk.ecg_peaks(clean, sampling_rate=ECG_FS, correct_artifacts=True)
        peaks = info["ECG_R_Peaks"]
        t = nk.hrv_time(peaks, sampling_rate=ECG_FS).iloc[0]
        f = nk.hrv_frequency(peaks, sampling_rate=ECG_FS).iloc[0]
        rows.append([len(peaks), t["HRV_MeanNN"], t["HRV_SDNN"], t["HRV_RMSSD"], t["HRV_pNN50"],
                     f["HRV_LF"], f["HRV_HF"], f["HRV_LFHF"]])
    eda_rows = []
    for a, b in windows(EDA_FS, len(eda)):
        clean = nk.eda_clean(eda[a:b], sampling_rate=EDA_FS)
        phasic = nk.eda_phasic(clean, sampling_rate=EDA_FS)
        _, info = nk.eda_peaks(phasic["EDA_Phasic"].to_numpy(), sampling_rate=EDA_FS)
        eda_rows.append([float(np.mean(phasic["EDA_Tonic"])), len(info["SCR_Peaks"]),
                         float(np.nanmean(info["SCR_Amplitude"]))])
    return rows, eda_rows


def scipy_workload(ecg, eda):
    hp = scipy.signal.butter(5, 0.5, "highpass", fs=ECG_FS, output="sos")
    taps = ECG_FS // 50
    rows = []
    for a, b in windows(ECG_FS, len(ecg)):
        clean = scipy.signal.filtfilt(np.ones(taps), [taps], scipy.signal.sosfiltfilt(hp, ecg[a:b]))
        grad = np.abs(np.gradient(clean))
        smooth = scipy.ndimage.uniform_filter1d(grad, 70, mode="nearest")
        thresh = 1.5 * scipy.ndimage.uniform_filter1d(smooth, 525, mode="nearest")
        qrs = smooth > thresh
        beg = np.where(~qrs[:-1] & qrs[1:])[0]
        end = np.where(qrs[:-1] & ~qrs[1:])[0]
        end = end[end > beg[0]]
        k = min(beg.size, end.size)
        min_len = np.mean(end[:k] - beg[:k]) * 0.4
        peaks = [0]
        for s, e in zip(beg[:k], end[:k]):
            if e - s < min_len:
                continue
            loc, props = scipy.signal.find_peaks(clean[s:e], prominence=(None, None))
            if loc.size and s + loc[np.argmax(props["prominences"])] - peaks[-1] > 210:
                peaks.append(s + loc[np.argmax(props["prominences"])])
        peaks = np.array(peaks[1:])
        rri = np.diff(peaks) / ECG_FS * 1000
        d = np.diff(rri)
        times = np.cumsum(rri / 1000)
        grid = np.arange(times[0], times[-1] + 0.01, 0.01)
        series = scipy.interpolate.interp1d(times, rri, kind="quadratic", bounds_error=False,
                                            fill_value=(rri[0], rri[-1]))(grid)
        series = series - series.mean()
        minf = 200 / (len(series) / 2)
        nperseg = min(int(2 / minf * 100), int(len(series) / 2))
        fr, pw = scipy.signal.welch(series, fs=100, window="hann", nperseg=nperseg, nfft=2 * nperseg,
                                    detrend=False)
        pw = pw / pw.max()
        keep = (fr >= minf) & (fr <= 0.5)
        fr, pw = fr[keep], pw[keep]
        lf_sel, hf_sel = (fr >= 0.04) & (fr < 0.15), (fr >= 0.15) & (fr < 0.4)
        lf = np.trapezoid(pw[lf_sel], fr[lf_sel]) or np.nan
        hf = np.trapezoid(pw[hf_sel], fr[hf_sel]) or np.nan
        rows.append([len(peaks), rri.mean(), rri.std(ddof=1), np.sqrt(np.mean(d ** 2)),
                     np.sum(np.abs(d) > 50) / (len(d) + 1) * 100, lf, hf, lf / hf])
    lp3 = scipy.signal.butter(4, 3, "lowpass", fs=EDA_FS, output="sos")
    lp = scipy.signal.butter(2, 0.05, "lowpass", fs=EDA_FS, output="sos")
    hp = scipy.signal.butter(2, 0.05, "highpass", fs=EDA_FS, output="sos")
    eda_rows = []
    for a, b in windows(EDA_FS, len(eda)):
        clean = scipy.signal.sosfiltfilt(lp3, eda[a:b])
        tonic, phasic = scipy.signal.sosfiltfilt(lp, clean), scipy.signal.sosfiltfilt(hp, clean)
        peaks, props = scipy.signal.find_peaks(phasic, prominence=(None, None))
        keep = props["prominences"] / props["prominences"].max() >= 0.1
        peaks = peaks[keep]
        troughs, _ = scipy.signal.find_peaks(-phasic)
        idx = np.searchsorted(troughs, peaks) - 1
        amps = np.where(idx >= 0, phasic[peaks] - phasic[troughs[np.maximum(idx, 0)]], np.nan)
        eda_rows.append([float(tonic.mean()), len(peaks), float(np.nanmean(amps))])
    return rows, eda_rows


def best_of(runs, fn, *args):
    best, out = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - start)
    return best, out


def main():
    out_dir = sys.argv[1]
    n = MINUTES * 60
    ecg = np.round(nk.ecg_simulate(duration=n, sampling_rate=ECG_FS, heart_rate=72, noise=0.05,
                                   random_state=5), 4)
    eda = np.round(nk.eda_simulate(duration=n, sampling_rate=EDA_FS, scr_number=30, drift=-0.01,
                                   noise=0.01, random_state=6), 4)
    with open(f"{out_dir}/signals.json", "w") as f:
        json.dump({"ecg_fs": ECG_FS, "eda_fs": EDA_FS, "window_s": WINDOW, "hop_s": HOP,
                   "ecg": ecg.tolist(), "eda": eda.tolist()}, f)
    nk_time, (nk_ecg, nk_eda) = best_of(3, neurokit_workload, ecg, eda)
    sp_time, (sp_ecg, sp_eda) = best_of(3, scipy_workload, ecg, eda)
    clean = lambda rows: [[None if not np.isfinite(v) else float(v) for v in r] for r in rows]
    with open(f"{out_dir}/python.json", "w") as f:
        json.dump({"neurokit2": nk.__version__, "neurokit_s": nk_time, "scipy_s": sp_time,
                   "neurokit_ecg": clean(nk_ecg), "neurokit_eda": clean(nk_eda),
                   "scipy_ecg": clean(sp_ecg), "scipy_eda": clean(sp_eda)}, f)


if __name__ == "__main__":
    main()
