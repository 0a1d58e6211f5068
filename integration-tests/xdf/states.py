"""Loads, with the real pyxdf, every file a kill could leave while heloflow's writer writes a
segment, and, for contrast, plain truncations at the same places.

Usage: states.py FILE SEGMENTS.json
SEGMENTS.json: [[start, end, samples_before], ...], each a segment the writer wrote in two steps
(everything but byte `start`, then byte `start`); samples_before is the number of samples in the
file before it.

For a cut c inside a segment, the writer's state is file[:start] + b"\\0" + file[start+1:c] (the
first byte is still the hole's zero); the plain truncation is file[:c]. Prints JSON: per segment,
how many states were loaded, how many raised, and the sample counts loaded.
"""

import io
import json
import logging
import sys

import pyxdf

logging.getLogger("pyxdf").setLevel(logging.CRITICAL)
logging.getLogger("pyxdf.pyxdf").setLevel(logging.CRITICAL)


def load(data):
    try:
        streams, _ = pyxdf.load_xdf(io.BytesIO(data), synchronize_clocks=False, dejitter_timestamps=False)
        return sum(len(s["time_stamps"]) for s in streams), None
    except Exception as e:  # noqa: BLE001 - any exception is a file pyxdf cannot load
        return None, f"{type(e).__name__}: {e}"


def cuts(start, end):
    """Every cut near the ends of a segment, and every 5th byte between."""
    points = set(range(start + 1, min(end, start + 48) + 1))
    points |= set(range(max(start + 1, end - 48), end + 1))
    points |= set(range(start + 1, end + 1, 5))
    return sorted(points)


def main():
    data = open(sys.argv[1], "rb").read()
    segments = json.load(open(sys.argv[2]))
    out = []
    for start, end, before in segments:
        entry = {"start": start, "end": end, "states": 0, "raised": 0, "samples": [],
                 "naive_states": 0, "naive_raised": 0, "errors": []}
        for c in cuts(start, end):
            state = data[:start] + b"\0" + data[start + 1:c]
            samples, error = load(state)
            entry["states"] += 1
            if error:
                entry["raised"] += 1
                entry["errors"].append([c, error])
            else:
                entry["samples"].append(samples)
            if c < end:
                _, naive_error = load(data[:c])
                entry["naive_states"] += 1
                entry["naive_raised"] += naive_error is not None
        complete, error = load(data[:end])
        entry["complete_samples"] = complete
        entry["complete_error"] = error
        entry["samples_before"] = before
        entry["samples"] = sorted(set(entry["samples"]))
        out.append(entry)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
