"""The benchmark corpora script: package files checked against their pinned checksum, a clear error when offline
and uncached, and WordNet's files parsed into splits (on a small package built here; nothing is downloaded)."""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path

import pytest

from nlpkit.errors import DataError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from data import corpora

HEADER = "  1 This software and database is being provided to you, the LICENSEE, by  \n"


def synset(offset: int, lexicographer_file: int, gloss: str) -> str:
    return f"{offset:08d} {lexicographer_file:02d} n 01 word 0 000 | {gloss}  \n"


def write_deb(path: Path, files: dict[str, str]) -> Path:
    """A Debian package (an ar archive around data.tar.xz) holding ``files``."""
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w:xz") as archive:
        for name, text in files.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    members = [("debian-binary", b"2.0\n"), ("data.tar.xz", tar.getvalue())]
    blob = b"!<arch>\n"
    for name, data in members:
        blob += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode() + data + b"\n" * (len(data) % 2)
    path.write_bytes(blob)
    return path


def test_a_cached_file_with_another_checksum_is_refused(tmp_path: Path) -> None:
    (tmp_path / corpora.WORDNET.filename).write_bytes(b"not the package")
    with pytest.raises(DataError, match=r"sha256 is [0-9a-f]{64}, expected 61060d96.*delete the file"):
        corpora.fetch(corpora.WORDNET, tmp_path)


def test_offline_and_uncached_names_the_file_to_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))  # no apt-get: nothing can be downloaded
    with pytest.raises(DataError, match=r"not cached and debian package wordnet-base 1:3\.0-37 could not be"):
        corpora.fetch(corpora.WORDNET, tmp_path / "cache")


def test_wordnet_splits_hold_definitions_of_six_supersenses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nouns = HEADER + "".join(
        synset(i, (5, 20, 6, 30)[i % 4], f'definition number {i}; "an example {i}"') for i in range(40)
    )
    files = {f"usr/share/wordnet/data.{part}": HEADER + synset(1, 29, f"a {part} gloss") for part in ("verb", "adj")}
    files |= {"usr/share/wordnet/data.noun": nouns, "usr/share/wordnet/data.adv": HEADER}
    deb = write_deb(tmp_path / corpora.WORDNET.filename, files)
    package = corpora.Package("debian", "wordnet-base", "1:3.0-37", deb.name, corpora.sha256(deb))
    monkeypatch.setattr(corpora, "WORDNET", package)
    monkeypatch.setattr(corpora, "EVALUATION_SIZE", 5)
    paths = corpora.wordnet_supersenses(tmp_path)
    rows = {
        split: [json.loads(line) for line in paths[split].read_text().splitlines()]
        for split in ("train", "val", "test")
    }
    assert [len(rows[split]) for split in ("val", "test", "train")] == [5, 5, 20]  # 30 of the 40 are in the six
    assert {row["label"] for split in rows.values() for row in split} == {"animal", "plant", "artifact"}
    assert all(row["text"].startswith("definition number") and ";" not in row["text"] for row in rows["train"])
    pretrain = paths["pretrain"].read_text().splitlines()
    held_out = {row["text"] for split in ("val", "test") for row in rows[split]}
    assert "a verb gloss" in pretrain and len(pretrain) == 2 + 40 - 10
    assert not any(line.split(";")[0] in held_out for line in pretrain)
    assert corpora.wordnet_supersenses(tmp_path) == paths  # prepared once, then read from the cache
