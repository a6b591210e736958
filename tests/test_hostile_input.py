"""Hostile input: every reader returns records or raises one DataError naming the file (and the line), nothing else."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tracemalloc
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from nlpkit_kg.graph import iter_triples, read_entity_texts

from nlpkit.data import readers
from nlpkit.data.readers import Format, Record, read_records
from nlpkit.plugin.errors import ConfigError, DataError

FORMATS: tuple[str, ...] = get_args(Format)
READERS: dict[str, Callable[[Path], Any]] = {
    "txt": readers.read_txt,
    "jsonl": readers.read_jsonl,
    "csv": partial(readers.read_delimited, delimiter=","),
    "tsv": partial(readers.read_delimited, delimiter="\t"),
    "conll": readers.read_conll,
    "documents": readers.read_documents,
    "triples": iter_triples,
    "queries": partial(iter_triples, queries=True),
    "entity texts": read_entity_texts,
    **{f"read_records({format})": partial(read_records, format=format) for format in FORMATS},
}
WHOLE_FILE_ERRORS = ("no records found", "no triples found", "no entity texts found")
LINE_BREAK = re.compile(rb"\r\n|\r|\n")
SURROGATE = re.compile("[\ud800-\udfff]")
FAST = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder per module: hypothesis runs many examples in one test, so each rewrites the same files."""
    return tmp_path_factory.mktemp("hostile")


def write(folder: Path, data: bytes, name: str = "data") -> Path:
    """``folder / name`` holding ``data``."""
    path = folder / name
    path.write_bytes(data)
    return path


def logical_lines(data: bytes) -> list[bytes]:
    """The lines a reader sees: ``\\r\\n``, ``\\r`` and ``\\n`` end a line; a leading UTF-8 BOM is dropped."""
    return LINE_BREAK.split(data.removeprefix(b"\xef\xbb\xbf"))


