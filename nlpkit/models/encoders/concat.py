"""Encoders side by side: every part reads the same tokens, and the states are the parts' states concatenated, so
a wide n-gram part and a deep recurrent or attention part train jointly under one head."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from nlpkit.models.encoders.base import Encoder, EncoderFactory, factory_tokenizer
from nlpkit.plugin.errors import ConfigError

if TYPE_CHECKING:
    from nlpkit.models.tokenizers import Tokenizer


def build_part(part: EncoderFactory | dict[str, Any], vocab_size: int, feature_dim: int) -> Encoder:
    """One part from its factory, or from its ``{class_path, init_args}`` spec (as :meth:`Encoder.spec` writes)."""
    if isinstance(part, dict):
        module, _, name = str(part.get("class_path", "")).rpartition(".")
        try:
            factory = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError) as error:
            raise ConfigError(f"concat: no encoder class {part.get('class_path')!r}") from error
        arguments = dict(part.get("init_args") or {})
        built = factory(vocab_size, **arguments, **({"feature_dim": feature_dim} if feature_dim else {}))
    else:
        built = part(vocab_size, feature_dim=feature_dim) if feature_dim else part(vocab_size)  # type: ignore[call-arg]
    if not isinstance(built, Encoder):
        raise ConfigError(f"concat: a part built a {type(built).__name__}, not an nlpkit Encoder")
    return built


@dataclass
class ConcatCache:
    """The decoding caches of the parts of a causal concatenation, one each."""

    parts: list[Any]

    def select(self, rows: Tensor, among_beams: bool = False) -> None:
        """Keep (and repeat or reorder) the given batch rows of every part's cache, in place."""
        for cache in self.parts:
            cache.select(rows, among_beams)


class ConcatEncoder(Encoder):
    """The parts' states side by side: ``output_dim`` is the sum of theirs.

    Any registered encoder is a part, a plugin's too. The token embedding the task reads (language embeddings,
    attributions) is the first part's; a task's input features go to every part. The concatenation is causal,
    and decodes incrementally, when every part is.

    :param encoders: the parts, e.g. ``[{class_path: ngram}, {class_path: lstm, init_args: {bidirectional: true}}]``
    """

    def __init__(
        self, vocab_size: int, encoders: list[EncoderFactory] | list[dict[str, Any]], feature_dim: int = 0
    ) -> None:
        super().__init__()
        if not encoders:
            raise ConfigError("concat needs at least one encoder in encoders")
        self.vocab_size = vocab_size
        self.feature_dim = feature_dim
        self.parts = nn.ModuleList(build_part(part, vocab_size, feature_dim) for part in encoders)
        self.output_dim = sum(part.output_dim for part in self.parts)
        self.is_causal = all(part.is_causal for part in self.parts)
        self.sentence_pooling = self.parts[0].sentence_pooling
        limits = [part.max_length for part in self.parts if getattr(part, "max_length", None) is not None]
        if limits:
            self.max_length = min(limits)

    @property
    def token_embedding(self) -> nn.Embedding:  # type: ignore[override]
        """The first part's token embedding."""
        return self.parts[0].token_embedding

    def spec(self) -> dict[str, Any]:
        """The class path and the parts' own specs."""
        return {"class_path": super().spec()["class_path"], "init_args": {"encoders": [p.spec() for p in self.parts]}}

    @classmethod
    def bundled_tokenizer(cls, arguments: dict[str, Any]) -> Tokenizer | None:
        """The tokenizer of the first part that brings one (a pretrained model's)."""
        for part in arguments.get("encoders") or []:
            if not isinstance(part, dict) and (tokenizer := factory_tokenizer(part)) is not None:
                return tokenizer
        return None

    def initialize(self, tokenizer: Tokenizer) -> None:
        """Every part's starting weights."""
        for part in self.parts:
            part.initialize(tokenizer)

    def layers(self) -> list[list[str]]:
        """The parts' layer groups side by side: group ``i`` holds every part's ``i``-th group (the parts' tops
        need not align, so each part's groups count up from its embeddings)."""
        grouped: list[list[str]] = []
        for index, part in enumerate(self.parts):
            for depth, group in enumerate(part.layers()):
                if depth == len(grouped):
                    grouped.append([])
                grouped[depth].extend(f"parts.{index}.{name}" for name in group)
        return grouped

    def forward(self, tokens: Tensor, mask: Tensor, features: Tensor | None = None) -> Tensor:
        """Every part's states ``(B, T, H_i)`` concatenated ``(B, T, output_dim)``."""
        features = self.input_features(features)
        states = [part(tokens, mask) if features is None else part(tokens, mask, features) for part in self.parts]
        return torch.cat([state.to(states[0].dtype) for state in states], dim=-1)

    def init_cache(self, batch_size: int, capacity: int | None = None) -> ConcatCache:
        """Every part's fresh cache (a causal concatenation only)."""
        if not self.is_causal:
            return super().init_cache(batch_size, capacity)
        return ConcatCache([part.init_cache(batch_size, capacity) for part in self.parts])

    def step(self, tokens: Tensor, mask: Tensor | None, cache: ConcatCache) -> Tensor:
        """Every part's step over its own cache, concatenated."""
        if not self.is_causal:
            return super().step(tokens, mask, cache)
        states = [part.step(tokens, mask, part_cache) for part, part_cache in zip(self.parts, cache.parts, strict=True)]
        return torch.cat(states, dim=-1)
