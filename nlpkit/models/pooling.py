"""Pooling a sequence's hidden states into one vector per text, never looking at padding."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from nlpkit.models.encoders.base import Encoder

Pooling = Literal["auto", "mean", "max", "mean+max", "first", "attention"]


class Pool(nn.Module):
    """Pools hidden states ``(B, T, H)`` over real tokens into ``(B, output_dim)``: ``H``, or ``2H`` for
    ``mean+max`` (the mean and the max side by side)."""

    def __init__(self, kind: Pooling, dim: int) -> None:
        super().__init__()
        if kind == "auto":
            raise ValueError("resolve pooling 'auto' with Pool.of(kind, encoder)")
        self.kind = kind
        self.score = nn.Linear(dim, 1) if kind == "attention" else None
        self.output_dim = 2 * dim if kind == "mean+max" else dim

    @classmethod
    def of(cls, kind: Pooling, encoder: Encoder) -> Pool:
        """A pool for ``encoder``'s states; ``auto`` pools as the encoder says (a pretrained model as it was
        trained, else the mean)."""
        return cls(encoder.sentence_pooling if kind == "auto" else kind, encoder.output_dim)  # type: ignore[arg-type]

    def forward(self, hidden: Tensor, mask: Tensor) -> Tensor:
        """Pool, never looking at padding."""
        if self.kind == "mean+max":
            return torch.cat([self._pool("mean", hidden, mask), self._pool("max", hidden, mask)], dim=-1)
        return self._pool(self.kind, hidden, mask)

    def _pool(self, kind: str, hidden: Tensor, mask: Tensor) -> Tensor:
        if kind == "first":  # the first real token (``<s>``), whichever side the padding is on
            first = mask.int().argmax(dim=1)[:, None, None].expand(-1, 1, hidden.size(-1))  # (B, 1, H)
            return hidden.gather(1, first).squeeze(1)  # a gather, not indexing by arange: traced for any batch size
        if kind == "max":
            return hidden.masked_fill(~mask[..., None], torch.finfo(hidden.dtype).min).amax(dim=1)
        if kind == "mean":
            weights = mask.to(hidden.dtype)
        else:  # attention: softmax of a learned score over real tokens
            scores = self.score(hidden).squeeze(-1).masked_fill(~mask, torch.finfo(hidden.dtype).min)
            weights = scores.softmax(dim=-1)
        weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(1e-9)
        return torch.einsum("bt,bth->bh", weights, hidden)
