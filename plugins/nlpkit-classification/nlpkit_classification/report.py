"""Evaluation beyond the registered metrics: temperature calibration, per-class reports, the confusion matrix."""

from __future__ import annotations

import io
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from torch import Tensor
from torchmetrics import CalibrationError, ConfusionMatrix, F1Score, MetricCollection, Precision, Recall

from nlpkit import atomic_write_bytes


def fit_temperature(logits: Tensor, targets: Tensor, multi_label: bool, iterations: int = 100) -> float:
    """The temperature T > 0 minimising the loss of ``logits / T`` (temperature scaling, Guo et al. 2017).

    Runs with gradients even inside Lightning's evaluation loops (which use inference mode).
    """
    with torch.inference_mode(False), torch.enable_grad():
        logits, targets = logits.detach().float().clone(), targets.detach().clone()
        log_t = torch.zeros(1, requires_grad=True)
        optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=iterations, line_search_fn="strong_wolfe")

        def closure() -> Tensor:
            optimizer.zero_grad()
            loss = loss_of(logits / log_t.exp(), targets, multi_label)
            loss.backward()
            return loss

        optimizer.step(closure)
    return float(log_t.detach().exp().clamp(1e-2, 1e2))


def loss_of(logits: Tensor, targets: Tensor, multi_label: bool, weight: Tensor | None = None) -> Tensor:
    """Cross-entropy (single label) or binary cross-entropy per label (multi-label)."""
    if multi_label:
        return F.binary_cross_entropy_with_logits(logits, targets.float(), pos_weight=weight)
    return F.cross_entropy(logits, targets, weight=weight)


def probabilities(logits: Tensor, multi_label: bool) -> Tensor:
    """Softmax over labels, or an independent sigmoid per label."""
    return logits.sigmoid() if multi_label else logits.softmax(-1)


def report_metrics(num_labels: int, multi_label: bool) -> MetricCollection:
    """Per-class precision, recall and F1, the confusion matrix, and calibration errors (ECE)."""
    task = "multilabel" if multi_label else "multiclass"
    sizes = {"num_labels": num_labels} if multi_label else {"num_classes": num_labels}
    return MetricCollection(
        {
            "precision": Precision(task=task, average=None, **sizes),
            "recall": Recall(task=task, average=None, **sizes),
            "f1": F1Score(task=task, average=None, **sizes),
            "confusion": ConfusionMatrix(task=task, **sizes),
        }
    )


def calibration_error(num_labels: int, multi_label: bool) -> CalibrationError:
    """Expected calibration error over 15 bins (each label's probability, when multi-label)."""
    if multi_label:
        return CalibrationError(task="binary", n_bins=15)
    return CalibrationError(task="multiclass", num_classes=num_labels, n_bins=15)


def per_class_table(labels: list[str], values: dict[str, Tensor], support: Tensor) -> Table:
    """A rich table: one row per label with precision, recall, F1 and support."""
    table = Table(title="test: per class")
    for column in ("label", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for index, label in enumerate(labels):
        row = [f"{float(values[name][index]):.3f}" for name in ("precision", "recall", "f1")]
        table.add_row(label, *row, str(int(support[index])))
    return table


def print_report(
    labels: list[str], values: dict[str, Tensor], ece: tuple[float, float] | None, picture: Path | None = None
) -> None:
    """Print the per-class table, the calibration errors and where the confusion matrix ``picture`` is."""
    confusion = values["confusion"]
    support = confusion.sum(dim=1) if confusion.ndim == 2 else confusion[:, 1].sum(dim=1)
    console = Console()
    console.print(per_class_table(labels, values, support))
    if ece is not None:
        console.print(f"expected calibration error: {ece[0]:.4f} before temperature scaling, {ece[1]:.4f} after")
    if picture is not None:
        console.print(f"confusion matrix: {picture}", highlight=False)


def save_confusion_matrix(confusion: ConfusionMatrix, labels: list[str], path: Path) -> Path:
    """Plot the confusion matrix with torchmetrics/matplotlib and write it as a PNG, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, _ = confusion.plot(labels=labels)
    try:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())
    return path
