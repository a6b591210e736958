"""Hashed n-gram encoder: fastText's features (token n-grams and the character n-grams of every piece) as one
embedding per position. Under a task's mean pooling and a linear head it is fastText's classifier, trained,
checkpointed, exported and served like every other encoder.

Each position holds the bag of the n-grams that start there: its token (a row of ``token_embedding``), the
n-grams of 2 to ``ngrams`` tokens from it (hashed into the rows of ``ngram_embedding``), and, with
``char_ngrams``, the character n-grams of its piece (hashed into the same rows, as fastText shares its buckets
between word n-grams and subwords). The position's state is the mean of its bag. Token n-grams are hashed in
tensor ops inside the forward (so exports hash as the model does); a piece's character n-grams are fixed by the
vocabulary, so they are hashed once, when the encoder is built afresh, into a buffer saved with the weights.
A position's rows of the hashed table are summed by one fused ``embedding_bag``, never gathered into a
``(B, T, K, D)`` tensor first, except in exports, which gather and then sum (the same figures, as the ONNX parity
tests check).
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nlpkit.models.encoders.base import Encoder, token_embedding
from nlpkit.models.vectors import WordVectorsOptions
from nlpkit.plugin.errors import ConfigError

if TYPE_CHECKING:
    from nlpkit.models.tokenizers import Tokenizer

#: the multiplier and modulus of the polynomial hash of token n-grams (products stay far inside int64)
HASH_MULTIPLIER = 1_000_003
HASH_MODULUS = 2_147_483_647
#: SentencePiece's word-start mark, read as fastText's ``<`` (a word's first characters)
WORD_START = "▁"


def string_bucket(text: str, buckets: int) -> int:
    """A stable bucket in ``[0, buckets)`` for ``text`` (CRC-32 of its UTF-8 bytes: the same on every machine and
    in every process, unlike ``hash``)."""
    return zlib.crc32(text.encode("utf-8")) % buckets


def token_ngram_buckets(tokens: Tensor, mask: Tensor, order: int, buckets: int) -> tuple[Tensor, Tensor]:
    """The bucket ``(B, T)`` of the n-gram of ``order`` tokens starting at each position, and whether that n-gram
    lies wholly on real tokens ``(B, T)`` (an n-gram running into padding or past the end does not exist)."""
    hashed, valid = tokens, mask
    for offset in range(1, order):
        following = torch.cat([tokens[:, offset:], torch.zeros_like(tokens[:, :offset])], dim=1)
        real = torch.cat([mask[:, offset:], torch.zeros_like(mask[:, :offset])], dim=1)
        hashed = (hashed * HASH_MULTIPLIER + following + 1) % HASH_MODULUS
        valid = valid & real
    return (hashed * HASH_MULTIPLIER + order) % buckets, valid


def piece_char_ngrams(piece: str, smallest: int, largest: int) -> list[str]:
    """The character n-grams (``smallest`` to ``largest`` characters, shortest first) of a piece; a word's first
    piece starts with ``<``, as fastText marks the start of a word."""
    chars = "<" + piece[len(WORD_START) :] if piece.startswith(WORD_START) else piece
    return [chars[i : i + n] for n in range(smallest, largest + 1) for i in range(len(chars) - n + 1)]


class NGramEncoder(Encoder):
    """Each position's state is the mean embedding of the n-grams that start there (see the module's docstring).

    :param dim: width of every embedding, and of the states
    :param ngrams: the longest token n-gram (1: tokens alone)
    :param buckets: rows of the hashed n-gram table, shared by token and character n-grams
    :param char_ngrams: ``[smallest, largest]`` character n-grams of every piece (fastText's ``minn``, ``maxn``),
        or None for none; scripts without spaces (Japanese, Chinese) want them from 1
    :param max_char_ngrams: character n-grams kept per piece (shortest first)
    :param dropout: dropout on the states
    :param embeddings: start the token embedding from word vectors (``{path, format, freeze}``)
    """

    def __init__(
        self,
        vocab_size: int,
        dim: int = 100,
        ngrams: int = 2,
        buckets: int = 262_144,
        char_ngrams: list[int] | None = None,
        max_char_ngrams: int = 24,
        dropout: float = 0.0,
        embeddings: WordVectorsOptions | None = None,
        feature_dim: int = 0,
    ) -> None:
        super().__init__()
        if ngrams < 1 or buckets < 1 or dim < 1:
            raise ConfigError(f"ngram needs ngrams, buckets and dim >= 1, got {ngrams}, {buckets}, {dim}")
        if char_ngrams is not None and not (len(char_ngrams) == 2 and 1 <= char_ngrams[0] <= char_ngrams[1]):
            raise ConfigError(f"char_ngrams is [smallest, largest] with 1 <= smallest <= largest, got {char_ngrams}")
        self.vocab_size = vocab_size
        self.ngrams, self.buckets, self.char_ngrams = ngrams, buckets, char_ngrams
        self.feature_dim = feature_dim
        self.output_dim = dim + feature_dim
        self.token_embedding = token_embedding(vocab_size, dim, embeddings)
        self.ngram_embedding = nn.Embedding(buckets, dim) if ngrams > 1 or char_ngrams else None
        with torch.no_grad():  # fastText's start: small vectors, so the first means are small too
            for table in (self.token_embedding, self.ngram_embedding):
                if table is not None:
                    table.weight.uniform_(-1 / dim, 1 / dim)
            self.token_embedding.weight[self.token_embedding.padding_idx].zero_()
        width = max_char_ngrams if char_ngrams else 0
        #: each piece's character n-gram buckets, -1 where it has fewer (filled by :meth:`initialize`)
        self.register_buffer("piece_ngrams", torch.full((vocab_size, width), -1, dtype=torch.long))
        self.dropout = nn.Dropout(dropout)

    def initialize(self, tokenizer: Tokenizer) -> None:
        """Hash every piece's character n-grams (special pieces get none), and copy in word vectors."""
        super().initialize(tokenizer)
        if not self.char_ngrams:
            return
        special = set(tokenizer.special_ids())
        for piece_id, piece in enumerate(tokenizer.vocabulary()[: self.vocab_size]):
            if piece_id in special:
                continue
            grams = piece_char_ngrams(piece, *self.char_ngrams)[: self.piece_ngrams.size(1)]
            row = [string_bucket(gram, self.buckets) for gram in grams]
            self.piece_ngrams[piece_id, : len(row)] = torch.tensor(row, dtype=torch.long)

    def bags(self, tokens: Tensor, mask: Tensor) -> tuple[Tensor, Tensor] | None:
        """Each position's rows of ``ngram_embedding`` ``(B, T, K)`` and their weights (1 for an n-gram that exists,
        0 for a slot without one), or None for an encoder of tokens alone."""
        ids, weights = [], []
        for order in range(2, self.ngrams + 1):
            buckets, valid = token_ngram_buckets(tokens, mask, order, self.buckets)
            ids.append(buckets[..., None])
            weights.append(valid[..., None])
        if self.char_ngrams:
            grams = self.piece_ngrams[tokens]  # (B, T, K)
            ids.append(grams.clamp_min(0))
            weights.append(grams >= 0)
        if not ids:
            return None
        if len(ids) == 1:
            return ids[0], weights[0].to(self.token_embedding.weight.dtype)
        return torch.cat(ids, dim=2), torch.cat(weights, dim=2).to(self.token_embedding.weight.dtype)

    def forward(self, tokens: Tensor, mask: Tensor, features: Tensor | None = None) -> Tensor:
        """The mean of each position's bag of n-gram embeddings ``(B, T, dim)`` (then the input ``features`` of an
        encoder built with ``feature_dim``)."""
        total = self.token_embedding(tokens)  # (B, T, D)
        bags = self.bags(tokens, mask)
        if bags is None:
            return self.beside_features(self.dropout(total), features)
        ids, weights = bags
        if ids.size(2) == 1:  # one row per position (bigrams alone): a plain lookup
            summed = self.ngram_embedding(ids[..., 0]) * weights  # type: ignore[misc]
        elif torch.jit.is_tracing() or torch.compiler.is_compiling():  # exports gather, then sum
            summed = (self.ngram_embedding(ids) * weights[..., None]).sum(2)  # type: ignore[misc]
        else:  # one fused weighted-sum lookup, without the (B, T, K, D) gather
            flat_ids, flat_weights = ids.flatten(0, 1), weights.flatten(0, 1)
            summed = F.embedding_bag(flat_ids, self.ngram_embedding.weight, per_sample_weights=flat_weights,  # type: ignore[union-attr]
                                     mode="sum").view_as(total)  # fmt: skip
        states = (total + summed) / (1 + weights.sum(2, keepdim=True))
        return self.beside_features(self.dropout(states), features)
