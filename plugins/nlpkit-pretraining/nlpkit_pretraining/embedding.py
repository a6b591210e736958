"""Sentence vectors from any trained encoder: pooled states, ``embed``, ``similar``, and the top-1 accuracy metric
the pretraining tasks report."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric

from nlpkit import ConfigError, Pool, Task


class Embedder(Task):
    """A task whose encoder gives sentence vectors: the encoder's states pooled over real tokens by ``self.pool``.

    ``embed`` and ``similar`` work on any list of texts, batched by length like ``predict``.
    """

    pool: Pool
    usage: ClassVar[dict[str, str]] = {
        "embed": "nlpkit embed --ckpt_path {checkpoint} --text TEXT",
        "python": 'nlpkit.load("{checkpoint}").embed(texts)',
    }

    def sentence_vectors(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """Pooled encoder states ``(B, H)`` of a padded batch."""
        return self.pool(self.encoder(tokens, mask), mask)  # type: ignore[misc]

    def inference_inputs(self) -> tuple[str, ...]:
        """Exported forward: piece ids and mask."""
        return ("tokens", "mask")

    def infer(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """The sentence ``vectors`` ``(B, H)``, before normalisation."""
        return {"vectors": self.sentence_vectors(inputs["tokens"], inputs["mask"]).float()}

    def embed_batch(self, batch: dict[str, Any], normalize: bool = True) -> list[Tensor]:
        """The vectors of a collated batch, one per row, unit length unless ``normalize`` is False (what ``embed``
        and ``nlpkit serve``'s ``/embed`` run on each batch)."""
        pooled = self.outputs_of(batch)["vectors"]
        return list(F.normalize(pooled, dim=-1) if normalize else pooled)

    def embed(self, texts: Sequence[str], batch_size: int = 64, normalize: bool = True) -> np.ndarray:
        """One float32 vector per text, ``(len(texts), H)``; unit length unless ``normalize`` is False."""
        rows = self.map_batches(list(texts), partial(self.embed_batch, normalize=normalize), batch_size)
        if not rows:
            return np.zeros((0, self.encoder.output_dim), dtype=np.float32)  # type: ignore[union-attr]
        return torch.stack(rows).cpu().numpy().astype(np.float32)

    def similar(self, query: str, texts: Sequence[str], k: int = 5) -> list[dict[str, Any]]:
        """The ``k`` texts closest to ``query`` by cosine similarity: ``{"index", "text", "score"}``, best first."""
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        vectors = self.embed([query, *texts])
        scores = vectors[1:] @ vectors[0]
        best = np.argsort(-scores, kind="stable")[:k]
        return [{"index": int(i), "text": texts[i], "score": float(scores[i])} for i in best]


class TopOneAccuracy(Metric):
    """Fraction of rows whose highest score is the target: masked tokens (logits over the vocabulary) or sentence
    pairs (similarities over the batch). Targets of -100 are left out."""

    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("correct", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, scores: Tensor, targets: Tensor) -> None:
        """Count rows of ``scores`` ``(..., C)`` whose argmax equals ``targets`` ``(...)``."""
        counted = targets != -100
        self.correct += (scores.argmax(-1) == targets)[counted].sum()
        self.total += counted.sum()

    def compute(self) -> Tensor:
        """The fraction (0 when nothing was counted)."""
        return self.correct.float() / self.total.clamp_min(1)


def top1_accuracy() -> Metric:
    """Fraction of masked tokens (or sentence pairs) whose best-scored candidate is the right one."""
    return TopOneAccuracy()
