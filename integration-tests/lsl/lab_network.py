"""A lab's session on one machine, seen by real pylsl and MNE-LSL clients (integration-tests/lsl_lab.rs).

Starts `heloflow simulate --lsl` (SUBJECTS subjects x eeg, eda, ppg, face: the devices) and
`heloflow run pipelines/lsl-lab.toml` (4 inlets per subject, one emotion outlet per subject), waits
until pylsl resolves every outlet, then connects MNE-LSL's StreamLSL to every emotion outlet and to
each input of the first subject, and prints one JSON object on stdout. Uses whatever liblsl
configuration the environment gives (LSLAPICFG or liblsl's defaults), so the Rust test runs it on
the shipped loopback configuration and on a lab's default one.

Usage: lab_network.py HELOFLOW PIPELINE SUBJECTS WORKDIR
"""

import json
import os
import signal
import subprocess
import sys
import time

import pylsl
from mne_lsl.stream import StreamLSL

heloflow, pipeline, subjects, workdir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
inputs = ["eeg", "eda", "ppg", "face"]
expected = {f"sim.{s}-S{k:02d}" for s in inputs for k in range(1, subjects + 1)}
expected |= {f"emotion-S{k:02d}" for k in range(1, subjects + 1)}

log = lambda name: open(os.path.join(workdir, name), "w")
devices = subprocess.Popen(
    [heloflow, "simulate", "--lsl", "--subjects", str(subjects), "--streams", ",".join(inputs),
     "--duration", "0", "--status", "off"],
    cwd=workdir, stdout=subprocess.DEVNULL, stderr=log("simulate.err"))
time.sleep(1.0)
run = subprocess.Popen([heloflow, "run", pipeline, "--status", "plain"], cwd=workdir,
                       stdout=subprocess.DEVNULL, stderr=log("run.err"))

result = {"expected": len(expected)}
try:
    # Streams appear as the devices and then heloflow's per-subject outlets start; a client
    # resolving repeatedly (as LabRecorder's refresh does) must find every one of them.
    seen, largest_single_resolve = set(), 0
    started = time.monotonic()
    while time.monotonic() < started + 90 and not expected <= seen:
        found = {info.name() for info in pylsl.resolve_streams(2.0)}
        largest_single_resolve = max(largest_single_resolve, len(expected & found))
        seen |= found
        if run.poll() is not None or devices.poll() is not None:
            break
    result["pylsl_missing"] = sorted(expected - seen)
    result["pylsl_seen"] = len(expected & seen)
    result["largest_single_resolve"] = largest_single_resolve
    result["resolve_s"] = round(time.monotonic() - started, 1)

    streams = {}
    targets = [f"emotion-S{k:02d}" for k in range(1, subjects + 1)] + [f"sim.{s}-S01" for s in inputs]
    for name in targets:
        stream = StreamLSL(bufsize=5, name=name)
        began = time.monotonic()
        try:
            stream.connect(timeout=10)
        except Exception as error:  # noqa: BLE001 - reported to the Rust test as data
            streams[name] = {"error": f"{type(error).__name__}: {error}"}
            continue
        info = stream.info
        streams[name] = {
            "sfreq": info["sfreq"],
            "ch_types": sorted(set(stream.get_channel_types())),
            "units": sorted({ch["unit"] for ch in info["chs"]}),
            "unit_mul": sorted({ch["unit_mul"] for ch in info["chs"]}),
            "n_channels": info["nchan"],
            "connect_s": round(time.monotonic() - began, 2),
        }
        stream.disconnect()
    result["mne"] = streams
finally:
    for process in (run, devices):
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    result["run_exit"] = run.wait(timeout=30)
    result["simulate_exit"] = devices.wait(timeout=30)

print(json.dumps(result))
