"""Helpers for tests of nlpkit and of plugins: isolated plugin sets, tiny corpora, a few real training steps."""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

from nlpkit import plugins as plugin_loading

POSITIVE = ["great", "wonderful", "brilliant", "moving", "funny", "superb", "charming"]
NEGATIVE = ["awful", "boring", "dull", "terrible", "weak", "clumsy", "tedious"]
SUBJECTS = ["the movie", "the film", "the plot", "the acting", "the ending", "the cast", "the soundtrack"]


def sentiment_corpus(size: int = 200, seed: int = 0) -> list[tuple[str, str]]:
    """Synthetic ``(text, "pos"|"neg")`` pairs; a third are negated ("was not great" is negative).

    The same words appear with both labels, so a bag of words cannot reach full accuracy.
    """
    rng = random.Random(seed)
    rows = []
    for _ in range(size):
        positive = rng.random() < 0.5
        negated = rng.random() < 0.35
        adjective = rng.choice(POSITIVE if positive != negated else NEGATIVE)
        verb = rng.choice(["was", "is", "felt"])
        text = f"{rng.choice(SUBJECTS)} {verb} {'not ' if negated else ''}{adjective}"
        if rng.random() < 0.3:
            text += rng.choice([" overall", " to me", " honestly", " in the end"])
        rows.append((text, "pos" if positive else "neg"))
    return rows


STORY_PARTS = {
    "subject": ["the old sailor", "a young fox", "the baker", "my grandmother", "the quiet girl", "a tired soldier"],
    "verb": ["walked to", "ran past", "looked at", "sang near", "waited by", "dreamed of"],
    "place": ["the harbour", "the green hill", "the market", "the river", "the old bridge", "the lighthouse"],
    "time": ["at dawn", "in the rain", "before supper", "every sunday", "late at night", "in the spring"],
}


def story_corpus(size: int = 300, seed: int = 0) -> list[str]:
    """Synthetic one-line stories from a small grammar ("the baker waited by the river at dawn .")."""
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(STORY_PARTS[part]) for part in ("subject", "verb", "place", "time")) + " ."
        for _ in range(size)
    ]


def write_sentiment_files(directory: str | Path, train: int = 400, val: int = 100, seed: int = 0) -> dict[str, Path]:
    """Write ``train.csv``, ``val.csv`` (text,label) and ``predict.txt`` (texts only) under ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, size, split_seed in (("train", train, seed), ("val", val, seed + 1)):
        paths[split] = directory / f"{split}.csv"
        with paths[split].open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["text", "label"])
            writer.writerows(sentiment_corpus(size, split_seed))
    paths["predict"] = directory / "predict.txt"
    paths["predict"].write_text(
        "the film was brilliant\nthe plot was not great\nthe acting was dull\nthe ending was not boring\n",
        encoding="utf-8",
    )
    return paths


@contextmanager
def isolated_plugins(*modules: Any, include_core: bool = True) -> Iterator[plugin_loading.Plugins]:
    """Make the process-wide plugins exactly ``modules`` (objects or import paths), plus the core by default.

    Plugins registered this way are named after their module; the previous plugin set returns on exit.
    """
    points = [EntryPoint("core", "nlpkit.builtins", plugin_loading.ENTRY_POINT_GROUP)] if include_core else []
    for module in modules:
        path = module if isinstance(module, str) else module.__name__
        points.append(EntryPoint(path.rsplit(".", 1)[-1], path, plugin_loading.ENTRY_POINT_GROUP))
    previous = plugin_loading._loaded
    loaded = plugin_loading.discover(points)
    plugin_loading.reset_plugins(loaded)
    try:
        yield loaded
    finally:
        plugin_loading.reset_plugins(previous)


def fit_tiny(task: Any, datamodule: Any, max_steps: int = 20, **trainer_options: Any) -> Any:
    """Train ``task`` for ``max_steps`` real Lightning steps on CPU, quietly; returns the Trainer."""
    import pytorch_lightning as pl

    options: dict[str, Any] = {
        "max_steps": max_steps,
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        **trainer_options,
    }
    trainer = pl.Trainer(**options)
    trainer.fit(task, datamodule=datamodule)
    return trainer
