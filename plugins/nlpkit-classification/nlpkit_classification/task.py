"""Text classification: pooled encoder states, a registered head, cross-entropy, per-label probabilities."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nlpkit.data import Record, pad
from nlpkit.encoders import EncoderFactory
from nlpkit.heads import HeadFactory, LinearHead
from nlpkit.task import StepOutput, Task

Pooling = Literal["mean", "max", "first", "attention"]


class Pool(nn.Module):
    """Pools hidden states ``(B, T, H)`` over real tokens into ``(B, H)``."""

    def __init__(self, kind: Pooling, dim: int) -> None:
        super().__init__()
        self.kind = kind
        self.score = nn.Linear(dim, 1) if kind == "attention" else None

    def forward(self, hidden: Tensor, mask: Tensor) -> Tensor:
        """Pool, never looking at padding."""
        if self.kind == "first":
            return hidden[:, 0]
        if self.kind == "max":
            return hidden.masked_fill(~mask[..., None], torch.finfo(hidden.dtype).min).amax(dim=1)
        if self.kind == "mean":
            weights = mask.to(hidden.dtype)
        else:  # attention: softmax of a learned score over real tokens
            scores = self.score(hidden).squeeze(-1).masked_fill(~mask, torch.finfo(hidden.dtype).min)
            weights = scores.softmax(dim=-1)
        weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(1e-9)
        return torch.einsum("bt,bth->bh", weights, hidden)


class TextClassificationTask(Task):
    """Single-label text classification over any registered encoder.

    :param head: the classifier on the pooled states (``linear``, ``mlp`` or a plugin's)
    :param pooling: how token states become one vector: mean, max, first (the ``<s>`` token) or attention
    :param class_weights: optional loss weight per label, in label order
    """

    def __init__(
        self,
        encoder: EncoderFactory,
        head: HeadFactory = LinearHead,
        pooling: Pooling = "mean",
        class_weights: list[float] | None = None,
        metrics: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(encoder, metrics=["accuracy", "macro-f1"] if metrics is None else metrics, **kwargs)
        self.head_factory = head
        self.pooling = pooling
        self.class_weights = class_weights

    def build(self) -> None:
        """Pooling, head and metrics for the learned labels."""
        assert self.labels is not None and self.encoder is not None
        self.label_ids = {label: index for index, label in enumerate(self.labels)}
        self.pool = Pool(self.pooling, self.encoder.output_dim)
        self.head = self.head_factory(self.encoder.output_dim, len(self.labels))
        weights = torch.tensor(self.class_weights) if self.class_weights else None
        self.register_buffer("loss_weights", weights, persistent=False)
        self.build_metrics(num_classes=len(self.labels))

    def encode(self, fields: dict[str, Any], labeled: bool, record: Record | None = None) -> dict[str, Any]:
        """Ids of ``<s> text``, and the label id when labelled."""
        tokens = self.tokenizer.encode([fields["text"]], add_bos=True)[0]  # type: ignore[union-attr]
        example: dict[str, Any] = {"tokens": tokens, "length": len(tokens)}
        if labeled:
            example["label"] = self.label_ids[fields["label"]]
        return example

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        """Padded ids, mask, label ids and input indices."""
        tokens, mask = pad([example["tokens"] for example in examples])
        batch = {"tokens": tokens, "mask": mask, "index": torch.tensor([e["index"] for e in examples])}
        if "label" in examples[0]:
            batch["labels"] = torch.tensor([example["label"] for example in examples])
        return batch

    def forward(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """Class logits ``(B, num_labels)``."""
        return self.head(self.pool(self.encoder(tokens, mask), mask))

    def step(self, batch: dict[str, Any]) -> StepOutput:
        """Cross-entropy of the logits against the labels."""
        logits = self(batch["tokens"], batch["mask"])
        loss = F.cross_entropy(logits.float(), batch["labels"], weight=self.loss_weights)
        return StepOutput(loss, logits.argmax(dim=-1), batch["labels"], len(logits))

    def predict_batch(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        """The most likely label and the probability of every label."""
        probabilities = self(batch["tokens"], batch["mask"]).float().softmax(dim=-1).tolist()
        return [
            {
                "label": self.labels[max(range(len(row)), key=row.__getitem__)],  # type: ignore[index]
                "probabilities": dict(zip(self.labels, row, strict=True)),  # type: ignore[arg-type]
            }
            for row in probabilities
        ]
