"""Words of raw text, with character offsets, by one documented rule; windows of words for long inputs; and CoNLL
files written back."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import TypeVar

from nlpkit import atomic_write_bytes

T = TypeVar("T")

#: Scripts written without spaces between words (Han, Hiragana, Katakana): each character is a word of its own
SPACELESS = "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
_LETTERS = rf"(?:(?![{SPACELESS}])\w)+"
#: A word is a run of letters/digits (with inner hyphens or apostrophes: "state-of-the-art", "don't"), one
#: character of a script without spaces (Chinese and Japanese text is tagged character by character), or any
#: single other non-space character (punctuation).
WORD = re.compile(rf"[{SPACELESS}]|{_LETTERS}(?:[-'’]{_LETTERS})*|[^\w\s]")


def split_words(text: str) -> list[tuple[str, int, int]]:
    """``(word, start, end)`` for every word of ``text`` by the :data:`WORD` rule (end exclusive)."""
    return [(match.group(), match.start(), match.end()) for match in WORD.finditer(text)]


def join_words(words: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """Pre-tokenised words as one text (single spaces between them) and each word's character offsets."""
    offsets, position = [], 0
    for word in words:
        offsets.append((position, position + len(word)))
        position += len(word) + 1
    return " ".join(words), offsets


def windows(sizes: Sequence[int], budget: int, overlap: int) -> list[tuple[int, int]]:
    """Word ranges ``(start, end)`` covering every word, each within ``budget`` pieces (``sizes``: pieces per word).

    Consecutive windows share up to ``overlap`` words, and at most half a window, so every window moves on.
    A word larger than ``budget`` gets a window of its own (its pieces must be cut to fit); no words give one
    empty window.
    """
    ranges, start = [], 0
    while True:
        end, used = start, 0
        while end < len(sizes) and (end == start or used + sizes[end] <= budget):
            used += sizes[end]
            end += 1
        ranges.append((start, end))
        if end >= len(sizes):
            return ranges
        start = max(end - overlap, (start + end + 1) // 2)


def stitch(per_window: Sequence[Sequence[T]], ranges: Sequence[tuple[int, int]]) -> list[T]:
    """One value per word from per-window values; where two windows overlap, the middle of the overlap splits them.

    A word in both so takes its value from the window in which it lies further from the edge.
    """
    values: list[T] = []
    for index, (values_of_window, (start, end)) in enumerate(zip(per_window, ranges, strict=True)):
        until = (ranges[index + 1][0] + end) // 2 if index + 1 < len(ranges) else end
        values.extend(values_of_window[len(values) - start : until - start])
    return values


def write_conll(path: str | os.PathLike[str], sentences: Sequence[tuple[Sequence[str], Sequence[str]]]) -> None:
    """Write ``(tokens, tags)`` sentences as a two-column, tab-separated CoNLL file (atomically)."""
    blocks = [
        "\n".join(f"{token}\t{tag}" for token, tag in zip(tokens, tags, strict=True)) for tokens, tags in sentences
    ]
    atomic_write_bytes(path, ("\n\n".join(blocks) + "\n").encode("utf-8"))
