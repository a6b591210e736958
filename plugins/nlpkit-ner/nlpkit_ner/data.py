"""CoNLL data for token classification: columns, tag schemes converted on load, checked tags."""

from __future__ import annotations

from typing import Any, Literal

from nlpkit import Record, TextDataModule
from nlpkit_ner.tags import Scheme, check_tags, convert, detect_scheme, is_valid, labels_for


class ConllData(TextDataModule):
    """Sentences from CoNLL-style files (or jsonl with ``tokens`` and ``tags`` lists).

    Tags in any of IOB1, IOB2 (BIO) and BIOES are converted on load into ``train_scheme``; a malformed tag
    names its file and sentence.

    :param token_column: the column holding the token (0-based; negative counts from the end)
    :param tag_column: the column holding the tag
    :param file_scheme: the files' tag scheme (default: detected per sentence)
    :param train_scheme: the scheme the model learns and predicts in
    """

    def __init__(
        self,
        *args: Any,
        token_column: int = 0,
        tag_column: int = -1,
        file_scheme: Scheme | None = None,
        train_scheme: Literal["iob2", "bioes"] = "bioes",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.token_column = token_column
        self.tag_column = tag_column
        self.file_scheme = file_scheme
        self.train_scheme = train_scheme

    def reader_options(self) -> dict[str, Any]:
        """The token and tag columns, for CoNLL files."""
        return {"token_column": self.token_column, "tag_column": self.tag_column} if self._conll() else {}

    def _conll(self) -> bool:
        path = next((p for p in self.paths.values() if p), None)
        return self.format == "conll" or (self.format is None and path is not None and not path.endswith(".jsonl"))

    def fields(self, record: Record, labeled: bool) -> dict[str, Any]:
        """``{"tokens"}``, and ``{"tags"}`` in the training scheme when labelled (raw ``text`` to predict is fine)."""
        if not labeled and isinstance(record.fields.get("text"), str):
            return {"text": record.fields["text"]}
        tokens = record.fields.get("tokens")
        if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) and t for t in tokens):
            raise record.error("expected a non-empty list of tokens")
        if not labeled:
            return {"tokens": tokens}
        tags = record.fields.get("tags")
        if not isinstance(tags, list) or len(tags) != len(tokens):
            raise record.error(f"expected one tag per token ({len(tokens)} tokens)")
        problem = check_tags(tags)
        if problem:
            raise record.error(problem)
        source = self.file_scheme or detect_scheme([tags])
        if source != "iob1" and not is_valid(tags, source):  # IOB1 is read leniently; the others must be valid
            raise record.error(f"tags {' '.join(tags)} are not a valid {source.upper()} sequence")
        return {"tokens": tokens, "tags": convert(tags, source, self.train_scheme)}

    def texts(self, fields: dict[str, Any]) -> Any:
        """The sentence, for tokenizer training."""
        yield " ".join(fields["tokens"])

    def label_values(self, fields: dict[str, Any]) -> list[str]:
        """Every tag of the scheme for each entity type in the sentence (so a type seen once is fully known)."""
        types = {tag.split("-", 1)[1] for tag in fields.get("tags", []) if tag != "O"}
        return labels_for(types, self.train_scheme) if "tags" in fields else []
