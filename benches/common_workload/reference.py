"""Shared helpers for the common-workload peers (plain numpy/scipy; no peer framework imported).

The workload (identical for every peer):
  * input: 8 channels, float32, 700 Hz, 120 s = 84,000 samples, fed in 70-sample chunks (1200
    chunks) as fast as possible;
  * filter: butter(4, [0.5, 40], 'band', fs=700, output='sos'), causal, float64, state carried
    across chunks, initial state sosfilt_zi(sos) * x[0] per channel;
  * windows of the filtered signal: 10 s (7000 samples), hop 1 s (700), the first one [0, 7000)
    -> 111 windows;
  * features per channel and window: mean, std (ddof 0) and welch(win, fs=700, nperseg=700) band
    powers delta [1,4), theta [4,8), alpha [8,13), beta [13,30), gamma [30,40) Hz (PSD summed over
    lo <= f < hi, times df = 1 Hz) -> 7 x 8 = 56 features per window.
"""

import json
import sys
import time
from importlib import metadata

import numpy as np
import scipy.signal

RATE = 700
CHANNELS = 8
SAMPLES = 84000
CHUNK = 70
WINDOW = 7000
HOP = 700
NPERSEG = 700
BANDS = (("delta", 1.0, 4.0), ("theta", 4.0, 8.0), ("alpha", 8.0, 13.0),
         ("beta", 13.0, 30.0), ("gamma", 30.0, 40.0))
N_CHUNKS = SAMPLES // CHUNK          # 1200
N_WINDOWS = (SAMPLES - WINDOW) // HOP + 1  # 111
EXPECTED_LAST = 875.855645
EXPECTED_ALL = 97097.165559


def load(path):
    """The workload input as a (84000, 8) float32 array (raw little-endian, row-major)."""
    x = np.fromfile(path, dtype="<f4")
    if x.size != SAMPLES * CHANNELS:
        sys.exit(f"{path}: {x.size} values, expected {SAMPLES * CHANNELS}")
    return x.reshape(SAMPLES, CHANNELS).astype(np.float32)


def design():
    return scipy.signal.butter(4, [0.5, 40], btype="band", fs=RATE, output="sos")


def initial_state(sos, first):
    """sosfilt zi for a (time, channels) signal: shape (n_sections, 2, channels), zi * x[0]."""
    zi = scipy.signal.sosfilt_zi(sos)  # (n_sections, 2)
    return zi[:, :, None] * np.asarray(first, dtype=np.float64)[None, None, :]


def chunks(x):
    """The 1200 chunks, each a (70, 8) float32 view of x."""
    return [x[i:i + CHUNK] for i in range(0, SAMPLES, CHUNK)]


def band_masks(freqs):
    return [(freqs >= lo) & (freqs < hi) for _, lo, hi in BANDS]


def features(win):
    """(7, channels) features of one (WINDOW, channels) float64 window: mean, std, 5 band powers."""
    f, pxx = scipy.signal.welch(win, fs=RATE, nperseg=NPERSEG, axis=0)  # pxx: (freqs, channels)
    df = f[1] - f[0]
    rows = [win.mean(axis=0), win.std(axis=0)]
    rows += [pxx[m].sum(axis=0) * df for m in band_masks(f)]
    return np.array(rows)


def offline(x):
    """The whole workload in one go (no chunking); a (111, 7, 8) feature array."""
    sos = design()
    y, _ = scipy.signal.sosfilt(sos, x.astype(np.float64), axis=0, zi=initial_state(sos, x[0]))
    return np.array([features(y[s:s + WINDOW]) for s in range(0, SAMPLES - WINDOW + 1, HOP)])


def versions(*names):
    return {n: metadata.version(n) for n in names}


class Timing:
    """Best-of-N bookkeeping: per run, wall seconds and per-chunk latencies (seconds)."""

    def __init__(self):
        self.best = None

    def add(self, seconds, latencies, windows):
        if len(latencies) != N_CHUNKS:
            sys.exit(f"got {len(latencies)} chunk latencies, expected {N_CHUNKS}")
        if self.best is None or seconds < self.best[0]:
            self.best = (seconds, np.asarray(latencies, dtype=np.float64), windows)


def check_sums(windows):
    """(last_window_sum, all_windows_sum) of a sequence of per-window feature arrays."""
    windows = [np.asarray(w, dtype=np.float64) for w in windows]
    return float(windows[-1].sum()), float(sum(w.sum() for w in windows))


_JSON_OUT = None


def keep_stdout_for_json():
    """Send everything written to fd 1 (framework logging: ezmsg logs INFO to stdout, Timeflux's
    logging too, and any child process) to stderr, keeping the real stdout for report()'s one
    JSON line. Call first thing in main()."""
    global _JSON_OUT
    import os
    sys.stdout.flush()
    _JSON_OUT = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)


def report(peer, versions_, timing):
    """Print the peer's JSON line; exit non-zero if the check values do not match to 6 decimals."""
    seconds, lat, windows = timing.best
    last, total = check_sums(windows)
    out = {
        "peer": peer,
        "versions": versions_,
        "samples": SAMPLES,
        "chunks": N_CHUNKS,
        "windows": len(windows),
        "seconds": seconds,
        "samples_per_s": SAMPLES / seconds,
        "chunk_latency_ms": {"p50": float(np.percentile(lat, 50) * 1e3),
                             "p99": float(np.percentile(lat, 99) * 1e3)},
        "last_window_sum": last,
        "all_windows_sum": total,
    }
    print(json.dumps(out), file=_JSON_OUT or sys.stdout, flush=True)
    bad = []
    if len(windows) != N_WINDOWS:
        bad.append(f"windows {len(windows)} != {N_WINDOWS}")
    if f"{last:.6f}" != f"{EXPECTED_LAST:.6f}":
        bad.append(f"last_window_sum {last:.6f} != {EXPECTED_LAST:.6f}")
    if f"{total:.6f}" != f"{EXPECTED_ALL:.6f}":
        bad.append(f"all_windows_sum {total:.6f} != {EXPECTED_ALL:.6f}")
    if bad:
        sys.exit(f"{peer}: check values do not match: " + "; ".join(bad))


def common_args(description):
    import argparse
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--data", required=True, help="workload file written by data.py")
    ap.add_argument("--repeat", type=int, default=3, help="runs; the best one is reported")
    return ap.parse_args()


now = time.perf_counter
