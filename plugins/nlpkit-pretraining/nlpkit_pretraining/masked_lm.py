"""Masked language modelling (BERT): predict chosen tokens of a text from both sides, over any bidirectional
encoder, with an output layer tied to the token embedding."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nlpkit import ConfigError, EncoderFactory, Pool, Pooling, Record, StepOutput, pad
from nlpkit_pretraining.embedding import Embedder
from nlpkit_pretraining.noising import IGNORE, Masker, MaskingOptions, MaskUnit

#: the names of a Hugging Face masked-LM head's weights (BERT's, RoBERTa's) -> those of :class:`MaskedLMHead`
PRETRAINED_HEAD = {
    "cls.predictions.transform.dense.": "transform.0.",
    "cls.predictions.transform.LayerNorm.": "transform.2.",
    "cls.predictions.bias": "bias",
    "lm_head.dense.": "transform.0.",
    "lm_head.layer_norm.": "transform.2.",
    "lm_head.bias": "bias",
}


def pretrained_head_weights(weights: dict[str, Tensor]) -> dict[str, Tensor]:
    """The masked-LM head among a pretrained model's weights the encoder did not take, as :class:`MaskedLMHead`'s
    state (empty when the model has none, like a sentence-transformers model)."""
    state = {}
    for name, value in weights.items():
        for theirs, ours in PRETRAINED_HEAD.items():
            if name.startswith(theirs):
                state[ours + name.removeprefix(theirs)] = value
    return state


class MaskedLMHead(nn.Module):
    """BERT's prediction head: dense, GELU, LayerNorm to the embedding width, then the token embedding (tied) and a
    bias per piece."""

    def __init__(self, input_dim: int, embedding: nn.Embedding, layer_norm_eps: float = 1e-5) -> None:
        super().__init__()
        width = embedding.embedding_dim
        self.transform = nn.Sequential(nn.Linear(input_dim, width), nn.GELU(), nn.LayerNorm(width, eps=layer_norm_eps))
        self.embedding = [embedding]  # a list, so the tied weight is saved once, under the encoder
        self.bias = nn.Parameter(torch.zeros(embedding.num_embeddings))

    def forward(self, hidden: Tensor) -> Tensor:
        """Logits over the vocabulary ``(N, V)`` of hidden states ``(N, input_dim)``."""
        return F.linear(self.transform(hidden), self.embedding[0].weight, self.bias)


class MaskedLMTask(Embedder):
    """Masked language modelling over a bidirectional encoder (``transformer``, or ``lstm``/``gru``/``rnn`` with
    ``bidirectional: true``).

    A pretrained encoder (``pretrained``) continues pretraining on the user's text, with its own masked-LM head when
    the model folder has one (BERT's ``cls.predictions``, RoBERTa's ``lm_head``), else a new one.

    Each batch is masked anew when it is made (dynamic masking, as in RoBERTa): about ``probability`` of every text's
    tokens are chosen, by token, whole word or span, and predicted from the corrupted text. Validation reports the
    masked tokens' top-1 accuracy and perplexity. Train on plain text through the ``text`` data module (per line, or
    packed into blocks with ``block_size``, streamed files included), then start a classifier, a tagger or a
    sentence-embedding model from the checkpoint with ``init_from``.

    ``predict`` fills ``<mask>`` tokens: for each, the ``top_k`` pieces with their probabilities. ``embed`` and
    ``similar`` give sentence vectors (the encoder's states, pooled).

    :param probability: fraction of each text's tokens to predict
    :param unit: choose single ``token``\\ s, ``whole-word``\\ s, or ``span``\\ s of words (SpanBERT)
    :param mask_fraction: of the chosen tokens, the fraction shown as ``<mask>``
    :param random_fraction: of the chosen tokens, the fraction shown as a random piece (the rest show themselves)
    :param span_p: geometric parameter of span lengths in words (``unit: span``)
    :param max_span: longest span in words (``unit: span``)
    :param pooling: how ``embed`` pools token states: mean, max, first (``<s>``, ``[CLS]``) or auto (as a
        pretrained encoder was trained, else mean)
    :param top_k: candidates ``predict`` returns for each ``<mask>``
    """

    def __init__(
        self,
        encoder: EncoderFactory,
        probability: float = 0.15,
        unit: MaskUnit = "token",
        mask_fraction: float = 0.8,
        random_fraction: float = 0.1,
        span_p: float = 0.2,
        max_span: int = 10,
        pooling: Pooling = "auto",
        top_k: int = 5,
        metrics: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(encoder, metrics=["top1-accuracy", "perplexity"] if metrics is None else metrics, **kwargs)
        self.masking = MaskingOptions(probability, unit, mask_fraction, random_fraction, span_p, max_span)
        if pooling == "attention":
            raise ConfigError("masked-lm pools without learned weights: mean, max or first")
        self.pooling = pooling
        self.top_k = top_k

    def build(self) -> None:
        """The tied prediction head, the masker for the tokenizer, pooling and the metrics."""
        if self.encoder.is_causal:  # type: ignore[union-attr]
            raise ConfigError(
                "masked-lm needs a bidirectional encoder (transformer, or lstm/gru/rnn with bidirectional: true), "
                f"not a causal {type(self.encoder).__name__}"
            )
        encoder = self.encoder
        self.head = MaskedLMHead(encoder.output_dim, encoder.token_embedding, getattr(encoder, "layer_norm_eps", 1e-5))  # type: ignore[union-attr]
        pretrained = pretrained_head_weights(getattr(encoder, "unused_weights", {}))
        if pretrained:  # continue a pretrained masked-LM's own head
            self.head.load_state_dict(pretrained)
        self.masker = Masker(self.tokenizer, self.masking)  # type: ignore[arg-type]
        self.pool = Pool.of(self.pooling, self.encoder)  # type: ignore[arg-type]
        self.build_metrics()

    def encode(self, fields: dict[str, Any], labeled: bool, record: Record | None = None) -> dict[str, Any]:
        """``<s> text </s>`` as ids; training examples are marked to be masked when batched."""
        tokens = self.tokenizer.encode([fields["text"]], add_bos=True, add_eos=True)[0]  # type: ignore[union-attr]
        return {"tokens": tokens, "length": len(tokens), "masked": labeled}

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        """Padded ids and mask; examples to learn from are masked (``labels`` holds what to predict, else -100)."""
        tokens, mask = pad([example["tokens"] for example in examples])
        batch = {"tokens": tokens, "mask": mask, "index": torch.tensor([e.get("index", 0) for e in examples])}
        if examples[0].get("masked", True):  # packed blocks (from the text data module) are always learned from
            batch["tokens"], batch["labels"] = self.masker(tokens, mask)
        return batch

    def step(self, batch: dict[str, Any]) -> StepOutput:
        """Cross-entropy over the chosen tokens only (the head runs on those positions alone)."""
        hidden = self.encoder(batch["tokens"], batch["mask"])  # type: ignore[misc]
        chosen = batch["labels"] != IGNORE
        targets = batch["labels"][chosen]  # (N,)
        logits = self.head(hidden[chosen]).float()  # (N, V)
        loss = F.cross_entropy(logits, targets) if len(targets) else hidden.sum() * 0.0
        return StepOutput(loss, logits[None], targets[None], len(hidden))

    def infer(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Each position's distribution over the vocabulary, ``probabilities`` ``(B, T, vocab_size)``, and the
        sentence ``vectors`` ``(B, H)`` that ``embed`` normalises."""
        hidden = self.encoder(inputs["tokens"], inputs["mask"])  # type: ignore[misc]
        probabilities = self.head(hidden).float().softmax(-1)
        return {"probabilities": probabilities, "vectors": self.pool(hidden, inputs["mask"]).float()}

    def predict_batch(self, batch: dict[str, Any]) -> list[list[list[dict[str, Any]]]]:
        """For every ``<mask>`` of each text, the ``top_k`` pieces ``{"token", "score"}``, most probable first."""
        distributions = self.outputs_of(batch)["probabilities"]
        results: list[list[list[dict[str, Any]]]] = []
        for row, distribution in zip(batch["tokens"], distributions, strict=True):
            positions = (row == self.masker.mask_id).nonzero()[:, 0]
            top = distribution[positions].topk(self.top_k, dim=-1)
            candidates = []
            for ids, scores in zip(top.indices.tolist(), top.values.tolist(), strict=True):
                pieces = self.tokenizer.decode([[i] for i in ids])  # type: ignore[union-attr]
                candidates.append([{"token": t, "score": p} for t, p in zip(pieces, scores, strict=True)])
            results.append(candidates)
        return results
