"""Training and evaluation of HeLo beside tuned baselines, with nested validation.

    python -m helo.train --recording out/helo-training.jsonl --folds 5 --seeds 0 1 2
    python -m helo.train --dmer path/to/dmer-features --folds loso
    python -m helo.train --wesad path/to/WESAD --folds loso
    python -m helo.train --dmer path/to/dmer-features --protocol paper
    python -m helo.train --recording out/helo-training.jsonl --ablations --validation-subjects S07 S08 \\
        --test-subjects S09 S10
    python -m helo.train --merge first.json second.json

Protocols:
- `subjects` (default): folds of whole subjects (`--folds loso` or `--folds K`). In every fold some of
  the *training* subjects are set aside for validation; every model (HeLo and each baseline) is tuned
  and early-stopped on them and never sees the fold's test subjects. Every held-out window is scored.
- `paper`: the official code's protocol, one model per subject trained on a random 80% of that
  subject's windows and tested on the other 20% (validation: a random eighth of the 80%). Neighbouring
  windows of one clip land on both sides, so its scores are subject-dependent; it exists to compare
  like for like with published numbers.

Each (seed, fold) gives one score per model; tables show mean ± sd over all of them. Everything is
seeded: the same command gives the same numbers.
"""

import argparse
import copy
import json
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data import Dataset, load_dmer, load_recording
from .metrics import METRICS, better_on, score
from .model import HeLo, HeloConfig, helo_loss
from .wesad import WESAD_TARGETS, load_wesad

#: Baselines in report order (HeLo is scored before them).
BASELINES = ("uniform", "training_mean", "linear", "mlp", "knn")

#: The ablation variants: name -> HeloConfig overrides. `full` is the paper's model.
ABLATIONS = {
    "full": {},
    "no_heterogeneity_mining": {"heterogeneity_mining": False},
    "no_label_alignment": {"alignment_weight": 0.0},
    "no_correlation_attention": {"correlation_bias": "none"},
    "bias_after_scaling": {"correlation_bias": "after_scaling"},
    "learned_bias_scale": {"correlation_bias": "learned_scale"},
}


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

    def flat(self, dataset: Dataset):
        """The standardised inputs side by side, [windows, features], for the flat baselines."""
        return torch.cat(self.apply(dataset), dim=1)


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
    config.__post_init__()
    return config


def kl_to(target, predicted):
    """Mean KL divergence of `predicted` from `target`: the quantity every model is selected on."""
    return score(target, predicted)["kl_divergence"]


class EarlyStopping:
    """Keeps the state of the best validation score so far and says when `patience` checks passed
    without improvement."""

    def __init__(self, patience):
        self.patience, self.best, self.state, self.step, self.waited = patience, float("inf"), None, 0, 0

    def check(self, value, model, step):
        """Records one validation score; returns True when training should stop."""
        if value < self.best - 1e-6:
            self.best, self.state, self.step, self.waited = value, copy.deepcopy(model.state_dict()), step, 0
        else:
            self.waited += 1
        return self.waited >= self.patience

    def restore(self, model):
        if self.state is not None:
            model.load_state_dict(self.state)
        return model


def train_helo(train: Dataset, epochs, seed, batch_size=128, lr=1e-3, log=None, validation=None,
               patience=3, **overrides):
    """Trains HeLo on `train` for at most `epochs`; with `validation`, keeps the epoch with the lowest
    validation KL and stops after `patience` epochs without improvement. Returns (model, standardiser);
    `model.trained_epochs` is the epoch kept."""
    seed_everything(seed)
    standardiser = Standardiser(train)
    inputs = standardiser.apply(train)
    target = torch.tensor(train.target, dtype=torch.float32)
    model = HeLo(config_for(train, **overrides))
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    stopping = EarlyStopping(patience)
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
        message = f"epoch {epoch + 1}/{epochs}: loss {total / len(order):.5f}"
        stop = False
        if validation is not None:
            model.eval()
            value = kl_to(validation.target, predict_helo(model, standardiser, validation))
            message += f", validation KL {value:.5f}"
            stop = stopping.check(value, model, epoch + 1)
        if log:
            log(message)
        if stop:
            break
    if validation is not None:
        stopping.restore(model)
    model.trained_epochs = stopping.step if validation is not None else epochs
    model.eval()
    return model, standardiser


