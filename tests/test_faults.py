"""Faults: a killed or interrupted fit resumes exactly, saving is atomic, and non-finite losses never reach weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from nlpkit_classification.data import ClassificationData
from nlpkit_classification.task import TextClassificationTask

from nlpkit.models.encoders.rnn import LSTMEncoder
from nlpkit.models.tokenizers import TokenizerOptions
from nlpkit.plugin.errors import CheckpointError, ConfigError, TrainingError
from nlpkit.testing import fit_tiny
from nlpkit.training.checkpoint_io import AtomicCheckpointIO, load_checkpoint
from tests.conftest import TOY_PLUGINS, run_nlpkit


def fit_config(path: Path, files: dict[str, Path], root: Path, callbacks: str = "") -> Path:
    """A deterministic tiny fit: 30 steps of batches of 16 (19 batches an epoch), last.ckpt every 5 steps."""
    path.write_text(
        textwrap.dedent(f"""\
        seed_everything: 0
        trainer:
          max_steps: 30
          deterministic: true
          default_root_dir: {root}
          enable_progress_bar: false
          enable_model_summary: false
          logger: false
          {callbacks}
        checkpoint:
          last_every_n_train_steps: 5
        model:
          class_path: text-classification
          init_args:
            encoder: {{class_path: lstm, init_args: {{embedding_dim: 16, hidden_size: 16}}}}
        data:
          class_path: classification
          init_args:
            train_path: {files["train"]}
            val_path: {files["val"]}
            batch_size: 16
            tokenizer: {{vocab_size: 100}}
        """),
        encoding="utf-8",
    )
    return path


def signal_at(step: int, name: str) -> str:
    spec = f"{{class_path: fault_callbacks.SignalAtStep, init_args: {{step: {step}, signal_name: {name}}}}}"
    return f"callbacks: [{spec}]"


def with_callbacks() -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(TOY_PLUGINS), os.environ.get("PYTHONPATH", "")])}


def test_a_fit_killed_mid_epoch_resumes_to_the_same_weights(tmp_path: Path, sentiment_files) -> None:
    reference = fit_config(tmp_path / "reference.yaml", sentiment_files, tmp_path / "reference")
    assert run_nlpkit("fit", "--config", str(reference), cwd=tmp_path).returncode == 0

    killed = fit_config(tmp_path / "killed.yaml", sentiment_files, tmp_path / "killed", signal_at(23, "SIGKILL"))
    crash = run_nlpkit("fit", "--config", str(killed), cwd=tmp_path, env=with_callbacks())
    assert crash.returncode == -signal.SIGKILL
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    assert load_checkpoint(last)["global_step"] == 20  # mid-epoch: the second epoch started at step 19

    plain = fit_config(tmp_path / "resume.yaml", sentiment_files, tmp_path / "killed")
    resume = run_nlpkit("fit", "--config", str(plain), "--ckpt_path", "last", cwd=tmp_path)
    assert resume.returncode == 0, resume.stderr[-3000:]
    finished = load_checkpoint(last)
    expected = load_checkpoint(tmp_path / "reference" / "checkpoints" / "last.ckpt")
    assert finished["global_step"] == expected["global_step"] == 30
    for name, value in expected["state_dict"].items():
        torch.testing.assert_close(finished["state_dict"][name], value, rtol=0, atol=0, msg=name)


def test_ctrl_c_leaves_the_last_good_checkpoint(tmp_path: Path, sentiment_files) -> None:
    config = fit_config(tmp_path / "fit.yaml", sentiment_files, tmp_path / "run", signal_at(12, "SIGINT"))
    interrupted = run_nlpkit("fit", "--config", str(config), cwd=tmp_path, env=with_callbacks())
    assert interrupted.returncode != 0
    assert "Traceback" not in interrupted.stderr
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 10


SAVER = """
import sys, torch
from nlpkit.training.checkpoint_io import AtomicCheckpointIO
io, path, step = AtomicCheckpointIO(), sys.argv[1], 0
while True:  # ~64 MB checkpoints, each filled with its own step number
    step += 1
    io.save_checkpoint({"step": step, "weights": torch.full((16_000_000,), float(step))}, path)
    print(step, flush=True)
