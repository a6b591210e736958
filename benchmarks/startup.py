"""Start-up cost, each in fresh processes: ``import nlpkit``, plugin discovery, ``nlpkit --help``, ``nlpkit
plugins``, and ``nlpkit predict`` of the demo's sentiment model on 4 lines, end to end.

References, measured in the same run: a bare interpreter (for the import, discovery, help and plugins, which load
no torch) and ``import pytorch_lightning`` alone (for predict: the least a command pays that builds a Lightning
module). The model predicted with is ``--checkpoint`` (default: the demo's ``runs/demo/checkpoints/best.ckpt``), or,
where that is missing, ``examples/sentiment.yaml`` trained for a few steps (the same model, so the same load and
predict cost). ``--tiny`` times each once, predicting with a small LSTM.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import TINY_FIT, emit, fit_config, median_seconds

import nlpkit

ROOT = Path(__file__).resolve().parents[1]
SENTIMENT = ROOT / "examples" / "data" / "sentiment"
NLPKIT = [sys.executable, "-m", "nlpkit"]


def python(code: str) -> None:
    """Run ``code`` in a fresh interpreter."""
    subprocess.run([sys.executable, "-c", code], check=True)


def command(*args: str, cwd: Path | None = None) -> None:
    """Run ``nlpkit ARGS`` in a fresh process, its output discarded."""
    subprocess.run([*NLPKIT, *args], check=True, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


#: ``--tiny``: a small LSTM instead of the demo's model (the smoke run checks the output, not the figure)
TINY_MODEL = ["--model.encoder", "lstm", "--model.encoder.embedding_dim", "8", "--model.encoder.hidden_size", "8",
              "--data.tokenizer.vocab_size", "100"]  # fmt: skip


def demo_checkpoint(path: Path, directory: Path, tiny: bool) -> Path:
    """``path`` when it exists, else the demo's model trained for a few steps in ``directory`` (in this process:
    only its predicting is timed)."""
    if path.is_file() and not tiny:
        return path
    files = {"train": SENTIMENT / "train.csv", "val": SENTIMENT / "val.csv"}
    return fit_config(
        ROOT / "examples" / "sentiment.yaml", files, 0, directory, [*TINY_FIT, *(TINY_MODEL if tiny else [])]
    )


def main(argv: list[str] | None = None) -> None:
    """Print the start-up figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="time each start once")
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "runs" / "demo" / "checkpoints" / "best.ckpt")
    args = parser.parse_args(argv)
    repeats, warmup = (1, 0) if args.tiny else (5, 1)
    bare = median_seconds(lambda: python("pass"), repeats, warmup)
    imported = median_seconds(lambda: python("import nlpkit"), repeats, warmup)
    emit("startup", "import_s", "s", imported, bare, "bare interpreter start", False, command="import nlpkit")
    discovery = median_seconds(lambda: python("from nlpkit.plugin.loader import discover; discover()"), repeats, warmup)
    plugins = len(nlpkit.get_plugins().info)
    emit("startup", "plugin_discovery_s", "s", discovery, bare, "bare interpreter start", False,
         command="nlpkit.plugin.loader.discover()", plugins=plugins)  # fmt: skip
    for name, words in (("help_s", ["--help"]), ("plugins_s", ["plugins"])):
        taken = median_seconds(lambda words=words: command(*words), repeats, warmup)
        emit("startup", name, "s", taken, bare, "bare interpreter start", False, command=" ".join(["nlpkit", *words]))
    lightning = median_seconds(lambda: python("import pytorch_lightning"), repeats, warmup)
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = demo_checkpoint(args.checkpoint, Path(scratch) / "demo", args.tiny)
        predict = ["predict", "--ckpt_path", str(checkpoint), "--data.predict_path", str(SENTIMENT / "predict.txt")]
        taken = median_seconds(lambda: command(*predict, cwd=Path(scratch)), repeats, warmup)
    emit("startup", "predict_s", "s", taken, lightning, "import pytorch_lightning alone", False,
         command="nlpkit predict (the demo model, 4 lines)", lines=4)  # fmt: skip


if __name__ == "__main__":
    main()
