"""``nlpkit new-plugin``: the written distribution installs, loads, passes its own tests and fits from the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nlpkit.cli.main import main
from nlpkit.cli.scaffold import write_plugin
from nlpkit.plugin.errors import ConfigError
from tests.conftest import run_nlpkit


def pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=300)


def plugin_names(cwd: Path) -> dict[str, dict]:
    listing = run_nlpkit("plugins", "--json", cwd=cwd)
    assert listing.returncode == 0, listing.stderr[-2000:]
    return {plugin["name"]: plugin for plugin in json.loads(listing.stdout)}


def test_a_new_plugin_installs_loads_passes_its_tests_and_fits(tmp_path: Path, sentiment_files, capsys) -> None:
    assert main(["new-plugin", "sarcasm", "--directory", str(tmp_path / "nlpkit-sarcasm")]) == 0
    assert "next: pip install -e" in capsys.readouterr().out
    # into this very environment, offline: its build backend (setuptools) is already here
    installed = pip("install", "--quiet", "--no-deps", "--no-build-isolation", "-e", str(tmp_path / "nlpkit-sarcasm"))
    assert installed.returncode == 0, installed.stderr[-2000:]
    try:
        plugin = plugin_names(tmp_path)["sarcasm"]
        assert plugin["status"] == "loaded", plugin["error"]
        assert plugin["distribution"] == "nlpkit-sarcasm"
        assert plugin["registered"] == {"heads": ["sarcasm-gated"], "metrics": ["sarcasm-error-rate"]}

        own_tests = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
            cwd=tmp_path / "nlpkit-sarcasm", capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert own_tests.returncode == 0, own_tests.stdout[-3000:]
        assert "4 passed" in own_tests.stdout

        fit = run_nlpkit(
            "fit", "--model", "text-classification", "--model.encoder", "lstm",
            "--model.encoder.embedding_dim", "16", "--model.encoder.hidden_size", "16",
            "--model.head", "sarcasm-gated", "--model.metrics", "[accuracy, sarcasm-error-rate]",
            "--data", "classification", "--data.train_path", str(sentiment_files["train"]),
            "--data.val_path", str(sentiment_files["val"]), "--data.tokenizer.vocab_size", "100",
            "--trainer.max_steps", "5", "--trainer.enable_progress_bar", "false", cwd=tmp_path,
        )  # fmt: skip
        assert fit.returncode == 0, fit.stderr[-3000:]
        checkpoint = tmp_path / "runs" / "checkpoints" / "last.ckpt"
        validate = run_nlpkit("validate", "--ckpt_path", str(checkpoint), cwd=tmp_path)
        assert validate.returncode == 0, validate.stderr[-3000:]
        assert "val/sarcasm-error-rate" in validate.stdout
    finally:
        uninstalled = pip("uninstall", "--yes", "nlpkit-sarcasm")
    assert uninstalled.returncode == 0, uninstalled.stderr[-2000:]
    assert "sarcasm" not in plugin_names(tmp_path)


def test_new_plugin_refuses_a_bad_name_or_a_used_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be lower-case letters and digits"):
        write_plugin("Sarcasm_Detector", tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="already exists and is not empty"):
        write_plugin("sarcasm", tmp_path / "b")
    written = write_plugin("two-words", tmp_path / "c")
    assert (tmp_path / "c" / "nlpkit_two_words" / "__init__.py") in written
    assert 'two-words = "nlpkit_two_words"' in (tmp_path / "c" / "pyproject.toml").read_text()
