"""Publishes the input streams of pipelines/lsl-live.toml with pylsl, for benches/live_latency.rs.

Usage: live_publisher.py PREFIX SUBJECTS SECONDS LOG [STAMP [HICCUP_EVERY_S]]

Per subject (S1, S2, ...): EEG (18 ch, 300 Hz), FaceAU (19 ch, 30 Hz), GSR (1 ch, 4 Hz), PPG
(1 ch, 100 Hz), EmotionDistribution (10 ch, 10 Hz) and a string Markers stream (one marker every
2 s), with the channel labels and units the pipeline declares and the subject in desc/subject;
source_id PREFIX:<stream>:<subject>. Each sample is pushed on its own (push_sample) when the local
clock reaches its timestamp: sample n of a stream is stamped T0 + phase + n / rate, T0 a whole
second of local_clock() (window ends are whole seconds, so the phases below set where each stream's
last sample before a window end lies). With STAMP = "push" the samples are pushed at those times
but stamped by liblsl at the push (push_sample without a timestamp, as many LSL apps do), so their
timestamps carry the publisher's timing jitter; with HICCUP_EVERY_S the publisher also stops for
0.2 s that often and then catches up (a held-up sender). Prints "ready T0" once the outlets exist, streams
for SECONDS, then writes LOG: every sample's timestamp and push time (local_clock() right after
push_sample).
"""

import heapq
import json
import math
import random
import sys
import time

import pylsl

EEG = ["Fp1", "Fp2", "Fz", "F3", "F4", "F7", "F8", "Cz", "C3", "C4", "T3", "T4", "T5", "T6",
       "P3", "P4", "O1", "O2"]
FACE = ["AU01_r", "AU02_r", "AU04_r", "AU05_r", "AU06_r", "AU07_r", "AU09_r", "AU10_r", "AU12_r",
        "AU14_r", "AU15_r", "AU17_r", "AU20_r", "AU23_r", "AU25_r", "AU26_r", "AU45_r",
        "confidence", "success"]
EMOTIONS = ["neutral", "amusement", "joy", "tenderness", "inspiration", "surprise", "sadness",
            "fear", "anger", "disgust"]

# (stream, type, labels, unit, rate, phase s): phase = first sample's offset past a whole second.
STREAMS = [
    ("eeg", "EEG", EEG, "microvolts", 300.0, 0.0015),
    ("face", "FaceAU", FACE, "intensity", 30.0, 0.012),
    ("eda", "GSR", ["EDA"], "uS", 4.0, 0.137),
    ("ppg", "PPG", ["PPG"], "arbitrary", 100.0, 0.004),
    ("truth", "EmotionDistribution", EMOTIONS, "probability", 10.0, 0.043),
]
MARKER_EVERY_S = 2.0
HICCUP_S = 0.2


def outlet(prefix, subject, stream, kind, labels, unit, rate, fmt):
    info = pylsl.StreamInfo(f"{stream}-{subject}", kind, len(labels), rate, fmt,
                            f"{prefix}:{stream}:{subject}")
    channels = info.desc().append_child("channels")
    for label in labels:
        channel = channels.append_child("channel")
        channel.append_child_value("label", label)
        channel.append_child_value("unit", unit)
        channel.append_child_value("type", kind)
    info.desc().append_child_value("subject", subject)
    return pylsl.StreamOutlet(info)


def values(stream, n, rng):
    if stream == "eeg":
        return [rng.gauss(0.0, 10.0) for _ in EEG]
    if stream == "face":
        return [rng.uniform(0.0, 2.0) for _ in FACE[:-2]] + [0.95, 1.0]
    if stream == "eda":
        return [5.0 + 0.5 * math.sin(n / 40.0) + rng.gauss(0.0, 0.01)]
    if stream == "ppg":
        return [math.sin(2.0 * math.pi * 1.2 * n / 100.0) + rng.gauss(0.0, 0.05)]
    logits = [rng.gauss(0.0, 1.0) for _ in EMOTIONS]
    total = sum(math.exp(x) for x in logits)
    return [math.exp(x) / total for x in logits]


def main():
    prefix, subjects, seconds, log = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    at_push = len(sys.argv) > 5 and sys.argv[5] == "push"
    hiccup_every = float(sys.argv[6]) if len(sys.argv) > 6 else math.inf
    rng = random.Random(7)
    t0 = math.ceil(pylsl.local_clock()) + 2.0
    streams = []
    queue = []
    for s in range(subjects):
        subject = f"S{s + 1}"
        for stream, kind, labels, unit, rate, phase in STREAMS:
            key = len(streams)
            streams.append({
                "subject": subject, "stream": stream, "rate": rate, "phase": phase,
                "outlet": outlet(prefix, subject, stream, kind, labels, unit, rate, "float32"),
                "push": [], "stamp": [],
            })
            queue.append((t0 + phase, key, 0))
        key = len(streams)
        streams.append({
            "subject": subject, "stream": "markers", "rate": 0.0, "phase": 0.5,
            "outlet": outlet(prefix, subject, "markers", "Markers", ["marker"], "", 0.0, "string"),
            "push": [], "stamp": [],
        })
        queue.append((t0 + 0.5, key, 0))
    heapq.heapify(queue)
    print(f"ready {t0:.1f}", flush=True)
    end = t0 + seconds
    next_hiccup = t0 + hiccup_every
    while queue:
        stamp, key, n = heapq.heappop(queue)
        if stamp >= end:
            break
        wait = stamp - pylsl.local_clock()
        if wait > 0:
            time.sleep(wait)
        if stamp >= next_hiccup:
            time.sleep(HICCUP_S)
            next_hiccup += hiccup_every
        entry = streams[key]
        sample = values(entry["stream"], n, rng) if entry["rate"] > 0 else [f"stimulus_{n}"]
        if at_push:
            stamp_used = pylsl.local_clock()
            entry["outlet"].push_sample(sample, stamp_used)
        else:
            stamp_used = stamp
            entry["outlet"].push_sample(sample, stamp)
        entry["push"].append(pylsl.local_clock())
        entry["stamp"].append(stamp_used)
        if entry["rate"] > 0:
            following = t0 + entry["phase"] + (n + 1) / entry["rate"]
        else:
            following = stamp + MARKER_EVERY_S
        heapq.heappush(queue, (following, key, n + 1))
    with open(log, "w") as out:
        json.dump({
            "t0": t0,
            "streams": [{k: v for k, v in e.items() if k != "outlet"} for e in streams],
        }, out)
    time.sleep(1.0)


if __name__ == "__main__":
    main()
