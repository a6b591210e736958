"""Character-level word features (a CNN or a BiLSTM over each word's characters), for taggers trained from scratch.

Characters are hashed into a fixed number of buckets, so any script works and nothing needs a vocabulary.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

CharFeatures = Literal["none", "cnn", "bilstm"]
BUCKETS = 2048
MAX_CHARS = 24
#: character embedding width; the CNN's and the BiLSTM's word features are twice as wide
CHAR_DIM = 32


def char_feature_dim(kind: CharFeatures) -> int:
    """Width of the character features of each word (0 for ``none``)."""
    return 0 if kind == "none" else 2 * CHAR_DIM


def char_ids(word: str) -> list[int]:
    """Bucket ids (1..BUCKETS-1; 0 is padding) of a word's first :data:`MAX_CHARS` characters."""
    return [ord(char) % (BUCKETS - 1) + 1 for char in word[:MAX_CHARS]]


class CharEncoder(nn.Module):
    """Maps the characters of every word ``(B, W, L)`` to a feature vector per word ``(B, W, output_dim)``."""

    def __init__(self, kind: Literal["cnn", "bilstm"], dim: int = CHAR_DIM) -> None:
        super().__init__()
        self.kind = kind
        self.embedding = nn.Embedding(BUCKETS, dim, padding_idx=0)
        if kind == "cnn":
            self.conv = nn.Conv1d(dim, 2 * dim, kernel_size=3, padding=1)
        else:
            self.lstm = nn.LSTM(dim, dim, batch_first=True, bidirectional=True)
        self.output_dim = 2 * dim

    def forward(self, chars: Tensor) -> Tensor:
        """``chars`` (B, W, L) long with 0 as padding -> (B, W, output_dim); padded characters never count."""
        B, W, L = chars.shape
        flat = chars.view(B * W, L)  # (N, L), one row per word
        mask = flat != 0  # (N, L)
        x = self.embedding(flat)  # (N, L, C)
        if self.kind == "cnn":
            h = self.conv(x.transpose(1, 2)).transpose(1, 2)  # (N, L, 2C)
            h = h.masked_fill(~mask[..., None], torch.finfo(h.dtype).min).amax(dim=1)  # max over real characters
            return h.masked_fill(~mask.any(1, keepdim=True), 0.0).view(B, W, -1)
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(packed)  # h: (2, N, C), the last state of each direction
        return torch.cat([h[0], h[1]], dim=-1).masked_fill(~mask.any(1, keepdim=True), 0.0).view(B, W, -1)
