"""A real pylsl client of `heloflow replay`: resolves the replayed streams by type, pulls every
sample with its timestamp, and prints JSON: per stream the stream info as pylsl sees it (name, type,
channel count, rate, format, source_id, channel labels from desc) and the samples.

Usage: python3 replay_client.py TYPE:COUNT [TYPE:COUNT ...] [--timeout S]
Pulls until each TYPE has delivered COUNT samples, or the timeout passes.
"""

import argparse
import json
import time

import pylsl

FORMATS = {
    pylsl.cf_float32: "float32",
    pylsl.cf_double64: "double64",
    pylsl.cf_string: "string",
    pylsl.cf_int32: "int32",
    pylsl.cf_int16: "int16",
    pylsl.cf_int8: "int8",
    pylsl.cf_int64: "int64",
}


def labels(info):
    out = []
    channel = info.desc().child("channels").child("channel")
    while not channel.empty():
        out.append(channel.child_value("label"))
        channel = channel.next_sibling()
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("wanted", nargs="+")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    wanted = {}
    for item in args.wanted:
        kind, count = item.split(":")
        wanted[kind] = int(count)
    deadline = time.time() + args.timeout
    inlets = {}
    for kind in wanted:
        found = pylsl.resolve_byprop("type", kind, 1, max(1.0, deadline - time.time()))
        if not found:
            raise SystemExit(f"no stream of type {kind}")
        inlet = pylsl.StreamInlet(found[0], max_buflen=360, recover=False)
        inlet.open_stream(timeout=10)
        inlets[kind] = inlet
    print("READY", flush=True, file=__import__("sys").stderr)
    out = {}
    for kind, inlet in inlets.items():
        info = inlet.info(timeout=10)
        out[kind] = {
            "name": info.name(),
            "type": info.type(),
            "channel_count": info.channel_count(),
            "nominal_srate": info.nominal_srate(),
            "channel_format": FORMATS.get(info.channel_format(), str(info.channel_format())),
            "source_id": info.source_id(),
            "labels": labels(info),
            "samples": [],
            "timestamps": [],
        }
    while time.time() < deadline and any(
        len(out[k]["samples"]) < n for k, n in wanted.items()
    ):
        for kind, inlet in inlets.items():
            samples, stamps = inlet.pull_chunk(timeout=0.05)
            out[kind]["samples"].extend(samples)
            out[kind]["timestamps"].extend(repr(t) for t in stamps)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
