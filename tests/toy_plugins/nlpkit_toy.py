"""A third-party plugin as an outside author would write it: one head and one metric, through the hooks."""

import torch
from torch import Tensor, nn
from torchmetrics import Metric

from nlpkit import Head, hookimpl


class ScaledLinearHead(Head):
    """A linear head whose logits are divided by a fixed temperature."""

    def __init__(self, input_dim: int, num_outputs: int, temperature: float = 2.0) -> None:
        super().__init__()
        self.linear = nn.Linear(input_dim, num_outputs)
        self.temperature = temperature

    def forward(self, features: Tensor) -> Tensor:
        """Scaled logits."""
        return self.linear(features) / self.temperature


class ErrorRate(Metric):
    """Fraction of wrong predictions."""

    def __init__(self) -> None:
        super().__init__()
        self.add_state("wrong", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, predictions: Tensor, targets: Tensor) -> None:
        """Count wrong predictions."""
        self.wrong += (predictions != targets).sum()
        self.total += targets.numel()

    def compute(self) -> Tensor:
        """Wrong / total."""
        return self.wrong.float() / self.total.clamp_min(1)


def error_rate(num_classes: int) -> Metric:
    """The error-rate metric (any number of classes)."""
    return ErrorRate()


@hookimpl
def register_heads(register):
    register("scaled-linear", ScaledLinearHead)


@hookimpl
def register_metrics(register):
    register("error-rate", error_rate)
