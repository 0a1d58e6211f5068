"""pylsl outlets for heloflow's XDF recording tests (integration-tests/xdf_record.rs).

Scenarios (run with LSLAPICFG pointing at a loopback-only configuration):
  formats PREFIX SECONDS OUT.json   one outlet per LSL format (int8 ... string), channel metadata
                                    and desc; every pushed stamp and value written to OUT.json
  throughput PREFIX SECONDS OUT.json  64 channels at 2 kHz plus 20 other streams in real time;
                                    per stream the count and SHA-256 digests of what was pushed
  stream PREFIX PLAN.json           a few streams pushed in real time until killed; their start
                                    stamps and rates go to PLAN.json first
  markers PREFIX SUBJECT            a marker stream with desc/subject, a marker every 0.3 s until
                                    killed
  comings PREFIX OUT.json           `a` from the start, `b` joining after 2 s, `a` gone for 4 s
                                    then back (same source_id); what was pushed to OUT.json
  device PREFIX SECONDS             one device's EEG, PPG and ACC streams under one source_id (as
                                    muselsl publishes them), pushed in real time

Floats are written as repr() strings (exact). Stamps are explicit: start + i / rate for regular
streams, pushed once the local clock reaches them.
"""

import hashlib
import json
import sys
import time

import numpy as np

try:
    import pylsl
except ImportError:
    sys.stderr.write("pylsl is not installed: run ./scripts/test (it installs requirements-dev.txt)\n")
    sys.exit(3)


def fail(message):
    sys.stderr.write(message + "\n")
    sys.exit(2)


def outlet(name, kind, channels, rate, fmt, source_id, unit="", chunk=0):
    info = pylsl.StreamInfo(name, kind, len(channels), rate, fmt, source_id)
    desc = info.desc()
    chans = desc.append_child("channels")
    for label in channels:
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", unit)
        ch.append_child_value("type", kind)
    acquisition = desc.append_child("acquisition")
    acquisition.append_child_value("manufacturer", "heloflow-tests")
    acquisition.append_child_value("serial", source_id)
    return pylsl.StreamOutlet(info, chunk)


def wait_for(outlets, timeout=60.0):
    deadline = time.time() + timeout
    for o in outlets:
        if not o.wait_for_consumers(max(0.1, deadline - time.time())):
            fail("the recorder never connected to every outlet")
    time.sleep(0.5)


def value_for(fmt, i, c):
    """Deterministic values covering each format's extremes."""
    if fmt == "int8":
        return [-128, 127, 0][c] if i == 0 else ((i * 7 + c * 50) % 256) - 128
    if fmt == "int16":
        return [-32768, 32767, -1][c] if i == 0 else ((i * 1237 + c * 9000) % 65536) - 32768
    if fmt == "int32":
        return [-2**31, 2**31 - 1, 0][c] if i == 0 else ((i * 2654435761 + c * 10**9) % 2**32) - 2**31
    if fmt == "int64":
        return [-2**63, 2**63 - 1, 1][c] if i == 0 else ((i * 0x9E3779B97F4A7C15 + c * 12345) % 2**64) - 2**63
    if fmt == "float32":
        special = [[float("nan"), float("inf"), -0.0], [3.4028234663852886e38, 1e-40, -1.5]]
        if i < 2:
            return float(np.float32(special[i][c]))
        return float(np.float32((i + c / 3.0) * 1.1e-3 - 7.0))
    if fmt == "double64":
        special = [[float("nan"), -float("inf"), -0.0], [1.7976931348623157e308, 5e-324, 0.1]]
        if i < 2:
            return special[i][c]
        return i * 0.1 + c * 1e-300 - 1e6 / (i + 1)
    texts = ["", "héllo <&> \"quoted\" 'x'", "x" * 300, "line\nbreak\ttab", "\U0001F600 emoji", "m"]
    return texts[(i + c) % len(texts)] + ("" if c else str(i))


def formats(prefix, seconds, out):
    streams = []
    for fmt in ["int8", "int16", "int32", "int64", "float32", "double64", "string"]:
        rate = 0.0 if fmt == "string" else 50.0
        channels = ["Marker", "Note"] if fmt == "string" else ["A", "B", "C"]
        kind = "Markers" if fmt == "string" else "EEG"
        o = outlet(f"{prefix}-{fmt}", kind, channels, rate, fmt, f"{prefix}:{fmt}", unit="microvolts")
        streams.append({"format": fmt, "rate": rate, "channels": channels, "outlet": o, "sent": []})
    wait_for([s["outlet"] for s in streams])
    start = pylsl.local_clock() + 0.2
    n = int(seconds * 50)
    for i in range(n):
        stamp = start + i / 50.0
        while pylsl.local_clock() < stamp:
            time.sleep(0.001)
        for s in streams:
            if s["format"] == "string" and i % 10 != 3:
                continue
            marker_stamp = stamp + 0.001234 if s["format"] == "string" else stamp
            values = [value_for(s["format"], i, c) for c in range(len(s["channels"]))]
            s["outlet"].push_sample(values, marker_stamp)
            s["sent"].append([marker_stamp, values])
    time.sleep(1.0)

    def encode(fmt, v):
        return v if fmt in ("int8", "int16", "int32", "int64", "string") else repr(float(v))

    result = {
        s["format"]: {
            "source_id": f"{prefix}:{s['format']}",
            "name": f"{prefix}-{s['format']}",
            "rate": s["rate"],
            "channels": s["channels"],
            "stamps": [repr(t) for t, _ in s["sent"]],
            "values": [[encode(s["format"], v) for v in row] for _, row in s["sent"]],
        }
        for s in streams
    }
    with open(out, "w") as f:
        json.dump(result, f)


def throughput(prefix, seconds, out):
    plan = [("amp", "EEG", 64, 2000.0, "float32")]
    plan += [(f"exg{k}", "EXG", 8, 500.0, "float32") for k in range(10)]
    plan += [(f"acc{k}", "ACC", 3, 100.0, "int16") for k in range(5)]
    plan += [(f"slow{k}", "GSR", 1, 50.0, "double64") for k in range(4)]
    plan += [("markers", "Markers", 1, 0.0, "string")]
    streams = []
    for name, kind, n, rate, fmt in plan:
        o = outlet(f"{prefix}-{name}", kind, [f"ch{c}" for c in range(n)], rate, fmt, f"{prefix}:{name}")
        streams.append({"name": name, "n": n, "rate": rate, "fmt": fmt, "outlet": o,
                        "stamps": [], "values": [], "count": 0})
    wait_for([s["outlet"] for s in streams])
    start = pylsl.local_clock() + 0.2
    step = 0.02
    steps = int(seconds / step)
    for k in range(steps):
        t_end = start + (k + 1) * step
        while pylsl.local_clock() < t_end:
            time.sleep(0.001)
        for s in streams:
            if s["fmt"] == "string":
                if k % 25 == 0:
                    stamp = start + k * step
                    s["outlet"].push_sample([f"marker {k}"], stamp)
                    s["stamps"].append(np.array([stamp]))
                    s["values"].append([f"marker {k}"])
                    s["count"] += 1
                continue
            first = s["count"]
            last = int(np.floor((t_end - start) * s["rate"])) + 1
            if last <= first:
                continue
            index = np.arange(first, last)
            stamps = start + index / s["rate"]
            grid = (index[:, None] * s["n"] + np.arange(s["n"])[None, :]) % 1000003
            if s["fmt"] == "int16":
                values = (grid % 65536 - 32768).astype(np.int16)
            else:
                values = (grid * 0.5 - 1000.0).astype(np.float32 if s["fmt"] == "float32" else np.float64)
            s["outlet"].push_chunk(values, list(stamps))
            s["stamps"].append(stamps)
            s["values"].append(values)
            s["count"] = last
    time.sleep(1.5)
    result = {}
    for s in streams:
        stamps = np.concatenate(s["stamps"]).astype(np.float64)
        if s["fmt"] == "string":
            joined = "\x00".join(row[0] for row in s["values"])
            values_digest = hashlib.sha256(joined.encode("utf-8")).hexdigest()
        else:
            values_digest = hashlib.sha256(np.ascontiguousarray(np.concatenate(s["values"])).tobytes()).hexdigest()
        result[f"{prefix}:{s['name']}"] = {
            "count": len(stamps),
            "stamps_sha256": hashlib.sha256(stamps.tobytes()).hexdigest(),
            "values_sha256": values_digest,
        }
    with open(out, "w") as f:
        json.dump(result, f)


def stream(prefix, plan_path):
    plan = [("eeg", "EEG", 16, 500.0, "float32"), ("acc", "ACC", 4, 100.0, "int16"),
            ("markers", "Markers", 1, 0.0, "string")]
    streams = []
    for name, kind, n, rate, fmt in plan:
        o = outlet(f"{prefix}-{name}", kind, [f"ch{c}" for c in range(n)], rate, fmt, f"{prefix}:{name}")
        streams.append({"name": name, "n": n, "rate": rate, "fmt": fmt, "outlet": o, "count": 0})
    start = pylsl.local_clock() + 0.5
    marker_every = 0.2
    with open(plan_path + ".tmp", "w") as f:
        json.dump({"start": repr(start), "marker_every": marker_every,
                   "streams": {f"{prefix}:{s['name']}": s["rate"] for s in streams}}, f)
    import os
    os.replace(plan_path + ".tmp", plan_path)
    k = 0
    while True:
        t_end = start + (k + 1) * 0.01
        while pylsl.local_clock() < t_end:
            time.sleep(0.001)
        for s in streams:
            rate = s["rate"] if s["rate"] > 0 else 1.0 / marker_every
            first = s["count"]
            last = int(np.floor((t_end - start) * rate)) + 1
            if last <= first:
                continue
            index = np.arange(first, last)
            stamps = start + index / rate
            if s["fmt"] == "string":
                for i, t in zip(index, stamps):
                    s["outlet"].push_sample([f"m{i}"], t)
            else:
                grid = index[:, None] * s["n"] + np.arange(s["n"])[None, :]
                dtype = np.int16 if s["fmt"] == "int16" else np.float32
                s["outlet"].push_chunk((grid % 30000).astype(dtype), list(stamps))
            s["count"] = last
        k += 1


def comings(prefix, out):
    def make(name, n, rate, fmt):
        return outlet(f"{prefix}-{name}", "EEG", [f"ch{c}" for c in range(n)], rate, fmt, f"{prefix}:{name}")

    def push(o, rate, seconds, offset, sent):
        if not o.wait_for_consumers(60.0):
            fail("the recorder never connected")
        time.sleep(0.3)
        start = pylsl.local_clock()
        for i in range(int(seconds * rate)):
            stamp = start + i / rate
            while pylsl.local_clock() < stamp:
                time.sleep(0.001)
            values = [offset + i + c / 10 for c in range(o.channel_count)]
            o.push_sample(values, stamp)
            sent.append([repr(stamp), [repr(float(np.float32(v))) for v in values]])

    import threading
    a_sent, b_sent = [], []
    a = make("a", 2, 100.0, "float32")
    push(a, 100.0, 2.0, 0, a_sent)
    b = make("b", 1, 50.0, "float32")
    joined = threading.Thread(target=push, args=(b, 50.0, 8.0, 5000, b_sent))
    joined.start()
    push(a, 100.0, 2.0, 200, a_sent)
    time.sleep(0.5)  # let the last samples leave before the outlet dies
    del a
    time.sleep(4.0)
    a = make("a", 2, 100.0, "float32")
    push(a, 100.0, 2.0, 1000, a_sent)
    joined.join()
    time.sleep(1.0)
    with open(out, "w") as f:
        json.dump({f"{prefix}:a": a_sent, f"{prefix}:b": b_sent}, f)


def device(prefix, seconds):
    specs = [("eeg", "EEG", ["TP9", "AF7", "AF8", "TP10"], 256.0),
             ("ppg", "PPG", ["PPG1"], 64.0),
             ("acc", "ACC", ["X", "Y", "Z"], 52.0)]
    streams = [outlet(f"{prefix}-{name}", kind, labels, rate, "float32", f"{prefix}:muse")
               for name, kind, labels, rate in specs]
    rates = [rate for _, _, _, rate in specs]
    wait_for(streams)
    start = pylsl.local_clock()
    pushed = [0] * len(streams)
    while pylsl.local_clock() < start + seconds:
        now = pylsl.local_clock()
        for k, o in enumerate(streams):
            rate = rates[k]
            while start + pushed[k] / rate <= now:
                o.push_sample([float(pushed[k])] * o.channel_count, start + pushed[k] / rate)
                pushed[k] += 1
        time.sleep(0.005)
    time.sleep(1.0)


def markers(prefix, subject):
    info = pylsl.StreamInfo(f"{prefix}-stim", "Markers", 1, 0.0, "string", f"{prefix}:stim")
    info.desc().append_child_value("subject", subject)
    o = pylsl.StreamOutlet(info)
    start = pylsl.local_clock()
    i = 0
    while True:
        stamp = start + i * 0.3
        while pylsl.local_clock() < stamp:
            time.sleep(0.001)
        o.push_sample([f"stimulus <{i}> & more"], stamp)
        i += 1


if __name__ == "__main__":
    scenario = sys.argv[1]
    if scenario == "formats":
        formats(sys.argv[2], float(sys.argv[3]), sys.argv[4])
    elif scenario == "throughput":
        throughput(sys.argv[2], float(sys.argv[3]), sys.argv[4])
    elif scenario == "stream":
        stream(sys.argv[2], sys.argv[3])
    elif scenario == "comings":
        comings(sys.argv[2], sys.argv[3])
    elif scenario == "device":
        device(sys.argv[2], float(sys.argv[3]))
    elif scenario == "markers":
        markers(sys.argv[2], sys.argv[3])
    else:
        fail(f"unknown scenario {scenario}")
