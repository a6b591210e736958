"""Smoke fits of the example configs on 200 examples of each real corpus, through `nlpkit fit` as a user runs it.

The corpora come from the cache `make corpora` fills (``benchmarks/data/corpora.py``); tests never download, so
a corpus that is not there is skipped with the command that fetches it (under ``CI=true`` that is a failure).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

import nlpkit
from nlpkit.testing import require_cached

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _common import fit_config
from data.corpora import CORPORA
from data.registry import cache_dir

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SIZE = 200  # training examples (sentences, pairs; articles are long, so 10 of those)
QUICK = ["--trainer.max_steps", "3", "--trainer.limit_val_batches", "2", "--trainer.val_check_interval", "2"]


def prepared(name: str) -> dict[str, Path]:
    """The splits of a cached corpus; skipped when `make corpora` has not fetched it (a failure under CI=true)."""
    require_cached(cache_dir() / name, "make corpora")
    return CORPORA[name]()


def head(path: Path, count: int, directory: Path, separator: str = "\n") -> Path:
    """The first ``count`` records of a split (lines, or blank-line separated blocks) in a new file."""
    records = path.read_text(encoding="utf-8").split(separator)[:count]
    target = directory / path.name
    target.write_text(separator.join(records).strip("\n") + "\n", encoding="utf-8")
    return target


def smoke_fit(config: str, splits: dict[str, Path], directory: Path, sizes: tuple[int, int] = (SIZE, 50)) -> object:
    """Fit ``examples/{config}`` for a few steps on the first examples of ``splits``; the task as loaded back."""
    separator = "\n\n" if splits["train"].suffix == ".conll" else "\n"
    files = {
        split: head(splits[split], size, directory, separator)
        for split, size in zip(("train", "val"), sizes, strict=True)
    }
    fit_config(EXAMPLES / config, files, 0, directory / "run", QUICK)
    return nlpkit.load(directory / "run")


def first_test_records(name: str) -> list[dict[str, str]]:
    """The first test records of a jsonl corpus."""
    return [json.loads(line) for line in prepared(name)["test"].read_text(encoding="utf-8").splitlines()[:8]]


@pytest.mark.parametrize("name", ["sentiment-sentences", "bbc-news", "wordnet-supersenses"])
def test_text_classification_fits_each_labelled_corpus(name: str, tmp_path: Path) -> None:
    task = smoke_fit("sentiment.yaml", prepared(name), tmp_path)
    labels = {json.loads(line)["label"] for line in prepared(name)["train"].read_text().splitlines()[:SIZE]}
    predictions = task.predict([row["text"] for row in first_test_records(name)])  # type: ignore[attr-defined]
    assert {prediction["label"] for prediction in predictions} <= labels == set(task.labels)  # type: ignore[attr-defined]


def test_ner_fits_conll2003(tmp_path: Path) -> None:
    task = smoke_fit("ner.yaml", prepared("conll2003"), tmp_path)
    (entities,) = task.predict(["EU rejects German call to boycott British lamb ."])  # type: ignore[attr-defined]
    assert {entity["label"] for entity in entities} <= {"PER", "ORG", "LOC", "MISC"}
    assert {label.split("-")[-1] for label in task.labels} == {"O", "PER", "ORG", "LOC", "MISC"}  # type: ignore[attr-defined]


def test_language_model_fits_wikitext(tmp_path: Path) -> None:
    task = smoke_fit("language-model.yaml", prepared("wikitext-2"), tmp_path, sizes=(10, 2))
    articles = [row["text"] for row in first_test_records("wikitext-2")[:2]]
    scores = task.score(articles)  # type: ignore[attr-defined]
    assert all(math.isfinite(score["perplexity"]) and score["tokens"] > 100 for score in scores)


def test_translation_fits_tatoeba(tmp_path: Path) -> None:
    task = smoke_fit("translation.yaml", prepared("tatoeba-en-es"), tmp_path)
    translations = task.predict([row["source"] for row in first_test_records("tatoeba-en-es")])  # type: ignore[attr-defined]
    assert len(translations) == 8 and all(isinstance(row["text"], str) for row in translations)
