"""Callbacks the ``nlpkit`` command adds: checkpoints every epoch and every N steps, predictions in input order."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import BasePredictionWriter, ModelCheckpoint

from nlpkit.io import atomic_write_bytes


class Checkpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint that also rewrites ``last.ckpt`` every ``last_every_n_train_steps`` steps.

    Lightning's own ``every_n_train_steps`` replaces the per-epoch trigger; this keeps both, so a crash mid-epoch
    loses at most ``last_every_n_train_steps`` steps (``0`` turns the step trigger off).
    """

    def __init__(self, *args: Any, last_every_n_train_steps: int = 500, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if last_every_n_train_steps < 0:
            raise ValueError(f"last_every_n_train_steps must be >= 0, got {last_every_n_train_steps}")
        self.last_every_n_train_steps = last_every_n_train_steps
        self._last_step_written = -1

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Lightning's triggers, then ``last.ckpt`` when the step is a multiple of the interval."""
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        step, every = trainer.global_step, self.last_every_n_train_steps
        if every and self.save_last and self.dirpath and step and step % every == 0 and step != self._last_step_written:
            self._last_step_written = step
            trainer.save_checkpoint(os.path.join(self.dirpath, self.CHECKPOINT_NAME_LAST + self.FILE_EXTENSION))


class PredictionWriter(BasePredictionWriter):
    """Writes one JSON line per input, in the input file's order, to ``output_path`` or standard output."""

    def __init__(self, output_path: str | None = None) -> None:
        super().__init__(write_interval="epoch")
        self.output_path = output_path

    def write_on_epoch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, predictions: Any, batch_indices: Any
    ) -> None:
        """Sort the epoch's predictions by input index and write them (once: every process predicted them all)."""
        if not trainer.is_global_zero:
            return
        rows = sorted((row for batch in predictions for row in batch), key=lambda row: row["index"])
        text = "".join(json.dumps(row["prediction"], ensure_ascii=False) + "\n" for row in rows)
        if self.output_path:
            atomic_write_bytes(Path(self.output_path), text.encode("utf-8"))
        else:
            sys.stdout.write(text)
            sys.stdout.flush()
