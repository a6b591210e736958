"""Callbacks the ``nlpkit`` command adds: best and last checkpoints, predictions in input order, a progress bar and
the summary printed when ``fit`` ends."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import BasePredictionWriter, ModelCheckpoint, RichProgressBar
from rich.console import Console
from rich.table import Table

from nlpkit.plugin.errors import ConfigError
from nlpkit.plugin.files import atomic_write_bytes


class Checkpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint that also rewrites ``last.ckpt`` every ``last_every_n_train_steps`` steps.

    Lightning's own ``every_n_train_steps`` replaces the per-epoch trigger; this keeps both, so a crash mid-epoch
    loses at most ``last_every_n_train_steps`` steps (``0`` turns the step trigger off). A run without validation
    data has nothing to rank by ``monitor``: it keeps ``last.ckpt`` only, without Lightning's warning. A run that
    ``trainer.max_steps`` ends in mid-epoch validates its final weights, so they can be the best checkpoint
    (Lightning would stop without validating them).
    """

    def __init__(self, *args: Any, last_every_n_train_steps: int = 500, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if last_every_n_train_steps < 0:
            raise ConfigError(f"last_every_n_train_steps must be >= 0, got {last_every_n_train_steps}")
        if self.save_top_k not in (0, 1) and "{" not in (self.filename or "{"):
            raise ConfigError(
                f"checkpoint.save_top_k {self.save_top_k} keeps several checkpoints, so checkpoint.filename "
                f"'{self.filename}' needs a placeholder such as '{{epoch}}-{{val/loss:.3f}}'"
            )
        self.last_every_n_train_steps = last_every_n_train_steps
        self._last_step_written = -1

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Lightning's triggers, then ``last.ckpt`` when the step is a multiple of the interval; the last step of
        ``max_steps`` asks to stop, which has Lightning validate before it does."""
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if 0 < trainer.max_steps <= trainer.global_step:
            trainer.should_stop = True
        step, every = trainer.global_step, self.last_every_n_train_steps
        if every and self.save_last and self.dirpath and step and step % every == 0 and step != self._last_step_written:
            self._last_step_written = step
            trainer.save_checkpoint(os.path.join(self.dirpath, self.CHECKPOINT_NAME_LAST + self.FILE_EXTENSION))

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """A fresh ``fit`` (not a resumed one, whose checkpoint is restored by now) first removes the directory's
        ``best.ckpt`` and ``last.ckpt`` from an earlier run, so neither can be mistaken for this run's."""
        super().on_train_start(trainer, pl_module)
        if trainer.ckpt_path is None and trainer.is_global_zero and self.dirpath:
            for name in (self.filename, self.CHECKPOINT_NAME_LAST):
                if name and "{" not in name:
                    Path(self.dirpath, name + self.FILE_EXTENSION).unlink(missing_ok=True)

    def _save_topk_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict[str, Any]) -> None:
        """Rank by ``monitor`` once validation has logged anything (a run without validation data, or stopped before
        its first validation, keeps ``last.ckpt`` only; a mistyped monitor is Lightning's error). Either way the
        step counts as saved, so ``last.ckpt`` follows every epoch: Lightning writes it only after a new best."""
        validated = any(str(name).startswith("val/") for name in monitor_candidates)  # every Task logs val/loss
        if self.monitor is None or self.monitor in monitor_candidates or validated:
            super()._save_topk_checkpoint(trainer, monitor_candidates)
        self._last_global_step_saved = trainer.global_step


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


class NlpkitProgressBar(RichProgressBar):
    """Lightning's rich progress bar without the logger's version number (``v_num``), which means nothing here."""

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        """The logged progress-bar metrics."""
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


class FitSummary(pl.Callback):
    """Prints one table when ``fit`` ends: the last logged metrics, where the checkpoints are and how to use them."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self._started = time.perf_counter()

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the clock."""
        self._started = time.perf_counter()

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Print the summary once fitting is over and the progress bar has stopped (from the first process)."""
        if stage == "fit" and trainer.is_global_zero:
            self.console.print(self.table(trainer))

    def table(self, trainer: pl.Trainer) -> Table:
        """Metrics, checkpoints and the commands that use the best one."""
        seconds = time.perf_counter() - self._started
        title = f"nlpkit fit: {trainer.current_epoch} epochs, {trainer.global_step} steps, {seconds:.0f} s"
        table = Table(title=title, show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column()
        for name, value in sorted(trainer.callback_metrics.items()):
            if name.startswith(("train/", "val/")) and value.numel() == 1:
                table.add_row(name, f"{float(value):.4g}")
        checkpoint = trainer.checkpoint_callback
        if not isinstance(checkpoint, ModelCheckpoint):
            return table
        best, last = (_shown_path(path) for path in (checkpoint.best_model_path, checkpoint.last_model_path))
        if best and checkpoint.best_model_score is not None:
            table.add_row("best checkpoint", f"{best} ({checkpoint.monitor} {float(checkpoint.best_model_score):.4g})")
        if last:
            table.add_row("last checkpoint", last)
        chosen = best or last
        if chosen:
            table.add_row("predict", f"nlpkit predict --ckpt_path {chosen} --data.predict_path FILE")
            table.add_row("python", f'nlpkit.load("{chosen}").predict(texts)')
        return table


def _shown_path(path: str) -> str:
    """``path`` relative to the working directory when it lies under it."""
    if not path:
        return path
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative
