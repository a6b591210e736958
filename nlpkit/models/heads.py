"""Output heads: features ``(..., input_dim)`` to logits ``(..., num_outputs)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

from torch import Tensor, nn

from nlpkit.plugin.configurable import Configurable


class Head(Configurable, nn.Module):
    """Base class of heads; the task injects ``input_dim`` and ``num_outputs`` when it builds one."""

    #: the registry its subclasses are registered in (checked by the plugin loader)
    registry_kind: ClassVar[str] = "heads"

    injected_args: ClassVar[tuple[str, ...]] = ("input_dim", "num_outputs")

    def forward(self, features: Tensor) -> Tensor:
        """Map ``(..., input_dim)`` features to ``(..., num_outputs)`` logits."""
        raise NotImplementedError


class LinearHead(Head):
    """A dropout then one linear layer."""

    def __init__(self, input_dim: int, num_outputs: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(input_dim, num_outputs))

    def forward(self, features: Tensor) -> Tensor:
        """Logits of a linear map."""
        return self.net(features)


class MLPHead(Head):
    """A two-layer perceptron: linear, activation, dropout, linear."""

    def __init__(
        self,
        input_dim: int,
        num_outputs: int,
        hidden_dim: int = 256,
        dropout: float = 0.1,
        activation: Literal["gelu", "relu", "tanh"] = "gelu",
    ) -> None:
        super().__init__()
        activations = {"gelu": nn.GELU, "relu": nn.ReLU, "tanh": nn.Tanh}
        self.net = nn.Sequential(
            nn.Linear(input_dim, hidden_dim),
            activations[activation](),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, num_outputs),
        )

    def forward(self, features: Tensor) -> Tensor:
        """Logits of the two-layer perceptron."""
        return self.net(features)


#: What a task receives for its head: something that builds a Head given ``(input_dim, num_outputs)``.
HeadFactory = Callable[[int, int], Head]
