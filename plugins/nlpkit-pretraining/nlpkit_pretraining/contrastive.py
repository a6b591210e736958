"""Contrastive sentence embeddings (SimCSE): texts close in meaning get close vectors.

Unsupervised: each text is encoded twice, and the two dropout views are the positive pair; supervised: the two
texts of a pair (a paraphrase, a question and its answer). Every other text of the batch is a negative.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nlpkit import (
    ConfigError,
    EncoderFactory,
    Pool,
    Pooling,
    PretrainedEncoder,
    Record,
    StepOutput,
    is_model_folder,
    load,
    pad,
)
from nlpkit_pretraining.embedding import Embedder


@contextmanager
def dropout_on(module: nn.Module) -> Iterator[None]:
    """Train mode (dropout on) for the duration, then the previous mode."""
    was_training = module.training
    module.train()
    try:
        yield
    finally:
        module.train(was_training)


class ContrastiveTask(Embedder):
    """Sentence embeddings trained with an in-batch contrastive loss (InfoNCE at ``temperature``).

    Training texts come one per line (unsupervised SimCSE: two dropout views of each text) or as pairs
    ``{"text_a", "text_b"}`` (supervised), through the ``sentence-pairs`` data module. Validation reports the loss
    and ``top1-accuracy``: how often a text's partner is the closest of the batch (plain texts are compared with a
    second dropout view, so the figure means the same as in training).

    ``embed(texts)`` returns unit-length float32 vectors, ``similar(query, texts, k)`` the closest texts, and
    ``predict`` (and ``nlpkit predict``) each text's vector as a list. Start from a ``masked-lm`` checkpoint with
    ``init_from`` for the best vectors.

    :param pooling: mean of the token states, the ``first`` (``<s>``, ``[CLS]``) token's state, or auto (as a
        pretrained encoder was trained, else mean)
    :param temperature: the similarities are divided by it before the softmax (SimCSE: 0.05)
    :param symmetric: average the loss of matching a to b and b to a (else a to b only)
    """

    def __init__(
        self,
        encoder: EncoderFactory,
        pooling: Pooling = "auto",
        temperature: float = 0.05,
        symmetric: bool = True,
        metrics: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(encoder, metrics=["top1-accuracy"] if metrics is None else metrics, **kwargs)
        if pooling not in ("auto", "mean", "first"):
            raise ConfigError(f"contrastive pooling is auto, mean or first, not {pooling!r}")
        if temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {temperature}")
        self.pooling = pooling
        self.temperature = temperature
        self.symmetric = symmetric

    def build(self) -> None:
        """Pooling and the metrics."""
        self.pool = Pool.of(self.pooling, self.encoder)  # type: ignore[arg-type]
        if self.pool.kind not in ("mean", "first"):
            raise ConfigError(f"contrastive pooling is mean or first; the encoder's own is {self.pool.kind}")
        self.build_metrics()

    def encode(self, fields: dict[str, Any], labeled: bool, record: Record | None = None) -> dict[str, Any]:
        """The text's ids as the encoder reads it; a training pair also gets its partner's ids (``partner``)."""
        ids = self.tokenizer.encode_inputs  # type: ignore[union-attr]
        text = fields["text_a"] if "text_a" in fields else fields["text"]
        example: dict[str, Any] = {"tokens": ids([text])[0]}
        if labeled:
            example["partner"] = ids([fields["text_b"]])[0] if "text_b" in fields else None
        example["length"] = max(len(example["tokens"]), len(example.get("partner") or ()))
        return example

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        """Padded ids and mask; for training, the B texts then their B partners (a text's own ids when it has none)."""
        rows = [example["tokens"] for example in examples]
        batch: dict[str, Any] = {"index": torch.tensor([example.get("index", 0) for example in examples])}
        if "partner" in examples[0]:
            rows += [example["partner"] or example["tokens"] for example in examples]
            batch["paired"] = all(example["partner"] is not None for example in examples)
        batch["tokens"], batch["mask"] = pad(rows)
        return batch

    def step(self, batch: dict[str, Any]) -> StepOutput:
        """InfoNCE of each text against its partner among the batch's partners (and back, when symmetric)."""
        if "paired" not in batch:
            raise ConfigError("contrastive training needs texts to learn from (labelled examples)")
        unpaired_evaluation = not (self.training or batch["paired"])
        views = dropout_on(self.encoder) if unpaired_evaluation else nullcontext()  # type: ignore[arg-type]
        with views:
            vectors = F.normalize(self.sentence_vectors(batch["tokens"], batch["mask"]).float(), dim=-1)
        first, second = vectors.chunk(2)
        similarity = first @ second.T / self.temperature  # (B, B)
        targets = torch.arange(len(first), device=similarity.device)
        loss = F.cross_entropy(similarity, targets)
        if self.symmetric:
            loss = (loss + F.cross_entropy(similarity.T, targets)) / 2
        return StepOutput(loss, similarity, targets, len(first))

    def predict_batch(self, batch: dict[str, Any]) -> list[list[float]]:
        """Each text's unit-length vector, as a list of floats."""
        return F.normalize(self.outputs_of(batch)["vectors"], dim=-1).tolist()


def load_embedder(path: str) -> Embedder:
    """A sentence-embedding model: an nlpkit checkpoint, run or export of a task with sentence vectors, or a Hugging
    Face model folder (a sentence-transformers model: its encoder, pooled as its ``1_Pooling`` says), ready to
    ``embed`` with no training."""
    if is_model_folder(path):
        task = ContrastiveTask(encoder=partial(PretrainedEncoder, path=path))
        task.bind(task.tokenizer, None)
        return task.eval()
    task = load(path)
    if not isinstance(task, Embedder):
        raise ConfigError(f"{path}: a {type(task).__name__} checkpoint has no sentence vectors")
    return task
