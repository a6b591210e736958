"""The text-classification references the benchmarks compare nlpkit with, each given the care nlpkit's settings get:
every setting is chosen on the validation split, then the model is trained on the training split alone and scored
once on the test split.

* **fastText** (``fasttext-community``): its own autotune on the validation file (learning rate, epochs, n-gram
  length, dimension, buckets...), ``autotuneDuration`` seconds a run.
* **TF-IDF + logistic regression** (scikit-learn): word 1-grams or 1-2-grams (sublinear term frequency) and the
  inverse regularisation ``C`` from a grid, by validation accuracy.
* **a frozen sentence encoder + logistic regression** (what a sentence-transformers user builds): the model folder's
  encoder, mean-pooled and normalised as sentence-transformers does, through ``transformers``; ``C`` from the grid.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

Rows = Sequence[tuple[str, str]]
C_GRID = (0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def _accuracy(predicted: Sequence[str], rows: Rows) -> float:
    return float(np.mean(np.array(list(predicted)) == np.array([label for _, label in rows])))


def _note(name: str, settings: dict[str, Any]) -> None:
    print(f"reference {name}: chosen on validation: {settings}", file=sys.stderr, flush=True)


def fasttext_tuned(train: Rows, val: Rows, test: Rows, seed: int, duration: int = 60) -> dict[str, Any]:
    """fastText trained with its autotune on ``val`` (lower-cased text, as the fastText tutorials prepare it)."""
    import fasttext

    with tempfile.TemporaryDirectory() as directory:
        files = {}
        for split, rows in (("train", train), ("val", val)):
            files[split] = Path(directory) / f"{split}.txt"
            files[split].write_text("".join(f"__label__{label} {text.lower()}\n" for text, label in rows), "utf-8")
        model = fasttext.train_supervised(
            str(files["train"]), autotuneValidationFile=str(files["val"]), autotuneDuration=duration,
            thread=2, seed=seed, verbose=0,
        )  # fmt: skip
    predicted = [labels[0].removeprefix("__label__") for labels in model.predict([t.lower() for t, _ in test])[0]]
    settings = {name: getattr(model, name) for name in ("lr", "epoch", "wordNgrams", "dim", "minn", "maxn", "bucket")}
    _note("fastText", settings)
    return {"accuracy": _accuracy(predicted, test), "settings": settings}


def _logistic_regression(features: dict[str, Any], splits: dict[str, Rows]) -> tuple[float, dict[str, Any]]:
    """Logistic regression on ``features`` (split -> matrix) with the ``C`` of best validation accuracy; its test
    accuracy and the chosen ``C``, and that validation accuracy."""
    from sklearn.linear_model import LogisticRegression

    labels = {split: [label for _, label in rows] for split, rows in splits.items()}
    best: tuple[float, float] | None = None
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=3000).fit(features["train"], labels["train"])
        score = _accuracy(model.predict(features["val"]), splits["val"])
        if best is None or score > best[0]:
            best = (score, c)
    assert best is not None
    model = LogisticRegression(C=best[1], max_iter=3000).fit(features["train"], labels["train"])
    return _accuracy(model.predict(features["test"]), splits["test"]), {"C": best[1], "val_accuracy": best[0]}


def tfidf_tuned(train: Rows, val: Rows, test: Rows) -> dict[str, Any]:
    """TF-IDF of word n-grams + logistic regression, the n-gram range and ``C`` chosen on ``val``."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    splits = {"train": train, "val": val, "test": test}
    best: tuple[float, float, dict[str, Any]] | None = None
    for ngrams in ((1, 1), (1, 2)):
        vectorizer = TfidfVectorizer(ngram_range=ngrams, sublinear_tf=True).fit([text for text, _ in train])
        features = {split: vectorizer.transform([text for text, _ in rows]) for split, rows in splits.items()}
        accuracy, settings = _logistic_regression(features, splits)
        if best is None or settings["val_accuracy"] > best[0]:
            best = (settings["val_accuracy"], accuracy, {"ngram_range": list(ngrams), **settings})
    assert best is not None
    _note("TF-IDF + LR", best[2])
    return {"accuracy": best[1], "settings": best[2]}


def sentence_vectors(folder: Path, texts: Sequence[str], max_length: int = 256, batch_size: int = 64) -> np.ndarray:
    """sentence-transformers' vectors of ``texts`` through ``transformers``: the model's last states, mean-pooled
    over real tokens, normalised (``max_length``: the folder's ``max_seq_length``)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    vectors = []
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths share a batch
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = [texts[i] for i in order[start : start + batch_size]]
            inputs = tokenizer(batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            states = model(**inputs).last_hidden_state
            weights = inputs["attention_mask"][..., None].float()
            vectors.append(torch.nn.functional.normalize((states * weights).sum(1) / weights.sum(1), dim=-1))
    stacked = torch.cat(vectors).numpy()
    result = np.empty_like(stacked)
    result[order] = stacked
    return result


def frozen_encoder_tuned(folder: Path, train: Rows, val: Rows, test: Rows) -> dict[str, Any]:
    """The frozen sentence encoder's vectors + logistic regression, ``C`` chosen on ``val``."""
    splits = {"train": train, "val": val, "test": test}
    features = {split: sentence_vectors(folder, [text for text, _ in rows]) for split, rows in splits.items()}
    accuracy, settings = _logistic_regression(features, splits)
    _note("frozen encoder + LR", settings)
    return {"accuracy": accuracy, "settings": settings}


#: the reference names the benchmarks report
NAMES = {
    "fastText": "fastText (autotuned on validation)",
    "tfidf": "TF-IDF + logistic regression (n-grams and C on validation)",
    "frozen": "frozen all-MiniLM-L6-v2 + logistic regression (C on validation)",
}


def text_classification_references(
    train: Rows, val: Rows, test: Rows, seed: int, encoder: Path | None = None, duration: int = 60
) -> dict[str, dict[str, Any]]:
    """Each reference's test accuracy and chosen settings: fastText, TF-IDF + LR, and (given a model folder) the
    frozen encoder + LR."""
    references = {"fastText": fasttext_tuned(train, val, test, seed, duration), "tfidf": tfidf_tuned(train, val, test)}
    if encoder is not None:
        references["frozen"] = frozen_encoder_tuned(encoder, train, val, test)
    return references
