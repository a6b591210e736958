"""Tokenizers: one small interface, two backends. SentencePiece models trained on the data (the default), and
Hugging Face ``tokenizer.json`` files (WordPiece, BPE, Unigram, WordLevel) read with the ``tokenizers`` library,
which also builds word-level vocabularies trained on the data. Either travels inside checkpoints and exports as
bytes; the special tokens (padding, unknown, start and end of a sequence, mask) come from the tokenizer itself.
"""

from __future__ import annotations

import io
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import sentencepiece as spm

from nlpkit.errors import CheckpointError, ConfigError, DataError
from nlpkit.io import atomic_write_bytes

PAD, UNK, BOS, EOS, MASK = "<pad>", "<unk>", "<s>", "</s>", "<mask>"
#: the special ids of every SentencePiece model nlpkit trains (a Hugging Face tokenizer has its own)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

ModelType = Literal["unigram", "bpe", "word"]


@dataclass
class TokenizerOptions:
    """How to get a tokenizer: load ``path`` if given, else train one on the training split.

    :param path: a SentencePiece ``.model``, a Hugging Face ``tokenizer.json``, or a folder holding one
    :param vocab_size: pieces (or words) to learn; small data learns fewer
    :param model_type: SentencePiece ``unigram`` or ``bpe``, or ``word``: one id per word (a Hugging Face
        word-level model: words split at spaces and punctuation, each CJK ideograph a word)
    :param character_coverage: SentencePiece: the fraction of characters the pieces must cover
    :param byte_fallback: SentencePiece: spell unknown characters as bytes instead of ``<unk>``
    :param special_tokens: extra symbols that are always one piece (``<lang:de>``)
    :param max_length: inputs are cut to this many ids
    :param lowercase: fold case before splitting (both backends)
    """

    path: str | None = None
    vocab_size: int = 8000
    model_type: ModelType = "unigram"
    character_coverage: float = 1.0
    byte_fallback: bool = False
    special_tokens: list[str] = field(default_factory=list)
    max_length: int = 512
    lowercase: bool = False


def _check_max_length(max_length: object) -> int:
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise ConfigError(f"max_length must be a positive number of tokens, not {max_length!r}")
    return max_length


