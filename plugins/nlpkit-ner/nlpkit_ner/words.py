"""Words of raw text, with character offsets, by one documented rule; and CoNLL files written back."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from nlpkit.io import atomic_write_bytes

#: A word is a run of letters/digits (with inner hyphens or apostrophes: "state-of-the-art", "don't"),
#: or any single other non-space character (punctuation).
WORD = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]")


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


def write_conll(path: str | os.PathLike[str], sentences: Sequence[tuple[Sequence[str], Sequence[str]]]) -> None:
    """Write ``(tokens, tags)`` sentences as a two-column, tab-separated CoNLL file (atomically)."""
    blocks = [
        "\n".join(f"{token}\t{tag}" for token, tag in zip(tokens, tags, strict=True)) for tokens, tags in sentences
    ]
    atomic_write_bytes(path, ("\n\n".join(blocks) + "\n").encode("utf-8"))
