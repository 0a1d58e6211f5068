#!/usr/bin/env python3
"""Generate the common workload's input: 8 channels x 120 s at 700 Hz (84,000 samples).

Usage: data.py --out PATH. Writes raw little-endian float32, row-major (84000 rows x 8 channels)
to PATH and prints one JSON line {"samples", "channels", "rate", "sum"}, where sum is the float64
sum of all float32 samples (11761462.954 to 3 decimals; the script exits non-zero otherwise).

Channel c = 5c + 3 sin(2 pi 0.1 t) + 4 sin(2 pi 50 t)
            + sum_k amps[c, k] sin(2 pi f_k t + phases[c, k])   (f = 2, 6, 10, 20, 35 Hz)
            + noise[:, c]
with rng = default_rng(20240611) drawing amps ~ U(1, 10) (8x5), then phases ~ U(0, 2 pi) (8x5),
then noise ~ N(0, 1) (84000x8); computed in float64 and cast to float32.
"""

import argparse
import json
import sys

import numpy as np

SAMPLES, CHANNELS, RATE, SEED = 84000, 8, 700, 20240611
FREQS = (2.0, 6.0, 10.0, 20.0, 35.0)
EXPECTED_SUM = 11761462.954


def generate():
    rng = np.random.default_rng(SEED)
    t = np.arange(SAMPLES) / RATE
    amps = rng.uniform(1, 10, size=(CHANNELS, len(FREQS)))
    phases = rng.uniform(0, 2 * np.pi, size=(CHANNELS, len(FREQS)))
    noise = rng.standard_normal((SAMPLES, CHANNELS))
    x = np.empty((SAMPLES, CHANNELS), dtype=np.float64)
    common = 3 * np.sin(2 * np.pi * 0.1 * t) + 4 * np.sin(2 * np.pi * 50 * t)
    for c in range(CHANNELS):
        ch = 5 * c + common
        for k, f in enumerate(FREQS):
            ch = ch + amps[c, k] * np.sin(2 * np.pi * f * t + phases[c, k])
        x[:, c] = ch + noise[:, c]
    return x.astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output file (raw little-endian float32)")
    args = ap.parse_args()
    x = generate()
    x.astype("<f4").tofile(args.out)
    total = float(x.astype(np.float64).sum())
    print(json.dumps({"samples": SAMPLES, "channels": CHANNELS, "rate": RATE, "sum": total}))
    if round(total, 3) != EXPECTED_SUM:
        sys.exit(f"data.py: sum {total:.6f} != expected {EXPECTED_SUM:.3f}")


if __name__ == "__main__":
    main()
