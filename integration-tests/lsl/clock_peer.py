"""A pylsl outlet whose sender clock misbehaves, for integration-tests/lsl_clocks.rs.

At 100 Hz, one float32 channel, source_id `heloflow-test-clock`, each phase's value telling its
samples apart: 2 s stamped right (1), half a second stamped 11 days ahead (9), 2 s right (2), then
the sender's clock steps back 60 s and stays there for 4 s (3). Prints the local-clock span of every
phase as JSON. Run with LSLAPICFG pointing at the loopback-only fixtures/lsl/lsl_api.cfg.
"""

import json
import sys
import time

import pylsl

RATE = 100.0
ELEVEN_DAYS = 11 * 24 * 3600.0


def main():
    info = pylsl.StreamInfo("test-clock", "GSR", 1, RATE, "float32", "heloflow-test-clock")
    ch = info.desc().append_child("channels").append_child("channel")
    ch.append_child_value("label", "EDA")
    outlet = pylsl.StreamOutlet(info)
    if not outlet.wait_for_consumers(30.0):
        sys.stderr.write("heloflow never connected to the test outlet\n")
        sys.exit(2)
    time.sleep(0.5)
    phases = {}
    for name, seconds, value, clock_error in [
        ("right", 2.0, 1.0, 0.0),
        ("future", 0.5, 9.0, ELEVEN_DAYS),
        ("right_again", 2.0, 2.0, 0.0),
        ("stepped_back", 4.0, 3.0, -60.0),
    ]:
        start = pylsl.local_clock()
        n = int(seconds * RATE)
        for i in range(n):
            due = start + i / RATE
            while pylsl.local_clock() < due:
                time.sleep(0.001)
            outlet.push_sample([value], due + clock_error)
        phases[name] = [start, start + (n - 1) / RATE, n]
    time.sleep(0.5)  # let the last samples leave before the outlet goes
    print(json.dumps(phases))


main()
