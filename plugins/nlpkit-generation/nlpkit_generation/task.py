"""Causal language modelling: next-token cross-entropy over any causal encoder, perplexity over the epoch."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.text import Perplexity

from nlpkit.data import Record, pad
from nlpkit.encoders import EncoderFactory, LanguageModelHeadMixin
from nlpkit.errors import ConfigError
from nlpkit.task import StepOutput, Task

IGNORE = -100


def perplexity() -> Metric:
    """exp(mean negative log-likelihood per predicted token), accumulated exactly over the epoch."""
    return Perplexity(ignore_index=IGNORE)


class CausalLMTask(Task):
    """Next-token prediction over a causal encoder (``causal-transformer``, or a unidirectional RNN).

    Predicting scores each text: its per-token log-likelihood and perplexity.
    """

    def __init__(self, encoder: EncoderFactory, metrics: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(encoder, metrics=["perplexity"] if metrics is None else metrics, **kwargs)

    def build(self) -> None:
        """Check the encoder can predict the next token; create the metrics."""
        if not (self.encoder.is_causal and isinstance(self.encoder, LanguageModelHeadMixin)):
            raise ConfigError(
                f"causal-lm needs a causal encoder with a next-token head (causal-transformer, or lstm/gru/rnn "
                f"with bidirectional: false), not {type(self.encoder).__name__}"
            )
        self.build_metrics()

    def encode(self, fields: dict[str, Any], labeled: bool, record: Record | None = None) -> dict[str, Any]:
        """``<s> text </s>`` as ids."""
        tokens = self.tokenizer.encode([fields["text"]], add_bos=True, add_eos=True)[0]  # type: ignore[union-attr]
        return {"tokens": tokens, "length": len(tokens)}

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        """Padded ids, mask and input indices."""
        tokens, mask = pad([example["tokens"] for example in examples])
        return {"tokens": tokens, "mask": mask, "index": torch.tensor([e["index"] for e in examples])}

    def forward(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """Next-token logits ``(B, T, vocab_size)``."""
        return self.encoder.output_logits(self.encoder(tokens, mask))  # type: ignore[union-attr]

    def _logits_and_targets(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        tokens, mask = batch["tokens"], batch["mask"]
        logits = self(tokens[:, :-1], mask[:, :-1])  # (B, T-1, V): position t predicts token t+1
        targets = tokens[:, 1:].masked_fill(~mask[:, 1:], IGNORE)  # (B, T-1)
        return logits, targets

    def step(self, batch: dict[str, Any]) -> StepOutput:
        """Mean cross-entropy over real next tokens."""
        logits, targets = self._logits_and_targets(batch)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE)
        return StepOutput(loss, logits, targets, len(logits))

    def predict_batch(self, batch: dict[str, Any]) -> list[dict[str, float]]:
        """Each text's total log-likelihood, its predicted-token count and perplexity."""
        logits, targets = self._logits_and_targets(batch)
        log_probs = -F.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=IGNORE, reduction="none")
        counts = (targets != IGNORE).sum(1)
        return [
            {"log_likelihood": total, "tokens": count, "perplexity": math.exp(-total / max(count, 1))}
            for total, count in zip(log_probs.sum(1).tolist(), counts.tolist(), strict=True)
        ]
