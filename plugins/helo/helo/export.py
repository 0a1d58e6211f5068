"""Trains the model to ship, exports it to ONNX and writes its manifest.

    python -m helo.export --recording out/helo-training.jsonl --validation-subjects S07 S08 \
        --test-subjects S09 S10 --out model/

HeLo and the baselines are trained on the remaining subjects, tuned and early-stopped on the
validation subjects, and scored on the test subjects, which nothing sees before.

The exported graph takes the raw HeLo input features (the z-score standardisation of the training set
is part of the graph, and its statistics are also listed in the manifest) and returns the emotion
distribution. Opset 18, dynamic batch.
"""

import argparse
import hashlib
import json
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data import RECORDING_STREAMS, load_recording
from .metrics import better_on
from .train import ABLATIONS, BASELINES, epoch_count, fit_all, score, table

OPSET = 18
INPUTS = ["eeg", "gsr", "ppg", "video"]

#: What each input must be computed as (the heloflow operator producing it).
FEATURE_DEFINITIONS = {
    "eeg": "DMER EEG differential entropy: 18 channels x 5 bands (1-4, 4-8, 8-14, 14-31, 31-49 Hz), channel-major",
    "gsr": "DMER GSR features (28)",
    "ppg": "DMER PPG features (27) after a 0.5-8 Hz band-pass",
    "video": "facial action-unit window statistics",
}


class Deployed(nn.Module):
    """A trained model taking HeLo's four inputs (HeLo or a flat baseline) with its input
    standardisation folded in."""

    def __init__(self, model, standardiser):
        super().__init__()
        self.model = model
        for index, (mean, std) in enumerate(zip(standardiser.mean, standardiser.std)):
            self.register_buffer(f"mean{index}", torch.tensor(mean, dtype=torch.float32))
            self.register_buffer(f"std{index}", torch.tensor(std, dtype=torch.float32))

    def forward(self, eeg, gsr, ppg, video):
        inputs = [eeg, gsr, ppg, video]
        scaled = [(x - getattr(self, f"mean{i}")) / getattr(self, f"std{i}") for i, x in enumerate(inputs)]
        return self.model(*scaled)


def export_onnx(deployed, example, path):
    """Writes the ONNX graph (opset 18, dynamic batch)."""
    deployed.eval()
    torch.onnx.export(
        deployed,
        tuple(example),
        str(path),
        input_names=INPUTS,
        output_names=["distribution"],
        dynamic_axes={name: {0: "batch"} for name in INPUTS + ["distribution"]},
        opset_version=OPSET,
        dynamo=False,
    )


def write_fixture(deployed, dataset, path, windows=8):
    """Inputs of a few held-out windows and PyTorch's outputs, for checking other runtimes."""
    inputs = [torch.tensor(x[:windows], dtype=torch.float32) for x in dataset.inputs()]
    with torch.no_grad():
        expected = deployed(*inputs).numpy()
    fixture = {
        "subjects": [str(s) for s in dataset.subjects[:windows]],
        "inputs": {name: x.numpy().tolist() for name, x in zip(INPUTS, inputs)},
        "pytorch_output": expected.tolist(),
    }
    path.write_text(json.dumps(fixture) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recording", required=True)
    parser.add_argument("--validation-subjects", nargs="+", required=True,
                        help="training-side subjects every model is tuned and early-stopped on")
    parser.add_argument("--test-subjects", nargs="+", required=True, help="subjects held out for the metrics")
    parser.add_argument("--epochs", type=epoch_count, default=15, help="most epochs, 1-1000; early stopping picks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", choices=sorted(ABLATIONS), default="full")
    parser.add_argument("--name", default="helo-sim")
    parser.add_argument("--version", default="0.1.0")
    parser.add_argument("--trained-on", default="heloflow simulator")
    parser.add_argument("--window-s", type=float, default=1.0)
    parser.add_argument("--hop-s", type=float, default=1.0)
    parser.add_argument("--out", default="model")
    args = parser.parse_args(argv)

    dataset = load_recording(args.recording)
    test_mask = np.isin(dataset.subjects, args.test_subjects)
    tune_mask = np.isin(dataset.subjects, args.validation_subjects)
    for name, mask in (("--test-subjects", test_mask), ("--validation-subjects", tune_mask)):
        if not mask.any():
            parser.error(f"{name}: none of them is in the recording")
    if (test_mask & tune_mask).any():
        parser.error("a subject is both a validation and a test subject")
    train, validation = dataset.select(~test_mask & ~tune_mask), dataset.select(tune_mask)
    test = dataset.select(test_mask)
    fitted = fit_all(train, validation, args.seed, args.epochs, ("helo",) + BASELINES, log=print,
                     **ABLATIONS[args.variant])
    scores = {name: score(test.target, predict(test)) for name, predict in fitted.items()}
    print(table({name: [values] for name, values in scores.items()}))
    model, standardiser = fitted["helo"].model, fitted["helo"].standardiser

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / f"{args.name}.onnx"
    deployed = Deployed(model, standardiser)
    example = [torch.tensor(x[:2], dtype=torch.float32) for x in test.inputs()]
    export_onnx(deployed, example, onnx_path)
    baselines = {}
    for baseline in ("linear", "mlp"):
        path = out / f"{args.name}-{baseline}.onnx"
        export_onnx(Deployed(fitted[baseline].model, fitted[baseline].standardiser), example, path)
        baselines[baseline] = path.name
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    manifest = {
        "name": args.name,
        "version": args.version,
        "file": onnx_path.name,
        "sha256": digest,
        "opset": OPSET,
        "architecture": "HeLo (Zheng et al., ACM MM 2025), heloflow implementation",
        "config": model.config.to_dict(),
        "labels": dataset.labels,
        "window_s": args.window_s,
        "hop_s": args.hop_s,
        "inputs": [
            {
                "name": name,
                "stream": RECORDING_STREAMS[name],
                "shape": [-1, int(x.shape[1])],
                "features": FEATURE_DEFINITIONS[name],
                "channels": dataset.columns[name],
                "mean": [float(v) for v in mean],
                "std": [float(v) for v in std],
            }
            for name, x, mean, std in zip(INPUTS, dataset.inputs(), standardiser.mean, standardiser.std)
        ],
        "training_mean": [float(v) for v in train.target.mean(axis=0)],
        "baselines": baselines,
        "output": {"name": "distribution", "shape": [-1, len(dataset.labels)], "unit": "probability"},
        "trained_on": {
            "data": args.trained_on,
            "train_subjects": sorted(set(train.subjects)),
            "test_subjects": sorted(set(test.subjects)),
            "validation_subjects": sorted(set(validation.subjects)),
            "windows": {"train": len(train), "validation": len(validation), "test": len(test)},
            "variant": args.variant,
            "epochs": model.trained_epochs,
            "max_epochs": args.epochs,
            "seed": args.seed,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        },
        "metrics": {"held_out": scores, "better_than": {
            baseline: better_on(scores["helo"], scores[baseline])
            for baseline in BASELINES}},
    }
    (out / f"{args.name}.json").write_text(json.dumps(manifest, indent=2) + "\n")
    write_fixture(deployed, test, out / f"{args.name}.fixture.json")
    print(f"wrote {onnx_path} and {out / (args.name + '.json')}")


if __name__ == "__main__":
    main()
