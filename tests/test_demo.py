"""`make demo` prints nlpkit's own output only: no dependency warnings or Lightning banners; believable odds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"


def test_demo_prints_no_warning_and_calibrated_probabilities(tmp_path) -> None:
    environment = {**os.environ, "COLUMNS": "120", "PYTHONWARNINGS": "default"}  # every warning shown, once
    result = subprocess.run(
        [sys.executable, str(DEMO), "--trainer.max_epochs", "2"],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # warnings and Lightning's log lines (devices, tips, the seed) all go to standard error
    assert result.stderr == ""
    assert "nlpkit fit: 2 epochs" in result.stdout
    assert "runs/demo/checkpoints/best.ckpt" in result.stdout  # the summary names the best checkpoint
    predictions = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(predictions) == 4
    for prediction in predictions:
        assert 0.5 <= prediction["probabilities"][prediction["label"]] < 0.99
