"""Shared fixtures: sample data, and plugins installed as real distributions with entry points."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nlpkit.plugin.loader import reset_plugins
from nlpkit.testing import write_sentiment_files

TOY_PLUGINS = Path(__file__).parent / "toy_plugins"


def write_distribution(site: Path, dist: str, entry_name: str, module: str, source: str | None = None) -> None:
    """Install a plugin distribution into ``site``: its module and a ``.dist-info`` with an ``nlpkit`` entry point.

    ``source`` is the module's code; by default the module is copied from ``tests/toy_plugins``.
    """
    if source is None:
        shutil.copy(TOY_PLUGINS / f"{module}.py", site / f"{module}.py")
    else:
        (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = site / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[nlpkit]\n{entry_name} = {module}\n", encoding="utf-8")


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """A site directory on ``sys.path`` (and ``PYTHONPATH`` for subprocesses) to install plugins into."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    before = set(sys.modules)
    reset_plugins()
    yield lambda *args, **kwargs: (write_distribution(site, *args, **kwargs), importlib.invalidate_caches())
    for name in set(sys.modules) - before:
        if (getattr(sys.modules[name], "__file__", None) or "").startswith(str(site)):
            del sys.modules[name]
    reset_plugins()


@pytest.fixture(scope="session")
def sentiment_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Sample sentiment data: train.csv, val.csv and predict.txt."""
    return write_sentiment_files(tmp_path_factory.mktemp("sentiment"), train=300, val=100)


def run_nlpkit(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the ``nlpkit`` command in a fresh process and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "nlpkit", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
