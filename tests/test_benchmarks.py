"""The benchmark scripts keep running and keep the shared output format (figures come from `make bench`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
FIELDS = {"bench", "metric", "config", "unit", "nlpkit", "reference", "reference_name", "ratio", "higher_is_better"}


#: every script with a ``--tiny`` smoke run (ner_crf.py is ner.py's CRF part and runs inside its smoke run)
SMOKE_RUNS = sorted(
    path.name
    for path in BENCHMARKS.glob("*.py")
    if not path.name.startswith("_") and '"--tiny"' in path.read_text(encoding="utf-8")
)


def test_every_benchmark_but_the_crf_part_has_a_smoke_run() -> None:
    scripts = {path.name for path in BENCHMARKS.glob("*.py") if not path.name.startswith("_")}
    assert scripts - set(SMOKE_RUNS) == {"ner_crf.py"}


@pytest.mark.parametrize("script", SMOKE_RUNS)
def test_a_benchmark_smoke_run_prints_the_format(script: str) -> None:
    """The script's ``--tiny`` run ends well and prints only JSON figures of the shared format (its corpora must be
    fetched: under CI a missing one fails here)."""
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--tiny"], capture_output=True, text=True, timeout=400
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows and {row["bench"] for row in rows} == {script.removesuffix(".py")}
    for row in rows:
        assert set(row) == FIELDS
        if row["reference"] is not None:
            assert abs(row["ratio"] - row["nlpkit"] / row["reference"]) < 1e-3 * max(1.0, abs(row["ratio"]))
        else:
            assert row["ratio"] is None and row["reference_name"] is None
    if script == "encoders.py":
        assert {row["metric"] for row in rows} == {"train_tokens_per_s", "mfu", "generate_tokens_per_s"}


def test_every_model_benchmark_takes_device_and_precision() -> None:
    """``--device cpu|cuda`` and ``--precision`` on every script that runs a model (start-up only imports;
    serve_load drives ``nlpkit serve``, which serves on the CPU)."""
    scripts = {path.name for path in BENCHMARKS.glob("*.py") if not path.name.startswith("_")}
    with_options = {name for name in scripts if any(call in (BENCHMARKS / name).read_text() for call in DEVICE_PARSERS)}
    assert scripts - with_options == {"startup.py", "serve_load.py"}


DEVICE_PARSERS = ("Device.add_options(parser)", "tiny_and_device(")


def test_cuda_without_a_gpu_is_refused_not_run_on_the_cpu() -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from _common import Device
    finally:
        sys.path.remove(str(BENCHMARKS))
    import argparse

    parser = argparse.ArgumentParser()
    Device.add_options(parser)
    cpu = Device.from_args(parser.parse_args(["--precision", "bf16-mixed"]))
    assert cpu.cli() == ["--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.precision=bf16-mixed"]
    with cpu.autocast():
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16 and torch.is_autocast_enabled("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="--device cuda: torch sees no CUDA device"):
            Device.from_args(parser.parse_args(["--device", "cuda"]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run where the device tool lends one)")
def test_encoders_benchmark_runs_on_the_gpu_in_bf16() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "encoders.py"), "--tiny", "--device", "cuda", "--precision", "bf16-mixed"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows and all(row["config"]["device"] == "cuda" for row in rows)
