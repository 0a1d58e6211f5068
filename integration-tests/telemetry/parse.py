"""Reads Prometheus text exposition with prometheus_client's reference parser and prints, as JSON,
every family (name, type) and sample (name, labels, value), and the problems found: in each
histogram buckets not cumulative, a +Inf bucket missing or not equal to _count; over HTTP a
status or Content-Type other than Prometheus text 0.0.4.

The text comes from standard input, or with a URL argument from an HTTP GET of it (urllib)."""

import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def number(value):
    """The value as text that reads back exactly (JSON numbers may not round-trip)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def histogram_problems(family):
    problems = []
    series = {}
    for sample in family.samples:
        labels = {k: v for k, v in sample.labels.items() if k != "le"}
        key = tuple(sorted(labels.items()))
        entry = series.setdefault(key, {"buckets": [], "count": None})
        if sample.name.endswith("_bucket"):
            entry["buckets"].append((float(sample.labels["le"]), sample.value))
        elif sample.name.endswith("_count"):
            entry["count"] = sample.value
    for key, entry in series.items():
        buckets = entry["buckets"]
        if [b for b, _ in buckets] != sorted(b for b, _ in buckets):
            problems.append(f"{family.name}{key}: bounds not ascending")
        counts = [c for _, c in buckets]
        if counts != sorted(counts):
            problems.append(f"{family.name}{key}: buckets not cumulative")
        if not buckets or buckets[-1][0] != math.inf:
            problems.append(f"{family.name}{key}: no +Inf bucket")
        elif buckets[-1][1] != entry["count"]:
            problems.append(f"{family.name}{key}: +Inf bucket {buckets[-1][1]} != count {entry['count']}")
    return problems


families = []
problems = []
if len(sys.argv) > 1:
    import urllib.request

    with urllib.request.urlopen(sys.argv[1], timeout=20) as response:
        content_type = response.headers.get("Content-Type", "")
        if response.status != 200:
            problems.append(f"status {response.status}")
        if not content_type.startswith("text/plain") or "version=0.0.4" not in content_type:
            problems.append(f"Content-Type {content_type!r}")
        text = response.read().decode("utf-8")
else:
    text = sys.stdin.read()
for family in text_string_to_metric_families(text):
    families.append({
        "name": family.name,
        "type": family.type,
        "samples": [
            {"name": s.name, "labels": dict(s.labels), "value": number(s.value)}
            for s in family.samples
        ],
    })
    if family.type == "histogram":
        problems.extend(histogram_problems(family))
print(json.dumps({"families": families, "problems": problems, "text": text}))
