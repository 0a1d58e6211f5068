"""Bare pylsl relay for benches/live_latency.rs: forwards every stream whose source_id starts with
argv[1] (argv[2] of them) to an outlet of source_id <source_id>:relay and type <type>-relay, one
thread per stream (pull_sample -> push_sample, the GIL released while liblsl waits)."""

import sys
import threading
import time

import pylsl


def relay(info):
    inlet = pylsl.StreamInlet(info, max_buflen=10)
    out = pylsl.StreamInfo(info.name() + "-relay", info.type() + "-relay", info.channel_count(),
                           info.nominal_srate(), info.channel_format(), info.source_id() + ":relay")
    outlet = pylsl.StreamOutlet(out)
    inlet.open_stream(timeout=10.0)
    while True:
        sample, stamp = inlet.pull_sample(timeout=5.0)
        if stamp is None:
            return
        outlet.push_sample(sample, stamp + inlet.time_correction())


prefix, count = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 30.0
found = []
while len(found) < count and time.time() < deadline:
    found = pylsl.resolve_bypred(f"starts-with(source_id,'{prefix}:')", minimum=count, timeout=5.0)
if len(found) < count:
    sys.exit(f"found {len(found)} of {count} streams with source_id {prefix}:*")
threads = [threading.Thread(target=relay, args=(info,), daemon=True) for info in found]
for thread in threads:
    thread.start()
try:
    for thread in threads:
        thread.join()
except KeyboardInterrupt:
    pass
