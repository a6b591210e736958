"""The core's metrics: factories returning torchmetrics metrics for predicted and target class ids.

Classification tasks build them with ``num_classes``, and with ``multi_label=True`` when every example has a
set of labels (predictions and targets are then ``(B, num_classes)`` 0/1 tensors).
"""

from __future__ import annotations

from torchmetrics import Accuracy, F1Score, Metric


def accuracy(num_classes: int, multi_label: bool = False, ignore_index: int | None = None) -> Metric:
    """Fraction of predictions equal to the target (micro-averaged; per label decision when multi-label)."""
    if multi_label:
        return Accuracy(task="multilabel", num_labels=num_classes, average="micro", ignore_index=ignore_index)
    return Accuracy(task="multiclass", num_classes=num_classes, average="micro", ignore_index=ignore_index)


def macro_f1(num_classes: int, multi_label: bool = False, ignore_index: int | None = None) -> Metric:
    """F1 averaged over classes with equal weight."""
    if multi_label:
        return F1Score(task="multilabel", num_labels=num_classes, average="macro", ignore_index=ignore_index)
    return F1Score(task="multiclass", num_classes=num_classes, average="macro", ignore_index=ignore_index)
