"""The benchmark's Kneser-Ney reference against the textbook definition computed by brute force."""

from __future__ import annotations

import functools
import math
import random
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _kneser_ney import KneserNey

VOCAB = 40
rng = random.Random(0)
STREAM = [min(int(rng.paretovariate(0.8)), 30) + 2 for _ in range(1500)]  # Zipf-like; some ids never occur


@functools.cache
def grams(n: int) -> list[tuple[int, ...]]:
    """Every n-gram occurrence of the stream, in order."""
    return [tuple(STREAM[i : i + n]) for i in range(len(STREAM) - n + 1)]


@functools.cache
def count(order: int, gram: tuple[int, ...]) -> int:
    """The raw count of a top-order gram; below the top, how many distinct tokens precede it in the stream."""
    if len(gram) == order:
        return grams(order).count(gram)
    return len({g[0] for g in grams(len(gram) + 1) if g[1:] == gram})


@functools.cache
def discounts(order: int, n: int) -> tuple[float, float, float, float]:
    """0, D1, D2, D3+ of the n-grams, from their count-of-counts."""
    of = Counter(c for c in (count(order, g) for g in set(grams(n))) if c <= 4)
    n1, n2, n3, n4 = (max(of[k], 1) for k in (1, 2, 3, 4))
    y = n1 / (n1 + 2 * n2)
    return 0.0, 1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3


def textbook(order: int, history: tuple[int, ...], token: int) -> float:
    """P(token | history) straight from Chen & Goodman's equations, every count found by scanning the stream."""
    shorter = textbook(order, history[1:], token) if history else 1 / VOCAB
    n = len(history) + 1
    following = {g[-1]: count(order, g) for g in set(grams(n)) if g[:-1] == history}
    total = sum(following.values())
    if total == 0:
        return shorter
    discount = discounts(order, n)
    mass = sum(discount[min(c, 3)] for c in following.values())
    mine = following.get(token, 0)
    return (mine - discount[min(mine, 3)]) / total + mass / total * shorter


@pytest.mark.parametrize("order", [1, 2, 3])
def test_probabilities_equal_the_textbook_definition(order: int) -> None:
    model = KneserNey(STREAM, order, VOCAB)
    histories = {tuple(STREAM[i : i + order - 1]) for i in range(40)} | {(39,) * (order - 1), (2, 39)[: order - 1]}
    for history in histories:
        for token in range(VOCAB):
            assert model.probability(history, token) == pytest.approx(textbook(order, history, token))


@pytest.mark.parametrize("history", [(), (2,), (3, 2), (2, 2, 2), (39, 39, 39), (2, 39, 2), (0, 1, 2, 3, 4)])
def test_every_history_gives_a_distribution_over_the_whole_vocabulary(history: tuple[int, ...]) -> None:
    model = KneserNey(STREAM, 4, VOCAB)
    probabilities = [model.probability(history, token) for token in range(VOCAB)]
    assert min(probabilities) > 0
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-12)


def test_bits_add_up_the_information_of_every_token_after_the_first() -> None:
    model = KneserNey(STREAM, 3, VOCAB)
    held_out = STREAM[:50]
    expected = -sum(math.log2(model.probability(held_out[max(i - 2, 0) : i], held_out[i])) for i in range(1, 50))
    assert model.bits(held_out) == pytest.approx(expected)
    assert model.bits(held_out) < 49 * math.log2(VOCAB)  # it has learned something
