"""Several languages in one model: one data source per language, mixed by temperature-based sampling."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

from nlpkit import ConfigError, Record, TextDataModule, registry

SPLIT_PATHS = ("train_path", "val_path", "test_path", "predict_path")


def sampling_probabilities(counts: dict[str, int], alpha: float) -> dict[str, float]:
    """p_l proportional to n_l ** alpha (XLM-R): alpha 1 keeps the data's proportions, 0 makes languages equal."""
    if not 0 <= alpha <= 1:
        raise ConfigError(f"data.alpha must be between 0 and 1, got {alpha}")
    weights = {language: count**alpha for language, count in counts.items() if count > 0}
    total = sum(weights.values())
    return {language: weight / total for language, weight in weights.items()}


def language_tag(language: str) -> str:
    """The special token that marks a language: ``<lang:xx>``."""
    return f"<lang:{language}>"


class MultilingualData(TextDataModule):
    """One data source per language, read by any registered data module; every example carries its language.

    Training epochs sample language l with probability p_l ~ n_l ** alpha, so small languages are not swamped;
    the shared SentencePiece vocabulary is trained on the same mix, with ``<lang:xx>`` tokens. Validation and
    test report every metric per language and macro-averaged over languages; languages left out of
    ``train_languages`` are evaluated zero-shot, and the transfer gap is logged.

    :param dataset: the registered data module reading each language (``classification``, ``conll``, ``text``...)
    :param languages: language code -> its files: ``{train_path, val_path, test_path, predict_path}``; for
        paired (translation) data the code is the target language, and its tag starts every source
    :param dataset_options: keyword arguments for every language's data module (``text_field``, ...)
    :param alpha: the sampling exponent (0.3 as in XLM-R)
    :param train_languages: train on these languages only (default: every language with a ``train_path``)
    :param language_tags: start every text with its ``<lang:xx>`` token
    """

    def __init__(
        self,
        *args: Any,
        dataset: str = "classification",
        languages: dict[str, dict[str, str]] | None = None,
        dataset_options: dict[str, Any] | None = None,
        alpha: float = 0.3,
        train_languages: list[str] | None = None,
        language_tags: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if not languages:
            raise ConfigError("data.languages needs at least one language: {code: {train_path: ...}}")
        for code, paths in languages.items():
            unknown = set(paths) - set(SPLIT_PATHS)
            if unknown:
                raise ConfigError(
                    f"data.languages.{code}: unknown keys {sorted(unknown)} (use {', '.join(SPLIT_PATHS)})"
                )
        missing = set(train_languages or ()) - set(languages)
        if missing:
            raise ConfigError(f"data.train_languages names languages without data: {sorted(missing)}")
        sampling_probabilities({}, alpha)  # validates alpha
        self.languages = languages
        self.alpha = alpha
        self.train_languages = train_languages or [code for code, paths in languages.items() if "train_path" in paths]
        self.language_tags = language_tags
        self.sources = {
            code: registry("datasets")[dataset](**paths, **(dataset_options or {})) for code, paths in languages.items()
        }
        self.paths = {split: _joined(languages, f"{split}_path") for split in ("train", "val", "test", "predict")}
        if language_tags:
            tags = [language_tag(code) for code in languages]
            self.tokenizer_options.special_tokens = [*self.tokenizer_options.special_tokens, *tags]

    def read(self, split: str, labeled: bool = True) -> list[tuple[Record, dict[str, Any]]]:
        """Every language's records of ``split`` (training: only ``train_languages``), tagged with the language."""
        codes = self.train_languages if split == "train" else list(self.languages)
        rows = []
        for code in codes:
            if self.sources[code].paths[split]:
                for record, fields in self.sources[code].read(split, labeled):
                    rows.append((record, {**self._tagged(fields, code), "language": code}))
        if not rows:
            raise ConfigError(f"no {split} data in any language: set data.languages.<code>.{split}_path")
        return rows

    def _tagged(self, fields: dict[str, Any], code: str) -> dict[str, Any]:
        """Start the text with its language tag; for paired data, the source with the target language's tag."""
        field = "source" if "source" in fields else "text"
        if not self.language_tags or not isinstance(fields.get(field), str):
            return fields
        return {**fields, field: f"{language_tag(code)} {fields[field]}"}

    def texts(self, fields: dict[str, Any]) -> Iterator[str]:
        """The text the language's own data module would train the tokenizer on."""
        return self._source(fields).texts(fields)

    def label_values(self, fields: dict[str, Any]) -> list[str]:
        """The labels as the language's own data module reads them."""
        return self._source(fields).label_values(fields)

    def _source(self, fields: dict[str, Any]) -> TextDataModule:
        return self.sources[fields["language"]]

    def probabilities(self, counts: Counter[str] | dict[str, int]) -> dict[str, float]:
        """Sampling probability of each language, from its number of training examples."""
        return sampling_probabilities(dict(counts), self.alpha)

    def tokenizer_texts(self, train: list[tuple[Record, dict[str, Any]]]) -> Iterator[str]:
        """A temperature-sampled mix of the languages, as many texts as the training data has (seeded)."""
        by_language: dict[str, list[dict[str, Any]]] = {}
        for _, fields in train:
            by_language.setdefault(fields["language"], []).append(fields)
        probabilities = self.probabilities({code: len(rows) for code, rows in by_language.items()})
        rng = random.Random(self.seed)
        codes = rng.choices(list(probabilities), weights=list(probabilities.values()), k=len(train))
        for code in codes:
            yield from self.texts(rng.choice(by_language[code]))

    def sample_weights(self, examples: list[dict[str, Any]]) -> list[float]:
        """p_l / n_l per example: each epoch draws language l with probability p_l."""
        counts = Counter(example["language"] for example in examples)
        probabilities = self.probabilities(counts)
        return [probabilities[example["language"]] / counts[example["language"]] for example in examples]


def _joined(languages: dict[str, dict[str, str]], key: str) -> str | None:
    """A description of every language's file for one split (None when no language has one)."""
    return ", ".join(f"{code}: {paths[key]}" for code, paths in languages.items() if paths.get(key)) or None
