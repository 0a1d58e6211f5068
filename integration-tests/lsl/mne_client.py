"""MNE-LSL as a lab uses it, against heloflow's LSL outlets (integration-tests/mne_lsl.rs).

Scenarios (each prints one JSON object on stdout for the Rust test to check):

- `outlets SOURCE_ID...`: connects MNE-LSL's StreamLSL to each outlet, waits for samples, and
  reports what MNE made of it: channel names, types, units (FIFF unit, multiplier), rate, dtype,
  and the desc elements heloflow adds (`model`, `events`).
- `player PREFIX GAP_S`: publishes a 3-channel EEG recording in volts with MNE-LSL's PlayerLSL (stream type
  `eeg`, units as MNE writes them) and a string marker outlet, waits for heloflow to republish
  both (the EEG converted to microvolts, the markers as event codes), epochs the EEG on the
  numeric markers with EpochsStream, and reports the epochs. Its outlets' source_ids are
  `PREFIX-player` and `PREFIX-markers`; heloflow's are `PREFIX:eeg:P01` and `PREFIX:markers:P01`
  (a prefix per test process, so concurrent test runs never share a source_id). GAP_S is how
  much longer to wait for heloflow (the runs before the one that republishes).

Run with LSLAPICFG pointing at the loopback-only fixtures/lsl/lsl_api.cfg.
"""

import json
import sys
import time

try:
    import numpy as np
    import mne
    from mne_lsl.lsl import StreamInfo, StreamOutlet, local_clock
    from mne_lsl.player import PlayerLSL
    from mne_lsl.stream import EpochsStream, StreamLSL
except ImportError as error:
    sys.stderr.write(f"MNE-LSL is not installed ({error}): run ./scripts/test (it installs requirements-dev.txt)\n")
    sys.exit(3)

mne.set_log_level("ERROR")


def fail(message):
    sys.stderr.write(message + "\n")
    sys.exit(2)


def desc_children(element, name, fields):
    """The `name` children of an XML element, each as a dict of its `fields`' text."""
    found = []
    child = element.child(name)
    while not child.empty():
        found.append({field: child.child(field).first_child().value() for field in fields})
        child = child.next_sibling(name)
    return found


def connect(source_id, bufsize, timeout=30.0):
    """A connected StreamLSL on the outlet with this source_id (retried until `timeout`)."""
    deadline = time.time() + timeout
    while True:
        stream = StreamLSL(bufsize, source_id=source_id)
        try:
            return stream.connect(acquisition_delay=0.01, processing_flags="all", timeout=5.0)
        except (RuntimeError, TimeoutError) as error:
            if time.time() > deadline:
                fail(f"MNE-LSL could not connect to {source_id} within {timeout} s: {error}")


def describe(stream):
    sinfo = stream.sinfo
    desc = sinfo.desc
    model = desc.child("model")
    label_texts = []
    label = model.child("labels").child("label")
    while not label.empty():
        label_texts.append(label.first_child().value())
        label = label.next_sibling("label")
    return {
        "name": sinfo.name,
        "stype": sinfo.stype,
        "ch_names": stream.info["ch_names"],
        "ch_types": stream.get_channel_types(unique=False),
        "units": [[int(unit), int(mul)] for unit, mul in stream.get_channel_units()],
        "sfreq": float(stream.info["sfreq"]),
        "dtype": str(np.dtype(stream.dtype)),
        "model": None if model.empty() else {
            "name": model.child("name").first_child().value(),
            "version": model.child("version").first_child().value(),
            "sha256": model.child("sha256").first_child().value(),
            "labels": label_texts,
            "window_s": model.child("window_s").first_child().value(),
            "hop_s": model.child("hop_s").first_child().value(),
        },
        "events": desc_children(desc.child("events"), "event", ["code", "name"]),
    }


