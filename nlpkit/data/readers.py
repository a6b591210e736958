"""Readers for users' local files: txt, jsonl, csv/tsv and CoNLL, every record keeping its file and line."""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from nlpkit.plugin.errors import ConfigError, DataError

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
#: the longest line read, in characters: a longer one is an error, never read whole into memory
MAX_LINE_CHARS = 1 << 24
# what UTF-8 text never holds: NUL, and (decoding with surrogateescape) a byte that is not UTF-8
_NOT_TEXT = re.compile("[\x00\udc80-\udcff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


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
            raise self.error(f"expected a text field '{field}' (found: {_names(self.fields)})")
        return value


def _names(items: Iterable[str]) -> str:
    """Names from the data, comma-separated for a message; one that is not printable is quoted with escapes."""
    return ", ".join(name if name.isprintable() else repr(name) for name in items)


def detect_format(path: str | os.PathLike[str], format: Format | None = None) -> Format:
    """``format`` if given, else ``documents`` for a folder, else the one implied by the file extension."""
    if format is not None:
        if format not in get_args(Format):
            raise ConfigError(f"unknown data format '{format}' (known: {', '.join(get_args(Format))})")
        return format
    if Path(path).is_dir():
        return "documents"
    suffix = Path(path).suffix.lower()
    if suffix not in FORMAT_BY_SUFFIX:
        known = ", ".join(sorted(FORMAT_BY_SUFFIX))
        raise ConfigError(f"{path}: cannot tell the format from extension '{suffix}' (known: {known}); set data.format")
    return FORMAT_BY_SUFFIX[suffix]


def numbered_lines(path: Path, max_line_chars: int = MAX_LINE_CHARS) -> Iterator[tuple[int, str]]:
    """Numbered lines of UTF-8 text (a BOM dropped; ``\\n``, ``\\r\\n`` or ``\\r`` ends a line); bad text names it."""
    try:
        if not path.is_file():
            raise DataError(path, "file not found" if not path.exists() else "not a regular file")
        # not "utf-8-sig": its incremental decoder drops a file that is only the first bytes of a BOM (b"\xef")
        with path.open(encoding="utf-8", errors="surrogateescape", newline=None) as handle:
            for number in itertools.count(1):
                line = handle.readline(max_line_chars + 1)
                if not line:
                    return
                line = line.removesuffix("\n").removeprefix("\ufeff" if number == 1 else "")
                if len(line) > max_line_chars:
                    raise DataError(path, f"line longer than {max_line_chars} characters", line=number)
                if bad := _NOT_TEXT.search(line):
                    raise DataError(path, _not_text(line, bad.start(), number), line=number)
                yield number, line
    except OSError as error:
        raise DataError(path, f"cannot read the file ({error.strerror or error})") from None


def _not_text(line: str, index: int, number: int) -> str:
    """The message for the bad character ``line[index]``: what it is, and its byte offset in the line."""
    offset = len(line[:index].encode("utf-8", "surrogateescape"))
    if line[index] == "\x00":
        return f"NUL character at byte {offset} of the line (binary or UTF-16 data? save the file as UTF-8 text)"
    if number == 1 and line.startswith(("\udcff\udcfe", "\udcfe\udcff")):
        return "invalid UTF-8: the file starts with a UTF-16 or UTF-32 byte order mark (save it as UTF-8)"
    return f"invalid UTF-8 at byte {offset} of the line"


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
            raise DataError(
                path, f"expected a JSON object ({error.msg} at column {error.colno})", line=number
            ) from None
        except RecursionError:
            raise DataError(path, "expected a JSON object (nested too deeply)", line=number) from None
        except ValueError:  # the only other: an integer longer than Python converts (sys.get_int_max_str_digits)
            raise DataError(path, "expected a JSON object (a number has too many digits)", line=number) from None
        if not isinstance(value, dict):
            raise DataError(path, f"expected a JSON object, found {type(value).__name__}", line=number)
        if "\\u" in line and any(_SURROGATE.search(text) for text in _strings(value)):
            raise DataError(
                path, "a JSON string escapes a lone surrogate (\\ud800-\\udfff), which is not text", line=number
            )
        yield Record(value, str(path), number)


def _strings(value: Any) -> Iterator[str]:
    """Every string (keys too) in a parsed JSON value, walked without recursion: it may nest deeply."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend([*item, *item.values()])
        elif isinstance(item, list):
            stack.extend(item)


def read_delimited(path: Path, delimiter: str) -> Iterator[Record]:
    """Rows of a csv/tsv file with a header line (quoted fields may span lines); a wrong column count is an error."""
    reader = csv.reader((line + "\n" for _, line in numbered_lines(path)), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    start = 1  # the line a row starts on
    try:
        for row in reader:
            if row and any(cell.strip() for cell in row):
                if header is None:
                    header = [name.strip() for name in row]
                    if repeated := next((name for name in header if header.count(name) > 1), None):
                        raise DataError(path, f"the header repeats the column {repeated!r}", line=start)
                elif len(row) != len(header):
                    message = f"expected {len(header)} columns ({_names(header)}), found {len(row)}"
                    raise DataError(path, message, line=start)
                else:
                    yield Record(dict(zip(header, row, strict=True)), str(path), start)
            start = reader.line_num + 1
    except csv.Error as error:
        # at the end of the data, a strict reader is still inside a quoted field
        reason = "a quoted field is never closed" if str(error) == "unexpected end of data" else str(error)
        raise DataError(path, f"malformed {'tsv' if delimiter == chr(9) else 'csv'}: {reason}", line=start) from None


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
    return list(iter_records(path, format, **options))


def iter_records(path: str | os.PathLike[str], format: Format | None = None, **options: Any) -> Iterator[Record]:
    """The records of a local file one at a time, in constant memory; an empty file is an error naming it."""
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
    empty = True
    for record in readers[kind]():
        empty = False
        yield record
    if empty:
        raise DataError(path, f"no records found (expected {kind} data)")
