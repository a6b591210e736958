"""The benchmark output format shared by every script: one JSON object per figure (see docs/benchmarks.md)."""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import string
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from nlpkit.tokenization import Tokenizer


def median_seconds(run: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``run`` over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def emit(
    bench: str,
    metric: str,
    unit: str,
    value: float,
    reference: float | None = None,
    reference_name: str | None = None,
    higher_is_better: bool = True,
    **config: Any,
) -> dict[str, Any]:
    """Print one figure as a JSON line; ``ratio`` is nlpkit / reference, both from the same run."""
    row = {
        "bench": bench,
        "metric": metric,
        "config": config,
        "unit": unit,
        "nlpkit": round(value, 6),
        "reference": None if reference is None else round(reference, 6),
        "reference_name": reference_name,
        "ratio": None if reference is None else round(value / reference, 4),
        "higher_is_better": higher_is_better,
    }
    print(json.dumps(row), flush=True)
    return row


def synthetic_tokenizer(vocab_size: int) -> Tokenizer:
    """A SentencePiece model of about ``vocab_size`` pieces, trained on random words."""
    rng = random.Random(0)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(vocab_size * 3)]
    lines = [" ".join(rng.choices(words, k=12)) for _ in range(vocab_size * 4)]
    return Tokenizer.train(lines, vocab_size=vocab_size, model_type="bpe")


class StepClock(pl.Callback):
    """Records the time at the start of training and at the end of every step, and what ``count`` says of a batch."""

    def __init__(self, count: Callable[[Any], int] | None = None) -> None:
        self.stamps: list[float] = []
        self.counts: list[int] = []
        self.count = count

    def on_train_batch_start(self, trainer: pl.Trainer, *args: object) -> None:
        """Start the clock at the first step."""
        if not self.stamps:
            self.stamps.append(time.perf_counter())

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: object, outputs: object, batch: Any, *args: object
    ) -> None:
        """Stamp the end of a step."""
        self.stamps.append(time.perf_counter())
        if self.count is not None:
            self.counts.append(self.count(batch))


def read_labeled(path: Path, limit: int | None = None) -> list[tuple[str, str]]:
    """``(text, label)`` of a jsonl split, the first ``limit`` of them (lines end at ``\\n`` only: a text may hold
    other line separators)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]
    return [(row["text"], row["label"]) for row in rows[:limit]]


def write_labeled(path: Path, rows: list[tuple[str, str]]) -> Path:
    """Write ``(text, label)`` rows as a jsonl split."""
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows), encoding="utf-8")
    return path


def text_classification_references(
    train: list[tuple[str, str]], test: list[tuple[str, str]], seed: int
) -> dict[str, float]:
    """fastText (word bigrams) and TF-IDF (word 1-2 grams) + logistic regression, trained on ``train``."""
    import fasttext
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    gold = np.array([label for _, label in test])
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.writelines(f"__label__{label} {text.lower()}\n" for text, label in train)
    model = fasttext.train_supervised(handle.name, epoch=25, lr=0.5, wordNgrams=2, verbose=0, thread=1, seed=seed)
    Path(handle.name).unlink()
    predicted = [labels[0].removeprefix("__label__") for labels in model.predict([t.lower() for t, _ in test])[0]]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    features = vectorizer.fit_transform([text for text, _ in train])
    regression = LogisticRegression(C=10, max_iter=2000).fit(features, [label for _, label in train])
    tfidf = regression.predict(vectorizer.transform([text for text, _ in test]))
    return {"fastText": float(np.mean(np.array(predicted) == gold)), "tfidf": float(np.mean(tfidf == gold))}


def fit_config(config: Path, files: dict[str, Path], seed: int, directory: Path, options: list[str]) -> Path:
    """``nlpkit fit --config config`` on ``files`` (train, val) with ``seed`` and ``options``, as a user runs it;
    the best checkpoint. Its output goes to standard error, so standard output stays JSON lines."""
    from nlpkit.cli import main as nlpkit_command

    argv = ["fit", "--config", str(config), "--data.train_path", str(files["train"]),
            "--data.val_path", str(files["val"]), "--seed_everything", str(seed),
            "--trainer.default_root_dir", str(directory), "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false", *options]  # fmt: skip
    with contextlib.redirect_stdout(sys.stderr):
        status = nlpkit_command(argv)
    if status != 0:
        raise SystemExit(f"nlpkit fit failed ({status}): {' '.join(argv)}")
    return directory / "checkpoints" / "best.ckpt"


def jsonl_splits(
    prepared: dict[str, Path], limit: int | None, directory: Path
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Path]]:
    """The first ``limit`` records of the train, val and test jsonl splits of a corpus, and copies of just those
    records in ``directory`` (the files a fit reads)."""
    records, files = {}, {}
    for split in ("train", "val", "test"):
        lines = prepared[split].read_text(encoding="utf-8").splitlines()[:limit]
        records[split] = [json.loads(line) for line in lines]
        files[split] = directory / f"{split}.jsonl"
        files[split].write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return records, files


def tiny_option(description: str, what: str, argv: list[str] | None) -> bool:
    """Parse a benchmark's one option, ``--tiny``: a smoke run on ``what``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--tiny", action="store_true", help=f"a smoke run on {what}")
    return parser.parse_args(argv).tiny
