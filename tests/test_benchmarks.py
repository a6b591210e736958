"""The benchmark scripts keep running and keep the shared output format (figures come from `make bench`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
FIELDS = {"bench", "metric", "config", "unit", "nlpkit", "reference", "reference_name", "ratio", "higher_is_better"}


def test_encoders_benchmark_smoke_run_prints_the_format() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "encoders.py"), "--tiny"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {row["metric"] for row in rows} == {"train_tokens_per_s", "mfu", "generate_tokens_per_s"}
    for row in rows:
        assert set(row) == FIELDS
        if row["reference"] is not None:
            assert abs(row["ratio"] - row["nlpkit"] / row["reference"]) < 1e-3
        else:
            assert row["ratio"] is None and row["reference_name"] is None
