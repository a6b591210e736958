"""`make demo`: write the sample data, train a small sentiment classifier with `nlpkit fit`, then predict
with `nlpkit predict` and with the Python API. Runs the same commands a user would type; see README.md.

The sample labels carry 10% annotation noise, so a calibrated model's probabilities stay below 1. Any arguments
are passed on to `nlpkit fit` (``--trainer.max_epochs 1``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

import nlpkit
from nlpkit.testing import write_sentiment_files

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data" / "sentiment"
NLPKIT = [sys.executable, "-m", "nlpkit"]
RUN = "runs/demo"
CHECKPOINT = f"{RUN}/checkpoints/best.ckpt"


def run(*args: str) -> None:
    """Echo and run one nlpkit command; stop on failure."""
    print("$ nlpkit", " ".join(args), flush=True)
    subprocess.run([*NLPKIT, *args], check=True)


def main() -> None:
    """Data, fit, predict from the command line, then from Python."""
    files = write_sentiment_files(DATA, label_noise=0.1)
    run(
        "fit",
        "--config", str(ROOT / "sentiment.yaml"),
        "--data.train_path", str(files["train"]),
        "--data.val_path", str(files["val"]),
        "--trainer.enable_model_summary", "false",
        *sys.argv[1:],
    )  # fmt: skip
    run(
        "predict",
        "--ckpt_path", CHECKPOINT,
        "--data.predict_path", str(files["predict"]),
        "--trainer.logger", "false",
        "--trainer.enable_progress_bar", "false",
    )  # fmt: skip
    texts = files["predict"].read_text(encoding="utf-8").splitlines()
    table = Table(title=f'Python: nlpkit.load("{RUN}").predict(texts)')
    for column in ("text", "label", "p(label)"):
        table.add_column(column)
    for text, result in zip(texts, nlpkit.load(RUN).predict(texts), strict=True):
        table.add_row(text, result["label"], f"{result['probabilities'][result['label']]:.3f}")
    Console().print(table)


if __name__ == "__main__":
    main()
