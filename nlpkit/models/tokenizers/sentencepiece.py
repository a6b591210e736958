"""The SentencePiece backend of :class:`nlpkit.Tokenizer`: models trained on the data (the default), with fixed
special ids."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable, Sequence

import sentencepiece as spm

from nlpkit.models.tokenizers.base import (
    MASK,
    TRAINING_LINE_CHARS,
    UNK,
    Tokenizer,
    TokenizerOptions,
    _check_max_length,
    training_lines,
)
from nlpkit.plugin.errors import CheckpointError, ConfigError

#: the special ids of every SentencePiece model nlpkit trains (a Hugging Face tokenizer has its own)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

_ALPHABET_TOO_LARGE = re.compile(r"Vocabulary size is smaller than required_chars\. \d+ vs (\d+)")


def _train_sentencepiece(sentences: list[str], vocab_size: int, options: TokenizerOptions) -> bytes:
    """One SentencePiece training run with nlpkit's special ids; the serialized model."""
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=buffer,
        vocab_size=vocab_size,
        model_type=options.model_type,
        character_coverage=options.character_coverage,
        byte_fallback=options.byte_fallback,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        user_defined_symbols=[MASK, *options.special_tokens],
        normalization_rule_name="nmt_nfkc_cf" if options.lowercase else "nmt_nfkc",
        hard_vocab_limit=False,
        train_extremely_large_corpus=False,
        num_threads=min(4, os.cpu_count() or 1),
        max_sentence_length=4 * TRAINING_LINE_CHARS,
        minloglevel=2,
    )
    return buffer.getvalue()


class SentencePieceTokenizer(Tokenizer):
    """A SentencePiece model with fixed special ids: pad 0, unk 1, bos 2, eos 3, then ``<mask>`` and extras."""

    filename = "tokenizer.model"
    model_types = ("unigram", "bpe")
    pad_id, unk_id, bos_id, eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID

    def __init__(self, model: bytes, max_length: int = 512) -> None:
        if not isinstance(model, (bytes, bytearray)):
            raise CheckpointError(f"a SentencePiece model is bytes, not {type(model).__name__}")
        self.max_length = _check_max_length(max_length)
        self._model = bytes(model)
        self._sp = spm.SentencePieceProcessor()
        try:
            self._sp.LoadFromSerializedProto(self._model)
        except Exception as error:
            raise CheckpointError(f"invalid SentencePiece model ({len(self._model)} bytes)") from error
        special_ids = (self._sp.pad_id(), self._sp.unk_id(), self._sp.bos_id(), self._sp.eos_id())
        if special_ids != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
            raise CheckpointError(
                "SentencePiece model lacks nlpkit's special ids (pad 0, unk 1, bos 2, eos 3; "
                f"it has pad {special_ids[0]}, unk {special_ids[1]}, bos {special_ids[2]}, eos {special_ids[3]})"
            )

    @classmethod
    def reads(cls, data: bytes) -> bool:
        """Anything but JSON: a serialized SentencePiece model (its constructor checks it)."""
        return not data.lstrip().startswith(b"{")

    @classmethod
    def learn(cls, texts: Iterable[str], options: TokenizerOptions) -> SentencePieceTokenizer:
        """Train a SentencePiece model on ``texts`` (see :meth:`Tokenizer.train`)."""
        sentences = list(training_lines(texts))
        if not sentences:
            raise ConfigError("cannot train a tokenizer: the training text is empty")
        try:
            try:
                model = _train_sentencepiece(sentences, options.vocab_size, options)
            except RuntimeError as error:
                alphabet = _ALPHABET_TOO_LARGE.search(str(error))
                if alphabet is None:
                    raise
                model = _train_sentencepiece(sentences, int(alphabet.group(1)), options)  # a piece per character
        except RuntimeError as error:
            raise ConfigError(f"SentencePiece training failed: {str(error).strip()}") from error
        return cls(model, max_length=options.max_length)

    def to_bytes(self) -> bytes:
        """The serialized SentencePiece model."""
        return self._model

    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included."""
        return self._sp.get_piece_size()

    @property
    def mask_id(self) -> int:
        """Id of ``<mask>`` (every model nlpkit trains has one)."""
        return self.token_id(MASK)

    def token_id(self, piece: str) -> int:
        """The id of a special token or piece; an unknown one is an error, not ``<unk>``."""
        token_id = self._sp.piece_to_id(piece)
        if token_id == UNK_ID and piece != UNK:
            raise ConfigError(f"token '{piece}' is not in the tokenizer's vocabulary")
        return token_id

    def encode_plain(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's ids, in one batched SentencePiece call (it runs on every core)."""
        return self._sp.encode(list(texts), out_type=int)

    def encode_words(self, words: Sequence[str]) -> list[list[int]]:
        """Each word encoded alone: SentencePiece marks every word's start (``▁``) as it does in running text."""
        return self.encode_plain(words)

    def special_ids(self) -> list[int]:
        """``<pad>``, ``<s>``, ``</s>``, then ``<mask>`` and the extra special tokens, which training puts right
        after them (user-defined symbols, scored 0)."""
        ids = [i for i in range(self.vocab_size) if self._sp.is_control(i)]
        for i in range(EOS_ID + 1, self.vocab_size):
            piece = self._sp.id_to_piece(i)
            if self._sp.is_byte(i) or self._sp.get_score(i) != 0 or not (piece.startswith("<") and piece.endswith(">")):
                break
            ids.append(i)
        return ids

    def vocabulary(self) -> list[str]:
        """Every piece, in id order."""
        return [self._sp.id_to_piece(i) for i in range(self.vocab_size)]

    def word_starts(self) -> list[bool]:
        """A piece that starts with ``▁`` begins a word."""
        return [piece.startswith("▁") for piece in self.vocabulary()]

    def pieces(self, text: str) -> list[str]:
        """The subword pieces of one text."""
        return self._sp.encode(text, out_type=str)

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        """Text for each id sequence; padding, ``<s>`` and ``</s>`` are dropped (``<unk>`` shows as ``⁇``)."""
        return [self._sp.decode([i for i in seq if i not in (PAD_ID, BOS_ID, EOS_ID)]) for seq in ids]
