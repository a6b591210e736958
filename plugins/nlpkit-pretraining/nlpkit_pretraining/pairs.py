"""Sentences for contrastive training: plain texts (one per line or record) and pairs ``{"text_a", "text_b"}``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from nlpkit import Record, TextDataModule


class SentencePairsData(TextDataModule):
    """Texts, or pairs of texts that mean the same, from txt/jsonl/csv/tsv files.

    A record with both ``text_a_field`` and ``text_b_field`` is a pair; any other record is one text from its
    ``text_field`` (a ``.txt`` file's lines are texts). Files may mix the two.

    :param text_field: the JSON key or column of a single text
    :param text_a_field: the JSON key or column of a pair's first text
    :param text_b_field: the JSON key or column of a pair's second text
    """

    def __init__(
        self,
        *args: Any,
        text_field: str = "text",
        text_a_field: str = "text_a",
        text_b_field: str = "text_b",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.text_field = text_field
        self.text_a_field = text_a_field
        self.text_b_field = text_b_field

    def fields(self, record: Record, labeled: bool) -> dict[str, Any]:
        """``{"text_a", "text_b"}`` of a pair, else ``{"text"}``; a record with neither names its file and line."""
        if self.text_a_field in record.fields or self.text_b_field in record.fields:
            return {"text_a": record.text(self.text_a_field), "text_b": record.text(self.text_b_field)}
        return {"text": record.text(self.text_field)}

    def texts(self, fields: dict[str, Any]) -> Iterator[str]:
        """Every text of the record."""
        yield from (fields[key] for key in ("text", "text_a", "text_b") if key in fields)
