"""`make demo`: write the sample data, train a small sentiment classifier with `nlpkit fit`, then predict.

Runs the same commands a user would type; see README.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from nlpkit.testing import write_sentiment_files

ROOT = Path(__file__).resolve().parent
DATA = ROOT / "data" / "sentiment"
NLPKIT = [sys.executable, "-m", "nlpkit"]


def run(*args: str) -> None:
    """Echo and run one nlpkit command; stop on failure."""
    print("$ nlpkit", " ".join(args), flush=True)
    subprocess.run([*NLPKIT, *args], check=True)


def main() -> None:
    """Data, fit, predict."""
    write_sentiment_files(DATA)
    run("fit", "--config", str(ROOT / "sentiment.yaml"))
    run(
        "predict",
        "--ckpt_path",
        "runs/demo/checkpoints/last.ckpt",
        "--data.predict_path",
        str(DATA / "predict.txt"),
        "--trainer.default_root_dir",
        "runs/demo",
        "--trainer.logger",
        "false",
    )


if __name__ == "__main__":
    main()
