"""Pretrained word vectors as a tagger's word feature: every word of the vectors file keeps its vector (looked up as
it is, else in lower case), and the words the file lacks share one trained vector."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nlpkit import WordVectors, vector_row


class WordVectorFeatures(nn.Module):
    """Maps row ids ``(B, W)`` (from :meth:`ids`) to word vectors ``(B, W, dim)``.

    The whole file's vocabulary is kept, not only the training words', so a test word seen only by the vectors
    still gets its vector. ``freeze`` keeps the table (``embedding``) fixed (a buffer: no optimizer state for its
    rows); the shared vector of unknown words always trains. Unfrozen, it is an embedding: no weight decay.
    """

    def __init__(self, vectors: WordVectors, freeze: bool = True) -> None:
        super().__init__()
        self.words = vectors.words
        self.rows = vectors.index()
        self.unknown_row = len(vectors.words)
        table = torch.from_numpy(vectors.vectors).float()
        if freeze:
            self.register_buffer("embedding", table)
        else:
            self.embedding = nn.Parameter(table)
        self.unknown = nn.Parameter(torch.zeros(vectors.dim))
        self.output_dim = vectors.dim

    def ids(self, words: Sequence[str]) -> list[int]:
        """The row of each word (``unknown_row`` for a word the file lacks)."""
        return [self.unknown_row if (row := vector_row(self.rows, word)) is None else row for word in words]

    def forward(self, ids: Tensor) -> Tensor:
        """``(B, W)`` row ids -> ``(B, W, dim)`` vectors."""
        known = ids < self.unknown_row
        rows = F.embedding(ids.clamp(max=self.unknown_row - 1), self.embedding)
        return torch.where(known[..., None], rows, self.unknown.to(rows.dtype))
