"""The Hugging Face backend of :class:`nlpkit.Tokenizer`: a ``tokenizer.json`` (WordPiece, BPE, Unigram or
WordLevel) run by the ``tokenizers`` library (``pip install 'nlpkit[pretrained]'``), and word-level vocabularies
trained on the data.

Special tokens are the tokenizer's own: the start and end of a sequence come from its post-processor's template
(``[CLS] ... [SEP]``, ``<s> ... </s>``), padding, unknown and mask from its special tokens by their usual names.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable, Sequence
from typing import Any

from nlpkit.models.tokenizers.base import (
    BOS,
    EOS,
    MASK,
    PAD,
    UNK,
    Tokenizer,
    TokenizerOptions,
    _check_max_length,
    training_lines,
)
from nlpkit.plugin.errors import CheckpointError, ConfigError

#: the names each role goes by, in the order they are looked for among the special tokens
ROLE_NAMES = {
    "pad": ("[PAD]", "<pad>", "<|pad|>", "<PAD>"),
    "unk": ("[UNK]", "<unk>", "<|unk|>", "<UNK>"),
    "bos": ("[CLS]", "<s>", "<bos>", "<|startoftext|>", "<|begin_of_text|>", "<|endoftext|>"),
    "eos": ("[SEP]", "</s>", "<eos>", "<|endoftext|>", "<|end_of_text|>"),
    "mask": ("[MASK]", "<mask>", "<|mask|>"),
}


def _library() -> Any:
    try:
        import tokenizers
    except ImportError as error:
        raise ConfigError(
            "Hugging Face tokenizers and word vocabularies need the tokenizers library: "
            "pip install 'nlpkit[pretrained]'"
        ) from error
    return tokenizers


class HuggingFaceTokenizer(Tokenizer):
    """A ``tokenizer.json`` run by the ``tokenizers`` library; its padding and truncation settings are ignored
    (nlpkit pads batches and cuts to ``max_length`` itself)."""

    filename = "tokenizer.json"
    model_types = ("word",)

    def __init__(self, data: bytes, max_length: int = 512) -> None:
        self.max_length = _check_max_length(max_length)
        self._data = bytes(data)
        library = _library()
        try:
            self._spec = json.loads(self._data)
            self._tokenizer = library.Tokenizer.from_str(self._data.decode("utf-8"))
        except Exception as error:  # the library raises plain Exceptions
            raise CheckpointError(f"invalid tokenizer.json ({len(self._data)} bytes): {error}") from error
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self._special = {
            token.content: index for index, token in self._tokenizer.get_added_tokens_decoder().items() if token.special
        }
        prefix, suffix = self._template()  # e.g. [CLS] and [SEP]
        self.closes_inputs = bool(suffix)
        self.unk_id = self._role("unk", default=self._model_unk())
        self.bos_id = prefix[0] if prefix else self._role("bos", default=suffix[-1] if suffix else None)
        self.eos_id = suffix[-1] if suffix else self._role("eos", default=self.bos_id)
        self.pad_id = self._role("pad", default=self.eos_id)  # GPT-2's has none: its end token pads

    def _template(self) -> tuple[list[int], list[int]]:
        """The ids the post-processor puts before and after a text's own."""
        plain = self._tokenizer.encode("a", add_special_tokens=False).ids
        full = self._tokenizer.encode("a", add_special_tokens=True).ids
        if not plain:  # "a" is not even an unknown piece here: take the first added id as the start
            return full[:1], full[1:]
        for start in range(len(full) - len(plain) + 1):
            if full[start : start + len(plain)] == plain:
                return full[:start], full[start + len(plain) :]
        return [], []

    def _role(self, role: str, default: int | None = None) -> int:
        """The id of the first special token named as ``role`` is (see :data:`ROLE_NAMES`)."""
        for name in ROLE_NAMES[role]:
            index = self._special.get(name, self._tokenizer.token_to_id(name) if role == "unk" else None)
            if index is not None:
                return index
        if default is None:
            raise CheckpointError(f"the tokenizer has no {role} token (looked for {', '.join(ROLE_NAMES[role])})")
        return default

    def _model_unk(self) -> int:
        unk = self._spec.get("model", {}).get("unk_token")
        found = self._tokenizer.token_to_id(unk) if isinstance(unk, str) else None
        return found if found is not None else 0

    def to_bytes(self) -> bytes:
        """The ``tokenizer.json`` as it was read."""
        return self._data

    @property
    def vocab_size(self) -> int:
        """Number of ids, added tokens included."""
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    @property
    def mask_id(self) -> int:
        """Id of ``[MASK]`` or ``<mask>``."""
        try:
            return self._role("mask")
        except CheckpointError as error:
            raise ConfigError(f"{error}: masking needs one") from error

    def token_id(self, piece: str) -> int:
        """The id of a special token or piece; an unknown one is an error."""
        found = self._tokenizer.token_to_id(piece)
        if found is None:
            raise ConfigError(f"token '{piece}' is not in the tokenizer's vocabulary")
        return found

    def encode_plain(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's ids without the template's special tokens, in one batched (parallel) call."""
        return [encoding.ids for encoding in self._tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def encode_words(self, words: Sequence[str]) -> list[list[int]]:
        """The pieces of each word as they are in the text of the words joined by spaces (so a byte-level BPE marks
        every word after the first with its space, as in pretraining); a piece goes to the word it ends in, and a
        piece that is only the space before a word (a byte-level ``Ġ``) to that word."""
        pieces: list[list[int]] = [[] for _ in words]
        starts, position = [], 0
        for word in words:
            starts.append(position)
            position += len(word) + 1
        encoding = self._tokenizer.encode(" ".join(words), add_special_tokens=False)
        for index, (start, end) in zip(encoding.ids, encoding.offsets, strict=True):
            if end > start:
                pieces[bisect.bisect_right(starts, end) - 1].append(index)
        return pieces

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        """Text for each id sequence, special tokens dropped."""
        return self._tokenizer.decode_batch([list(seq) for seq in ids], skip_special_tokens=True)

    def special_ids(self) -> list[int]:
        """Every special added token (padding, unknown, start, end, mask and any others)."""
        return sorted({*self._special.values(), self.bos_id, self.eos_id, self.pad_id} - {self.unk_id})

    def vocabulary(self) -> list[str]:
        """Every piece, in id order (an id without a piece reads as the empty string)."""
        return [self._tokenizer.id_to_token(i) or "" for i in range(self.vocab_size)]

    def word_starts(self) -> list[bool]:
        """By the model: a WordPiece piece without ``##``, a piece with the word marker (``▁``, ``Ġ``) of a BPE or
        Unigram model, every word of a word-level model."""
        model = self._spec.get("model", {})
        vocabulary = self.vocabulary()
        if model.get("type") == "WordPiece":
            prefix = model.get("continuing_subword_prefix") or "##"
            return [not piece.startswith(prefix) for piece in vocabulary]
        for marker in ("▁", "Ġ"):
            if any(piece.startswith(marker) for piece in vocabulary):
                return [piece.startswith(marker) for piece in vocabulary]
        return [True] * len(vocabulary)

    def pieces(self, text: str) -> list[str]:
        """The pieces of one text, without special tokens."""
        return self._tokenizer.encode(text, add_special_tokens=False).tokens

    @classmethod
    def reads(cls, data: bytes) -> bool:
        """JSON: a ``tokenizer.json``."""
        return data.lstrip().startswith(b"{")

    @classmethod
    def learn(cls, texts: Iterable[str], options: TokenizerOptions) -> HuggingFaceTokenizer:
        """A word vocabulary of the ``vocab_size`` most frequent words of ``texts`` (ties in first-seen order), split at
        spaces and punctuation, every CJK ideograph a word of its own (BERT's normalizer and pre-tokenizer: a run of
        kana stays one word), after NFKC (and case folding with ``lowercase``); ``<pad>``, ``<unk>``, ``<s>``, ``</s>``,
        ``<mask>`` and ``special_tokens`` first."""
        library = _library()
        from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

        lines = list(training_lines(texts))
        if not lines:
            raise ConfigError("cannot train a tokenizer: the training text is empty")
        specials = [PAD, UNK, BOS, EOS, MASK, *options.special_tokens]
        tokenizer = library.Tokenizer(models.WordLevel(unk_token=UNK))
        split_ideographs = normalizers.BertNormalizer(
            handle_chinese_chars=True, strip_accents=False, lowercase=options.lowercase
        )
        tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), split_ideographs])
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=True)  # joins words with spaces, tidies punctuation
        trainer = trainers.WordLevelTrainer(
            vocab_size=max(options.vocab_size, len(specials) + 1), special_tokens=specials
        )
        tokenizer.train_from_iterator(lines, trainer=trainer)
        return cls(tokenizer.to_str().encode("utf-8"), options.max_length)