def predict_helo(model, standardiser, dataset: Dataset):
    with torch.no_grad():
        return model(*standardiser.apply(dataset)).numpy().astype(np.float64)


class FlatModel(nn.Module):
    """A baseline on the four standardised inputs side by side, with HeLo's four inputs (so it can be
    exported and run by heloflow like HeLo); `network` maps features to logits."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, *inputs):
        return torch.softmax(self.network(torch.cat(inputs, dim=1)), dim=1)


def fit_flat(train, validation, seed, make_network, weight_decay, lr, batch_size, max_epochs, patience):
    """Trains a flat baseline with Adam and a KL loss, early-stopped on the validation KL.
    Returns (model, standardiser, best validation KL)."""
    seed_everything(seed)
    standardiser = Standardiser(train)
    features = standardiser.flat(train)
    target = torch.tensor(train.target, dtype=torch.float32)
    held = standardiser.flat(validation)
    model = FlatModel(make_network(features.shape[1], target.shape[1]))
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    stopping = EarlyStopping(patience)
    for epoch in range(max_epochs):
        model.train()
        order = torch.randperm(len(target), generator=generator)
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            log_predicted = torch.log_softmax(model.network(features[index]), dim=1)
            loss = nn.functional.kl_div(log_predicted, target[index], reduction="batchmean")
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            value = kl_to(validation.target, model.network(held).softmax(dim=1).numpy().astype(np.float64))
        if stopping.check(value, model, epoch + 1):
            break
    stopping.restore(model).eval()
    return model, standardiser, stopping.best


def flat_predictor(model, standardiser):
    """A function from a dataset to the flat model's distributions; keeps the model for export."""

    def predict(dataset):
        with torch.no_grad():
            return model(*standardiser.apply(dataset)).numpy().astype(np.float64)

    predict.model, predict.standardiser = model, standardiser
    return predict


def tuned(candidates, log=None, name=""):
    """The candidate with the lowest validation KL; candidates are (setting, (model, std, kl))."""
    best_setting, best = min(candidates, key=lambda c: c[1][2])
    if log:
        log(f"{name}: chose {best_setting} (validation KL {best[2]:.5f})")
    return flat_predictor(best[0], best[1])


def train_linear(train, validation, seed, log=None):
    """Softmax regression on the standardised inputs, KL loss, full batch, trained to convergence:
    weight decay chosen on the validation subjects, early stopping on them."""
    candidates = []
    for weight_decay in (0.0, 1e-4, 1e-3, 1e-2):
        fitted = fit_flat(train, validation, seed, lambda i, o: nn.Linear(i, o), weight_decay, lr=1e-2,
                          batch_size=len(train), max_epochs=3000, patience=50)
        candidates.append(({"weight_decay": weight_decay}, fitted))
    return tuned(candidates, log, "linear")


def train_mlp(train, validation, seed, log=None):
    """One hidden layer of 128 ReLU units, KL loss, Adam in batches of 128: dropout and weight decay
    chosen on the validation subjects, early stopping on them."""
    candidates = []
    for dropout in (0.0, 0.3):
        for weight_decay in (1e-4, 1e-3):
            def network(i, o, dropout=dropout):
                return nn.Sequential(nn.Linear(i, 128), nn.ReLU(), nn.Dropout(dropout), nn.Linear(128, o))

            fitted = fit_flat(train, validation, seed, network, weight_decay, lr=1e-3, batch_size=128,
                              max_epochs=200, patience=8)
            candidates.append(({"dropout": dropout, "weight_decay": weight_decay}, fitted))
    return tuned(candidates, log, "mlp")


