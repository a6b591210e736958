"""The core's metrics: factories returning torchmetrics metrics for predicted and target class ids."""

from __future__ import annotations

from torchmetrics import Metric
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score


def accuracy(num_classes: int, ignore_index: int | None = None) -> Metric:
    """Fraction of predictions equal to the target (micro-averaged)."""
    return MulticlassAccuracy(num_classes, average="micro", ignore_index=ignore_index)


def macro_f1(num_classes: int, ignore_index: int | None = None) -> Metric:
    """F1 averaged over classes with equal weight."""
    return MulticlassF1Score(num_classes, average="macro", ignore_index=ignore_index)
