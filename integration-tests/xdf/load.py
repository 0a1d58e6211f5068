"""Loads an XDF file with the real pyxdf (the reference reader) and prints it as JSON.

Usage: load.py FILE [--sync] [--dejitter] [--digest]

Floats are printed as their repr() strings (round-trip exact; "nan", "inf" too) so nothing is lost
on the way to the Rust tests. --digest prints, per stream, the sample count and SHA-256 digests of
the timestamps (float64) and values (the stream's dtype, row-major; strings joined by NUL) instead
of every value.
"""

import hashlib
import json
import sys

import numpy as np

try:
    import pyxdf
except ImportError:
    sys.stderr.write("pyxdf is not installed: run ./scripts/test (it installs requirements-dev.txt)\n")
    sys.exit(3)


def number(value):
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return int(value)
    return repr(float(value))


def plain(value):
    """The parts of pyxdf's header dicts that JSON cannot hold, as JSON."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return repr(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value


def digest_values(series, fmt):
    if fmt == "string":
        joined = "\x00".join("\x01".join(row) for row in series)
        return hashlib.sha256(joined.encode("utf-8")).hexdigest()
    return hashlib.sha256(np.ascontiguousarray(series).tobytes()).hexdigest()


def main():
    args = sys.argv[1:]
    path = args[0]
    streams, header = pyxdf.load_xdf(
        path,
        synchronize_clocks="--sync" in args,
        dejitter_timestamps="--dejitter" in args,
    )
    out = {"fileheader": plain(header), "streams": []}
    for stream in streams:
        info = stream["info"]
        fmt = info["channel_format"][0]
        entry = {
            "info": plain(info),
            "footer": plain(stream.get("footer")),
            "clock_times": [number(t) for t in stream["clock_times"]],
            "clock_values": [number(v) for v in stream["clock_values"]],
            "count": len(stream["time_stamps"]),
        }
        stamps = np.asarray(stream["time_stamps"], dtype=np.float64)
        if "--digest" in args:
            entry["stamps_sha256"] = hashlib.sha256(stamps.tobytes()).hexdigest()
            entry["values_sha256"] = digest_values(stream["time_series"], fmt)
            entry["first_stamp"] = number(stamps[0]) if len(stamps) else None
            entry["last_stamp"] = number(stamps[-1]) if len(stamps) else None
        else:
            entry["time_stamps"] = [number(t) for t in stamps]
            if fmt == "string":
                entry["time_series"] = [list(row) for row in stream["time_series"]]
            else:
                entry["time_series"] = [[number(v) for v in row] for row in stream["time_series"]]
        out["streams"].append(entry)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
