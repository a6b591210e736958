"""Language identification: which language a text is in, as text classification over language codes."""

from __future__ import annotations

from typing import Any

from nlpkit_classification.data import ClassificationData
from nlpkit_classification.task import TextClassificationTask

from nlpkit import ConfigError, EncoderFactory, Pooling, Record, TokenizerOptions, read_records

#: The default tokenizer's vocabulary: little above the alphabet of a few scripts, so that most pieces are single
#: characters or short strings seen in training, and unseen words are made of trained pieces. Data with a larger
#: alphabet (thousands of Chinese characters) needs ``tokenizer.vocab_size`` above its number of characters.
VOCAB_SIZE = 300


class LanguageIdData(ClassificationData):
    """Texts labelled with their language code, read by :class:`ClassificationData` as ``{"text", "labels"}``.

    Either one plain-text file per language and split (``languages``, ``val_languages``, ``test_languages``:
    code -> file, one text a line), or the usual ``train_path``/``val_path``/... csv/jsonl files whose
    ``language`` field is the label. Without ``tokenizer`` options, a SentencePiece vocabulary of
    :data:`VOCAB_SIZE` pieces is trained with full character coverage: every character of the training text,
    in every script, gets its own piece.

    :param languages: language code -> its training file
    :param val_languages: language code -> its validation file
    :param test_languages: language code -> its test file
    :param label_field: the column or JSON key holding the language code in csv/jsonl files
    """

    def __init__(
        self,
        *args: Any,
        languages: dict[str, str] | None = None,
        val_languages: dict[str, str] | None = None,
        test_languages: dict[str, str] | None = None,
        label_field: str = "language",
        tokenizer: TokenizerOptions | None = None,
        **kwargs: Any,
    ) -> None:
        tokenizer = tokenizer or TokenizerOptions(vocab_size=VOCAB_SIZE)
        super().__init__(*args, label_field=label_field, tokenizer=tokenizer, **kwargs)
        self.language_files = {
            split: files
            for split, files in (("train", languages), ("val", val_languages), ("test", test_languages))
            if files
        }
        for split, files in self.language_files.items():
            option = "languages" if split == "train" else f"{split}_languages"
            if self.paths[split]:
                raise ConfigError(f"set data.{split}_path or data.{option}, not both")
            # the base reads a split, and fits with validation, when its path is set: describe the files there
            self.paths[split] = ", ".join(f"{code}: {path}" for code, path in files.items())

    def read(self, split: str, labeled: bool = True) -> list[tuple[Record, dict[str, Any]]]:
        """Records of ``split``: every line of each language's file labelled with its code, or the split's file."""
        files = self.language_files.get(split)
        if files is None:
            return super().read(split, labeled)
        rows = []
        for code, path in files.items():
            for line in read_records(path, format="txt"):
                record = Record({self.text_field: line.fields["text"], self.label_field: code}, line.path, line.line)
                rows.append((record, self.fields(record, labeled)))
        return rows


class LanguageIdTask(TextClassificationTask):
    """Text classification whose labels are language codes; ``predict`` gives ``{"label", "probabilities"}``.

    Suits a small bidirectional GRU or LSTM encoder (``gru`` with ``bidirectional: true``) over the subword
    pieces, mean-pooled, since a language shows in every piece of the text; the higher learning rate and short
    warm-up fit the small models and data this task usually has.
    """

    def __init__(
        self,
        encoder: EncoderFactory,
        pooling: Pooling = "mean",
        learning_rate: float = 5e-3,
        warmup_steps: int = 20,
        **kwargs: Any,
    ) -> None:
        super().__init__(encoder, pooling=pooling, learning_rate=learning_rate, warmup_steps=warmup_steps, **kwargs)
