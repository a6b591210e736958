"""Corruptions of token ids for self-supervised objectives, as functions of ids and a ``torch.Generator``.

* BERT masking (:class:`Masker`): about ``probability`` of each row's text tokens are chosen, by single tokens,
  whole words, or SpanBERT spans of whole words; of those, 80% become ``<mask>``, 10% a random piece, 10% stay.
* BART noising (:func:`infill`, :func:`permute`): spans of Poisson length each replaced by one ``<mask>``, and the
  sentences of a text shuffled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from nlpkit import ConfigError, Tokenizer

IGNORE = -100
MaskUnit = Literal["token", "whole-word", "span"]
#: a "word" in text without spaces (Chinese, Japanese) is cut after this many pieces
MAX_WORD_PIECES = 8


def _randint(high: int, generator: torch.Generator | None) -> int:
    return int(torch.randint(high, (1,), generator=generator))


def _geometric(p: float, generator: torch.Generator | None) -> int:
    """A draw from Geometric(p) on 1, 2, ... (by inverting its distribution function)."""
    if p >= 1:
        return 1
    uniform = float(torch.rand((), generator=generator)) or 1e-12
    return int(math.log(uniform) / math.log(1 - p)) + 1


@dataclass(frozen=True)
class MaskingOptions:
    """How BERT-style masking chooses and replaces tokens.

    :param probability: fraction of each row's text tokens to predict
    :param unit: choose single ``token``\\ s, ``whole-word``\\ s (all pieces of a word together), or ``span``\\ s of
        whole words with geometric lengths (SpanBERT)
    :param mask_fraction: of the chosen tokens, the fraction replaced by ``<mask>``
    :param random_fraction: of the chosen tokens, the fraction replaced by a random piece (the rest stay as they are)
    :param span_p: parameter of the geometric distribution of span lengths, in words
    :param max_span: longest span, in words
    """

    probability: float = 0.15
    unit: MaskUnit = "token"
    mask_fraction: float = 0.8
    random_fraction: float = 0.1
    span_p: float = 0.2
    max_span: int = 10

    def __post_init__(self) -> None:
        if not 0 < self.probability < 1:
            raise ConfigError(f"masking probability must be in (0, 1), got {self.probability}")
        if self.mask_fraction < 0 or self.random_fraction < 0 or self.mask_fraction + self.random_fraction > 1:
            raise ConfigError("mask_fraction and random_fraction must be >= 0 and add up to at most 1")
        if self.unit not in ("token", "whole-word", "span"):
            raise ConfigError(f"masking unit must be token, whole-word or span, got {self.unit!r}")
        if not 0 < self.span_p <= 1 or self.max_span < 1:
            raise ConfigError("span_p must be in (0, 1] and max_span >= 1")


class Masker:
    """BERT-style masking of padded batches for one tokenizer (see :class:`MaskingOptions`)."""

    def __init__(self, tokenizer: Tokenizer, options: MaskingOptions) -> None:
        self.options = options
        self.mask_id = tokenizer.mask_id
        special = torch.zeros(tokenizer.vocab_size, dtype=torch.bool)
        special[tokenizer.special_ids()] = True
        self.special = special  # (V,) never chosen, never drawn as a random replacement
        self.text_ids = (~special).nonzero()[:, 0]  # the pieces random replacements are drawn from
        self.word_start = torch.tensor(tokenizer.word_starts())

    def __call__(self, tokens: Tensor, mask: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Masked inputs ``(B, T)`` and labels ``(B, T)``: the original id where a token was chosen, else -100."""
        options = self.options
        eligible = mask & ~self.special[tokens]
        if options.unit == "token":  # every row at once: its `budget` eligible tokens of lowest random score
            counts = eligible.sum(1)
            budget = torch.where(counts > 0, (counts.double() * options.probability).round().clamp(min=1), 0)
            scores = torch.rand(tokens.shape, generator=generator).masked_fill(~eligible, 2.0)
            chosen = scores.argsort(1).argsort(1) < budget[:, None]
        else:
            chosen = torch.zeros_like(mask)
            for row in range(len(tokens)):
                positions = eligible[row].nonzero()[:, 0].tolist()
                if positions:
                    chosen[row, self._choose(positions, tokens[row], generator)] = True
        draw = torch.rand(tokens.shape, generator=generator)
        to_mask = chosen & (draw < options.mask_fraction)
        to_random = chosen & (draw >= options.mask_fraction) & (draw < options.mask_fraction + options.random_fraction)
        inputs = tokens.masked_fill(to_mask, self.mask_id)
        random_ids = self.text_ids[torch.randint(len(self.text_ids), tokens.shape, generator=generator)]
        inputs = torch.where(to_random, random_ids, inputs)
        return inputs, tokens.masked_fill(~chosen, IGNORE)

    def _words(self, positions: list[int], row: Tensor) -> list[list[int]]:
        """The positions grouped into words: a word starts at a piece beginning with ``▁``, after a gap, or after
        :data:`MAX_WORD_PIECES` pieces."""
        words: list[list[int]] = []
        starts = self.word_start[row[positions]].tolist()
        for position, start in zip(positions, starts, strict=True):
            if not words or start or position != words[-1][-1] + 1 or len(words[-1]) >= MAX_WORD_PIECES:
                words.append([position])
            else:
                words[-1].append(position)
        return words

    def _choose(self, positions: list[int], row: Tensor, generator: torch.Generator | None) -> list[int]:
        """Positions of one row to predict, by whole words: words in random order while they fit
        ``round(probability * n)`` pieces (at least 1), or spans of them."""
        budget = max(1, round(self.options.probability * len(positions)))
        words = self._words(positions, row)
        if self.options.unit == "span":
            return self._spans(words, budget, generator)
        chosen: list[int] = []
        for index in torch.randperm(len(words), generator=generator).tolist():
            if len(chosen) + len(words[index]) <= budget:
                chosen += words[index]
            if len(chosen) == budget:
                break
        return chosen or words[0][:budget]  # a row of one long word still predicts something

    def _spans(self, words: list[list[int]], budget: int, generator: torch.Generator | None) -> list[int]:
        """SpanBERT: spans of ``Geometric(span_p)`` words (at most ``max_span``) from random word starts."""
        options = self.options
        taken = [False] * len(words)
        chosen: list[int] = []
        for _ in range(10 * len(words)):  # tries; a row whose free words do not fit stops early
            if len(chosen) >= budget:
                break
            length = min(_geometric(options.span_p, generator), options.max_span)
            start = _randint(len(words), generator)
            for index in range(start, min(start + length, len(words))):
                if taken[index] or len(chosen) + len(words[index]) > budget:
                    break
                taken[index] = True
                chosen += words[index]
        return chosen or words[0][:budget]