"""


def test_a_kill_while_saving_never_leaves_a_corrupt_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    for delay in (0.05, 0.21, 0.3, 0.55):
        saver = subprocess.Popen([sys.executable, "-c", SAVER, str(path)], stdout=subprocess.PIPE, text=True)
        assert saver.stdout.readline()  # one checkpoint is complete
        time.sleep(delay)  # then die at some point of a later save
        saver.send_signal(signal.SIGKILL)
        saver.wait()
        checkpoint = load_checkpoint(path)
        assert bool((checkpoint["weights"] == checkpoint["step"]).all())


def tiny_classifier(**options) -> TextClassificationTask:
    return TextClassificationTask(encoder=lambda vocab: LSTMEncoder(vocab, embedding_dim=8, hidden_size=8), **options)


class LossBecomesNaN(TextClassificationTask):
    """A real classifier whose loss turns NaN on the 4th training batch (as with an overflow)."""

    def training_output(self, batch):
        output = super().training_output(batch)
        self.batches_seen = getattr(self, "batches_seen", 0) + 1
        if self.batches_seen == 4:
            output.loss = output.loss * float("nan")
        return output

    def on_train_batch_start(self, batch, batch_idx) -> None:
        self.weights_before = [parameter.detach().clone() for parameter in self.parameters()]

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.batches_seen == 4:
            pairs = zip(self.weights_before, self.parameters(), strict=True)
            self.changed_by_nan_batch = any(not torch.equal(before, now) for before, now in pairs)


def nan_task(**options) -> LossBecomesNaN:
    return LossBecomesNaN(encoder=lambda vocab: LSTMEncoder(vocab, embedding_dim=8, hidden_size=8), **options)


def sentiment_data(files) -> ClassificationData:
    return ClassificationData(train_path=str(files["train"]), batch_size=16, tokenizer=TokenizerOptions(vocab_size=100))


def test_a_nonfinite_loss_stops_training_naming_the_step(sentiment_files) -> None:
    task = nan_task()
    with pytest.raises(TrainingError, match=r"the training loss is nan at step 3 \(epoch 0, batch 3\)"):
        fit_tiny(task, sentiment_data(sentiment_files), max_steps=10)
    assert all(parameter.isfinite().all() for parameter in task.parameters())


def test_a_nonfinite_loss_can_skip_its_batch(sentiment_files) -> None:
    task = nan_task(nonfinite_loss="skip")
    trainer = fit_tiny(task, sentiment_data(sentiment_files), max_steps=10)
    assert trainer.global_step == task.batches_seen == 10 and task.skipped_batches == 1
    assert task.changed_by_nan_batch is False  # no backward, no update: the optimizer saw no gradients
    assert all(parameter.isfinite().all() for parameter in task.parameters())


def test_an_unknown_nonfinite_loss_policy_is_refused() -> None:
    with pytest.raises(ConfigError, match="nonfinite_loss must be 'stop' or 'skip', got 'Stop'"):
        tiny_classifier(nonfinite_loss="Stop")


def test_non_finite_weights_are_never_saved(tmp_path: Path, sentiment_files) -> None:
    task = tiny_classifier()
    trainer = fit_tiny(task, sentiment_data(sentiment_files), max_steps=2)
    with torch.no_grad():
        next(task.parameters())[0] = float("inf")
    trainer.strategy.checkpoint_io = AtomicCheckpointIO()
    with pytest.raises(CheckpointError, match="refusing to save a checkpoint whose weights are not finite"):
        trainer.save_checkpoint(tmp_path / "bad.ckpt")
    assert not (tmp_path / "bad.ckpt").exists()