def first_bad_line(data: bytes) -> int | None:
    """The first line that is not UTF-8 text or holds a NUL, if any."""
    for number, raw in enumerate(logical_lines(data), start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return number
        if b"\x00" in raw:
            return number
    return None


def strings(value: Any) -> Iterator[str]:
    """Every string inside a reader's result (iteratively: a parsed JSON value may nest deeply)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, Record):
            stack.append(item.fields)
        elif isinstance(item, dict):
            stack.extend([*item.keys(), *item.values()])
        elif isinstance(item, list | tuple):
            stack.extend(item)


def read_all(reader: Callable[[Path], Any], path: Path) -> Any:
    """The reader's result, its records all read when it returns them one by one."""
    result = reader(path)
    return list(result) if isinstance(result, Iterator) else result


def outcome(name: str, reader: Callable[[Path], Any], path: Path, data: bytes, source: Path | None = None) -> Any:
    """What ``reader`` makes of ``path`` (holding ``data``): its records, or the DataError it raised, checked.

    ``source`` is the file the error must name (``path`` unless that is a folder).
    """
    try:
        result = read_all(reader, path)
    except DataError as error:
        message = str(error)
        assert error.path == str(source or path), f"{name}: {message}"
        assert len(message.splitlines()) == 1, f"{name}: the message is not one line: {message!r}"
        if error.line is None:
            assert any(f": {reason}" in message for reason in WHOLE_FILE_ERRORS), f"{name}: no line in {message!r}"
        else:  # reading stops at the first line that is not text: no error can name a later one
            bad = first_bad_line(data)
            last = bad if bad is not None else len(logical_lines(data))
            assert 1 <= error.line <= last, f"{name}: line {error.line} of {data!r} (first bad line: {bad})"
            assert logical_lines(data)[error.line - 1], f"{name}: line {error.line} of {data!r} is empty"
        return error
    except Exception as error:
        pytest.fail(f"{name} raised {type(error).__name__}: {error}")
    assert not any(SURROGATE.search(text) for text in strings(result)), f"{name}: not valid Unicode text"
    lines = logical_lines(data)
    previous = 0
    for record in result if isinstance(result, list) else []:
        if isinstance(record, tuple):  # a triple: (line, head, relation, tail), read from that very line
            line = record[0]
            assert record[2].encode("utf-8") in lines[line - 1], f"{name}: {record} is not on line {line} of {data!r}"
        else:
            line = record.line
            assert record.path == str(source or path), name
        assert previous < line <= len(lines), f"{name}: records on lines {previous} then {line} of {data!r}"
        previous = line  # every record starts on a later line than the one before
    return result


def every_reader(folder: Path, data: bytes) -> dict[str, Any]:
    """Every reader's outcome for one file holding ``data``, and ``read_documents`` on a folder holding it."""
    path = write(folder, data)
    results = {name: outcome(name, reader, path, data) for name, reader in READERS.items()}
    (folder / "corpus").mkdir(exist_ok=True)
    text_file = write(folder / "corpus", data, "a.txt")
    results["documents folder"] = outcome(
        "documents folder", readers.read_documents, folder / "corpus", data, text_file
    )
    return results


def assert_each_names_a_line(results: dict[str, Any]) -> None:
    """Every reader raised a DataError naming a line."""
    for name, result in results.items():
        assert isinstance(result, DataError) and result.line is not None, f"{name}: {result!r}"


# -- arbitrary input --------------------------------------------------------------------------------------
@FAST
@given(st.binary(max_size=600))
@example(b"\xff\xfe")
@example(b"text,label\nok\x00,pos\n")
@example(b"[" * 5000)
@example(b'{"a": ' + b"1" * 5000 + b"}")
@example(b'{"text": "\\ud800"}')
@example(b"\xed\xa0\x80")  # an encoded surrogate is not UTF-8
@example(b"\xef")  # the start of a BOM alone (Python's utf-8-sig reader decodes it to nothing)
def test_arbitrary_bytes(folder: Path, data: bytes) -> None:
    results = every_reader(folder, data)
    bad = first_bad_line(data)
    if bad is not None:
        assert_each_names_a_line(results)
        assert results["txt"].line == bad
        assert re.search(r"invalid UTF-8|NUL character", str(results["txt"]))


# fmt: off
PIECES = [
    "\t", ",", '"', '""', " ", "\n", "\r", "\r\n", "\x00", "\ufeff", "\x0b", "\x85", "\u2028", "\\", "#", "?",
    "-DOCSTART-", "text,label", "text\tlabel", "h\tr\tt", "e\tname", "a B-PER", "{", "}", "[", "]", ":", "null", "NaN",
    "1e999", '"text"', '{"text": "a"}', "\\u", "\\ud800", "\\udc00", "\\ud83d\\ude00", "[" * 3000, "9" * 5000,
]
# fmt: on


@FAST
@given(st.lists(st.sampled_from(PIECES) | st.text(max_size=6), max_size=30), st.booleans())
def test_text_with_random_structure(folder: Path, pieces: list[str], bom: bool) -> None:
    data = ("\ufeff" if bom else "").encode() + "".join(pieces).encode("utf-8")
    results = every_reader(folder, data)
    if "\x00" in "".join(pieces):
        assert_each_names_a_line(results)


@FAST
@given(st.text(max_size=80), st.sampled_from(["latin-1", "cp1252", "utf-16", "utf-16-le", "utf-16-be", "utf-32"]))
def test_text_in_other_encodings(folder: Path, text: str, encoding: str) -> None:
    data = text.encode(encoding, errors="replace")
    results = every_reader(folder, data)
    if text and encoding in ("utf-16", "utf-32"):  # a byte order mark: the error says what the file is
        assert_each_names_a_line(results)
        assert all(result.line == 1 and "UTF-16" in str(result) for result in results.values())
    if encoding in ("utf-16-le", "utf-16-be") and any(char < "\x80" for char in text):  # NUL bytes
        assert_each_names_a_line(results)


@settings(deadline=None, max_examples=50)
@given(st.text(alphabet=" \t\r\n\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u2028\u2029\u3000", max_size=40), st.booleans())
def test_empty_and_whitespace_only_files_name_the_file(folder: Path, text: str, bom: bool) -> None:
    results = every_reader(folder, (("\ufeff" if bom else "") + text).encode())
    for name, result in results.items():
        nothing = result == [] and not name.startswith("read_records")
        assert nothing or (isinstance(result, DataError) and result.line is None), f"{name}: {result!r}"


# -- valid files round-trip; truncated ones are data or one error ------------------------------------------
def line_ends() -> st.SearchStrategy[str]:
    """Each way a line may end."""
    return st.sampled_from(["\n", "\r\n", "\r"])


TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\x00\ufeff"), max_size=12)
NAME = st.from_regex(r"[A-Za-z0-9_.:-]{1,6}", fullmatch=True)


@st.composite
def txt_files(draw: st.DrawFn) -> tuple[bytes, list[Any]]:
    lines = draw(st.lists(TEXT.filter(str.strip), min_size=1, max_size=6))
    data = draw(line_ends()).join(lines) + draw(st.sampled_from(["", "\n"]))
    return data.encode(), [({"text": line}, number) for number, line in enumerate(lines, start=1)]


@st.composite
def jsonl_files(draw: st.DrawFn) -> tuple[bytes, list[Any]]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3))
    objects = draw(st.lists(st.dictionaries(st.text(max_size=5), values, max_size=4), min_size=1, max_size=5))
    ascii = draw(st.booleans())
    data = draw(line_ends()).join(json.dumps(value, ensure_ascii=ascii) for value in objects)
    return data.encode(), [(value, number) for number, value in enumerate(objects, start=1)]