def train_knn(train, validation, seed, log=None):
    """AA-kNN (Geng, 2016): the mean target distribution of the k nearest training windows in the
    standardised feature space; k chosen on the validation subjects."""
    from sklearn.neighbors import KNeighborsRegressor

    standardiser = Standardiser(train)
    features = standardiser.flat(train).numpy()
    held = standardiser.flat(validation).numpy()
    best = None
    for k in (5, 10, 20, 50, 100, 200):
        if k > len(train):
            break
        knn = KNeighborsRegressor(n_neighbors=k).fit(features, train.target)
        value = kl_to(validation.target, knn.predict(held))
        if best is None or value < best[0]:
            best = (value, k, knn)
    if log:
        log(f"knn: chose k = {best[1]} (validation KL {best[0]:.5f})")
    knn = best[2]
    return lambda dataset: knn.predict(standardiser.flat(dataset).numpy())


def fit_all(train, validation, seed, epochs, models, log=None, **overrides):
    """Fits every model in `models` on `train`, tuned on `validation`; returns name -> predictor."""
    fitted = {}
    if "helo" in models:
        model, standardiser = train_helo(train, epochs, seed, validation=validation, log=log, **overrides)
        fitted["helo"] = lambda d, m=model, s=standardiser: predict_helo(m, s, d)
        fitted["helo"].model, fitted["helo"].standardiser = model, standardiser
    labels = train.target.shape[1]
    if "uniform" in models:
        fitted["uniform"] = lambda d: np.full((len(d), labels), 1.0 / labels)
    if "training_mean" in models:
        mean = train.target.mean(axis=0)
        fitted["training_mean"] = lambda d: np.tile(mean, (len(d), 1))
    trainers = {"linear": train_linear, "mlp": train_mlp, "knn": train_knn}
    for name, trainer in trainers.items():
        if name in models:
            fitted[name] = trainer(train, validation, seed, log)
    return fitted


def subject_folds(subjects, folds):
    """Held-out subject groups: one per subject (`loso`) or `folds` groups of whole subjects."""
    unique = sorted(set(subjects))
    if folds == "loso":
        return [[s] for s in unique]
    k = int(folds)
    if not 2 <= k <= len(unique):
        raise ValueError(f"--folds {k}: need between 2 and {len(unique)} folds for {len(unique)} subjects")
    return [unique[i::k] for i in range(k)]


def validation_subjects(subjects, seed, fraction=0.25):
    """The training subjects set aside for tuning: a seeded quarter of them (at least one)."""
    unique = sorted(set(subjects))
    if len(unique) < 2:
        raise ValueError("nested validation needs at least two training subjects")
    count = min(len(unique) - 1, max(1, round(len(unique) * fraction)))
    return sorted(np.random.default_rng(seed).choice(unique, size=count, replace=False).tolist())


def score_splits(splits, epochs, models, log=None, **overrides):
    """Fits every model on each (seed, train, validation, test, run) split and scores it on the test
    windows. Returns {model: [scores per split]} and the runs' descriptions, in split order."""
    results = {name: [] for name in models}
    runs = []
    for seed, train, validation, test, run in splits:
        if log:
            log(", ".join(f"{key} {value}" for key, value in run.items()) +
                f": training {len(train)}, validation {len(validation)}, test {len(test)} windows")
        fitted = fit_all(train, validation, seed, epochs, models, log, **overrides)
        for name in models:
            results[name].append(score(test.target, fitted[name](test)))
        runs.append(run)
    return results, runs


def subject_splits(dataset: Dataset, folds, seeds):
    """Per seed and fold of whole test subjects: training subjects, a seeded quarter of them set aside
    for validation, and the fold's test subjects."""
    for seed in seeds:
        for number, held_out in enumerate(subject_folds(dataset.subjects, folds), 1):
            test_mask = np.isin(dataset.subjects, held_out)
            rest, test = dataset.select(~test_mask), dataset.select(test_mask)
            tuning = validation_subjects(rest.subjects, seed + number)
            tune_mask = np.isin(rest.subjects, tuning)
            run = {"seed": seed, "fold": number, "test": held_out, "validation": tuning}
            yield seed, rest.select(~tune_mask), rest.select(tune_mask), test, run


