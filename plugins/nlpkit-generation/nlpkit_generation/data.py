"""Plain text for language modelling: one document a line (or record), or whole files (``format: documents``, or
a folder of ``.txt`` files), optionally packed into blocks."""

from __future__ import annotations

from typing import Any

from nlpkit import ConfigError, Record, TextDataModule


class LanguageModelingData(TextDataModule):
    """Documents from txt/jsonl/csv files or whole files; with ``block_size``, packed into blocks with no padding.

    :param text_field: the JSON key or column holding each document (a ``.txt`` file's lines are ``text``)
    :param block_size: if set, documents are concatenated (each ``<s> ... </s>``) and cut into blocks of
        ``block_size`` predicted tokens, so no document is cut at the tokenizer's ``max_length``; otherwise every
        document is one padded example
    """

    def __init__(self, *args: Any, text_field: str = "text", block_size: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.text_field = text_field
        self.block_size = block_size

    def fields(self, record: Record, labeled: bool) -> dict[str, Any]:
        """``{"text"}`` of a record, and ``{"whole": True}`` when blocks are packed (the task keeps every token)."""
        return {"text": record.text(self.text_field), "whole": self.block_size is not None}

    def arrange(self, examples: list[dict[str, Any]], split: str) -> list[dict[str, Any]]:
        """Pack training and evaluation splits into blocks that overlap by one token, so every token is a target."""
        if self.block_size is None or split == "predict":
            return examples
        return pack_blocks([example["tokens"] for example in examples], self.block_size)


def pack_blocks(documents: list[list[int]], block_size: int) -> list[dict[str, Any]]:
    """Concatenate ``documents`` and cut windows of ``block_size + 1`` ids with stride ``block_size``.

    Each window gives ``block_size`` (input, next token) pairs; the tail shorter than two ids is dropped.
    """
    if block_size < 1:
        raise ConfigError(f"data.block_size must be >= 1, got {block_size}")
    stream = [token for document in documents for token in document]
    return [
        {"tokens": stream[start : start + block_size + 1], "length": min(block_size + 1, len(stream) - start)}
        for start in range(0, max(len(stream) - 1, 0), block_size)
    ]
