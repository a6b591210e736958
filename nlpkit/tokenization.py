"""SentencePiece tokenization: train from text, encode and decode batches, travel inside checkpoints as bytes."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import sentencepiece as spm

from nlpkit.errors import CheckpointError, ConfigError, DataError
from nlpkit.io import atomic_write_bytes

PAD, UNK, BOS, EOS, MASK = "<pad>", "<unk>", "<s>", "</s>", "<mask>"
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3


@dataclass
class TokenizerOptions:
    """How to get a tokenizer: load ``path`` if given, else train one on the training split."""

    path: str | None = None
    vocab_size: int = 8000
    model_type: Literal["unigram", "bpe"] = "unigram"
    character_coverage: float = 1.0
    byte_fallback: bool = False
    special_tokens: list[str] = field(default_factory=list)
    max_length: int = 512


#: SentencePiece learns from lines of at most this many characters (it skips longer "sentences" than its
#: ``max_sentence_length`` bytes, set to four bytes a character): whole documents are cut to fit
TRAINING_LINE_CHARS = 4096
_ALPHABET_TOO_LARGE = re.compile(r"Vocabulary size is smaller than required_chars\. \d+ vs (\d+)")


def _train_model(
    sentences: list[str],
    vocab_size: int,
    model_type: str,
    character_coverage: float,
    byte_fallback: bool,
    special_tokens: Sequence[str],
) -> bytes:
    """One SentencePiece training run with nlpkit's special ids; the serialized model."""
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=buffer,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=character_coverage,
        byte_fallback=byte_fallback,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        user_defined_symbols=[MASK, *special_tokens],
        hard_vocab_limit=False,
        train_extremely_large_corpus=False,
        num_threads=min(4, os.cpu_count() or 1),
        max_sentence_length=4 * TRAINING_LINE_CHARS,
        minloglevel=2,
    )
    return buffer.getvalue()


def _training_lines(texts: Iterable[str]) -> Iterator[str]:
    """The non-blank lines of ``texts``, each cut into pieces of at most ``TRAINING_LINE_CHARS`` characters."""
    for text in texts:
        for line in text.splitlines():
            if line.strip():
                yield from (line[i : i + TRAINING_LINE_CHARS] for i in range(0, len(line), TRAINING_LINE_CHARS))


class Tokenizer:
    """A SentencePiece model with fixed special ids: pad 0, unk 1, bos 2, eos 3, then ``<mask>`` and extras."""

    def __init__(self, model: bytes, max_length: int = 512) -> None:
        if not isinstance(model, (bytes, bytearray)):  # bytes(n) of an int from a hostile checkpoint would allocate n
            raise CheckpointError(f"a SentencePiece model is bytes, not {type(model).__name__}")
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ConfigError(f"max_length must be a positive number of tokens, not {max_length!r}")
        self._model = bytes(model)
        self.max_length = max_length
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
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int = 8000,
        model_type: Literal["unigram", "bpe"] = "unigram",
        character_coverage: float = 1.0,
        byte_fallback: bool = False,
        special_tokens: Sequence[str] = (),
        max_length: int = 512,
    ) -> Tokenizer:
        """Train on ``texts``; the vocabulary shrinks below ``vocab_size`` if the text is too small for it, and grows
        to hold every character kept by ``character_coverage`` (thousands, in Chinese or Japanese) if it is larger."""
        sentences = list(_training_lines(texts))
        if not sentences:
            raise ConfigError("cannot train a tokenizer: the training text is empty")
        options = (model_type, character_coverage, byte_fallback, special_tokens)
        try:
            try:
                model = _train_model(sentences, vocab_size, *options)
            except RuntimeError as error:
                alphabet = _ALPHABET_TOO_LARGE.search(str(error))
                if alphabet is None:
                    raise
                model = _train_model(sentences, int(alphabet.group(1)), *options)  # a piece for every character
        except RuntimeError as error:
            raise ConfigError(f"SentencePiece training failed: {str(error).strip()}") from error
        return cls(model, max_length=max_length)

    @classmethod
    def load(cls, path: str | os.PathLike[str], max_length: int = 512) -> Tokenizer:
        """Load a ``.model`` file written by SentencePiece or by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise DataError(path, "tokenizer model file not found")
        try:
            return cls(path.read_bytes(), max_length=max_length)
        except CheckpointError as error:
            raise DataError(path, f"not a usable SentencePiece model: {error}") from error

    @classmethod
    def from_options(cls, options: TokenizerOptions, texts: Iterable[str]) -> Tokenizer:
        """Load ``options.path`` if set, else train on ``texts`` with the options."""
        if options.path:
            return cls.load(options.path, max_length=options.max_length)
        return cls.train(
            texts,
            vocab_size=options.vocab_size,
            model_type=options.model_type,
            character_coverage=options.character_coverage,
            byte_fallback=options.byte_fallback,
            special_tokens=options.special_tokens,
            max_length=options.max_length,
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model atomically (temporary file, then rename)."""
        atomic_write_bytes(path, self._model)

    def to_bytes(self) -> bytes:
        """The serialized SentencePiece model, as stored in checkpoints."""
        return self._model

    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included."""
        return self._sp.get_piece_size()

    pad_id, unk_id, bos_id, eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID

    @property
    def mask_id(self) -> int:
        """Id of ``<mask>``."""
        return self._sp.piece_to_id(MASK)

    def token_id(self, piece: str) -> int:
        """The id of a special token or piece; an unknown one is an error, not ``<unk>``."""
        token_id = self._sp.piece_to_id(piece)
        if token_id == UNK_ID and piece != UNK:
            raise ConfigError(f"token '{piece}' is not in the tokenizer's vocabulary")
        return token_id

    def encode(
        self,
        texts: Sequence[str],
        add_bos: bool = False,
        add_eos: bool = False,
        max_length: int | None = None,
    ) -> list[list[int]]:
        """Token ids for each text, truncated to ``max_length`` (default: the tokenizer's) keeping bos/eos."""
        limit = self.max_length if max_length is None else max_length
        encoded = self._sp.encode(list(texts), out_type=int)
        prefix, suffix = [BOS_ID] if add_bos else [], [EOS_ID] if add_eos else []
        room = max(limit - len(prefix) - len(suffix), 0)
        return [prefix + ids[:room] + suffix for ids in encoded]

    def special_ids(self) -> list[int]:
        """Ids of the symbols that are never text: ``<pad>``, ``<s>``, ``</s>``, then ``<mask>`` and the extra special
        tokens, which training puts right after them (user-defined symbols, scored 0)."""
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

    def pieces(self, text: str) -> list[str]:
        """The subword pieces of one text."""
        return self._sp.encode(text, out_type=str)

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        """Text for each id sequence; padding, ``<s>`` and ``</s>`` are dropped (``<unk>`` shows as ``⁇``)."""
        return [self._sp.decode([i for i in seq if i not in (PAD_ID, BOS_ID, EOS_ID)]) for seq in ids]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and self._model == other._model

    def __hash__(self) -> int:
        return hash(self._model)

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size}, max_length={self.max_length})"
