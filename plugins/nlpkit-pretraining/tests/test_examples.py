"""The example configs run through the ``nlpkit`` command: masked-LM pretraining, then SimCSE from its checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

import nlpkit
from nlpkit.cli.main import main

ROOT = Path(__file__).resolve().parents[3]


def fit(config: str, root: Path, *options: str) -> None:
    overrides = ["--trainer.max_steps", "3", "--trainer.default_root_dir", str(root),
                 "--trainer.logger.init_args.save_dir", str(root),
                 "--trainer.enable_progress_bar", "false"]  # fmt: skip
    assert main(["fit", "--config", f"examples/{config}", *overrides, *options]) == 0


def test_pretrain_then_simcse_examples(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the configs name the sample data relative to the repository
    fit("pretrain.yaml", tmp_path / "pretrain")
    pretrained = tmp_path / "pretrain" / "checkpoints" / "last.ckpt"
    fit("simcse.yaml", tmp_path / "simcse", "--model.init_from", str(pretrained))
    embedder = nlpkit.load(tmp_path / "simcse" / "checkpoints" / "last.ckpt")
    assert embedder.tokenizer == nlpkit.load(pretrained).tokenizer
    assert embedder.embed(["the baker"]).shape == (1, 96)
