"""Labelled text files: csv/tsv/jsonl with configurable text and label fields."""

from __future__ import annotations

from typing import Any

from nlpkit.data import Record, TextDataModule


class ClassificationData(TextDataModule):
    """Texts with one label each; label names are learned from the training split.

    :param text_field: the column or JSON key holding the text (a ``.txt`` file's lines are ``text``)
    :param label_field: the column or JSON key holding the label
    """

    def __init__(self, *args: Any, text_field: str = "text", label_field: str = "label", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.text_field = text_field
        self.label_field = label_field

    def fields(self, record: Record, labeled: bool) -> dict[str, Any]:
        """``{"text", "label"}`` of a record; a missing or non-text field names the file and line."""
        text = record.fields.get(self.text_field)
        if not isinstance(text, str):
            raise record.error(f"expected a text field '{self.text_field}' (found: {', '.join(record.fields)})")
        if not labeled:
            return {"text": text}
        label = record.fields.get(self.label_field)
        if label is None or isinstance(label, (dict, list)) or str(label) == "":
            raise record.error(f"expected a label field '{self.label_field}' (found: {', '.join(record.fields)})")
        return {"text": text, "label": str(label)}

    def label_values(self, fields: dict[str, Any]) -> list[str]:
        """The example's label."""
        return [fields["label"]] if "label" in fields else []
