"""Text classification on real text: the example config as a user runs it, against fastText and TF-IDF + logistic
regression on the same splits.

nlpkit runs ``nlpkit fit --config examples/sentiment.yaml`` with only the data paths (and the seed) changed: the
hybrid of a hashed n-gram encoder (fastText's features) beside a BiLSTM under mean+max pooling, keeping the
checkpoint of best validation accuracy, stopping early; and the same config with each part alone (the ``ngram``
encoder under mean pooling: fastText's model; the BiLSTM under max pooling), and with a CNN (Kim's convolutions)
or a Transformer encoder (``--variants``). Corpora (``benchmarks/data/corpora.py``): review sentences (binary
sentiment) and BBC News (five topics). Accuracy is the mean of the seeds on the test split; references, the same
seeds, each tuned on the validation split (``_references.py``): fastText by its autotune, TF-IDF + logistic
regression by n-grams and C. Also: the expected calibration error (15 bins) on the test split before and after
nlpkit's temperature scaling, and the wall time of a fit. ``--tiny`` is a smoke run on a few hundred examples of
each corpus.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torchmetrics.functional.classification import multiclass_calibration_error

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import TINY_FIT, Device, emit, fit_config, read_labeled, write_labeled
from _references import NAMES, text_classification_references
from data.corpora import bbc_news, sentiment_sentences

import nlpkit

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sentiment.yaml"
CORPORA = {"sentiment-sentences": sentiment_sentences, "bbc-news": bbc_news}
#: the models compared: the example's own (the hybrid: n-grams beside a BiLSTM), its parts alone (the ``ngram``
#: encoder under mean pooling and a linear head: fastText's model; the BiLSTM under max pooling), and the overrides
#: that swap in a CNN or a Transformer
NGRAM = [
    "--model.encoder",
    "ngram",
    "--model.encoder.dim",
    "100",
    "--model.pooling",
    "mean",
    "--model.head.dropout",
    "0.0",
    "--model.learning_rate",
    "0.01",
]
VARIANTS = {
    "hybrid": [],
    "ngram": NGRAM,
    "bilstm": ["--model.encoder", "lstm", "--model.encoder.embedding_dim", "128", "--model.encoder.hidden_size", "128",
               "--model.encoder.bidirectional", "true", "--model.encoder.dropout", "0.3", "--model.pooling", "max",
               "--model.learning_rate", "0.003"],
    "cnn": ["--model.encoder", "cnn", "--model.encoder.embedding_dim", "128", "--model.encoder.num_filters", "100",
            "--model.encoder.dropout", "0.3", "--model.pooling", "max", "--model.learning_rate", "0.003"],
    "transformer": ["--model.encoder", "transformer", "--model.encoder.d_model", "128",
                    "--model.encoder.num_layers", "2", "--model.encoder.positions", "rotary",
                    "--model.pooling", "mean", "--model.learning_rate", "0.001"],
}  # fmt: skip
DEFAULT_VARIANTS = ["hybrid", "ngram", "bilstm"]


def evaluate(checkpoint: Path, test: list[tuple[str, str]], device: Device) -> dict[str, float]:
    """Test accuracy, and the calibration error with the fitted temperature and without it (temperature 1)."""
    task = nlpkit.load(checkpoint, map_location=device.name)
    texts = [text for text, _ in test]
    targets = torch.tensor([task.labels.index(label) for _, label in test])
    figures = {}
    for name, temperature in (("ece", float(task.temperature)), ("ece_uncalibrated", 1.0)):
        task.temperature.fill_(temperature)
        with device.autocast():
            predictions = task.predict(texts, batch_size=64)
        probabilities = torch.tensor([[p["probabilities"][label] for label in task.labels] for p in predictions])
        figures[name] = float(multiclass_calibration_error(probabilities, targets, len(task.labels), n_bins=15))
        if name == "ece":
            figures["accuracy"] = float((probabilities.argmax(-1) == targets).float().mean())
    return figures


def main(argv: list[str] | None = None) -> None:
    """Fit every variant on every corpus and seed; print accuracy, calibration and fit time against the references."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="a smoke run on a few hundred examples of each corpus")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--corpora", nargs="+", choices=list(CORPORA), default=list(CORPORA))
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=DEFAULT_VARIANTS)
    Device.add_options(parser)
    args = parser.parse_args(argv)
    device = Device.from_args(args)
    limit, extra = (200, TINY_FIT) if args.tiny else (None, [])
    seeds = args.seeds[:1] if args.tiny else args.seeds
    corpora = args.corpora[:1] if args.tiny else args.corpora
    directory = Path(tempfile.mkdtemp(prefix="nlpkit-classification-"))
    for corpus in corpora:
        prepared = CORPORA[corpus]()
        splits = {split: read_labeled(prepared[split], limit) for split in ("train", "val", "test")}
        files = {split: write_labeled(directory / f"{corpus}-{split}.jsonl", rows) for split, rows in splits.items()}
        results: dict[str, list[float]] = {}
        for seed in seeds:
            duration = 2 if args.tiny else 60
            references = text_classification_references(
                splits["train"], splits["val"], splits["test"], seed, duration=duration
            )
            for name, reference in references.items():
                results.setdefault(name, []).append(reference["accuracy"])
            for variant in args.variants:
                start = time.perf_counter()
                run = directory / f"{corpus}-{variant}-{seed}"
                best = fit_config(EXAMPLE, files, seed, run, [*VARIANTS[variant], *extra, *device.cli()])
                results.setdefault(f"{variant}/fit_seconds", []).append(time.perf_counter() - start)
                for metric, value in evaluate(best, splits["test"], device).items():
                    results.setdefault(f"{variant}/{metric}", []).append(value)
        mean = {name: statistics.fmean(values) for name, values in results.items()}
        best_reference = max(("fastText", "tfidf"), key=mean.get)
        common: dict[str, Any] = {"corpus": corpus, "train": len(splits["train"]), "test": len(splits["test"]),
                                  "seeds": len(seeds), "threads": torch.get_num_threads(),
                                  **device.config()}  # fmt: skip
        names = {name: NAMES[name] for name in ("fastText", "tfidf")}
        for variant in args.variants:
            config = {"model": variant, **common}
            emit("classification", "accuracy", "fraction", mean[f"{variant}/accuracy"], mean[best_reference],
                 f"best of fastText and TF-IDF: {names[best_reference]}", **config)  # fmt: skip
            emit("classification", "ece", "fraction", mean[f"{variant}/ece"], mean[f"{variant}/ece_uncalibrated"],
                 "the same model without temperature scaling", higher_is_better=False, **config)  # fmt: skip
            emit("classification", "fit_seconds", "s", mean[f"{variant}/fit_seconds"], higher_is_better=False,
                 **config)  # fmt: skip
        for name, label in names.items():
            emit("classification", "reference_accuracy", "fraction", mean[name], model=label, **common)


if __name__ == "__main__":
    main()
