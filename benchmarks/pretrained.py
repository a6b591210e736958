"""Pretrained weights on real text: ``nlpkit fit --config examples/sentiment-pretrained.yaml`` (all-MiniLM-L6-v2
fine-tuned) with only the data paths and the seed changed, against the best of three references tuned on the same
validation split (fastText's autotune, TF-IDF + logistic regression, the frozen MiniLM + logistic regression: see
``_references.py``), and zero-shot classification with the same MiniLM.

Corpora (``benchmarks/data/corpora.py``): review sentences (binary sentiment), the WordNet supersense of a noun's
definition with 500 training labels (each seed draws its own 500) and with all 45,813, and BBC News (five topics).
Accuracy is the mean over the seeds on the test split, each figure measured once after every choice was made on
validation. ``--evaluate val`` scores on the validation split instead, which is how the example's settings were
chosen (``--options`` adds command-line overrides to try); ``--tiny`` is a smoke run on a few hundred examples.
The weights come from ``make pretrained`` (``benchmarks/data/pretrained.py``).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import TINY_FIT, Device, emit, fit_config, read_labeled, write_labeled
from _references import NAMES, text_classification_references
from data.corpora import bbc_news, sentiment_sentences, wordnet_supersenses
from data.pretrained import minilm
from nlpkit_pretraining.zero_shot import ZeroShotTask

import nlpkit

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sentiment-pretrained.yaml"
#: corpus -> (its splits, the number of training labels drawn per seed: None for all)
CORPORA = {
    "sentiment-sentences": (sentiment_sentences, None),
    "wordnet-500": (wordnet_supersenses, 500),
    "wordnet-all": (wordnet_supersenses, None),
    "bbc-news": (bbc_news, None),
}
#: the zero-shot label descriptions, chosen on the validation split of the review sentences
DESCRIPTIONS = {"pos": "a positive review: I liked it", "neg": "a negative review: I did not like it"}


def splits_of(corpus: str, seed: int, tiny: bool) -> dict[str, list[tuple[str, str]]]:
    """Train, val and test rows; the WordNet subsets draw their training labels with ``seed``."""
    prepare, size = CORPORA[corpus]
    limit = 200 if tiny else None
    splits = {
        split: read_labeled(path, limit) for split, path in prepare().items() if split in ("train", "val", "test")
    }
    if size is not None and not tiny:
        splits["train"] = random.Random(seed).sample(splits["train"], size)
    return splits


def accuracy(checkpoint: Path, rows: list[tuple[str, str]], device: Device) -> float:
    """Accuracy of ``checkpoint`` on ``rows``."""
    task = nlpkit.load(checkpoint, map_location=device.name)
    with device.autocast():
        predictions = task.predict([text for text, _ in rows], batch_size=64)
    return statistics.fmean(float(p["label"] == label) for p, (_, label) in zip(predictions, rows, strict=True))


def quality(args: argparse.Namespace, device: Device, directory: Path) -> None:
    """The example config against the tuned references, every corpus and seed."""
    folder = minilm()
    for corpus in args.corpora:
        results: dict[str, list[float]] = {}
        for seed in args.seeds:
            splits = splits_of(corpus, seed, args.tiny)
            if args.evaluate == "test":
                duration = 5 if args.tiny else args.autotune_seconds
                references = text_classification_references(
                    splits["train"], splits["val"], splits["test"], seed, folder, duration
                )
                for name, reference in references.items():
                    results.setdefault(name, []).append(reference["accuracy"])
            files = {s: write_labeled(directory / f"{corpus}-{seed}-{s}.jsonl", rows) for s, rows in splits.items()}
            start = time.perf_counter()
            extra = TINY_FIT if args.tiny else []
            best = fit_config(
                EXAMPLE, files, seed, directory / f"{corpus}-{seed}", [*extra, *args.options, *device.cli()]
            )
            results.setdefault("fit_seconds", []).append(time.perf_counter() - start)
            results.setdefault("nlpkit", []).append(accuracy(best, splits[args.evaluate], device))
        mean = {name: statistics.fmean(values) for name, values in results.items()}
        config: dict[str, Any] = {
            "corpus": corpus,
            "train": len(splits["train"]),
            args.evaluate: len(splits[args.evaluate]),
            "seeds": len(args.seeds),
            "options": args.options,
            "threads": torch.get_num_threads(),
            **device.config(),
        }
        model = "examples/sentiment-pretrained.yaml"
        if args.evaluate == "val":
            emit("pretrained", "val_accuracy", "fraction", mean["nlpkit"], model=model, **config)
            continue
        best_name = max((name for name in NAMES if name in mean), key=mean.get)
        emit(
            "pretrained",
            "accuracy",
            "fraction",
            mean["nlpkit"],
            mean[best_name],
            f"best reference: {NAMES[best_name]}",
            model=model,
            per_seed=results["nlpkit"],
            **config,
        )
        emit(
            "pretrained",
            "error_rate",
            "fraction",
            1 - mean["nlpkit"],
            1 - mean[best_name],
            f"best reference: {NAMES[best_name]}",
            higher_is_better=False,
            model=model,
            **config,
        )
        emit("pretrained", "fit_seconds", "s", mean["fit_seconds"], higher_is_better=False, model=model, **config)
        for name in NAMES:
            if name in mean:
                emit(
                    "pretrained",
                    "reference_accuracy",
                    "fraction",
                    mean[name],
                    model=NAMES[name],
                    per_seed=results[name],
                    **config,
                )


def zero_shot(args: argparse.Namespace, device: Device) -> None:
    """Zero-shot sentiment with the MiniLM's sentence vectors, against the majority class."""
    splits = splits_of("sentiment-sentences", 0, args.tiny)
    rows = splits[args.evaluate]
    task = ZeroShotTask(model=str(minilm()), labels=DESCRIPTIONS)
    with device.autocast():
        predictions = task.predict([text for text, _ in rows], batch_size=64)
    correct = statistics.fmean(float(p["label"] == label) for p, (_, label) in zip(predictions, rows, strict=True))
    labels = [label for _, label in splits["train"]]
    majority = max(set(labels), key=labels.count)
    baseline = statistics.fmean(float(label == majority) for _, label in rows)
    emit(
        "pretrained",
        f"zero_shot_{args.evaluate}_accuracy",
        "fraction",
        correct,
        baseline,
        f"the majority class ({majority})",
        corpus="sentiment-sentences",
        model="all-MiniLM-L6-v2",
        descriptions=DESCRIPTIONS,
        points_over_majority=round(100 * (correct - baseline), 1),
        **device.config(),
    )


def main(argv: list[str] | None = None) -> None:
    """Print the figures as JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="a smoke run on a few hundred examples of each corpus")
    parser.add_argument("--only", choices=["quality", "zero-shot"], help="run one part")
    parser.add_argument("--corpora", nargs="+", choices=list(CORPORA), default=list(CORPORA))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--evaluate", choices=["test", "val"], default="test", help="the split scored")
    parser.add_argument("--options", nargs=argparse.REMAINDER, default=[], help="nlpkit fit overrides to try")
    parser.add_argument("--autotune_seconds", type=int, default=60, help="fastText's autotune budget per fit")
    Device.add_options(parser)
    args = parser.parse_args(argv)
    device = Device.from_args(args)
    if args.tiny:
        args.corpora, args.seeds = args.corpora[:1], args.seeds[:1]
    directory = Path(tempfile.mkdtemp(prefix="nlpkit-pretrained-"))
    if args.only != "zero-shot":
        quality(args, device, directory)
    if args.only != "quality":
        zero_shot(args, device)


if __name__ == "__main__":
    main()
