"""Bare pylsl relay for benches/lsl_latency.rs: inlet on source_id argv[1] -> outlet argv[2]."""

import sys

import pylsl

found = pylsl.resolve_byprop("source_id", sys.argv[1], timeout=20.0)
if not found:
    sys.exit(f"no stream with source_id {sys.argv[1]}")
inlet = pylsl.StreamInlet(found[0], max_buflen=10)
info = pylsl.StreamInfo("bench-relay", "EEG", 1, 100.0, "double64", sys.argv[2])
outlet = pylsl.StreamOutlet(info)
inlet.open_stream(timeout=10.0)
while True:
    sample, stamp = inlet.pull_sample(timeout=5.0)
    if stamp is None:
        break
    outlet.push_sample(sample, stamp + inlet.time_correction())
