"""The optimizer and learning-rate schedule of every task: warm-up then cosine over the steps, or over the time
budget; AdamW or plain SGD."""

from __future__ import annotations

import itertools
import math
from functools import partial

import pytest
import pytorch_lightning as pl
import torch
from nlpkit_classification.data import ClassificationData
from nlpkit_classification.task import TextClassificationTask

from nlpkit.models.encoders.cnn import CNNEncoder
from nlpkit.models.tokenizers import TokenizerOptions
from nlpkit.plugin.errors import ConfigError
from nlpkit.testing import fit_tiny, write_sentiment_files

PEAK, MIN_RATIO, WARMUP = 1e-2, 0.1, 5


class RateLog(pl.Callback):
    """The learning rate each training step ran with."""

    def __init__(self) -> None:
        self.rates: list[float] = []

    def on_train_batch_start(self, trainer: pl.Trainer, *args: object) -> None:
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> ClassificationData:
    files = write_sentiment_files(tmp_path_factory.mktemp("sentiment"), train=64, val=16, seed=0)
    return ClassificationData(
        train_path=str(files["train"]), val_path=str(files["val"]), batch_size=8,
        tokenizer=TokenizerOptions(vocab_size=60),
    )  # fmt: skip


def task(**options: object) -> TextClassificationTask:
    torch.manual_seed(0)
    encoder = partial(CNNEncoder, embedding_dim=8, num_filters=4)
    return TextClassificationTask(
        encoder=encoder, learning_rate=PEAK, warmup_steps=WARMUP, min_lr_ratio=MIN_RATIO, **options
    )


def cosine(progress: float) -> float:
    return PEAK * (MIN_RATIO + (1 - MIN_RATIO) * 0.5 * (1 + math.cos(math.pi * progress)))


def test_warm_up_then_cosine_over_the_steps(data) -> None:
    log = RateLog()
    fit_tiny(task(), data, max_steps=30, callbacks=[log], limit_val_batches=0)
    expected = [PEAK * (s + 1) / WARMUP if s < WARMUP else cosine((s - WARMUP) / (30 - WARMUP)) for s in range(30)]
    assert log.rates == pytest.approx(expected, rel=1e-6)


def test_a_time_budget_decays_the_rate_by_the_time_it_stops(data) -> None:
    """Far more epochs than the budget allows: the rate follows the clock, not the steps, and ends near its floor."""
    log = RateLog()
    trainer = fit_tiny(
        task(), data, max_steps=-1, max_epochs=10_000, max_time={"seconds": 3}, callbacks=[log], limit_val_batches=0
    )
    assert trainer.current_epoch < 10_000  # the budget stopped it
    decayed = log.rates[WARMUP:]
    assert all(later <= earlier for earlier, later in itertools.pairwise(decayed))
    assert decayed[-1] < cosine(0.8)  # over the steps alone it would still be at its peak
    assert decayed[-1] >= PEAK * MIN_RATIO


def test_only_a_time_budget_needs_no_step_count_but_a_warmup_ratio_does(data) -> None:
    log = RateLog()
    fit_tiny(task(), data, max_steps=-1, max_epochs=-1, max_time={"seconds": 2}, callbacks=[log], limit_val_batches=0)
    assert log.rates[-1] < cosine(0.8)
    with pytest.raises(ConfigError, match="warmup_ratio is a fraction of the training steps"):
        fit_tiny(
            TextClassificationTask(encoder=partial(CNNEncoder, embedding_dim=8, num_filters=4), warmup_ratio=0.1),
            data, max_steps=-1, max_epochs=-1, max_time={"seconds": 2}, limit_val_batches=0,
        )  # fmt: skip


class UnreadRowsMoved(pl.Callback):
    """How many token-embedding rows that a step's batch never read changed in that step, and how many it read did."""

    def __init__(self) -> None:
        self.unread: list[int] = []
        self.read: list[int] = []

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, batch: dict, *args: object) -> None:
        self.before = module.encoder.token_embedding.weight.detach().clone()
        self.batch_rows = batch["tokens"].unique()

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args: object) -> None:
        changed = (module.encoder.token_embedding.weight.detach() != self.before).any(dim=1)
        self.read.append(int(changed[self.batch_rows].sum()))
        changed[self.batch_rows] = False
        self.unread.append(int(changed.sum()))


@pytest.mark.parametrize(("optimizer", "expected"), [("sgd", torch.optim.SGD), ("adamw", torch.optim.AdamW)])
def test_sgd_moves_only_the_embedding_rows_a_batch_reads(data, optimizer, expected) -> None:
    """fastText's optimiser: under plain SGD a step changes only the rows its batch read; AdamW's momentum goes on
    moving rows that earlier batches read."""
    log = UnreadRowsMoved()
    trainer = fit_tiny(task(optimizer=optimizer), data, max_steps=6, callbacks=[log], limit_val_batches=0)
    assert type(trainer.optimizers[0]) is expected
    assert all(count > 0 for count in log.read)  # both learn
    if optimizer == "sgd":
        assert log.unread == [0] * 6
    else:
        assert log.unread[0] == 0 and max(log.unread[1:]) > 0


def test_an_unknown_optimizer_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="optimizer must be 'adamw' or 'sgd', got 'adam'"):
        task(optimizer="adam")
