"""Readers for users' local files: txt, jsonl, csv/tsv and CoNLL, every record keeping its file and line."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nlpkit.errors import ConfigError, DataError

Format = Literal["txt", "jsonl", "csv", "tsv", "conll", "documents"]
FORMAT_BY_SUFFIX: dict[str, Format] = {
    ".txt": "txt",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".conll": "conll",
    ".conllu": "conll",
    ".bio": "conll",
    ".iob": "conll",
}


@dataclass(frozen=True)
class Record:
    """One example as read: its fields, and where it came from (for error messages)."""

    fields: dict[str, Any]
    path: str
    line: int

    def error(self, message: str) -> DataError:
        """A DataError pointing at this record's file and line."""
        return DataError(self.path, message, line=self.line)

    def text(self, field: str) -> str:
        """The text in ``field``; a missing or non-text field is an error naming the file, line and fields."""
        value = self.fields.get(field)
        if not isinstance(value, str):
            raise self.error(f"expected a text field '{field}' (found: {', '.join(self.fields)})")
        return value


def detect_format(path: str | os.PathLike[str], format: Format | None = None) -> Format:
    """``format`` if given, else ``documents`` for a folder, else the one implied by the file extension."""
    if format is not None:
        return format
    if Path(path).is_dir():
        return "documents"
    suffix = Path(path).suffix.lower()
    if suffix not in FORMAT_BY_SUFFIX:
        known = ", ".join(sorted(FORMAT_BY_SUFFIX))
        raise ConfigError(f"{path}: cannot tell the format from extension '{suffix}' (known: {known}); set data.format")
    return FORMAT_BY_SUFFIX[suffix]


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Numbered lines decoded as UTF-8 (a BOM is dropped); undecodable bytes name the line."""
    if not path.is_file():
        raise DataError(path, "file not found" if not path.exists() else "not a regular file")
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataError(path, f"invalid UTF-8 at byte {error.start} of the line", line=number) from None
            yield number, text.rstrip("\r\n")


def read_txt(path: Path) -> Iterator[Record]:
    """One record per non-blank line: ``{"text": line}``."""
    for number, line in numbered_lines(path):
        if line.strip():
            yield Record({"text": line}, str(path), number)


def read_documents(path: Path) -> Iterator[Record]:
    """Whole files as records, ``{"text", "file"}``: the file itself, or every ``.txt`` file in a folder tree."""
    files = sorted(file for file in path.rglob("*.txt") if file.is_file()) if path.is_dir() else [path]
    for file in files:
        text = "\n".join(line for _, line in numbered_lines(file))
        if text.strip():
            name = file.relative_to(path).as_posix() if path.is_dir() else file.name
            yield Record({"text": text, "file": name}, str(file), 1)


def read_jsonl(path: Path) -> Iterator[Record]:
    """One JSON object per non-blank line."""
    for number, line in numbered_lines(path):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(path, f"expected a JSON object ({error.msg})", line=number) from None
        if not isinstance(value, dict):
            raise DataError(path, f"expected a JSON object, found {type(value).__name__}", line=number)
        yield Record(value, str(path), number)


def read_delimited(path: Path, delimiter: str) -> Iterator[Record]:
    """Rows of a csv/tsv file with a header line (quoted fields may span lines); a wrong column count is an error."""
    reader = csv.reader((line + "\n" for _, line in numbered_lines(path)), delimiter=delimiter)
    header: list[str] | None = None
    start = 1  # the line a row starts on
    try:
        for row in reader:
            if row and any(cell.strip() for cell in row):
                if header is None:
                    header = [name.strip() for name in row]
                elif len(row) != len(header):
                    message = f"expected {len(header)} columns ({', '.join(header)}), found {len(row)}"
                    raise DataError(path, message, line=start)
                else:
                    yield Record(dict(zip(header, row, strict=True)), str(path), start)
            start = reader.line_num + 1
    except csv.Error as error:
        raise DataError(path, f"malformed {'tsv' if delimiter == chr(9) else 'csv'}: {error}", line=start) from None


def read_conll(path: Path, token_column: int = 0, tag_column: int = -1) -> Iterator[Record]:
    """Sentences of a CoNLL file: ``{"tokens": [...], "tags": [...]}``, split at blank lines.

    Comment lines (``#``) and ``-DOCSTART-`` lines are skipped; columns are split on tabs or whitespace.
    """
    tokens: list[str] = []
    tags: list[str] = []
    start = 0
    for number, line in numbered_lines(path):
        stripped = line.strip()
        if stripped.startswith("-DOCSTART-") or (stripped.startswith("#") and not tokens):
            continue
        if not stripped:
            if tokens:
                yield Record({"tokens": tokens, "tags": tags}, str(path), start)
                tokens, tags = [], []
            continue
        columns = stripped.split("\t") if "\t" in stripped else stripped.split()
        needed = max(token_column, tag_column) + 1 if tag_column >= 0 else max(token_column + 1, -tag_column)
        if len(columns) < max(needed, 2):
            raise DataError(
                path, f"expected at least {max(needed, 2)} columns (token and tag), found {len(columns)}", line=number
            )
        if not tokens:
            start = number
        tokens.append(columns[token_column])
        tags.append(columns[tag_column])
    if tokens:
        yield Record({"tokens": tokens, "tags": tags}, str(path), start)


def read_records(path: str | os.PathLike[str], format: Format | None = None, **options: Any) -> list[Record]:
    """All records of a local file; an empty file is an error naming it."""
    path = Path(path)
    kind = detect_format(path, format)
    readers = {
        "txt": lambda: read_txt(path),
        "jsonl": lambda: read_jsonl(path),
        "csv": lambda: read_delimited(path, ","),
        "tsv": lambda: read_delimited(path, "\t"),
        "conll": lambda: read_conll(path, **options),
        "documents": lambda: read_documents(path),
    }
    records = list(readers[kind]())
    if not records:
        raise DataError(path, f"no records found (expected {kind} data)")
    return records
