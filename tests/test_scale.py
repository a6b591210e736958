"""Scale: batch samplers shard by process and resume mid-epoch; two DDP processes train like one."""

from __future__ import annotations

import json
from pathlib import Path

import pytorch_lightning as pl
from nlpkit_classification.data import ClassificationData

import nlpkit
from nlpkit.data.batching import BucketBatchSampler
from nlpkit.testing import sentiment_corpus
from tests.conftest import run_nlpkit


def test_processes_share_each_global_batch_of_one_process() -> None:
    lengths = [i % 7 for i in range(45)]
    single = list(BucketBatchSampler(lengths, 15, seed=3))  # 3 global batches of 15
    shards = [list(BucketBatchSampler(lengths, 5, seed=3, num_replicas=3, rank=rank)) for rank in range(3)]
    assert [len(batches) for batches in shards] == [3, 3, 3]
    for step, batch in enumerate(single):
        assert sorted(index for shard in shards for index in shard[step]) == sorted(batch)
    tiny = [list(BucketBatchSampler([1, 2], 1, num_replicas=3, rank=rank)) for rank in range(3)]
    assert all(len(batches) == 1 and len(batches[0]) == 1 for batches in tiny)  # every process gets a step


def test_a_sampler_resumes_an_epoch_after_the_batches_already_seen() -> None:
    lengths = [i % 5 for i in range(40)]
    sampler = BucketBatchSampler(lengths, 4, seed=1)
    sampler.set_epoch(2)
    epoch = list(sampler)
    sampler.skip_next(7)
    assert list(sampler) == epoch[7:]
    assert list(sampler) == epoch  # only the next epoch is shortened


def validation_loss(checkpoint: Path, val_path: Path) -> float:
    task = nlpkit.load(checkpoint)
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    return trainer.validate(task, datamodule=ClassificationData(val_path=str(val_path)), verbose=False)[0]["val/loss"]


def test_two_ddp_processes_reach_the_validation_loss_of_one_with_the_same_global_batch(
    tmp_path: Path, sentiment_files
) -> None:
    common = [
        "--model", "text-classification", "--model.encoder", "lstm", "--model.encoder.embedding_dim", "16",
        "--model.encoder.hidden_size", "16", "--model.learning_rate", "0.02", "--data", "classification",
        "--data.train_path", str(sentiment_files["train"]), "--data.tokenizer.vocab_size", "100",
        "--trainer.max_steps", "120", "--trainer.enable_progress_bar", "false", "--trainer.logger", "false",
        "--seed_everything", "0",
    ]  # fmt: skip
    one = run_nlpkit("fit", *common, "--data.batch_size", "16", "--trainer.default_root_dir", "one", cwd=tmp_path)
    assert one.returncode == 0, one.stderr[-3000:]
    ddp = ["--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"]
    two = run_nlpkit(
        "fit", *common, *ddp, "--data.batch_size", "8", "--trainer.default_root_dir", "two",
        cwd=tmp_path, env={"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    losses = [
        validation_loss(tmp_path / run / "checkpoints" / "last.ckpt", sentiment_files["val"]) for run in ("one", "two")
    ]
    assert losses[0] < 0.68  # learned something (chance is ln 2 = 0.69)
    assert abs(losses[1] - losses[0]) / losses[0] < 0.01  # the same batches: only summation order differs

    # two processes predicting write every input's prediction once, in the input's order
    checkpoint = tmp_path / "two" / "checkpoints" / "last.ckpt"
    texts = [text for text, _ in sentiment_corpus(9, seed=5)]
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n")
    predict = run_nlpkit(
        "predict", "--ckpt_path", str(checkpoint), "--data.predict_path", "texts.txt", *ddp,
        "--predictions.output_path", "predictions.jsonl", "--trainer.enable_progress_bar", "false",
        cwd=tmp_path, env={"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert predict.returncode == 0, predict.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    expected = nlpkit.load(checkpoint).predict(texts)
    assert [row["label"] for row in rows] == [row["label"] for row in expected]
