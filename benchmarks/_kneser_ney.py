"""The n-gram reference of the language-model benchmark: interpolated modified Kneser-Ney (Chen & Goodman, 1998)
over token ids, so it reads exactly the token stream the neural models read.

The highest order uses raw counts, every lower order continuation counts (how many distinct tokens precede an
n-gram), each order has three discounts estimated from its count-of-counts, and the unigram level interpolates
with the uniform distribution over the vocabulary, so every id has a probability.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

NGram = tuple[int, ...]


def _discounts(counts: Counter[NGram]) -> tuple[float, float, float]:
    """D1, D2, D3+ from the count-of-counts n1..n4 (Chen & Goodman's estimates)."""
    of = Counter(count for count in counts.values() if count <= 4)
    n1, n2, n3, n4 = (max(of[k], 1) for k in (1, 2, 3, 4))
    y = n1 / (n1 + 2 * n2)
    estimates = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    return tuple(min(max(d, 0.0), k) for k, d in enumerate(estimates, start=1))  # type: ignore[return-value]


class KneserNey:
    """An order-``order`` interpolated modified Kneser-Ney model of ``stream``, a sequence of ids below
    ``vocab_size``."""

    def __init__(self, stream: Sequence[int], order: int, vocab_size: int) -> None:
        self.order, self.vocab_size = order, vocab_size
        raw = [Counter(zip(*(stream[i:] for i in range(n)), strict=False)) for n in range(1, order + 1)]
        # level n (0-based) holds (n+1)-grams: raw counts at the top, continuation counts below it
        self.counts = [*(Counter(ngram[1:] for ngram in raw[n + 1]) for n in range(order - 1)), raw[-1]]
        self.discounts = [_discounts(counts) for counts in self.counts]
        self.contexts: list[dict[NGram, tuple[float, float]]] = []  # context -> (total count, interpolation mass)
        for counts, (d1, d2, d3) in zip(self.counts, self.discounts, strict=True):
            totals: dict[NGram, list[float]] = {}
            for ngram, count in counts.items():
                entry = totals.setdefault(ngram[:-1], [0.0, 0.0])
                entry[0] += count
                entry[1] += d1 if count == 1 else d2 if count == 2 else d3
            self.contexts.append({context: (total, mass) for context, (total, mass) in totals.items()})

    def _discount(self, level: int, count: int) -> float:
        d1, d2, d3 = self.discounts[level]
        return 0.0 if count == 0 else d1 if count == 1 else d2 if count == 2 else d3

    def probability(self, context: Sequence[int], token: int) -> float:
        """P(token | the last ``order - 1`` ids of ``context``)."""
        probability = 1.0 / self.vocab_size
        for level in range(self.order):
            history = tuple(context[len(context) - level :]) if level else ()
            if level > len(context) or history not in self.contexts[level]:
                break  # a longer history containing an unseen one is unseen too
            total, mass = self.contexts[level][history]
            count = self.counts[level].get((*history, token), 0)
            probability = (count - self._discount(level, count)) / total + mass / total * probability
        return probability

    def bits(self, stream: Sequence[int]) -> float:
        """The total information, in bits, of every id of ``stream`` after the first, given the ids before it."""
        history = self.order - 1
        return -sum(
            math.log2(self.probability(stream[max(i - history, 0) : i], stream[i])) for i in range(1, len(stream))
        )
