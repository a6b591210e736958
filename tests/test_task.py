"""The Task base through a real task: training with a real Trainer, self-contained checkpoints, transfer."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import partial

import pytest
import torch
from nlpkit_classification.data import ClassificationData
from nlpkit_classification.task import TextClassificationTask

import nlpkit
from nlpkit.models.encoders.rnn import LSTMEncoder
from nlpkit.models.tokenizers import TokenizerOptions
from nlpkit.plugin.errors import CheckpointError
from nlpkit.plugin.loader import get_plugins
from nlpkit.testing import fit_tiny

TEXTS = ["the film was brilliant", "the plot was not great", "the acting was dull", "the ending was not boring"]


def make_task(**options) -> TextClassificationTask:
    encoder = partial(LSTMEncoder, embedding_dim=32, hidden_size=48, bidirectional=True)
    return TextClassificationTask(encoder=encoder, pooling="max", learning_rate=1e-2, **options)


def make_data(files, **options) -> ClassificationData:
    return ClassificationData(
        train_path=str(files["train"]),
        val_path=str(files["val"]),
        batch_size=32,
        tokenizer=TokenizerOptions(vocab_size=150),
        **options,
    )


@pytest.fixture(scope="module")
def trained(sentiment_files, tmp_path_factory):
    torch.manual_seed(0)
    task, data = make_task(), make_data(sentiment_files)
    trainer = fit_tiny(task, data, max_steps=120)
    path = tmp_path_factory.mktemp("ckpt") / "model.ckpt"
    trainer.save_checkpoint(path)
    metrics = trainer.validate(task, datamodule=data, verbose=False)[0]
    return task.eval(), path, metrics


def test_learns_negated_sentiment(trained) -> None:
    task, _, metrics = trained
    assert metrics["val/accuracy"] >= 0.9
    assert [p["label"] for p in task.predict(TEXTS)] == ["pos", "neg", "neg", "pos"]


def test_training_steps_with_torch_fused_adamw_on_the_cpu(trained) -> None:
    optimizer = trained[0].trainer.optimizers[0]
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["fused"] is True


def test_checkpoint_is_self_contained_plain_data(trained) -> None:
    task, path, _ = trained
    checkpoint = torch.load(path, weights_only=True)
    section = checkpoint["nlpkit"]
    assert section["tokenizer"] == task.tokenizer.to_bytes()
    assert section["labels"] == ["neg", "pos"]
    assert section["task"] == "text-classification"
    assert section["plugins"]["classification"] == "0.1.0" and section["plugins"]["core"] == "0.1.0"
    hparams = checkpoint["hyper_parameters"]
    assert hparams["encoder"] == {
        "class_path": "nlpkit.models.encoders.rnn.LSTMEncoder",
        "init_args": task.encoder.spec()["init_args"],
    }
    assert hparams["head"]["class_path"] == "nlpkit.models.heads.LinearHead"


def test_load_in_a_fresh_process_predicts_the_same(trained) -> None:
    task, path, _ = trained
    script = f"import json, sys, nlpkit\nprint(json.dumps(nlpkit.load(sys.argv[1]).predict({TEXTS!r})))\n"
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    for ours, theirs in zip(task.predict(TEXTS), loaded, strict=True):
        assert ours["label"] == theirs["label"]
        assert ours["probabilities"] == pytest.approx(theirs["probabilities"], abs=1e-6)


def test_batching_and_padding_never_change_a_prediction(trained) -> None:
    task, _, _ = trained
    texts = [*TEXTS, "the soundtrack felt charming to me honestly and in the end the cast was superb"]
    one_by_one = task.predict(texts, batch_size=1)
    together = task.predict(texts, batch_size=8)
    for single, batched in zip(one_by_one, together, strict=True):
        assert single["probabilities"] == pytest.approx(batched["probabilities"], abs=1e-5)


def test_load_from_checkpoint_rebuilds_and_refuses_another_task(trained) -> None:
    task, path, _ = trained
    reloaded = TextClassificationTask.load_from_checkpoint(path, weights_only=True)
    assert reloaded.labels == task.labels and reloaded.tokenizer == task.tokenizer

    class OtherTask(TextClassificationTask):
        pass

    other = OtherTask(encoder=LSTMEncoder)
    with pytest.raises(CheckpointError, match="made by task text-classification, not by OtherTask"):
        other.on_load_checkpoint(torch.load(path, weights_only=True))
    assert not other.is_built


def test_init_from_transfers_the_encoder_and_tokenizer(trained) -> None:
    task, path, _ = trained
    fresh = make_task(init_from=str(path))
    assert fresh.tokenizer == task.tokenizer
    fresh.bind(fresh.tokenizer, ["a", "b", "c"])
    trained_state, fresh_state = task.encoder.state_dict(), fresh.encoder.state_dict()
    assert all(torch.equal(trained_state[key], fresh_state[key]) for key in trained_state)
    assert fresh.head.net[-1].out_features == 3


def test_load_refuses_non_checkpoints(tmp_path) -> None:
    torch.save({"state_dict": {}}, tmp_path / "plain.ckpt")
    with pytest.raises(CheckpointError, match="not an nlpkit checkpoint"):
        nlpkit.load(tmp_path / "plain.ckpt")
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        nlpkit.load(tmp_path / "missing.ckpt")


def test_third_party_head_and_metric_extend_a_fit(plugin_site, sentiment_files) -> None:
    plugin_site("nlpkit-toy", "toy", "nlpkit_toy")
    plugins = get_plugins()
    task = make_task(head=plugins["heads"]["scaled-linear"], metrics=["accuracy", "error-rate"])
    data = make_data(sentiment_files)
    trainer = fit_tiny(task, data, max_steps=5)
    metrics = trainer.validate(task, datamodule=data, verbose=False)[0]
    assert type(task.head).__name__ == "ScaledLinearHead"
    assert metrics["val/error-rate"] == pytest.approx(1 - metrics["val/accuracy"], abs=1e-6)


def test_trains_under_bf16_autocast_and_keeps_fp32_weights(sentiment_files) -> None:
    """With gradients clipped, as ``nlpkit fit`` does by default: Lightning refuses to clip a fused AdamW's
    gradients under mixed precision, so the task takes the foreach one there."""
    from nlpkit.models.encoders.transformer import TransformerEncoder

    encoder = partial(TransformerEncoder, d_model=32, num_heads=2, num_layers=1, positions="rotary")
    task = TextClassificationTask(encoder=encoder)
    data = make_data(sentiment_files)
    trainer = fit_tiny(task, data, max_steps=3, precision="bf16-mixed", gradient_clip_val=1.0)
    assert not trainer.optimizers[0].defaults["fused"]
    metrics = trainer.validate(task, datamodule=data, verbose=False)[0]
    assert torch.isfinite(torch.tensor(metrics["val/loss"]))
    assert all(p.dtype == torch.float32 for p in task.parameters())
