"""Labelled text: csv/tsv/jsonl with configurable text and label fields, or a folder per label of .txt files."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from nlpkit import Record, TextDataModule


class ClassificationData(TextDataModule):
    """Texts with a label (or a set of labels); label names are learned from the training split.

    Files: csv/tsv/jsonl records with ``text_field`` and ``label_field``; a ``.txt`` file's lines are ``text``.
    Folders: ``root/<label>/*.txt`` (the classic movie-review layout): each file is one text, and the folder
    under the root is its label.

    :param text_field: the column or JSON key holding the text
    :param label_field: the column or JSON key holding the label, or a JSON list of labels
    :param label_separator: splits a text label into a set of labels (``"a|b"``), for multi-label tasks
    """

    def __init__(
        self,
        *args: Any,
        text_field: str = "text",
        label_field: str = "label",
        label_separator: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.text_field = text_field
        self.label_field = label_field
        self.label_separator = label_separator

    def fields(self, record: Record, labeled: bool) -> dict[str, Any]:
        """``{"text", "labels"}`` of a record; a missing or non-text field names the file and line."""
        text = record.text(self.text_field)
        if not labeled:
            return {"text": text}
        labels = self._record_labels(record)
        if not labels:
            raise record.error(f"expected a label field '{self.label_field}' (found: {', '.join(record.fields)})")
        return {"text": text, "labels": labels}

    def _record_labels(self, record: Record) -> list[str]:
        value = record.fields.get(self.label_field)
        if value is None and "file" in record.fields:  # a document in root/<label>/...
            folders = PurePosixPath(record.fields["file"]).parts[:-1]
            return [folders[0]] if folders else []
        if isinstance(value, list):
            return [str(item) for item in value if str(item)]
        if value is None or isinstance(value, dict) or str(value) == "":
            return []
        if self.label_separator:
            return [part.strip() for part in str(value).split(self.label_separator) if part.strip()]
        return [str(value)]

    def label_values(self, fields: dict[str, Any]) -> list[str]:
        """The example's labels."""
        return fields.get("labels", [])
