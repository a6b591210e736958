"""Hashed word-feature templates: what sklearn-crfsuite's feature functions read of every word (its form, case,
affixes, shape, scripts, and those of its neighbours), as a learned bag of embeddings per word.

A template maps a word to its values (strings). Every value is keyed by its template and the offset of the word
it was read from (``suffixes@-1=ing``), hashed by CRC-32 into ``buckets`` rows and embedded; a word's feature is
the sum of its keys' rows, so with a linear head over it alone a tagger scores each tag by a sum of per-feature
weights: the linear-chain feature CRF, which a BiLSTM beside it then adds to. Templates are registered by name
(``register_word_features``), the core's here and a plugin's alike.
"""

from __future__ import annotations

import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from nlpkit import ConfigError, registry

AFFIX_LENGTHS = (1, 2, 3, 4)
#: the value of a neighbour template past either end of the sentence
OUTSIDE = "<outside>"
#: words whose template values are remembered (a cache bounded for endless streams)
CACHED_WORDS = 1_000_000


def script_class(char: str) -> str:
    """The character's class: ``upper``, ``lower``, ``digit``, ``punct``, ``hiragana``, ``katakana``, ``han``,
    ``hangul``, ``letter`` (another script's letters), ``mark`` or ``other``."""
    code = ord(char)
    if 0x3040 <= code <= 0x309F:
        return "hiragana"
    if 0x30A0 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9F:
        return "katakana"
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF or 0x20000 <= code <= 0x3FFFF:
        return "han"
    if 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F:
        return "hangul"
    category = unicodedata.category(char)
    if category == "Lu" or category == "Lt":
        return "upper"
    if category == "Ll":
        return "lower"
    if category[0] == "N":
        return "digit"
    if category[0] in "PS":
        return "punct"
    if category[0] == "L":
        return "letter"
    return "mark" if category[0] == "M" else "other"


def _runs(values: Sequence[str]) -> list[str]:
    """``values`` with runs of one value collapsed to one."""
    return [value for index, value in enumerate(values) if index == 0 or values[index - 1] != value]


def identity(word: str) -> list[str]:
    """The word as it is."""
    return [word]


def lower(word: str) -> list[str]:
    """The word in lower case."""
    return [word.lower()]


def prefixes(word: str) -> list[str]:
    """Its first 1 to 4 characters (as many as it has)."""
    return [word[:n] for n in AFFIX_LENGTHS if len(word) >= n]


def suffixes(word: str) -> list[str]:
    """Its last 1 to 4 characters (as many as it has)."""
    return [word[-n:] for n in AFFIX_LENGTHS if len(word) >= n]


#: the symbol of each character class in a word's shape
SHAPE_OF = {
    "upper": "X", "lower": "x", "digit": "d", "punct": ".", "hiragana": "あ", "katakana": "ア", "han": "漢",
    "hangul": "한", "letter": "L", "mark": "m", "other": "o",
}  # fmt: skip


def shape(word: str) -> list[str]:
    """Its shape, runs collapsed: ``Xx`` (Tokyo), ``X.X.`` (U.S.), ``d.d`` (3.14), ``漢あ`` (住んで),
    ``ア`` (トヨタ)."""
    return ["".join(_runs([SHAPE_OF[script_class(char)] for char in word]))]


def scripts(word: str) -> list[str]:
    """The runs of its characters' classes (``han+hiragana``, ``katakana``, ``upper+lower``) and each class it holds
    (``has-han``)."""
    classes = [script_class(char) for char in word]
    return ["+".join(_runs(classes)), *(f"has-{name}" for name in sorted(set(classes)))]


