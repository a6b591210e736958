"""Tokenizers: one small interface, two backends beside it. SentencePiece models trained on the data (the
default), and Hugging Face ``tokenizer.json`` files (WordPiece, BPE, Unigram, WordLevel) read with the
``tokenizers`` library, which also builds word-level vocabularies trained on the data. Either travels inside
checkpoints and exports as bytes; the special tokens (padding, unknown, start and end of a sequence, mask) come
from the tokenizer itself.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from nlpkit.plugin.errors import CheckpointError, ConfigError, DataError
from nlpkit.plugin.files import atomic_write_bytes

PAD, UNK, BOS, EOS, MASK = "<pad>", "<unk>", "<s>", "</s>", "<mask>"

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
    #: the backends (each subclass that implements :meth:`reads`), registered as the package imports them
    backends: ClassVar[list[type[Tokenizer]]] = []
    #: the ``model_type`` values a backend trains
    model_types: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "reads" in cls.__dict__:
            Tokenizer.backends.append(cls)

    @classmethod
    def reads(cls, data: bytes) -> bool:
        """Whether ``data`` is this backend's serialization (a backend overrides this)."""
        return False

    @staticmethod
    def from_bytes(data: bytes, max_length: int = 512) -> Tokenizer:
        """The tokenizer serialized by :meth:`to_bytes` (or a file's contents): a Hugging Face ``tokenizer.json``
        when the bytes are JSON, else a SentencePiece model."""
        if not isinstance(data, (bytes, bytearray)):  # bytes(n) of an int from a hostile checkpoint would allocate n
            raise CheckpointError(f"a tokenizer is bytes, not {type(data).__name__}")
        backend = next(backend for backend in Tokenizer.backends if backend.reads(bytes(data[:64])))
        return backend(bytes(data), max_length)  # type: ignore[call-arg]

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
        options = TokenizerOptions(
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            byte_fallback=byte_fallback,
            special_tokens=list(special_tokens),
            max_length=max_length,
            lowercase=lowercase,
        )
        return Tokenizer.from_options(options, texts)

    @classmethod
    def learn(cls, texts: Iterable[str], options: TokenizerOptions) -> Tokenizer:
        """The backend's training on ``texts`` with ``options`` (a backend that trains overrides this)."""
        raise NotImplementedError

    @staticmethod
    def from_options(options: TokenizerOptions, texts: Iterable[str]) -> Tokenizer:
        """Load ``options.path`` if set, else train on ``texts`` with the backend of ``options.model_type``."""
        if options.path:
            return Tokenizer.load(options.path, max_length=options.max_length)
        backend = next(backend for backend in Tokenizer.backends if options.model_type in backend.model_types)
        return backend.learn(texts, options)

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


def training_lines(texts: Iterable[str]) -> Iterator[str]:
    """The non-blank lines of ``texts``, each cut into pieces of at most ``TRAINING_LINE_CHARS`` characters."""
    for text in texts:
        for line in text.splitlines():
            if line.strip():
                yield from (line[i : i + TRAINING_LINE_CHARS] for i in range(0, len(line), TRAINING_LINE_CHARS))
