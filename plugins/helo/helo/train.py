"""Training and subject-independent evaluation of HeLo and its baselines.

    python -m helo.train --recording out/helo-features.jsonl --folds loso --epochs 40
    python -m helo.train --dmer path/to/dmer-features --folds 5
    python -m helo.train --wesad path/to/WESAD --folds loso

Evaluation never mixes subjects: leave-one-subject-out (`--folds loso`) or k folds of whole subjects
(`--folds K`). Every window of a held-out subject is scored (the reference code scored only the first
sample of each test batch). Everything is seeded: the same command gives the same numbers.
"""

import argparse
import json
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data import Dataset, load_dmer, load_recording
from .metrics import METRICS, beats, score
from .model import HeLo, HeloConfig, helo_loss
from .wesad import load_wesad


def seed_everything(seed):
    """Makes a run repeatable on CPU."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)


class Standardiser:
    """Per-feature z-score statistics of a training set, for each model input."""

    def __init__(self, dataset: Dataset):
        self.mean = [x.mean(axis=0) for x in dataset.inputs()]
        self.std = [np.where(x.std(axis=0) > 1e-9, x.std(axis=0), 1.0) for x in dataset.inputs()]

    def apply(self, dataset: Dataset):
        return [torch.tensor((x - m) / s, dtype=torch.float32)
                for x, m, s in zip(dataset.inputs(), self.mean, self.std)]


def config_for(dataset: Dataset, **overrides):
    """Model dimensions taken from the data (EEG is channels x 5 bands)."""
    config = HeloConfig(
        n_channels=dataset.eeg.shape[1] // 5,
        dim_eeg=5,
        dim_gsr=dataset.gsr.shape[1],
        dim_ppg=dataset.ppg.shape[1],
        dim_video=dataset.video.shape[1],
        emotion_classes=dataset.target.shape[1],
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def train_helo(train: Dataset, epochs, seed, batch_size=128, lr=1e-3, log=None, **overrides):
    """Trains HeLo on `train`; returns (model, standardiser)."""
    seed_everything(seed)
    standardiser = Standardiser(train)
    inputs = standardiser.apply(train)
    target = torch.tensor(train.target, dtype=torch.float32)
    model = HeLo(config_for(train, **overrides))
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(target), generator=generator)
        total = 0.0
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            predicted = model(*(x[index] for x in inputs))
            loss, _, _ = helo_loss(model, predicted, target[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(index)
        if log:
            log(f"epoch {epoch + 1}/{epochs}: loss {total / len(order):.5f}")
    model.eval()
    return model, standardiser


def predict_helo(model, standardiser, dataset: Dataset):
    with torch.no_grad():
        return model(*standardiser.apply(dataset)).numpy().astype(np.float64)


def train_linear(train: Dataset, epochs, seed, lr=1e-2):
    """The linear baseline: softmax regression on the same standardised features, KL loss."""
    seed_everything(seed)
    standardiser = Standardiser(train)
    features = torch.cat(standardiser.apply(train), dim=1)
    target = torch.tensor(train.target, dtype=torch.float32)
    model = nn.Linear(features.shape[1], target.shape[1])
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    for _ in range(epochs * 4):
        log_predicted = torch.log_softmax(model(features), dim=1)
        loss = nn.functional.kl_div(log_predicted, target, reduction="batchmean")
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    def predict(dataset):
        with torch.no_grad():
            x = torch.cat(standardiser.apply(dataset), dim=1)
            return torch.softmax(model(x), dim=1).numpy().astype(np.float64)

    predict.model = model
    predict.standardiser = standardiser
    return predict


def subject_folds(subjects, folds):
    """Held-out subject groups: one per subject (`loso`) or `folds` groups of whole subjects."""
    unique = sorted(set(subjects))
    if folds == "loso":
        return [[s] for s in unique]
    k = int(folds)
    if not 2 <= k <= len(unique):
        raise ValueError(f"--folds {k}: need between 2 and {len(unique)} folds for {len(unique)} subjects")
    return [unique[i::k] for i in range(k)]


def evaluate(dataset: Dataset, folds, epochs, seed, log=None, **overrides):
    """Subject-independent scores of HeLo and the baselines, pooled over all held-out windows."""
    predictions = {name: np.zeros_like(dataset.target) for name in ("helo", "uniform", "training_mean", "linear")}
    for number, held_out in enumerate(subject_folds(dataset.subjects, folds), 1):
        test_mask = np.isin(dataset.subjects, held_out)
        train, test = dataset.select(~test_mask), dataset.select(test_mask)
        if log:
            log(f"fold {number}: held out {', '.join(held_out)} ({len(test)} windows), training on {len(train)}")
        model, standardiser = train_helo(train, epochs, seed, **overrides)
        predictions["helo"][test_mask] = predict_helo(model, standardiser, test)
        predictions["uniform"][test_mask] = 1.0 / dataset.target.shape[1]
        predictions["training_mean"][test_mask] = train.target.mean(axis=0)
        predictions["linear"][test_mask] = train_linear(train, epochs, seed)(test)
    return {name: score(dataset.target, p) for name, p in predictions.items()}


def table(scores):
    """A Markdown table of the scores, arrows showing which direction is better."""
    header = "| model | " + " | ".join(f"{n} {'↑' if up else '↓'}" for n, up in METRICS) + " |"
    lines = [header, "|---" * (len(METRICS) + 1) + "|"]
    for model, values in scores.items():
        lines.append(f"| {model} | " + " | ".join(f"{values[n]:.4f}" for n, _ in METRICS) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--recording", help="heloflow JSON Lines recording (pipelines/helo-features.toml)")
    source.add_argument("--dmer", help="directory of DMER subject feature files (*.mat)")
    source.add_argument("--wesad", help="WESAD directory of subject pickles (S*/S*.pkl, as published)")
    parser.add_argument("--folds", default="loso", help="loso, or a number of subject folds")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scores", help="write the scores as JSON here")
    args = parser.parse_args(argv)
    if args.recording:
        dataset = load_recording(args.recording)
    elif args.dmer:
        dataset = load_dmer(args.dmer)
    else:
        dataset = load_wesad(args.wesad)
    scores = evaluate(dataset, args.folds, args.epochs, args.seed, log=print)
    print(table(scores))
    print("HeLo beats every baseline on all six metrics:",
          all(beats(scores["helo"], scores[b]) for b in ("uniform", "training_mean", "linear")))
    if args.scores:
        Path(args.scores).write_text(json.dumps(scores, indent=2))


if __name__ == "__main__":
    main()
