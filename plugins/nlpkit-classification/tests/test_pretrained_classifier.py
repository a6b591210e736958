"""Fine-tuning a pretrained Hugging Face encoder for classification: its tokenizer and pooling come with it, the
checkpoint needs no folder afterwards, and the ONNX export of the fine-tuned model matches eager."""

from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path

import pytest
import torch
from nlpkit_classification.data import ClassificationData
from nlpkit_classification.task import TextClassificationTask

import nlpkit
from nlpkit import ConfigError, PretrainedEncoder, Tokenizer, TokenizerOptions
from nlpkit.deploy.export import export
from nlpkit.models.tokenizers.huggingface import HuggingFaceTokenizer
from nlpkit.testing import (
    ServerProcess,
    check_export,
    fit_tiny,
    sentiment_corpus,
    tiny_pretrained_model,
    write_sentiment_files,
)

TEXTS = [text for text, _ in sentiment_corpus(40, seed=5)]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    return write_sentiment_files(tmp_path_factory.mktemp("sentiment"), train=120, val=40, seed=2)


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> Path:
    return tiny_pretrained_model(tmp_path_factory.mktemp("bert"))


def fine_tuned(folder: Path, files: dict[str, Path], steps: int = 6, **options) -> TextClassificationTask:
    torch.manual_seed(0)
    task = TextClassificationTask(encoder=partial(PretrainedEncoder, path=str(folder)), learning_rate=3e-3, **options)
    data = ClassificationData(train_path=str(files["train"]), val_path=str(files["val"]), batch_size=16)
    fit_tiny(task, data, max_steps=steps)
    assert data.tokenizer.to_bytes() == task.tokenizer.to_bytes()  # the data module trained no tokenizer of its own
    return task.eval()


def test_fine_tunes_and_loads_back_without_the_model_folder(bert, files, tmp_path) -> None:
    folder = shutil.copytree(bert, tmp_path / "model")
    pretrained = PretrainedEncoder(Tokenizer.load(folder).vocab_size, path=str(folder)).state_dict()
    task = fine_tuned(folder, files, layer_decay=0.8)
    assert isinstance(task.tokenizer, HuggingFaceTokenizer) and task.pool.kind == "mean"  # its 1_Pooling
    changed = [name for name, value in task.encoder.state_dict().items() if not torch.equal(value, pretrained[name])]
    assert "blocks.0.attn.qkv.weight" in changed and "token_embedding.weight" in changed
    checkpoint = tmp_path / "fine-tuned.ckpt"
    task.trainer.save_checkpoint(checkpoint)
    shutil.rmtree(folder)
    loaded = nlpkit.load(checkpoint)
    assert loaded.tokenizer == task.tokenizer and loaded.pool.kind == "mean"
    for ours, theirs in zip(task.predict(TEXTS), loaded.predict(TEXTS), strict=True):
        assert ours["label"] == theirs["label"]
        for label, probability in ours["probabilities"].items():
            assert abs(probability - theirs["probabilities"][label]) < 1e-5


def test_onnx_int8_and_serve_of_a_fine_tuned_pretrained_classifier(bert, files, tmp_path) -> None:
    task = fine_tuned(bert, files, pooling="first")
    loaded = check_export(task, TEXTS[:16], tmp_path / "export")
    assert (tmp_path / "export" / "tokenizer.json").read_bytes() == (bert / "tokenizer.json").read_bytes()
    assert loaded.tokenizer == task.tokenizer
    eager = task.predict(TEXTS)
    assert [r["label"] for r in loaded.predict(TEXTS)] == [r["label"] for r in eager]
    export(task, tmp_path / "int8", quantize=True)
    quantized = nlpkit.load(tmp_path / "int8").predict(TEXTS)
    changes = [
        abs(q["probabilities"][k] - e["probabilities"][k])
        for q, e in zip(quantized, eager, strict=True)
        for k in e["probabilities"]
    ]
    assert max(changes) < 0.05
    server = ServerProcess(tmp_path / "export")
    try:
        status, body = server.post("/predict", {"inputs": TEXTS[:6]})
    finally:
        server.process.kill()
    assert status == 200 and [p["label"] for p in body["predictions"]] == [r["label"] for r in eager[:6]]


def test_a_frozen_pretrained_encoder_stays_as_it_was(bert, files) -> None:
    pretrained = PretrainedEncoder(Tokenizer.load(bert).vocab_size, path=str(bert)).state_dict()
    task = fine_tuned(bert, files, steps=3, freeze_encoder=True)
    assert all(torch.equal(value, pretrained[name]) for name, value in task.encoder.state_dict().items())
    assert len(task.encoder.layers()) == 3  # the embeddings, then each of the two blocks


def test_a_data_tokenizer_that_is_not_the_models_is_refused(bert, files, tmp_path) -> None:
    other = tmp_path / "other.model"
    Tokenizer.train(TEXTS, vocab_size=60).save(other)
    task = TextClassificationTask(encoder=partial(PretrainedEncoder, path=str(bert)))
    data = ClassificationData(train_path=str(files["train"]), tokenizer=TokenizerOptions(path=str(other)))
    with pytest.raises(ConfigError, match=r"is not the tokenizer of the pretrained model\.encoder"):
        fit_tiny(task, data, max_steps=1)
