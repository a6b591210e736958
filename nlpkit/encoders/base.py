"""The one interface every sequence encoder implements; heads and tasks only ever see this."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from torch import Tensor, nn

from nlpkit.configurable import Configurable


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

    def init_cache(self, batch_size: int) -> Any:
        """A fresh decoding cache for ``batch_size`` sequences (causal encoders only)."""
        raise NotImplementedError(f"{type(self).__name__} is not causal and cannot decode incrementally")

    def step(self, tokens: Tensor, mask: Tensor, cache: Any) -> Tensor:
        """Encode the next chunk ``tokens`` (B, t) given everything already in ``cache``; updates ``cache``.

        ``mask`` (B, t) marks real tokens in the chunk, so prompts of different lengths can be prefilled in one
        batch with left or right padding. Returns hidden states (B, t, output_dim) for the chunk.
        """
        raise NotImplementedError(f"{type(self).__name__} is not causal and cannot decode incrementally")


#: What a task receives for its encoder: something that builds an Encoder given the vocabulary size
#: (an Encoder class, a ``functools.partial`` of one, or a ``class_path``/``init_args`` block in YAML).
EncoderFactory = Callable[[int], Encoder]
