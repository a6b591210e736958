"""The one interface every sequence encoder implements; heads and tasks only ever see this."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from nlpkit.models.encoders.linear import linear
from nlpkit.models.vectors import WordVectorsOptions, copy_into
from nlpkit.plugin.configurable import Configurable
from nlpkit.plugin.errors import ConfigError

if TYPE_CHECKING:
    from nlpkit.models.tokenizers import Tokenizer


class VectorEmbedding(nn.Embedding):
    """A token embedding that starts from word vectors (:mod:`nlpkit.models.vectors`), copied in by :meth:`initialize`;
    with ``freeze`` the rows the file gave keep their vectors while every other row (words the file lacks) trains."""

    def __init__(self, num_embeddings: int, embedding_dim: int, options: WordVectorsOptions) -> None:
        super().__init__(num_embeddings, embedding_dim, padding_idx=0)
        self.options = options
        self.register_buffer("pretrained_rows", torch.zeros(num_embeddings, dtype=torch.bool))

    def initialize(self, tokenizer: Tokenizer) -> None:
        """Copy the vectors of the tokenizer's pieces in."""
        self.pretrained_rows.copy_(copy_into(self, tokenizer, self.options))

    def forward(self, ids: Tensor) -> Tensor:
        """The rows of ``ids``; frozen pretrained rows pass no gradient."""
        rows = super().forward(ids)
        if not self.options.freeze:
            return rows
        return torch.where(self.pretrained_rows[ids][..., None], rows.detach(), rows)


def token_embedding(vocab_size: int, dim: int, embeddings: WordVectorsOptions | dict[str, Any] | None) -> nn.Embedding:
    """An encoder's token embedding: plain, or starting from the word vectors ``embeddings`` names."""
    options = WordVectorsOptions.of(embeddings)
    if options is None:
        return nn.Embedding(vocab_size, dim, padding_idx=0)
    return VectorEmbedding(vocab_size, dim, options)


class Encoder(Configurable, nn.Module):
    """Maps token ids ``(B, T)`` and a padding mask ``(B, T)`` (True = real token) to hidden states ``(B, T, H)``.

    Subclasses take ``vocab_size`` as their first constructor argument (the task injects it once the tokenizer is
    known) and expose ``token_embedding`` (an ``nn.Embedding``) and ``output_dim`` (H). An encoder that also takes
    ``feature_dim`` (injected by a task that has per-token input features, such as a tagger's character and
    word-vector features) reads ``features`` ``(B, T, feature_dim)`` beside the token embeddings.
    Causal encoders (``is_causal`` True) also implement incremental decoding through :meth:`init_cache` and
    :meth:`step`. Hidden states at padded positions are unspecified; callers mask them.
    """

    #: the registry its subclasses are registered in (checked by the plugin loader)
    registry_kind: ClassVar[str] = "encoders"

    injected_args: ClassVar[tuple[str, ...]] = ("vocab_size", "feature_dim")
    #: constructor arguments that shape training, the starting weights or the longest input, not the function the
    #: weights compute: ``init_from`` lets a fine-tuned encoder set them its own way and compares every other one
    tunable_args: ClassVar[tuple[str, ...]] = ("dropout", "embeddings", "max_length")
    vocab_size: int
    output_dim: int
    token_embedding: nn.Embedding
    is_causal: bool = False
    #: how a task whose ``pooling`` is ``auto`` pools these states into one vector (a pretrained model says how it
    #: was trained: ``mean``, ``max`` or ``first``)
    sentence_pooling: str = "mean"

    def forward(self, tokens: Tensor, mask: Tensor, features: Tensor | None = None) -> Tensor:
        """Encode a padded batch: ``tokens`` (B, T) long, ``mask`` (B, T) bool, and the per-token input ``features``
        (B, T, feature_dim) of an encoder built with ``feature_dim`` -> (B, T, output_dim)."""
        raise NotImplementedError

    def input_features(self, features: Tensor | None) -> Tensor | None:
        """``features`` checked against the ``feature_dim`` the encoder was built with (None for one built
        without)."""
        feature_dim = getattr(self, "feature_dim", 0)
        if not feature_dim:
            return None
        if features is None or features.size(-1) != feature_dim:
            raise ValueError(f"{type(self).__name__} was built with feature_dim {feature_dim}: pass such features")
        return features

    def beside_features(self, embedded: Tensor, features: Tensor | None) -> Tensor:
        """Token embeddings ``(B, T, E)`` with the input features ``(B, T, feature_dim)`` concatenated after them,
        for an encoder built with ``feature_dim`` (else the embeddings as they are)."""
        checked = self.input_features(features)
        return embedded if checked is None else torch.cat([embedded, checked.to(embedded.dtype)], dim=-1)

    def initialize(self, tokenizer: Tokenizer) -> None:
        """Set the starting weights that depend on the tokenizer's vocabulary, once, when a task is built afresh
        (never when a checkpoint or an export is loaded): word vectors (``embeddings``) are copied in here."""
        if isinstance(self.token_embedding, VectorEmbedding):
            self.token_embedding.initialize(tokenizer)

    @classmethod
    def bundled_tokenizer(cls, arguments: dict[str, Any]) -> Tokenizer | None:
        """The tokenizer an encoder built with ``arguments`` must read with (a pretrained model's own), known before
        it is built; None (the default) lets the data module train or load one.

        A task calls this when it is created, so the data module then uses the task's tokenizer.
        """
        return None

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


def factory_target(factory: object) -> tuple[type[Encoder] | None, dict[str, Any]]:
    """The Encoder class an encoder factory builds and the keyword arguments it passes (a class, a
    ``functools.partial`` of one, or the partial jsonargparse makes of a ``class_path`` block); (None, {}) for a
    factory whose class cannot be seen."""
    if isinstance(factory, type):
        return (factory, {}) if issubclass(factory, Encoder) else (None, {})
    if isinstance(factory, functools.partial):
        for candidate in (factory.func, *factory.args):
            if isinstance(candidate, type) and issubclass(candidate, Encoder):
                return candidate, dict(factory.keywords)
    return None, {}


def factory_tokenizer(factory: object) -> Tokenizer | None:
    """The tokenizer an encoder factory's encoder brings with it (see :meth:`Encoder.bundled_tokenizer`)."""
    encoder_class, arguments = factory_target(factory)
    return encoder_class.bundled_tokenizer(arguments) if encoder_class is not None else None
