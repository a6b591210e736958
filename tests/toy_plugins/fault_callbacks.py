"""A Lightning callback the fault tests load by class path: it signals its own process at a chosen step."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytorch_lightning as pl


class SignalAtStep(pl.Callback):
    """Sends ``signal_name`` (``SIGKILL``, ``SIGINT``) to its own process once training reaches ``step``."""

    def __init__(self, step: int, signal_name: str = "SIGKILL") -> None:
        self.step = step
        self.signal_name = signal_name

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        """Signal at ``step``: before the checkpoint callbacks, which Lightning runs last."""
        if trainer.global_step == self.step:
            if self.signal_name == "SIGINT":  # as a terminal's Ctrl-C: a shell's background job starts ignoring it
                signal.signal(signal.SIGINT, signal.default_int_handler)
            os.kill(os.getpid(), getattr(signal, self.signal_name))
