"""Entity-level precision, recall and F1 over strict spans (as seqeval's ``mode="strict"``), and token accuracy.

Every metric updates with predicted and gold tag strings, one list per sentence. Entity scores count an entity as
correct only when its type, start and end all match a gold entity; undefined ratios are 0.0, as seqeval's default.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from torch import Tensor
from torchmetrics import Metric

from nlpkit import ConfigError
from nlpkit_ner.tags import Scheme, spans, validate_scheme


def _pairs(predictions: list[list[str]], targets: list[list[str]]) -> Iterator[tuple[list[str], list[str]]]:
    """The (predicted, gold) tags of each sentence; a ValueError when sentence counts or lengths differ."""
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predicted sentences but {len(targets)} targets")
    for index, (predicted, gold) in enumerate(zip(predictions, targets, strict=True)):
        if len(predicted) != len(gold):
            raise ValueError(f"sentence {index} has {len(predicted)} predicted tags but {len(gold)} gold tags")
        yield predicted, gold


def _ratio(numerator: Tensor, denominator: Tensor) -> Tensor:
    """numerator / denominator, elementwise, and 0.0 where the denominator is 0."""
    return torch.where(denominator > 0, numerator / denominator, 0.0)


def _scores(correct: Tensor, predicted: Tensor, gold: Tensor) -> dict[str, Tensor]:
    """Precision, recall and F1 from counts of correct, predicted and gold entities."""
    precision, recall = _ratio(correct, predicted), _ratio(correct, gold)
    return {"precision": precision, "recall": recall, "f1": _ratio(2 * precision * recall, precision + recall)}


class EntityScores(Metric):
    """Micro-averaged entity precision, recall and F1 (``compute`` gives all three), and scores per entity type."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    correct: Tensor
    predicted: Tensor
    gold: Tensor

    def __init__(self, types: list[str], scheme: Scheme, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scheme = validate_scheme(scheme)
        self.types = sorted(set(types))
        self._index = {type_: index for index, type_ in enumerate(self.types)}
        for name in ("correct", "predicted", "gold"):
            self.add_state(name, torch.zeros(len(self.types), dtype=torch.long), dist_reduce_fx="sum")

    def _type_index(self, type_: str) -> int:
        """The position of an entity type in ``types``; a ConfigError for a type the metric was not built with."""
        try:
            return self._index[type_]
        except KeyError:
            raise ConfigError(f"entity type {type_!r} is not one of the metric's types {self.types}") from None

    def update(self, predictions: list[list[str]], targets: list[list[str]]) -> None:
        """Count correct, predicted and gold entities per type in a batch of sentences."""
        found: dict[str, list[int]] = {"correct": [], "predicted": [], "gold": []}
        for predicted_tags, gold_tags in _pairs(predictions, targets):
            predicted, gold = set(spans(predicted_tags, self.scheme)), set(spans(gold_tags, self.scheme))
            for name, entities in (("correct", predicted & gold), ("predicted", predicted), ("gold", gold)):
                found[name].extend(self._type_index(type_) for type_, _, _ in entities)
        for name, indices in found.items():
            state = getattr(self, name)
            state += torch.bincount(torch.tensor(indices, dtype=torch.long), minlength=len(self.types)).to(state.device)

    def compute(self) -> dict[str, Tensor]:
        """Micro-averaged precision, recall and F1 over all entity types."""
        return _scores(self.correct.sum(), self.predicted.sum(), self.gold.sum())

    def per_type(self) -> dict[str, dict[str, float]]:
        """Precision, recall, F1 and support (gold entities) of each entity type, gathered across processes."""
        with self.sync_context(
            dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync, should_unsync=self._should_unsync
        ):
            scores = {**_scores(self.correct, self.predicted, self.gold), "support": self.gold}
            return {
                type_: {name: float(values[index]) for name, values in scores.items()}
                for index, type_ in enumerate(self.types)
            }


class _MicroScore(EntityScores):
    """One of the micro-averaged entity scores, named by ``score``."""

    score: ClassVar[str]

    def compute(self) -> Tensor:
        """The micro-averaged score over all entity types."""
        return super().compute()[self.score]


class EntityF1(_MicroScore):
    """Micro-averaged entity F1 over strict spans."""

    score = "f1"


class EntityPrecision(_MicroScore):
    """Micro-averaged entity precision over strict spans."""

    score = "precision"


class EntityRecall(_MicroScore):
    """Micro-averaged entity recall over strict spans."""

    score = "recall"


class TokenAccuracy(Metric):
    """Fraction of tokens whose predicted tag equals the gold tag."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    correct: Tensor
    total: Tensor

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("correct", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, predictions: list[list[str]], targets: list[list[str]]) -> None:
        """Count equal and all tags in a batch of sentences."""
        correct = total = 0
        for predicted, gold in _pairs(predictions, targets):
            correct += sum(tag == gold_tag for tag, gold_tag in zip(predicted, gold, strict=True))
            total += len(gold)
        self.correct += correct
        self.total += total

    def compute(self) -> Tensor:
        """Correct tags over all tags (0.0 before any)."""
        return _ratio(self.correct, self.total)


def entity_f1(types: list[str], scheme: Scheme) -> EntityF1:
    """Micro-averaged entity F1 over strict spans of the given entity types."""
    return EntityF1(types, scheme)


def entity_precision(types: list[str], scheme: Scheme) -> EntityPrecision:
    """Micro-averaged entity precision over strict spans of the given entity types."""
    return EntityPrecision(types, scheme)


def entity_recall(types: list[str], scheme: Scheme) -> EntityRecall:
    """Micro-averaged entity recall over strict spans of the given entity types."""
    return EntityRecall(types, scheme)


def token_accuracy(types: list[str], scheme: Scheme) -> TokenAccuracy:
    """Token accuracy; takes (and ignores) the entity metrics' arguments so a task builds every metric alike."""
    return TokenAccuracy()