@st.composite
def delimited_files(draw: st.DrawFn, delimiter: str) -> tuple[bytes, list[Any]]:
    header = draw(st.lists(NAME, min_size=1, max_size=4, unique=True))
    cell = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\x00"), max_size=8)
    row = st.lists(cell, min_size=len(header), max_size=len(header)).filter(lambda cells: any(c.strip() for c in cells))
    rows = draw(st.lists(row, min_size=1, max_size=5))
    end, out = draw(line_ends()), io.StringIO()
    # Python < 3.12 leaves a field with \n unquoted unless the line terminator holds \n
    quoting = csv.QUOTE_ALL if end == "\r" else draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    csv.writer(out, delimiter=delimiter, lineterminator=end, quoting=quoting).writerows([header, *rows])
    expected, number = [], 2
    for cells in rows:
        expected.append((dict(zip(header, cells, strict=True)), number))
        number += 1 + sum(value.count("\n") for value in cells)
    return out.getvalue().encode(), expected


@st.composite
def conll_files(draw: st.DrawFn) -> tuple[bytes, list[Any]]:
    token = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.,'-]{0,5}", fullmatch=True)
    sentences = draw(
        st.lists(
            st.lists(st.tuples(token, st.sampled_from(["O", "B-PER", "I-PER"])), min_size=1, max_size=4),
            min_size=1,
            max_size=4,
        )
    )
    end, separator = draw(line_ends()), draw(st.sampled_from(["\t", " "]))
    lines, expected = [], []
    for sentence in sentences:
        expected.append(({"tokens": [t for t, _ in sentence], "tags": [tag for _, tag in sentence]}, len(lines) + 1))
        lines.extend([*(f"{t}{separator}{tag}" for t, tag in sentence), ""])
    return end.join(lines).encode(), expected


@st.composite
def triples_files(draw: st.DrawFn) -> tuple[bytes, list[Any]]:
    rows = draw(st.lists(st.tuples(NAME, NAME, NAME), min_size=1, max_size=6))
    return draw(line_ends()).join("\t".join(row) for row in rows).encode(), rows


@st.composite
def entity_text_files(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    texts = draw(st.dictionaries(NAME, TEXT.filter(str.strip), min_size=1, max_size=5))
    data = draw(line_ends()).join(f"{entity}\t{text}" for entity, text in texts.items())
    return data.encode(), {entity: text.strip() for entity, text in texts.items()}


VALID_FILES = {
    "txt": txt_files(),
    "jsonl": jsonl_files(),
    "csv": delimited_files(","),
    "tsv": delimited_files("\t"),
    "conll": conll_files(),
    "triples": triples_files(),
    "entity texts": entity_text_files(),
}


def comparable(name: str, result: Any) -> Any:
    """A reader's result in the form the ``VALID_FILES`` strategies give what they expect."""
    if name in ("triples", "queries"):
        return [(head, relation, tail) for _, head, relation, tail in result]
    return result if name == "entity texts" else [(record.fields, record.line) for record in result]


@pytest.mark.parametrize("name", VALID_FILES)
@settings(deadline=None, max_examples=60)
@given(data=st.data())
def test_valid_files_round_trip_and_truncated_ones_are_data_or_one_error(
    folder: Path, name: str, data: st.DataObject
) -> None:
    content, expected = data.draw(VALID_FILES[name])
    reader = READERS[name]
    result = outcome(name, reader, write(folder, content), content)
    assert not isinstance(result, DataError), result
    assert comparable(name, result) == expected
    cut = data.draw(st.integers(0, len(content) - 1))
    outcome(name, reader, write(folder, content[:cut]), content[:cut])


# -- huge lines ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def huge_line(folder: Path) -> Path:
    """A file whose first line is one character over the limit."""
    return write(folder, b"x" * (readers.MAX_LINE_CHARS + 1) + b"\nshort\n", "huge")


@pytest.mark.parametrize("name", READERS)
def test_a_line_over_the_limit_is_an_error_naming_it(huge_line: Path, name: str) -> None:
    with pytest.raises(DataError, match=rf"huge:1: line longer than {readers.MAX_LINE_CHARS} characters"):
        read_all(READERS[name], huge_line)


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_the_limit_counts_characters_of_the_line_itself(folder: Path, end: str) -> None:
    path = write(folder, f"{'é' * 10}{end}{'x' * 11}{end}".encode())
    lines = readers.numbered_lines(path, max_line_chars=10)
    assert next(lines) == (1, "é" * 10)
    with pytest.raises(DataError, match=r"data:2: line longer than 10 characters"):
        next(lines)


def test_reading_a_huge_line_takes_memory_bounded_by_the_limit(folder: Path) -> None:
    path = write(folder, b"x" * (64 << 20), "one-line.txt")  # 64 MiB and no line break
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"line longer than 1000 characters"):
            list(readers.numbered_lines(path, max_line_chars=1000))
        assert tracemalloc.get_traced_memory()[1] < 1 << 20
        tracemalloc.reset_peak()
        with pytest.raises(DataError, match=rf"line longer than {readers.MAX_LINE_CHARS} characters"):
            read_records(path)
        assert tracemalloc.get_traced_memory()[1] < 3 * readers.MAX_LINE_CHARS  # well under the 64 MiB of the line
    finally:
        tracemalloc.stop()
        path.unlink()