def evaluate(dataset: Dataset, folds, epochs, seeds, models=("helo",) + BASELINES, log=None, **overrides):
    """Subject-independent scores: one (seed, fold) entry per run, each scoring every held-out window
    of the fold. Returns {model: [scores, ...]} in run order, and the runs' descriptions."""
    return score_splits(subject_splits(dataset, folds, seeds), epochs, models, log, **overrides)


def paper_split(dataset: Dataset, seed, test_fraction=0.2):
    """The official code's per-subject split: for each subject a random `test_fraction` of its windows
    is the test set. Returns {subject: (train mask, test mask)} over the whole dataset."""
    rng = np.random.default_rng(seed)
    splits = {}
    for subject in sorted(set(dataset.subjects)):
        index = np.flatnonzero(dataset.subjects == subject)
        test = rng.choice(index, size=max(1, round(len(index) * test_fraction)), replace=False)
        test_mask = np.zeros(len(dataset), dtype=bool)
        test_mask[test] = True
        train_mask = (dataset.subjects == subject) & ~test_mask
        splits[subject] = (train_mask, test_mask)
    return splits


def paper_splits(dataset: Dataset, seeds):
    """Per seed and subject: the paper's 80/20 split of the subject's windows, with a random eighth of
    the 80% set aside for validation."""
    for seed in seeds:
        for subject, (train_mask, test_mask) in paper_split(dataset, seed).items():
            rest, test = dataset.select(train_mask), dataset.select(test_mask)
            tune = np.zeros(len(rest), dtype=bool)
            tune[np.random.default_rng(seed).choice(len(rest), size=max(1, len(rest) // 8), replace=False)] = True
            yield seed, rest.select(~tune), rest.select(tune), test, {"seed": seed, "subject": subject}


def evaluate_paper(dataset: Dataset, epochs, seeds, models=("helo",) + BASELINES, log=None, **overrides):
    """The paper protocol: one model per subject on a random 80% of its windows (an eighth of them for
    validation), scored on the other 20%. One entry per (seed, subject)."""
    return score_splits(paper_splits(dataset, seeds), epochs, models, log, **overrides)


def evaluate_ablations(dataset: Dataset, validation_subjects, test_subjects, epochs, seeds, variants=None,
                       log=None):
    """Every ablation variant trained on the subjects that are neither validation nor test subjects,
    early-stopped and scored on the validation subjects (the test subjects are not used at all).
    Returns {variant: [validation scores per seed]}."""
    used = np.isin(dataset.subjects, test_subjects)
    tune_mask = np.isin(dataset.subjects, validation_subjects)
    if not tune_mask.any():
        raise ValueError(f"none of {validation_subjects} is in the data")
    train, validation = dataset.select(~used & ~tune_mask), dataset.select(tune_mask)
    results = {}
    for variant in variants or ABLATIONS:
        overrides = ABLATIONS[variant]
        results[variant] = []
        for seed in seeds:
            if log:
                log(f"{variant}, seed {seed}: training {len(train)}, validation {len(validation)} windows")
            model, standardiser = train_helo(train, epochs, seed, validation=validation, log=log, **overrides)
            results[variant].append(score(validation.target, predict_helo(model, standardiser, validation)))
    return results


def summary(results):
    """{model: {metric: (mean, sd)}} over the runs (sd with ddof 0; 0 for a single run)."""
    return {
        name: {metric: (float(np.mean([r[metric] for r in runs])), float(np.std([r[metric] for r in runs])))
               for metric, _ in METRICS}
        for name, runs in results.items()
    }


def table(results):
    """A Markdown table of mean ± sd per model and metric, arrows showing which direction is better."""
    header = "| model | " + " | ".join(f"{n} {'↑' if up else '↓'}" for n, up in METRICS) + " |"
    lines = [header, "|---" * (len(METRICS) + 1) + "|"]
    for model, values in summary(results).items():
        lines.append(f"| {model} | " + " | ".join(f"{m:.4f} ± {s:.4f}" for m, s in values.values()) + " |")
    return "\n".join(lines)


def wins(results, model, against):
    """Per metric, in how many runs `model` is strictly better than `against`."""
    counts = {metric: 0 for metric, _ in METRICS}
    for ours, theirs in zip(results[model], results[against]):
        for metric in better_on(ours, theirs):
            counts[metric] += 1
    return counts


def epoch_count(text):
    """An `--epochs` value: a whole number from 1 to 1000."""
    value = int(text)
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"{value}: epochs must be between 1 and 1000")
    return value


def load(args):
    if args.recording:
        return load_recording(args.recording)
    if args.dmer:
        return load_dmer(args.dmer)
    return load_wesad(args.wesad, target=args.wesad_target)


def report(results, runs, models):
    """Prints the table and, with HeLo among the models, its per-metric wins over each baseline."""
    print(table(results))
    if "helo" in results:
        for baseline in (m for m in models if m != "helo"):
            counts = wins(results, "helo", baseline)
            print(f"helo better than {baseline} in: " +
                  ", ".join(f"{metric} {n}/{len(runs)}" for metric, n in counts.items()))


def merge(files):
    """The runs and scores of several `--scores` files (e.g. seeds run in parallel processes), joined."""
    runs, results = [], {}
    for file in files:
        written = json.loads(Path(file).read_text())
        runs += written["runs"]
        for name, values in written["scores"].items():
            results.setdefault(name, []).extend(values)
    return results, runs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--recording", help="heloflow JSON Lines recording (pipelines/helo-training.toml)")
    source.add_argument("--dmer", help="directory of DMER subject feature files (*.mat)")
    source.add_argument("--wesad", help="WESAD directory of subject pickles (S*/S*.pkl, as published)")
    source.add_argument("--merge", nargs="+", help="print the table of these --scores files together")
    parser.add_argument("--wesad-target", choices=WESAD_TARGETS, default="self_report",
                        help="WESAD target: self-report distributions (default) or condition fractions")
    parser.add_argument("--protocol", choices=("subjects", "paper"), default="subjects")
    parser.add_argument("--folds", default="loso", help="loso, or a number of subject folds")
    parser.add_argument("--epochs", type=epoch_count, default=15,
                        help="most HeLo epochs, 1-1000 (early stopping picks)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=["helo", *BASELINES], choices=["helo", *BASELINES])
    parser.add_argument("--ablations", nargs="*", choices=sorted(ABLATIONS), metavar="VARIANT",
                        help="score these ablation variants (all without a name) on --validation-subjects")
    parser.add_argument("--validation-subjects", nargs="+")
    parser.add_argument("--test-subjects", nargs="+", default=[], help="left out of the ablations entirely")
    parser.add_argument("--variant", choices=sorted(ABLATIONS), default="full", help="the HeLo variant to score")
    parser.add_argument("--scores", help="write every run's scores as JSON here")
    args = parser.parse_args(argv)
    if args.merge:
        results, runs = merge(args.merge)
        report(results, runs, list(results))
        return
    dataset = load(args)
    if args.ablations is not None:
        if not args.validation_subjects:
            parser.error("--ablations needs --validation-subjects")
        results = evaluate_ablations(dataset, args.validation_subjects, args.test_subjects, args.epochs,
                                     args.seeds, args.ablations, log=print)
        runs = [{"seed": s, "validation": args.validation_subjects} for s in args.seeds]
        report(results, runs, [])
    else:
        overrides = ABLATIONS[args.variant]
        if args.protocol == "paper":
            results, runs = evaluate_paper(dataset, args.epochs, args.seeds, args.models, log=print, **overrides)
        else:
            results, runs = evaluate(dataset, args.folds, args.epochs, args.seeds, args.models, log=print,
                                     **overrides)
        report(results, runs, args.models)
    if args.scores:
        Path(args.scores).write_text(json.dumps({"runs": runs, "scores": results}, indent=2))


if __name__ == "__main__":
    main()
