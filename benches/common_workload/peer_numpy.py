#!/usr/bin/env python3
"""Plain numpy/scipy peer of the common workload (see reference.py for the workload).

Usage: peer_numpy.py --data PATH [--repeat N]. A hand-written loop: per 70-sample chunk,
scipy.signal.sosfilt with the carried state (initial state sosfilt_zi(sos) * x[0]), the filtered
chunk appended to a float64 buffer, and for each chunk that completes a window (every 700 samples
from sample 7000 on) reference.features() on the last 7000 samples. Timed: from the first chunk
in to the last window's features out; chunk latency = one iteration of the loop (filter, buffer,
and that window's features when the chunk completes one).
"""

import numpy as np
import scipy.signal

import reference as ref


def run(chunks, first):
    sos = ref.design()
    zi = ref.initial_state(sos, first)
    buf = np.empty((ref.SAMPLES, ref.CHANNELS), dtype=np.float64)
    n = 0
    windows, lat = [], []
    t0 = ref.now()
    for chunk in chunks:
        c0 = ref.now()
        y, zi = scipy.signal.sosfilt(sos, chunk.astype(np.float64), axis=0, zi=zi)
        buf[n:n + len(y)] = y
        n += len(y)
        if n >= ref.WINDOW and (n - ref.WINDOW) % ref.HOP == 0:
            windows.append(ref.features(buf[n - ref.WINDOW:n]))
        lat.append(ref.now() - c0)
    return ref.now() - t0, lat, windows


def main():
    args = ref.common_args(__doc__.splitlines()[0])
    x = ref.load(args.data)
    chunks = ref.chunks(x)
    timing = ref.Timing()
    for _ in range(args.repeat):
        timing.add(*run(chunks, x[0]))
    ref.report("numpy", ref.versions("numpy", "scipy"), timing)


if __name__ == "__main__":
    main()
