"""The one interface every sequence encoder implements; heads and tasks only ever see this."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from torch import Tensor, nn

from nlpkit.configurable import Configurable
from nlpkit.encoders.linear import linear
from nlpkit.errors import ConfigError


class Encoder(Configurable, nn.Module):
    """Maps token ids ``(B, T)`` and a padding mask ``(B, T)`` (True = real token) to hidden states ``(B, T, H)``.

    Subclasses take ``vocab_size`` as their first constructor argument (the task injects it once the tokenizer is
    known) and expose ``token_embedding`` (an ``nn.Embedding``) and ``output_dim`` (H).
    Causal encoders (``is_causal`` True) also implement incremental decoding through :meth:`init_cache` and
    :meth:`step`. Hidden states at padded positions are unspecified; callers mask them.
    """

    injected_args: ClassVar[tuple[str, ...]] = ("vocab_size",)
    vocab_size: int
    output_dim: int
    token_embedding: nn.Embedding
    is_causal: bool = False

    def forward(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """Encode a padded batch: ``tokens`` (B, T) long, ``mask`` (B, T) bool -> (B, T, output_dim)."""
        raise NotImplementedError

    def layers(self) -> list[list[str]]:
        """Parameter names grouped by layer, from the embeddings up to the top layer (default: one group).

        Fine-tuning uses the groups for layer-wise learning-rate decay and gradual unfreezing.
        """
        return [[name for name, _ in self.named_parameters()]]

    def init_cache(self, batch_size: int, capacity: int | None = None) -> Any:
        """A fresh decoding cache for ``batch_size`` sequences of up to ``capacity`` tokens (causal encoders only).

        Every cache has ``select(rows, among_beams=False)``: keep, repeat or reorder batch rows in place (for
        beam search).
        """
        raise NotImplementedError(f"{type(self).__name__} is not causal and cannot decode incrementally")

    def step(self, tokens: Tensor, mask: Tensor | None, cache: Any) -> Tensor:
        """Encode the next chunk ``tokens`` (B, t) given everything already in ``cache``; updates ``cache``.

        ``mask`` (B, t) marks real tokens in the chunk, so prompts of different lengths can be prefilled in one
        batch with left or right padding; None says every token is real (no host sync to find out).
        Returns hidden states (B, t, output_dim) for the chunk.
        """
        raise NotImplementedError(f"{type(self).__name__} is not causal and cannot decode incrementally")


class LanguageModelHeadMixin:
    """Gives a causal encoder ``output_logits``: hidden states -> next-token logits (optionally tied)."""

    vocab_size: int
    output_dim: int
    is_causal: bool
    token_embedding: nn.Embedding
    lm_head: nn.Linear | None
    lm_head_removed: bool = False

    def build_lm_head(self, tie_weights: bool) -> None:
        """Project onto the vocabulary with the token embedding (tied) or a new bias-free linear layer."""
        if tie_weights and self.output_dim != self.token_embedding.embedding_dim:
            raise ConfigError(
                f"tie_weights needs output_dim ({self.output_dim}) == embedding dim "
                f"({self.token_embedding.embedding_dim})"
            )
        self.lm_head = None if tie_weights else nn.Linear(self.output_dim, self.vocab_size, bias=False)

    def remove_lm_head(self) -> None:
        """Drop the next-token head, for a task that predicts no tokens (no unused parameters under DDP)."""
        self.lm_head = None
        self.lm_head_removed = True

    def lm_head_weight(self) -> Tensor:
        """The next-token head's (vocab_size, output_dim) weight: the token embedding's when tied."""
        if not self.is_causal or self.lm_head_removed:
            raise NotImplementedError(f"{type(self).__name__} has no language-model head here")
        return self.token_embedding.weight if self.lm_head is None else self.lm_head.weight

    def output_logits(self, hidden: Tensor) -> Tensor:
        """Next-token logits (B, T, vocab_size) from hidden states (B, T, output_dim)."""
        return linear(hidden, self.lm_head_weight())


#: What a task receives for its encoder: something that builds an Encoder given the vocabulary size
#: (an Encoder class, a ``functools.partial`` of one, or a ``class_path``/``init_args`` block in YAML).
EncoderFactory = Callable[[int], Encoder]
