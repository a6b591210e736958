"""Pretrained word vectors (GloVe, word2vec, or a NumPy matrix with its word list) for word-level inputs: read with
one line naming the file and line of a malformed row, and copied into a token embedding by its vocabulary.

Formats: ``glove`` (a text file, a word and its numbers a line), ``word2vec`` (the same after a ``count dim``
header line) and ``npy`` (a float matrix, its words one a line in ``words`` or in ``words.txt`` beside it). By
default the format follows the extension: ``.npy``, ``.vec`` (word2vec), anything else glove.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from nlpkit.plugin.errors import ConfigError, DataError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from nlpkit.models.tokenizers import Tokenizer

VectorFormat = Literal["glove", "word2vec", "npy"]
#: the marks subword tokenizers put on pieces; a piece is looked up without them
PIECE_MARKS = ("▁", "Ġ", "##")


@dataclass
class WordVectorsOptions:
    """Where word vectors come from and how a model uses them.

    :param path: the vectors file
    :param format: ``glove``, ``word2vec`` or ``npy`` (default: by the file's extension)
    :param words: an ``npy`` matrix's words, one a line in row order (default: ``words.txt`` beside it)
    :param freeze: keep the file's vectors as they are (words the file lacks still learn theirs)
    """

    path: str
    format: VectorFormat | None = None
    words: str | None = None
    freeze: bool = True

    @classmethod
    def of(cls, value: WordVectorsOptions | dict[str, Any] | None) -> WordVectorsOptions | None:
        """The options from a config (a dict, as a checkpoint's hyperparameters hold them) or as given."""
        if value is None or isinstance(value, WordVectorsOptions):
            return value
        return cls(**value)


@dataclass
class WordVectors:
    """Words and their vectors: ``vectors[i]`` is the vector of ``words[i]``."""

    words: list[str]
    vectors: np.ndarray  # (len(words), dim) float32

    @property
    def dim(self) -> int:
        """Numbers per vector."""
        return int(self.vectors.shape[1])

    @classmethod
    def read(cls, options: WordVectorsOptions) -> WordVectors:
        """Read the file ``options`` name; a malformed row is a DataError naming the file and line."""
        path = Path(options.path).expanduser()
        if not path.is_file():
            raise DataError(path, "word vectors file not found")
        kind = options.format or {".npy": "npy", ".vec": "word2vec"}.get(path.suffix, "glove")
        if kind == "npy":
            words = Path(options.words).expanduser() if options.words else path.with_name("words.txt")
            return cls._read_npy(path, words)
        if kind not in ("glove", "word2vec"):
            raise ConfigError(f"word vectors format must be glove, word2vec or npy, not {kind!r}")
        return cls._read_text(path, header=kind == "word2vec")

    @classmethod
    def _read_npy(cls, path: Path, words_path: Path) -> WordVectors:
        try:
            vectors = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise DataError(path, f"not a NumPy .npy matrix ({error})") from error
        if vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.floating):
            raise DataError(path, f"expected a 2-D float matrix, found shape {vectors.shape} of {vectors.dtype}")
        if not words_path.is_file():
            raise DataError(words_path, "word list of the .npy vectors not found (one word a line; set words)")
        words = words_path.read_text(encoding="utf-8").split("\n")
        if words and words[-1] == "":
            words.pop()
        if len(words) != len(vectors):
            raise DataError(words_path, f"expected {len(vectors)} words (the matrix's rows), found {len(words)}")
        return cls(words, vectors.astype(np.float32, copy=False))

    @classmethod
    def _read_text(cls, path: Path, header: bool) -> WordVectors:
        """A word and its numbers a line (after a ``count dim`` line for word2vec); the numbers are the last
        ``dim`` fields, so a word may hold spaces (GloVe 840B's do)."""
        words: list[str] = []
        rows: list[np.ndarray] = []
        dim: int | None = None
        with path.open("rb") as lines:
            for number, raw in enumerate(lines, start=1):
                try:
                    line = raw.decode("utf-8").rstrip("\r\n").rstrip(" ")
                except UnicodeDecodeError as error:
                    raise DataError(path, f"not UTF-8 text ({error.reason})", line=number) from error
                fields = line.split(" ")
                if header and number == 1:
                    if len(fields) != 2 or not all(field.isdigit() for field in fields):
                        raise DataError(path, "expected a word2vec header 'count dim'", line=1)
                    dim = int(fields[1])
                    continue
                if not line.strip():
                    continue
                dim = dim or len(fields) - 1
                word = " ".join(fields[:-dim]) if len(fields) > dim else ""
                try:
                    row = np.array(fields[-dim:], dtype=np.float32) if word else None
                except ValueError:
                    row = None
                if row is None:
                    raise DataError(path, f"expected a word and {dim} numbers separated by spaces", line=number)
                words.append(word)
                rows.append(row)
        if not rows:
            raise DataError(path, "holds no word vectors")
        return cls(words, np.stack(rows))

    def index(self) -> dict[str, int]:
        """Word -> row; a word listed twice keeps its first row."""
        rows: dict[str, int] = {}
        for row, word in enumerate(self.words):
            rows.setdefault(word, row)
        return rows


def vector_row(index: dict[str, int], word: str) -> int | None:
    """The row of ``word``: as it is, else lower-cased (GloVe's words are), else without a subword mark."""
    for candidate in (word, word.lower()):
        if candidate in index:
            return index[candidate]
    for mark in PIECE_MARKS:
        if word.startswith(mark) and len(word) > len(mark):
            return vector_row(index, word[len(mark) :])
    return None


def copy_into(embedding: nn.Embedding, tokenizer: Tokenizer, options: WordVectorsOptions) -> torch.Tensor:
    """Copy the vectors of every piece of ``tokenizer`` the file has into ``embedding``'s rows; the mask of the
    rows copied ``(vocab_size,)``, special tokens never among them."""
    import torch

    vectors = WordVectors.read(options)
    if vectors.dim != embedding.embedding_dim:
        raise ConfigError(
            f"{options.path}: the word vectors have {vectors.dim} dimensions, the token embedding "
            f"{embedding.embedding_dim}: set the encoder's embedding_dim to {vectors.dim}"
        )
    index = vectors.index()
    special = set(tokenizer.special_ids())
    ids, rows = [], []
    for token_id, piece in enumerate(tokenizer.vocabulary()):
        row = None if token_id in special else vector_row(index, piece)
        if row is not None:
            ids.append(token_id)
            rows.append(row)
    copied = torch.zeros(embedding.num_embeddings, dtype=torch.bool)
    copied[ids] = True
    with torch.no_grad():
        embedding.weight[ids] = torch.from_numpy(vectors.vectors[rows]).to(embedding.weight)
    return copied