class Tokenizer(ABC):
    """Text to ids and back, for every task: what the model reads and how it travels with the weights.

    ``bos_id`` starts an encoder's input and ``eos_id`` ends it (``<s>``/``</s>``, or ``[CLS]``/``[SEP]``);
    :meth:`encode_inputs` writes a text the way the tokenizer's model expects to read it. Build one with
    :meth:`train`, :meth:`load` or :meth:`from_bytes`.
    """

    #: the file name an export writes the tokenizer to
    filename: ClassVar[str]
    max_length: int
    pad_id: int
    unk_id: int
    bos_id: int
    eos_id: int
    #: whether :meth:`encode_inputs` ends a text with ``eos_id`` (the tokenizer's own template says so)
    closes_inputs: bool = False

    # -- making one --------------------------------------------------------------------------------------
    @staticmethod
    def from_bytes(data: bytes, max_length: int = 512) -> Tokenizer:
        """The tokenizer serialized by :meth:`to_bytes` (or a file's contents): a Hugging Face ``tokenizer.json``
        when the bytes are JSON, else a SentencePiece model."""
        if not isinstance(data, (bytes, bytearray)):  # bytes(n) of an int from a hostile checkpoint would allocate n
            raise CheckpointError(f"a tokenizer is bytes, not {type(data).__name__}")
        if bytes(data[:64]).lstrip().startswith(b"{"):
            from nlpkit.hf_tokenization import HuggingFaceTokenizer

            return HuggingFaceTokenizer(bytes(data), max_length)
        return SentencePieceTokenizer(bytes(data), max_length)

    @staticmethod
    def load(path: str | os.PathLike[str], max_length: int = 512) -> Tokenizer:
        """Load a SentencePiece ``.model``, a Hugging Face ``tokenizer.json``, or the one in a model folder."""
        path = Path(path).expanduser()
        if path.is_dir():
            path = path / "tokenizer.json"
        if not path.is_file():
            raise DataError(path, "tokenizer file not found (a SentencePiece .model or a tokenizer.json)")
        try:
            return Tokenizer.from_bytes(path.read_bytes(), max_length=max_length)
        except CheckpointError as error:
            raise DataError(path, f"not a usable tokenizer: {error}") from error

    @staticmethod
    def train(
        texts: Iterable[str],
        vocab_size: int = 8000,
        model_type: ModelType = "unigram",
        character_coverage: float = 1.0,
        byte_fallback: bool = False,
        special_tokens: Sequence[str] = (),
        max_length: int = 512,
        lowercase: bool = False,
    ) -> Tokenizer:
        """Train on ``texts``: SentencePiece (``unigram``, ``bpe``) or a word vocabulary (``word``). The vocabulary
        shrinks below ``vocab_size`` if the text is too small for it; a SentencePiece model grows to hold every
        character kept by ``character_coverage`` (thousands, in Chinese or Japanese)."""
        if model_type == "word":
            from nlpkit.hf_tokenization import train_word_level

            return train_word_level(texts, vocab_size, special_tokens, max_length, lowercase)
        return SentencePieceTokenizer.train(
            texts, vocab_size, model_type, character_coverage, byte_fallback, special_tokens, max_length, lowercase
        )

    @staticmethod
    def from_options(options: TokenizerOptions, texts: Iterable[str]) -> Tokenizer:
        """Load ``options.path`` if set, else train on ``texts`` with the options."""
        if options.path:
            return Tokenizer.load(options.path, max_length=options.max_length)
        return Tokenizer.train(
            texts,
            vocab_size=options.vocab_size,
            model_type=options.model_type,
            character_coverage=options.character_coverage,
            byte_fallback=options.byte_fallback,
            special_tokens=options.special_tokens,
            max_length=options.max_length,
            lowercase=options.lowercase,
        )

    def with_max_length(self, max_length: int) -> Tokenizer:
        """The same tokenizer, cutting inputs at ``max_length`` ids."""
        return type(self)(self.to_bytes(), max_length)  # type: ignore[call-arg]

    # -- what a backend implements ---------------------------------------------------------------------------
    @abstractmethod
    def to_bytes(self) -> bytes:
        """The serialized tokenizer, as stored in checkpoints."""

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of ids, special tokens included."""

    @property
    @abstractmethod
    def mask_id(self) -> int:
        """Id of the mask token (``<mask>``, ``[MASK]``); a ConfigError when the tokenizer has none."""

    @abstractmethod
    def token_id(self, piece: str) -> int:
        """The id of a special token or piece; an unknown one is an error, not the unknown id."""

    @abstractmethod
    def encode_plain(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's ids without special tokens and without truncation."""

    @abstractmethod
    def encode_words(self, words: Sequence[str]) -> list[list[int]]:
        """The ids of each word of one pre-split text, as they are in context (a word may have none)."""

    @abstractmethod
    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        """Text for each id sequence; padding and the sequence start and end tokens are dropped."""

    @abstractmethod
    def special_ids(self) -> list[int]:
        """Ids of the symbols that are never text (padding, start, end, mask and the extra special tokens)."""

    @abstractmethod
    def vocabulary(self) -> list[str]:
        """Every piece, in id order."""

    @abstractmethod
    def word_starts(self) -> list[bool]:
        """For every id, whether its piece begins a word (whole-word masking groups the rest with it)."""

    @abstractmethod
    def pieces(self, text: str) -> list[str]:
        """The subword pieces of one text."""

    # -- shared behaviour --------------------------------------------------------------------------------------
    def encode(
        self,
        texts: Sequence[str],
        add_bos: bool = False,
        add_eos: bool = False,
        max_length: int | None = None,
    ) -> list[list[int]]:
        """Token ids for each text, truncated to ``max_length`` (default: the tokenizer's) keeping bos/eos."""
        limit = self.max_length if max_length is None else max_length
        prefix, suffix = [self.bos_id] if add_bos else [], [self.eos_id] if add_eos else []
        room = max(limit - len(prefix) - len(suffix), 0)
        return [prefix + ids[:room] + suffix for ids in self.encode_plain(list(texts))]

    def encode_inputs(self, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
        """Each text as an encoder reads it: ``bos`` first, and ``eos`` last when the tokenizer's template closes
        a sequence (``[CLS] text [SEP]`` for BERT; ``<s> text`` for nlpkit's SentencePiece models)."""
        return self.encode(texts, add_bos=True, add_eos=self.closes_inputs, max_length=max_length)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the tokenizer atomically (temporary file, then rename)."""
        atomic_write_bytes(path, self.to_bytes())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and type(other) is type(self) and self.to_bytes() == other.to_bytes()

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size}, max_length={self.max_length})"


#: SentencePiece learns from lines of at most this many characters (it skips longer "sentences" than its
#: ``max_sentence_length`` bytes, set to four bytes a character): whole documents are cut to fit
TRAINING_LINE_CHARS = 4096
_ALPHABET_TOO_LARGE = re.compile(r"Vocabulary size is smaller than required_chars\. \d+ vs (\d+)")


def _train_sentencepiece(
    sentences: list[str],
    vocab_size: int,
    model_type: str,
    character_coverage: float,
    byte_fallback: bool,
    special_tokens: Sequence[str],
    lowercase: bool,
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
        normalization_rule_name="nmt_nfkc_cf" if lowercase else "nmt_nfkc",
        hard_vocab_limit=False,
        train_extremely_large_corpus=False,
        num_threads=min(4, os.cpu_count() or 1),
        max_sentence_length=4 * TRAINING_LINE_CHARS,
        minloglevel=2,
    )
    return buffer.getvalue()


def training_lines(texts: Iterable[str]) -> Iterator[str]:
    """The non-blank lines of ``texts``, each cut into pieces of at most ``TRAINING_LINE_CHARS`` characters."""
    for text in texts:
        for line in text.splitlines():
            if line.strip():
                yield from (line[i : i + TRAINING_LINE_CHARS] for i in range(0, len(line), TRAINING_LINE_CHARS))


class SentencePieceTokenizer(Tokenizer):
    """A SentencePiece model with fixed special ids: pad 0, unk 1, bos 2, eos 3, then ``<mask>`` and extras."""

    filename = "tokenizer.model"
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
    def train(  # type: ignore[override]
        cls,
        texts: Iterable[str],
        vocab_size: int = 8000,
        model_type: Literal["unigram", "bpe"] = "unigram",
        character_coverage: float = 1.0,
        byte_fallback: bool = False,
        special_tokens: Sequence[str] = (),
        max_length: int = 512,
        lowercase: bool = False,
    ) -> SentencePieceTokenizer:
        """Train a SentencePiece model on ``texts`` (see :meth:`Tokenizer.train`)."""
        sentences = list(training_lines(texts))
        if not sentences:
            raise ConfigError("cannot train a tokenizer: the training text is empty")
        options = (model_type, character_coverage, byte_fallback, special_tokens, lowercase)
        try:
            try:
                model = _train_sentencepiece(sentences, vocab_size, *options)
            except RuntimeError as error:
                alphabet = _ALPHABET_TOO_LARGE.search(str(error))
                if alphabet is None:
                    raise
                model = _train_sentencepiece(sentences, int(alphabet.group(1)), *options)  # a piece per character
        except RuntimeError as error:
            raise ConfigError(f"SentencePiece training failed: {str(error).strip()}") from error
        return cls(model, max_length=max_length)

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
