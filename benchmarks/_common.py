"""The benchmark output format shared by every script: one JSON object per figure (see docs/benchmarks.md)."""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import string
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from nlpkit.cli.environment import memory_allocator
from nlpkit.models.tokenizers import Tokenizer


def median_seconds(
    run: Callable[[], object], repeats: int = 5, warmup: int = 1, sync: Callable[[], None] | None = None
) -> float:
    """Median wall time of ``run`` over ``repeats`` calls after ``warmup`` calls; ``sync`` (a device's
    :meth:`Device.sync`) waits for queued GPU work before each clock reading."""
    return interleaved_medians([run], repeats, warmup, sync)[0]


def interleaved_medians(
    runs: Sequence[Callable[[], object]],
    repeats: int = 5,
    warmup: int = 1,
    sync: Callable[[], None] | None = None,
) -> list[float]:
    """Median wall time of each of ``runs``, timed in turns (one call of each per round), so that a change
    in the machine's speed during the measurement falls on all of them alike."""
    sync = sync or (lambda: None)
    for _ in range(warmup):
        for run in runs:
            run()
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for run, taken in zip(runs, times, strict=True):
            sync()
            start = time.perf_counter()
            run()
            sync()
            taken.append(time.perf_counter() - start)
    return [statistics.median(taken) for taken in times]


@dataclass(frozen=True)
class Device:
    """Where a benchmark's nlpkit models (and the references that can) run, and in which precision: the
    ``--device`` and ``--precision`` options every training or inference benchmark takes."""

    name: str = "cpu"
    precision: str = "32-true"

    @staticmethod
    def add_options(parser: argparse.ArgumentParser) -> None:
        """``--device cpu|cuda`` and ``--precision`` (Lightning's names)."""
        parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where the models run")
        parser.add_argument("--precision", choices=list(AUTOCAST_DTYPES), default="32-true", help="Lightning's name")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Device:
        """The parsed options; ``--device cuda`` without a CUDA device is an error, not a silent CPU run."""
        if args.device == "cuda" and not torch.cuda.is_available():
            raise SystemExit("--device cuda: torch sees no CUDA device on this machine")
        return cls(args.device, args.precision)

    def trainer(self) -> dict[str, Any]:
        """``pl.Trainer`` arguments."""
        return {"accelerator": "gpu" if self.name == "cuda" else "cpu", "devices": 1, "precision": self.precision}

    def cli(self) -> list[str]:
        """The same as ``nlpkit fit`` options."""
        return [f"--trainer.{key}={value}" for key, value in self.trainer().items()]

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Autocast for code that runs outside a Trainer (nothing for 32-true)."""
        dtype = AUTOCAST_DTYPES[self.precision]
        return torch.autocast(self.name, dtype=dtype) if dtype is not None else contextlib.nullcontext()

    def sync(self) -> None:
        """Wait for the GPU's queued work (nothing on the CPU), so clocks measure what ran."""
        if self.name == "cuda":
            torch.cuda.synchronize()

    def config(self) -> dict[str, Any]:
        """The figures' config entries (the memory allocator too: preloading tcmalloc changes CPU figures)."""
        return {"device": self.name, "precision": self.precision, "allocator": memory_allocator()}


AUTOCAST_DTYPES = {"32-true": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def emit(
    bench: str,
    metric: str,
    unit: str,
    value: float,
    reference: float | None = None,
    reference_name: str | None = None,
    higher_is_better: bool = True,
    **config: Any,
) -> dict[str, Any]:
    """Print one figure as a JSON line; ``ratio`` is nlpkit / reference, both from the same run."""
    row = {
        "bench": bench,
        "metric": metric,
        "config": config,
        "unit": unit,
        "nlpkit": round(value, 6),
        "reference": None if reference is None else round(reference, 6),
        "reference_name": reference_name,
        "ratio": None if reference is None else round(value / reference, 4),
        "higher_is_better": higher_is_better,
    }
    print(json.dumps(row), flush=True)
    return row


def synthetic_tokenizer(vocab_size: int) -> Tokenizer:
    """A SentencePiece model of about ``vocab_size`` pieces, trained on random words."""
    rng = random.Random(0)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(vocab_size * 3)]
    lines = [" ".join(rng.choices(words, k=12)) for _ in range(vocab_size * 4)]
    return Tokenizer.train(lines, vocab_size=vocab_size, model_type="bpe")