def outlets(source_ids):
    streams = {sid: connect(sid, 30.0 if ".markers:" not in sid else 100) for sid in source_ids}
    described = {sid: describe(stream) for sid, stream in streams.items()}
    # Every numeric outlet delivers samples to MNE-LSL (markers only when a stimulus starts).
    deadline = time.time() + 40.0
    while time.time() < deadline:
        waiting = [sid for sid, s in streams.items() if s.n_new_samples == 0 and "markers" not in sid]
        if not waiting:
            break
        time.sleep(0.2)
    for sid, stream in streams.items():
        described[sid]["samples"] = int(stream.n_new_samples)
        stream.disconnect()
    print(json.dumps(described))


def player(prefix, bad_run_gap_s):
    sfreq, n = 100.0, 6000
    # Channel c, sample i: (1000 c + i) microvolts, written in volts as MNE keeps EEG.
    ramp = np.arange(n, dtype=np.float64)
    data = np.vstack([(1000.0 * c + ramp) * 1e-6 for c in range(3)])
    info = mne.create_info(["C3", "C4", "Cz"], sfreq, "eeg")
    raw = mne.io.RawArray(data, info)
    eeg_player = PlayerLSL(raw, chunk_size=5, name="mne-player-eeg", source_id=f"{prefix}-player")
    eeg_player.start()
    marker_info = StreamInfo("mne-player-markers", "Markers", 1, 0.0, "string", f"{prefix}-markers")
    marker_info.set_channel_names(["Marker"])
    markers = StreamOutlet(marker_info)
    # The test waits for this line before it looks for the player (importing MNE takes seconds).
    print("ready", file=sys.stderr, flush=True)
    published = {
        "player_stype": eeg_player._sinfo.stype,
        "player_units": eeg_player._sinfo.get_channel_units(),
        "player_types": eeg_player._sinfo.get_channel_types(),
    }
    # heloflow's republished streams; the first (refused) run opens none of them.
    eeg = connect(f"{prefix}:eeg:P01", 10.0, timeout=60.0 + bad_run_gap_s)
    events = connect(f"{prefix}:markers:P01", 100, timeout=30.0)
    published["eeg"] = describe(eeg)
    published["markers"] = describe(events)
    epochs = EpochsStream(
        eeg,
        bufsize=20,
        event_id={"start": 1, "end": 2},
        event_channels="Marker",
        event_stream=events,
        tmin=-0.2,
        tmax=0.5,
        baseline=None,
    ).connect(acquisition_delay=0.05)
    # heloflow opens its outlets before its inlets connect, and LSL delivers nothing sent before
    # an inlet connects: "warmup" markers (code 9, no epochs) until one has come through.
    deadline = time.time() + 30.0
    while events.n_new_samples == 0:
        if time.time() > deadline:
            fail("no warm-up marker came through heloflow within 30 s")
        markers.push_sample(["warmup"], local_clock())
        time.sleep(0.3)
    time.sleep(0.5)
    sent = []
    for k, value in enumerate(["stimulus_start:clip_01", "calibration", "stimulus_end:clip_01",
                               "stimulus_start:clip_02", "stimulus_end:clip_02"]):
        stamp = local_clock()
        markers.push_sample([value], stamp)
        sent.append([stamp, value])
        time.sleep(0.7)
    deadline = time.time() + 20.0
    while epochs.n_new_epochs < 4 and time.time() < deadline:
        time.sleep(0.1)
    count = int(epochs.n_new_epochs)
    published["sent"] = sent
    published["n_epochs"] = count
    published["epoch_events"] = [int(code) for code in epochs.events[-count:]] if count else []
    published["epochs"] = epochs.get_data(n_epochs=count).tolist() if count else []
    published["epoch_times"] = epochs.times.tolist()
    # Read last: get_data resets the count of new samples EpochsStream waits on.
    codes, stamps = events.get_data()
    published["received"] = [[float(t), int(c)] for t, c in zip(stamps, codes[0]) if c != 0 and c != 9]
    epochs.disconnect()
    events.disconnect()
    eeg.disconnect()
    eeg_player.stop()
    print(json.dumps(published))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        fail("usage: mne_client.py outlets SOURCE_ID... | player PREFIX GAP_S")
    scenario = sys.argv[1]
    if scenario == "outlets":
        outlets(sys.argv[2:])
    elif scenario == "player":
        player(sys.argv[2], float(sys.argv[3]))
    else:
        fail(f"unknown scenario {scenario}")
