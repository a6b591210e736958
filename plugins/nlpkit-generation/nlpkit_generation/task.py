"""Causal language modelling: next-token cross-entropy over any causal encoder, perplexity over the epoch, and
generation through the shared :func:`nlpkit_generation.decoding.generate`."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.text import Perplexity

from nlpkit import (
    ConfigError,
    EncoderFactory,
    LanguageModelHeadMixin,
    Record,
    StepOutput,
    Task,
    head_cross_entropy,
    pad,
    unpad,
)
from nlpkit_generation.decoding import Generation, GenerationConfig, generate, stream

IGNORE = -100


def perplexity() -> Metric:
    """exp(mean negative log-likelihood per predicted token), accumulated exactly over the epoch."""
    return Perplexity(ignore_index=IGNORE)


class GenerativeTask(Task):
    """A task whose predictions are generated text, through the shared :func:`generate` (the Decoder protocol).

    Subclasses implement ``start``/``extend`` and :meth:`decoder_inputs`; ``predict``, ``generate`` and
    ``stream`` use the task's ``generation`` settings, which any call may override.
    """

    #: whether generated text continues the input (language models) or stands alone (translation)
    continues_input: ClassVar[bool] = True
    usage: ClassVar[dict[str, str]] = {
        "generate": "nlpkit generate --ckpt_path {checkpoint} --prompt TEXT",
        "python": 'nlpkit.load("{checkpoint}").generate(texts)',
    }
    generation: GenerationConfig

    def decoder_inputs(self, batch: dict[str, Any]) -> list[list[int]]:
        """The token ids ``start`` receives for each row of a collated batch."""
        raise NotImplementedError

    def start(self, inputs: list[list[int]], max_new_tokens: int) -> tuple[Tensor, Any]:
        """Decoder protocol: begin decoding ``inputs``; next-token logits ``(B, V)`` and the state."""
        raise NotImplementedError

    def extend(self, tokens: Tensor, state: Any) -> Tensor:
        """Decoder protocol: feed one token per row; the next logits ``(B, V)``."""
        raise NotImplementedError

    def generate_batch(self, batch: dict[str, Any], config: GenerationConfig | None = None) -> list[Generation]:
        """Generations for every row of a collated batch."""
        self.require_weights("generation (decoding with a KV cache)")
        if self.hparams.get("language_embeddings") and self.continues_input:
            raise ConfigError("language_embeddings cannot decode step by step: later steps do not see <lang:xx>")
        inputs = self.decoder_inputs(batch)
        return generate(self, inputs, config or self.generation, self.tokenizer, self.continues_input)  # type: ignore[arg-type]

    def predict_batch(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        """``{"text", "score"}`` per row (and ``alternatives`` when beam search returns several)."""
        return [generation.to_dict() for generation in self.generate_batch(batch)]

    def generate(
        self, inputs: Sequence[Any], config: GenerationConfig | None = None, batch_size: int = 32, **options: Any
    ) -> list[Generation]:
        """Generate for each input; ``options`` override fields of ``config`` (default: the task's ``generation``)."""
        settings = (config or self.generation).replace(**options)
        return self.map_batches(inputs, lambda batch: self.generate_batch(batch, settings), batch_size)

    def stream(self, item: Any, config: GenerationConfig | None = None, **options: Any) -> Iterator[str]:
        """Yield the generated text for one input piece by piece, as it is produced."""
        self.require_weights("generation (decoding with a KV cache)")
        settings = (config or self.generation).replace(**options)
        batch = self.collate([{**self.encode(self.input_fields(item), labeled=False), "index": 0}])
        inputs = self.decoder_inputs(self.transfer_batch_to_device(batch, self.device, 0))[0]
        pieces = stream(self, inputs, settings, self.tokenizer, self.continues_input)  # type: ignore[arg-type]
        while True:  # each step in eval mode of its own: nothing is held across a yield
            with self.evaluating(packed=False):  # unpacked: packing would repeat at every step
                piece = next(pieces, None)
            if piece is None:
                return
            yield piece


class CausalLMTask(GenerativeTask):
    """Next-token prediction over a causal encoder (``causal-transformer``, or a unidirectional RNN).

    ``predict`` continues each input text with the ``generation`` settings; ``score`` gives each text's
    log-likelihood and perplexity; ``generate`` and ``stream`` take prompts from Python.

    :param generation: default decoding settings for ``predict``, ``generate`` and ``stream``
    """

    predicts_tokens = True

    def __init__(
        self,
        encoder: EncoderFactory,
        metrics: list[str] | None = None,
        generation: GenerationConfig | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(encoder, metrics=["perplexity"] if metrics is None else metrics, **kwargs)
        self.generation = generation or GenerationConfig()

    def build(self) -> None:
        """Check the encoder can predict the next token; create the metrics."""
        if not (self.encoder.is_causal and isinstance(self.encoder, LanguageModelHeadMixin)):
            raise ConfigError(
                f"causal-lm needs a causal encoder with a next-token head (causal-transformer, or lstm/gru/rnn "
                f"with bidirectional: false), not {type(self.encoder).__name__}"
            )
        self.build_metrics()

    def encode(self, fields: dict[str, Any], labeled: bool, record: Record | None = None) -> dict[str, Any]:
        """``<s> text </s>`` as ids to learn from, or ``<s> text`` as a prompt to continue; cut at the tokenizer's
        ``max_length`` unless ``fields["whole"]`` (documents packed into blocks)."""
        limit = sys.maxsize if fields.get("whole") else None
        tokens = self.tokenizer.encode([fields["text"]], add_bos=True, add_eos=labeled, max_length=limit)[0]  # type: ignore[union-attr]
        return {"tokens": tokens, "length": len(tokens)}

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        """Padded ids, mask and input indices."""
        tokens, mask = pad([example["tokens"] for example in examples])
        return {"tokens": tokens, "mask": mask, "index": torch.tensor([e["index"] for e in examples])}

    def forward(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """Next-token logits ``(B, T, vocab_size)``."""
        return self.encoder.output_logits(self.encoder(tokens, mask))  # type: ignore[union-attr]

    def inference_inputs(self) -> tuple[str, ...]:
        """Exported forward: piece ids and mask."""
        return ("tokens", "mask")

    def infer(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Next-token ``logits`` ``(B, T, vocab_size)``: what ``score`` reads (generation needs the checkpoint)."""
        return {"logits": self(inputs["tokens"], inputs["mask"]).float()}

    @staticmethod
    def _inputs_and_targets(batch: dict[str, Any]) -> tuple[dict[str, Tensor], Tensor]:
        """Every token but the last as input, and each one's next token as target (IGNORE after the end)."""
        tokens, mask = batch["tokens"], batch["mask"]
        targets = tokens[:, 1:].masked_fill(~mask[:, 1:], IGNORE)  # (B, T-1)
        return {"tokens": tokens[:, :-1], "mask": mask[:, :-1]}, targets

    def _logits_and_targets(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        inputs, targets = self._inputs_and_targets(batch)
        return self.outputs_of(inputs)["logits"], targets  # (B, T-1, V), (B, T-1)

    def step(self, batch: dict[str, Any]) -> StepOutput:
        """Mean cross-entropy over real next tokens."""
        logits, targets = self._logits_and_targets(batch)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE)
        return StepOutput(loss, logits, targets, len(logits))

    def training_output(self, batch: dict[str, Any]) -> StepOutput:
        """:meth:`step`'s loss; in float32 the head and the loss run a block of rows at a time
        (:func:`~nlpkit.models.encoders.head_loss.head_cross_entropy`), never holding every token's logits."""
        weight = self.encoder.lm_head_weight()  # type: ignore[union-attr]
        if weight.dtype != torch.float32 or torch.is_autocast_enabled(weight.device.type):
            return self.step(batch)
        inputs, targets = self._inputs_and_targets(batch)
        hidden = self.encoder(inputs["tokens"], inputs["mask"])  # (B, T-1, H)
        loss = head_cross_entropy(hidden.flatten(0, 1), weight, targets.flatten(), IGNORE)
        return StepOutput(loss, None, None, len(targets))

    # -- scoring ------------------------------------------------------------------------------------------
    def _score_batch(self, batch: dict[str, Any]) -> list[dict[str, float]]:
        logits, targets = self._logits_and_targets(batch)
        log_probs = -F.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=IGNORE, reduction="none")
        counts = (targets != IGNORE).sum(1)
        return [
            {"log_likelihood": total, "tokens": count, "perplexity": math.exp(-total / max(count, 1))}
            for total, count in zip(log_probs.sum(1).tolist(), counts.tolist(), strict=True)
        ]

    def score(self, texts: Sequence[str], batch_size: int = 32) -> list[dict[str, float]]:
        """Each text's total log-likelihood (``<s>`` to ``</s>``), its predicted-token count and perplexity."""
        return self.map_batches(texts, self._score_batch, batch_size, labeled=True)

    # -- generation: the Decoder protocol -------------------------------------------------------------------
    def start(self, inputs: list[list[int]], max_new_tokens: int) -> tuple[Tensor, Any]:
        """Prefill left-padded prompts into a fresh cache; logits for each prompt's next token ``(B, V)``."""
        limit = getattr(self.encoder, "max_length", None)
        if limit is not None:
            room = limit - max_new_tokens
            if room < 1:
                raise ConfigError(f"max_new_tokens {max_new_tokens} leaves no room for a prompt (max_length {limit})")
            inputs = [ids[-room:] for ids in inputs]  # keep the end of a prompt that is too long
        tokens, mask = pad(inputs, left=True)
        tokens, mask = tokens.to(self.device), mask.to(self.device)
        cache = self.encoder.init_cache(len(inputs), capacity=tokens.size(1) + max_new_tokens)
        hidden = self.encoder.step(tokens, mask, cache)  # (B, T, H); the last column is real in every row
        return self.encoder.output_logits(hidden[:, -1]), cache

    def extend(self, tokens: Tensor, state: Any) -> Tensor:
        """Feed one token per row; the next logits ``(B, V)``."""
        return self.encoder.output_logits(self.encoder.step(tokens[:, None], None, state)[:, -1])

    def decoder_inputs(self, batch: dict[str, Any]) -> list[list[int]]:
        """Each row's prompt ids."""
        return unpad(batch["tokens"], batch["mask"])
