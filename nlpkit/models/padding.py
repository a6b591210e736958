"""Id sequences padded into ``(B, T)`` tensors with a mask, and back."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def pad(sequences: Sequence[Sequence[int]], value: int = 0, left: bool = False) -> tuple[Tensor, Tensor]:
    """Pad id sequences on the right (or ``left``) into ``(B, T)`` ids and a ``(B, T)`` bool mask (True = real)."""
    rows = [seq.tolist() if isinstance(seq, Tensor) else list(seq) for seq in sequences]
    length = max(max((len(row) for row in rows), default=0), 1)
    filled = [[value] * (length - len(row)) + row if left else row + [value] * (length - len(row)) for row in rows]
    ids = torch.tensor(filled, dtype=torch.long).reshape(len(rows), length)  # one copy into torch, not one per row
    lengths = torch.tensor([len(row) for row in rows], dtype=torch.long)[:, None]
    positions = torch.arange(length)
    mask = positions >= length - lengths if left else positions < lengths
    return ids, mask


def unpad(ids: Tensor, mask: Tensor) -> list[list[int]]:
    """The real ids of each row of a padded ``(B, T)`` batch, whichever side the padding is on."""
    return [row[row_mask].tolist() for row, row_mask in zip(ids, mask, strict=True)]
