"""The learning-rate schedule every task trains with: linear warm-up, then cosine decay laid over the run's steps or
its time budget (``trainer.max_time``), whichever ends first, so a run stopped by its budget ends decayed."""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Timer

from nlpkit.plugin.errors import ConfigError


def warmup_cosine(
    optimizer: torch.optim.Optimizer, trainer: pl.Trainer, warmup_steps: int, warmup_ratio: float, min_lr_ratio: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """Warm up linearly over ``warmup_steps`` (or ``warmup_ratio`` of the steps), then decay by a cosine to
    ``min_lr_ratio`` of the peak at the last step or when the time budget runs out, whichever comes first.

    The elapsed time is rank 0's, so every process of a distributed run keeps the same rate.
    """
    steps = trainer.estimated_stepping_batches  # inf, or -1 (max_steps), for data of unknown length
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer) and c.time_remaining() is not None), None)
    total = None if math.isinf(steps) or steps < 0 else max(int(steps), 1)
    if total is None and timer is None:
        raise ConfigError("training data of unknown length (a streamed file) needs trainer.max_steps or max_time")
    if total is None and warmup_ratio:
        raise ConfigError("warmup_ratio is a fraction of the training steps: give trainer.max_steps or max_epochs")
    warmup = warmup_steps if total is None else min(round(warmup_ratio * total) or warmup_steps, total)
    budget = None if timer is None else timer.time_elapsed() + (timer.time_remaining() or 0.0)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = 0.0 if total is None else (step - warmup) / max(total - warmup, 1)
        if timer is not None and budget:
            progress = max(progress, trainer.strategy.broadcast(timer.time_elapsed()) / budget)
        progress = min(progress, 1.0)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