class StepClock(pl.Callback):
    """Records the time at the start of training and at the end of every step, and what ``count`` says of a batch."""

    def __init__(self, count: Callable[[Any], int] | None = None) -> None:
        self.stamps: list[float] = []
        self.counts: list[int] = []
        self.count = count

    def on_train_batch_start(self, trainer: pl.Trainer, *args: object) -> None:
        """Start the clock at the first step."""
        if not self.stamps:
            self.stamps.append(time.perf_counter())

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: object, outputs: object, batch: Any, *args: object
    ) -> None:
        """Stamp the end of a step (once the GPU has run it)."""
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()
        self.stamps.append(time.perf_counter())
        if self.count is not None:
            self.counts.append(self.count(batch))


def timed_steps(task: Any, batches: list[dict[str, Any]], device: Device, clip: float) -> list[float]:
    """Train ``task`` (built) on the collated ``batches`` with a quiet Lightning Trainer, gradients clipped at
    ``clip``; the time at the start and at the end of every step."""
    clock = StepClock()
    trainer = pl.Trainer(
        max_steps=len(batches), **device.trainer(), gradient_clip_val=clip, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, callbacks=[clock],
    )  # fmt: skip
    trainer.fit(task, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))
    return clock.stamps


def read_labeled(path: Path, limit: int | None = None) -> list[tuple[str, str]]:
    """``(text, label)`` of a jsonl split, the first ``limit`` of them (lines end at ``\\n`` only: a text may hold
    other line separators)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]
    return [(row["text"], row["label"]) for row in rows[:limit]]


def write_labeled(path: Path, rows: list[tuple[str, str]]) -> Path:
    """Write ``(text, label)`` rows as a jsonl split."""
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows), encoding="utf-8")
    return path


#: what ``--tiny`` adds to a fit: a few steps of one epoch and a few validation batches, whatever budget the
#: example sets
TINY_FIT = ["--trainer.max_epochs", "1", "--trainer.max_time", "null", "--trainer.max_steps", "8",
            "--trainer.limit_val_batches", "2"]  # fmt: skip


def fit_config(config: Path, files: dict[str, Path], seed: int, directory: Path, options: list[str]) -> Path:
    """``nlpkit fit --config config`` on ``files`` (train, val) with ``seed`` and ``options``, as a user runs it;
    the best checkpoint. Its output goes to standard error, so standard output stays JSON lines."""
    from nlpkit.cli.main import main as nlpkit_command

    argv = ["fit", "--config", str(config), "--data.train_path", str(files["train"]),
            "--data.val_path", str(files["val"]), "--seed_everything", str(seed),
            "--trainer.default_root_dir", str(directory), "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false", *options]  # fmt: skip
    with contextlib.redirect_stdout(sys.stderr):
        status = nlpkit_command(argv)
    if status != 0:
        raise SystemExit(f"nlpkit fit failed ({status}): {' '.join(argv)}")
    return directory / "checkpoints" / "best.ckpt"


def jsonl_splits(
    prepared: dict[str, Path], limit: int | None, directory: Path
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Path]]:
    """The first ``limit`` records of the train, val and test jsonl splits of a corpus, and copies of just those
    records in ``directory`` (the files a fit reads)."""
    records, files = {}, {}
    for split in ("train", "val", "test"):
        lines = prepared[split].read_text(encoding="utf-8").splitlines()[:limit]
        records[split] = [json.loads(line) for line in lines]
        files[split] = directory / f"{split}.jsonl"
        files[split].write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return records, files


def tiny_and_device(description: str, what: str, argv: list[str] | None) -> tuple[bool, Device]:
    """Parse a benchmark's ``--tiny`` (a smoke run on ``what``) and its :class:`Device` options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--tiny", action="store_true", help=f"a smoke run on {what}")
    Device.add_options(parser)
    args = parser.parse_args(argv)
    return args.tiny, Device.from_args(args)