@dataclass
class FeatureTemplateOptions:
    """Which templates a tagger reads, and how their values are embedded.

    :param templates: read of each word itself (registered names)
    :param neighbours: read of the words around it too, at offsets ``-window`` to ``window``
    :param window: how far the neighbours reach
    :param buckets: rows of the hashed table (more: fewer collisions, but more parameters and a slower step, as the
        optimizer updates every row)
    :param dim: width of a word's feature vector
    :param dropout: in training, the fraction of a word's feature values dropped (so no single one is leant on)
    """

    templates: list[str] = field(default_factory=lambda: ["identity", "lower", "prefixes", "suffixes", "shape",
                                                          "scripts"])  # fmt: skip
    neighbours: list[str] = field(default_factory=lambda: ["lower", "shape"])
    window: int = 2
    buckets: int = 262_144
    dim: int = 32
    dropout: float = 0.0

    @classmethod
    def of(cls, value: FeatureTemplateOptions | dict[str, Any] | None) -> FeatureTemplateOptions | None:
        """Options from a config's mapping (or None for no templates)."""
        if value is None or isinstance(value, cls):
            return value
        try:
            return cls(**value)
        except TypeError as error:
            raise ConfigError(f"feature_templates: {error}") from error


class WordFeatures(nn.Module):
    """Feature ids of words (:meth:`ids`, in the data pipeline) and their summed embeddings (the forward)."""

    def __init__(self, options: FeatureTemplateOptions) -> None:
        super().__init__()
        if options.window < 0 or options.buckets < 2 or options.dim < 1 or not 0 <= options.dropout < 1:
            raise ConfigError("feature_templates: window >= 0, buckets >= 2, dim >= 1 and dropout in [0, 1)")
        templates = registry("word_features")
        self.templates = {name: templates[name] for name in options.templates}
        self.neighbours = {name: templates[name] for name in options.neighbours}
        self.window, self.buckets, self.dropout = options.window, options.buckets, options.dropout
        self.embedding = nn.Embedding(options.buckets, options.dim, padding_idx=0)
        with torch.no_grad():  # a feature CRF's weights start at zero; these start close to it
            self.embedding.weight.uniform_(-1 / options.dim, 1 / options.dim)
            self.embedding.weight[0].zero_()
        self.output_dim = options.dim
        self._cache: dict[str, dict[str, list[str]]] = {}

    def _bucket(self, key: str) -> int:
        return 1 + zlib.crc32(key.encode("utf-8")) % (self.buckets - 1)  # row 0 is padding

    def values(self, words: Sequence[str]) -> list[list[str]]:
        """Every word's feature keys (``template=value`` of its own, ``template@offset=value`` of its neighbours)."""
        read = [self._read(word) for word in words]
        keyed = []
        for position, values in enumerate(read):
            keys = [f"{name}={value}" for name in self.templates for value in values[name]]
            for offset in (offset for offset in range(-self.window, self.window + 1) if offset):
                at = position + offset
                if not 0 <= at < len(words):
                    keys.append(f"@{offset}={OUTSIDE}")
                    continue
                keys.extend(f"{name}@{offset}={value}" for name in self.neighbours for value in read[at][name])
            keyed.append(keys)
        return keyed

    def _read(self, word: str) -> dict[str, list[str]]:
        """Every template's values of ``word`` (remembered: a corpus repeats its words)."""
        values = self._cache.get(word)
        if values is None:
            values = {name: template(word) for name, template in {**self.templates, **self.neighbours}.items()}
            if len(self._cache) < CACHED_WORDS:
                self._cache[word] = values
        return values

    def ids(self, words: Sequence[str]) -> list[list[int]]:
        """Every word's feature rows (1..buckets-1), for :meth:`forward` once padded with 0."""
        return [[self._bucket(key) for key in keys] for keys in self.values(words)]

    def forward(self, ids: Tensor) -> Tensor:
        """``(B, W, S)`` feature rows (0: padding) -> ``(B, W, dim)``, each word the sum of its rows."""
        if self.training and self.dropout:
            ids = ids.masked_fill(torch.rand(ids.shape, device=ids.device) < self.dropout, 0)
        return self.embedding(ids).sum(2)
