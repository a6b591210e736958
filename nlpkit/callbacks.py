"""Callbacks the ``nlpkit`` command adds: writing predictions in input order."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import BasePredictionWriter

from nlpkit.io import atomic_write_bytes


class PredictionWriter(BasePredictionWriter):
    """Writes one JSON line per input, in the input file's order, to ``output_path`` or standard output."""

    def __init__(self, output_path: str | None = None) -> None:
        super().__init__(write_interval="epoch")
        self.output_path = output_path

    def write_on_epoch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, predictions: Any, batch_indices: Any
    ) -> None:
        """Sort the epoch's predictions by input index and write them."""
        rows = sorted((row for batch in predictions for row in batch), key=lambda row: row["index"])
        text = "".join(json.dumps(row["prediction"], ensure_ascii=False) + "\n" for row in rows)
        if self.output_path:
            atomic_write_bytes(Path(self.output_path), text.encode("utf-8"))
        else:
            sys.stdout.write(text)
            sys.stdout.flush()
