"""pylsl peers for heloflow's LSL interop tests (integration-tests/lsl.rs).

Each scenario publishes real pylsl outlets and/or subscribes to heloflow's outlets, then prints one
JSON object on stdout for the Rust test to check. Run with LSLAPICFG pointing at the loopback-only
fixtures/lsl/lsl_api.cfg.
"""

import json
import sys
import time

try:
    import pylsl
except ImportError:
    sys.stderr.write("pylsl is not installed: run ./scripts/test (it installs requirements-dev.txt)\n")
    sys.exit(3)


def fail(message):
    sys.stderr.write(message + "\n")
    sys.exit(2)


def resolve_one(prop, value, timeout=20.0):
    found = pylsl.resolve_byprop(prop, value, timeout=timeout)
    if not found:
        fail(f"no stream with {prop}={value} appeared within {timeout} s")
    return found[0]


def channel_metadata(info):
    channels = []
    ch = info.desc().child("channels").child("channel")
    while not ch.empty():
        channels.append({
            "label": ch.child_value("label"),
            "unit": ch.child_value("unit"),
            "type": ch.child_value("type"),
        })
        ch = ch.next_sibling("channel")
    desc = info.desc()
    return {
        "name": info.name(),
        "type": info.type(),
        "source_id": info.source_id(),
        "channel_count": info.channel_count(),
        "nominal_srate": info.nominal_srate(),
        "channel_format": info.channel_format(),
        "channels": channels,
        "subject": desc.child_value("subject"),
        "pipeline": desc.child("heloflow").child_value("pipeline"),
        "model_name": desc.child("model").child_value("name"),
        "model_version": desc.child("model").child_value("version"),
    }


def subscribe(source_id):
    info = resolve_one("source_id", source_id)
    inlet = pylsl.StreamInlet(info, max_buflen=60)
    full = inlet.info(timeout=10.0)
    inlet.open_stream(timeout=10.0)
    return inlet, channel_metadata(full)


def collect(inlets, wanted, timeout):
    """Pulls from every inlet until each has `wanted[i]` samples or `timeout` passes."""
    got = [[] for _ in inlets]
    deadline = time.time() + timeout
    while time.time() < deadline and any(len(g) < w for g, w in zip(got, wanted)):
        for inlet, rows in zip(inlets, got):
            samples, stamps = inlet.pull_chunk(timeout=0.05)
            rows.extend([t, s] for t, s in zip(stamps, samples))
    return got


def passthrough():
    rate, count = 100.0, 300
    info = pylsl.StreamInfo("test-amp", "EEG", 3, rate, "double64", "heloflow-test-amp")
    chans = info.desc().append_child("channels")
    for label in ["C3", "C4", "Cz"]:
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", "microvolts")
        ch.append_child_value("type", "EEG")
    outlet = pylsl.StreamOutlet(info)
    raw_inlet, raw_meta = subscribe("heloflow-test:raw:P01")
    win_inlet, win_meta = subscribe("heloflow-test:win:P01")
    if not outlet.wait_for_consumers(20.0):
        fail("heloflow never connected to the test outlet")
    time.sleep(0.5)
    start = pylsl.local_clock()
    sent = []
    for i in range(count):
        stamp = start + i / rate
        values = [i + 0.25, -i - 0.5, i * 1000.0 + 0.125]
        sent.append([stamp, values])
        while pylsl.local_clock() < stamp:
            time.sleep(0.001)
        outlet.push_sample(values, stamp)
    raw, windows = collect([raw_inlet, win_inlet], [count, int(count / rate) - 1], 10.0)
    print(json.dumps({
        "sent": sent,
        "raw": raw,
        "windows": windows,
        "raw_meta": raw_meta,
        "win_meta": win_meta,
        "raw_time_correction": raw_inlet.time_correction(timeout=5.0),
    }))


def restart():
    rate = 50.0

    def make():
        info = pylsl.StreamInfo("test-wrist", "GSR", 1, rate, "float32", "heloflow-test-wrist")
        ch = info.desc().append_child("channels").append_child("channel")
        ch.append_child_value("label", "EDA")
        ch.append_child_value("unit", "uS")
        ch.append_child_value("type", "GSR")
        return pylsl.StreamOutlet(info)

    def push(outlet, seconds, value):
        start = pylsl.local_clock()
        n = int(seconds * rate)
        for i in range(n):
            stamp = start + i / rate
            while pylsl.local_clock() < stamp:
                time.sleep(0.001)
            outlet.push_sample([value], stamp)
        return start, start + (n - 1) / rate, n

    outlet = make()
    if not outlet.wait_for_consumers(20.0):
        fail("heloflow never connected to the test outlet")
    time.sleep(0.3)
    first = push(outlet, 2.0, 1.0)
    time.sleep(0.5)  # let the last samples leave before the outlet dies
    del outlet
    time.sleep(3.0)
    outlet = make()
    if not outlet.wait_for_consumers(30.0):
        fail("heloflow did not reconnect to the restarted outlet (same source_id)")
    time.sleep(0.3)
    second = push(outlet, 2.0, 2.0)
    time.sleep(1.0)
    print(json.dumps({"first": first, "second": second}))


def markers():
    info = pylsl.StreamInfo("test-markers", "Markers", 1, 0, "string", "heloflow-test-markers")
    outlet = pylsl.StreamOutlet(info)
    relay, relay_meta = subscribe("heloflow-test:markers-relay")
    if not outlet.wait_for_consumers(20.0):
        fail("heloflow never connected to the marker outlet")
    time.sleep(0.5)
    texts = ["stim_start", "clip 3, \"amusing\"", "émotion ✓", "stim_end"]
    sent = []
    for text in texts:
        stamp = pylsl.local_clock()
        outlet.push_sample([text], stamp)
        sent.append([stamp, text])
        time.sleep(0.2)
    (relayed,) = collect([relay], [len(texts)], 10.0)
    print(json.dumps({"sent": sent, "relayed": relayed, "relay_meta": relay_meta}))


if __name__ == "__main__":
    scenarios = {"passthrough": passthrough, "restart": restart, "markers": markers}
    if len(sys.argv) != 2 or sys.argv[1] not in scenarios:
        fail(f"usage: peer.py {'|'.join(scenarios)}")
    scenarios[sys.argv[1]]()