def test_a_csv_field_over_the_csv_module_limit_names_its_row(folder: Path) -> None:
    path = write(folder, b'text,label\nok,pos\n"' + b"x" * (csv.field_size_limit() + 1) + b'",neg\n', "big.csv")
    with pytest.raises(DataError, match=r"big.csv:3: malformed csv: field larger than field limit"):
        read_records(path)


# -- specific bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("[" * 100_000, "nested too deeply"),
        ('{"a": ' * 10_000, "nested too deeply"),
        ('{"n": ' + "1" * 5000 + "}", "too many digits"),
        ('{"text": "\\ud800 alone"}', "lone surrogate"),
        ('{"\\udfff": "x"}', "lone surrogate"),
        ('"text"', "found str"),
        ("[]", "found list"),
    ],
)
def test_jsonl_lines_that_parse_badly_or_to_no_text_name_their_line(folder: Path, line: str, reason: str) -> None:
    path = write(folder, f'{{"text": "ok \\ud83d\\ude00"}}\n{line}\n'.encode(), "bad.jsonl")
    with pytest.raises(DataError, match=rf"bad.jsonl:2: .*{reason}"):
        read_records(path)


def test_an_unclosed_quote_is_an_error_naming_the_row_it_opens(folder: Path) -> None:
    path = write(folder, b'text,label\nok,pos\nfine,"neg\nlost,pos\n', "open.csv")
    with pytest.raises(DataError, match=r"open.csv:3: malformed csv: a quoted field is never closed"):
        read_records(path)


def test_a_header_repeating_a_column_name_is_an_error(folder: Path) -> None:
    with pytest.raises(DataError, match=r"twice.csv:1: the header repeats the column 'text'"):
        read_records(write(folder, b"text, text ,label\na,b,c\n", "twice.csv"))


def test_names_from_the_data_are_quoted_when_not_printable(folder: Path) -> None:
    records = read_records(write(folder, b'{"te\\u2028xt": "a", "label\\n": "b"}\n', "names.jsonl"))
    with pytest.raises(DataError) as caught:
        records[0].text("text")
    assert str(caught.value).endswith(r"""expected a text field 'text' (found: 'te\u2028xt', 'label\n')""")
    with pytest.raises(DataError) as caught:
        read_records(write(folder, b'"a\nb",c\nx,y,z\n', "names.csv"))
    assert str(caught.value).endswith(r"""expected 2 columns ('a\nb', c), found 3""")
    with pytest.raises(DataError) as caught:
        read_entity_texts(write(folder, "a\x85b\tone\na\x85b\ttwo\n".encode(), "names.tsv"))
    assert str(caught.value).endswith(r"""entity 'a\x85b' already has a text (line 1)""")


def test_unknown_format_is_a_config_error(folder: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown data format 'xml' \(known: txt, jsonl, csv"):
        read_records(write(folder, b"x\n"), format="xml")  # type: ignore[arg-type]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_is_refused_without_blocking(folder: Path) -> None:
    os.mkfifo(folder / "pipe.txt")
    with pytest.raises(DataError, match=r"pipe.txt: not a regular file"):
        read_records(folder / "pipe.txt")


@pytest.mark.skipif(not Path("/proc/self/mem").is_file(), reason="needs Linux /proc")
def test_a_file_that_fails_to_read_is_a_data_error() -> None:
    with pytest.raises(DataError, match=r"/proc/self/mem: cannot read the file \(Input/output error\)"):
        read_records("/proc/self/mem", format="txt")
