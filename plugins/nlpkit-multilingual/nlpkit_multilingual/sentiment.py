"""A small multilingual sentiment set the project writes itself: the same negation structure in four languages."""

from __future__ import annotations

import csv
import random
from pathlib import Path

# subject phrases, linking verb, positive and negative adjectives, and how negation is written
LEXICON = {
    "en": (["the film", "the book", "the meal", "the concert"], "was", ["great", "wonderful", "excellent"],
           ["awful", "boring", "terrible"], lambda verb, adjective: f"{verb} not {adjective}"),
    "de": (["der Film", "das Buch", "das Essen", "das Konzert"], "war", ["toll", "wunderbar", "großartig"],
           ["schrecklich", "langweilig", "furchtbar"], lambda verb, adjective: f"{verb} nicht {adjective}"),
    "es": (["la película", "el libro", "la comida", "el concierto"], "fue", ["genial", "maravilloso", "excelente"],
           ["horrible", "aburrido", "terrible"], lambda verb, adjective: f"no {verb} {adjective}"),
    "ru": (["фильм", "книга", "еда", "концерт"], "был", ["отличный", "прекрасный", "чудесный"],
           ["ужасный", "скучный", "плохой"], lambda verb, adjective: f"{verb} не {adjective}"),
}  # fmt: skip


def sentiment_rows(language: str, size: int, seed: int) -> list[tuple[str, str]]:
    """``(text, "pos"|"neg")`` rows in ``language``; a third are negated, which flips the label."""
    subjects, verb, positive, negative, negate = LEXICON[language]
    rng = random.Random(f"{language}-{seed}")
    rows = []
    for _ in range(size):
        is_positive, negated = rng.random() < 0.5, rng.random() < 0.35
        adjective = rng.choice(positive if is_positive != negated else negative)
        predicate = negate(verb, adjective) if negated else f"{verb} {adjective}"
        rows.append((f"{rng.choice(subjects)} {predicate}", "pos" if is_positive else "neg"))
    return rows


def write_multilingual_sentiment(directory: str | Path, sizes: dict[str, int], val: int = 60, seed: int = 0) -> dict:
    """Write ``<lang>/train.csv`` and ``<lang>/val.csv`` per language; returns the ``languages`` config."""
    directory = Path(directory)
    languages = {}
    for language, size in sizes.items():
        paths = {}
        for split, count, split_seed in (("train", size, seed), ("val", val, seed + 1)):
            path = directory / language / f"{split}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(["text", "label"])
                writer.writerows(sentiment_rows(language, count, split_seed))
            paths[f"{split}_path"] = str(path)
        languages[language] = paths
    return languages
