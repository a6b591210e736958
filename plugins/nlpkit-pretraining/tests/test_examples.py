"""The example configs run through the ``nlpkit`` command: masked-LM pretraining, then SimCSE from its checkpoint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nlpkit

ROOT = Path(__file__).resolve().parents[3]


def fit(config: str, root: Path, *options: str) -> None:
    command = [sys.executable, "-m", "nlpkit", "fit", "--config", f"examples/{config}", "--trainer.max_steps", "3",
               "--trainer.default_root_dir", str(root), "--trainer.logger.init_args.save_dir", str(root),
               *options]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def test_pretrain_then_simcse_examples(tmp_path) -> None:
    fit("pretrain.yaml", tmp_path / "pretrain")
    pretrained = tmp_path / "pretrain" / "checkpoints" / "last.ckpt"
    fit("simcse.yaml", tmp_path / "simcse", "--model.init_from", str(pretrained))
    embedder = nlpkit.load(tmp_path / "simcse" / "checkpoints" / "last.ckpt")
    assert embedder.tokenizer == nlpkit.load(pretrained).tokenizer
    assert embedder.embed(["the baker"]).shape == (1, 96)
