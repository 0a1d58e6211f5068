"""pylsl peer for integration-tests/live_release.rs: when heloflow releases a live window.

Usage: release_peer.py TAG EXPECTED_NEXT

Publishes a 4 Hz EDA stream (source_id heloflow-test-release-wrist-TAG) and a marker stream
(heloflow-test-release-stim-TAG). Once heloflow has connected, it pushes the EDA samples stamped
T0 + 0.1 + n / 4 up to the last one before T0 + 5 (T0 a whole second), one marker, and then
withholds the next EDA sample. It subscribes to heloflow's window outlet and collects the window
ends heloflow publishes:

- EXPECTED_NEXT = 1: the window ending at T0 + 5 must come while the next sample is withheld
  (its last sample arrived; the marker stream, whose event time trails the clock by 60 s, shares
  the sink but must not hold the window's outlet back);
- EXPECTED_NEXT = 0: the window ending at T0 + 4 comes, the one ending at T0 + 5 does not, however
  long the peer waits, until the next sample (T0 + 5.1) is pushed.

Prints one JSON object: t0, the window ends seen while withholding, and after the next sample.
"""

import json
import math
import sys
import time

import pylsl

tag, expected_next = sys.argv[1], sys.argv[2] == "1"

info = pylsl.StreamInfo("wrist", "GSR", 1, 4.0, "float32", f"heloflow-test-release-wrist-{tag}")
info.desc().append_child("channels").append_child("channel").append_child_value("label", "EDA")
wrist = pylsl.StreamOutlet(info)
stim = pylsl.StreamOutlet(pylsl.StreamInfo("stim", "Markers", 1, 0.0, "string",
                                           f"heloflow-test-release-stim-{tag}"))
if not (wrist.wait_for_consumers(60.0) and stim.wait_for_consumers(60.0)):
    sys.exit("heloflow never connected to the peer's outlets")

found = pylsl.resolve_byprop("source_id", f"heloflow-test-release:win:P01:{tag}", timeout=30.0)
if not found:
    sys.exit("heloflow's window outlet never appeared")
inlet = pylsl.StreamInlet(found[0], max_buflen=60)
inlet.open_stream(timeout=10.0)
time.sleep(0.5)

t0 = math.ceil(pylsl.local_clock()) - 6.0
stamps = [t0 + 0.1 + n / 4.0 for n in range(20)]
assert stamps[-1] < t0 + 5.0 < stamps[-1] + 0.25
for n, stamp in enumerate(stamps):
    wrist.push_sample([5.0 + 0.01 * n], stamp)
stim.push_sample(["stimulus"], t0 + 0.5)


def collect(until, stop_at):
    ends = []
    deadline = time.time() + until
    while time.time() < deadline:
        sample, stamp = inlet.pull_sample(timeout=0.1)
        if stamp is not None:
            ends.append(round(stamp - t0, 6))
            if stop_at is not None and ends[-1] >= stop_at:
                break
    return ends


# With the next sample's time expected, the window ending at T0 + 5 closes now; without, the one
# ending at T0 + 4 is the last that can close, and 2 s more show the next stays open.
if expected_next:
    withheld = collect(30.0, 5.0)
else:
    withheld = collect(30.0, 4.0)
    withheld += collect(2.0, None)
wrist.push_sample([6.0], t0 + 5.1)
after = collect(1.0, None) if expected_next else collect(30.0, 5.0)
print(json.dumps({"t0": t0, "withheld": withheld, "after": after}))