def infill(
    ids: list[int], ratio: float, poisson_lambda: float, mask_id: int, generator: torch.Generator | None
) -> list[int]:
    """BART text infilling: spans with ``Poisson(poisson_lambda)`` lengths covering about ``ratio`` of ``ids`` are
    each replaced by a single ``mask_id`` (a span of length 0 inserts one)."""
    budget = round(ratio * len(ids))
    if not ids or budget == 0:
        return list(ids)
    masked = [False] * len(ids)
    inserted: set[int] = set()
    covered = 0
    rate = torch.tensor(float(poisson_lambda))
    for _ in range(10 * len(ids)):
        if covered >= budget:
            break
        length = int(torch.poisson(rate, generator=generator))
        start = _randint(len(ids), generator)
        if length == 0:
            inserted.add(start)
            continue
        end = min(start + length, len(ids), start + budget - covered)
        if any(masked[start:end]):
            continue
        masked[start:end] = [True] * (end - start)
        covered += end - start
    out: list[int] = []
    for position, token in enumerate(ids):
        if position in inserted:
            out.append(mask_id)
        if not masked[position]:
            out.append(token)
        elif position == 0 or not masked[position - 1]:
            out.append(mask_id)
    return out


def permute(sentences: list[list[int]], generator: torch.Generator | None) -> list[list[int]]:
    """The sentences in a random order (BART's sentence permutation)."""
    return [sentences[i] for i in torch.randperm(len(sentences), generator=generator).tolist()]
