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

from nlpkit.data.readers import Record
from nlpkit.plugin.console import console as output_console
from nlpkit.plugin.errors import ConfigError
from nlpkit.plugin.files import atomic_write_bytes
from nlpkit.training.checkpoint_io import load_checkpoint
from nlpkit.training.checkpoints import configuration_differences, in_words


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

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """A fresh ``fit`` refuses a directory that holds another run's checkpoints (one whose model or data
        configuration differs), before any step: a run never replaces another's silently."""
        super().on_fit_start(trainer, pl_module)
        if trainer.ckpt_path is not None or not self.dirpath:
            return
        for name in (self.CHECKPOINT_NAME_LAST, self.filename):
            path = Path(self.dirpath, f"{name}{self.FILE_EXTENSION}")
            if name and path.is_file():
                differences = configuration_differences(load_checkpoint(path, mmap=True), pl_module, trainer.datamodule)
                if differences:
                    raise ConfigError(
                        f"{_shown_path(self.dirpath)} holds the checkpoints of another run (its "
                        f"{in_words(differences)}): give this run its own --trainer.default_root_dir, "
                        f"resume that one with --ckpt_path last, or delete {_shown_path(self.dirpath)} to replace it"
                    )
                return

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """A fresh ``fit`` (not a resumed one, whose checkpoint is restored by now) of the same configuration first
        removes the directory's ``best.ckpt`` and ``last.ckpt`` from its earlier run, so neither can be mistaken for
        this run's."""
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
    """Writes one JSON line per input, in the input file's order, to ``output_path`` or standard output.

    Each line says what it answers, then the prediction: ``{"line": 3, "input": "the film was brilliant", "label":
    "pos", ...}`` (the input's line in its file and the text, or the fields, the task read). On standard output
    numbers are rounded to ``digits`` decimals for people; a file, or ``full_precision`` (``nlpkit predict
    --json``), keeps every digit.
    """

    def __init__(self, output_path: str | None = None, full_precision: bool = False, digits: int = 4) -> None:
        super().__init__(write_interval="epoch")
        self.output_path = output_path
        self.digits = None if full_precision or output_path else digits

    def write_on_epoch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, predictions: Any, batch_indices: Any
    ) -> None:
        """Sort the epoch's predictions by input index and write them (once: every process predicted them all)."""
        if not trainer.is_global_zero:
            return
        rows = sorted((row for batch in predictions for row in batch), key=lambda row: row["index"])
        inputs = getattr(trainer.datamodule, "predict_inputs", None) or []
        lines = (self.line(row, inputs[row["index"]] if inputs else None) for row in rows)
        text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
        if self.output_path:
            atomic_write_bytes(Path(self.output_path), text.encode("utf-8"))
        else:
            sys.stdout.write(text)
            sys.stdout.flush()

    def line(self, row: dict[str, Any], read: tuple[Record, dict[str, Any]] | None) -> dict[str, Any]:
        """One output line: where the input was and what it was (or its index), then the prediction."""
        if read is None:
            answered: dict[str, Any] = {"index": row["index"]}
        else:
            record, fields = read
            answered = {"line": record.line, "input": next(iter(fields.values())) if len(fields) == 1 else fields}
        prediction = _rounded(row["prediction"], self.digits)
        return {**answered, **prediction} if isinstance(prediction, dict) else {**answered, "prediction": prediction}


def _rounded(value: Any, digits: int | None) -> Any:
    """``value`` with every float in it rounded to ``digits`` decimals (``None``: unchanged)."""
    if digits is None:
        return value
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {key: _rounded(item, digits) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(item, digits) for item in value]
    return value


class NlpkitProgressBar(RichProgressBar):
    """Lightning's rich progress bar without the logger's version number (``v_num``), which means nothing here,
    and with ``Epoch 6`` rather than ``Epoch 6/-2`` when no epoch limit is set (a time budget ends the run)."""

    def _get_train_description(self, current_epoch: int) -> str:
        """``Epoch N/LAST``, or ``Epoch N`` without a limit (Lightning writes ``max_epochs - 1`` even for -1)."""
        max_epochs = self.trainer.max_epochs
        if max_epochs is not None and max_epochs < 0:
            return f"{f'Epoch {current_epoch}':{len(self.validation_description)}}"
        return super()._get_train_description(current_epoch)

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        """The logged progress-bar metrics."""
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


class FitSummary(pl.Callback):
    """Prints one table when ``fit`` ends: the last logged metrics, where the checkpoints are and how to use them."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or output_console()
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
            for label, command in getattr(trainer.lightning_module, "usage", {}).items():
                table.add_row(label, command.format(checkpoint=chosen))
        return table


def _shown_path(path: str) -> str:
    """``path`` relative to the working directory when it lies under it."""
    if not path:
        return path
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative
