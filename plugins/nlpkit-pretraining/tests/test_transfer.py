"""``init_from`` a pretrained checkpoint into every task that reads text, its checks, and the fine-tuning options."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch
from nlpkit_classification.data import ClassificationData
from nlpkit_classification.task import TextClassificationTask
from nlpkit_generation.data import LanguageModelingData
from nlpkit_generation.seq2seq import Seq2SeqTask
from nlpkit_kg.data import TriplesData
from nlpkit_kg.sample import write_planted_graph
from nlpkit_kg.task import LinkPredictionTask
from nlpkit_multilingual.language_id import LanguageIdData, LanguageIdTask
from nlpkit_multilingual.sample import write_language_files
from nlpkit_ner.data import ConllData
from nlpkit_ner.sample import sample_sentences
from nlpkit_ner.task import TokenClassificationTask
from nlpkit_ner.words import write_conll
from nlpkit_pretraining.contrastive import ContrastiveTask
from nlpkit_pretraining.denoising import DenoisingTask
from nlpkit_pretraining.masked_lm import MaskedLMTask
from nlpkit_pretraining.pairs import SentencePairsData

from nlpkit import CheckpointError, ConfigError, LSTMEncoder, Tokenizer, TokenizerOptions, TransformerEncoder
from nlpkit.cli.main import main
from nlpkit.testing import fit_tiny, write_sentiment_files

Downstream = Callable[[Path, Any, str], tuple[Any, Any]]


def classification(directory: Path, encoder: Any, ckpt: str) -> tuple[Any, Any]:
    files = write_sentiment_files(directory, train=60, val=20)
    data = ClassificationData(train_path=str(files["train"]), val_path=str(files["val"]), batch_size=16)
    return TextClassificationTask(encoder=encoder, init_from=ckpt), data


def token_classification(directory: Path, encoder: Any, ckpt: str) -> tuple[Any, Any]:
    write_conll(directory / "train.conll", sample_sentences(40, seed=0))
    data = ConllData(train_path=str(directory / "train.conll"), batch_size=8)
    return TokenClassificationTask(encoder=encoder, init_from=ckpt), data


def language_id(directory: Path, encoder: Any, ckpt: str) -> tuple[Any, Any]:
    files = write_language_files(directory, size_per_language=10, seed=0)
    data = LanguageIdData(languages={code: str(path) for code, path in files.items()}, batch_size=16)
    return LanguageIdTask(encoder=encoder, init_from=ckpt), data


def link_prediction(directory: Path, encoder: Any, ckpt: str) -> tuple[Any, Any]:
    files = write_planted_graph(directory)
    data = TriplesData(train_path=str(files["train"]), entity_texts=str(files["entities"]), batch_size=64)
    return LinkPredictionTask(encoder=encoder, init_from=ckpt, eval_chunk_size=64), data


@pytest.mark.parametrize("downstream", [classification, token_classification, language_id, link_prediction])
def test_a_masked_lm_encoder_and_tokenizer_start_every_task(downstream: Downstream, mlm_checkpoint, encoder, tmp_path):
    pretrained, path = mlm_checkpoint
    task, data = downstream(tmp_path, encoder, str(path))
    assert task.tokenizer == pretrained.tokenizer  # kept, not retrained on the task's data
    fit_tiny(task, data, max_steps=0, limit_val_batches=0)  # builds the model from the checkpoint
    assert task.tokenizer == pretrained.tokenizer
    for key, value in pretrained.encoder.state_dict().items():
        assert torch.equal(task.encoder.state_dict()[key], value), key
    fit_tiny(task, data, max_steps=2, limit_val_batches=0)
    assert not torch.equal(task.encoder.token_embedding.weight, pretrained.encoder.token_embedding.weight)


def test_a_contrastive_encoder_starts_a_classifier(mlm_checkpoint, encoder, prose, tmp_path) -> None:
    simcse = ContrastiveTask(encoder=encoder, init_from=str(mlm_checkpoint[1]))
    trainer = fit_tiny(simcse, SentencePairsData(train_path=str(prose["train"]), batch_size=8), max_steps=2)
    trainer.save_checkpoint(tmp_path / "simcse.ckpt")
    task, data = classification(tmp_path, encoder, str(tmp_path / "simcse.ckpt"))
    fit_tiny(task, data, max_steps=0, limit_val_batches=0)
    for key, value in simcse.encoder.state_dict().items():
        assert torch.equal(task.encoder.state_dict()[key], value), key


def test_a_denoising_checkpoint_starts_a_seq2seq_model_whole(prose, tmp_path) -> None:
    sizes = {"d_model": 32, "num_heads": 2, "num_encoder_layers": 1, "num_decoder_layers": 1, "max_length": 64}
    torch.manual_seed(0)
    denoiser = DenoisingTask(**sizes)
    data = LanguageModelingData(train_path=str(prose["train"]), tokenizer=TokenizerOptions(vocab_size=300))
    trainer = fit_tiny(denoiser, data, max_steps=3)
    trainer.save_checkpoint(tmp_path / "bart.ckpt")
    [rebuilt] = denoiser.predict(["the model is <mask> on real data."])
    assert isinstance(rebuilt["text"], str)
    translator = Seq2SeqTask(**sizes, init_from=str(tmp_path / "bart.ckpt"))
    translator.bind(translator.tokenizer, None)
    trained = denoiser.state_dict()
    assert trained.keys() == translator.state_dict().keys()
    assert all(torch.equal(value, trained[key]) for key, value in translator.state_dict().items())
    with pytest.raises(
        CheckpointError, match=r"weight encoder\.blocks\.0\.attn\.proj\.bias is \(32,\) there and \(16,\) here"
    ):
        Seq2SeqTask(**{**sizes, "d_model": 16}, init_from=str(tmp_path / "bart.ckpt")).bind(translator.tokenizer, None)


def test_another_encoder_kind_or_size_is_one_clear_error(mlm_checkpoint) -> None:
    path = mlm_checkpoint[1]
    lstm = TextClassificationTask(encoder=partial(LSTMEncoder, bidirectional=True), init_from=str(path))
    with pytest.raises(CheckpointError, match=r"its encoder is a TransformerEncoder, this model's a LSTMEncoder"):
        lstm.bind(lstm.tokenizer, ["a", "b"])
    deeper = partial(TransformerEncoder, d_model=32, num_heads=2, num_layers=3, dim_feedforward=64, max_length=64)
    task = TextClassificationTask(encoder=deeper, init_from=str(path))
    with pytest.raises(CheckpointError, match=r"encoder\.num_layers is 2 there and 3 here; build the encoder with"):
        task.bind(task.tokenizer, ["a", "b"])


@pytest.fixture(scope="module")
def rotary_checkpoint(prose_data, encoder, tmp_path_factory) -> Path:
    """A masked-LM checkpoint of a rotary 4-head transformer (one step: only its settings matter here)."""
    rotary = partial(encoder, num_heads=4, positions="rotary")
    trainer = fit_tiny(MaskedLMTask(encoder=rotary), prose_data(), max_steps=1, limit_val_batches=0)
    path = tmp_path_factory.mktemp("rotary") / "rotary.ckpt"
    trainer.save_checkpoint(path)
    return path


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"num_heads": 8, "positions": "sinusoidal"}, "encoder.num_heads is 4 there and 8 here"),
        ({"num_heads": 4, "positions": "sinusoidal"}, "encoder.positions is 'rotary' there and 'sinusoidal' here"),
        ({"num_heads": 4, "positions": "rotary", "activation": "relu"}, "encoder.activation is 'gelu' there and"),
    ],
)
def test_an_encoder_with_the_same_shapes_and_other_settings_is_refused_naming_the_first(
    settings, named, rotary_checkpoint, encoder
) -> None:
    task = TextClassificationTask(encoder=partial(encoder, **settings), init_from=str(rotary_checkpoint))
    with pytest.raises(CheckpointError, match=re.escape(named)):
        task.bind(task.tokenizer, ["a", "b"])


def test_settings_that_leave_the_function_alone_may_differ(rotary_checkpoint, encoder) -> None:
    tuned = partial(encoder, num_heads=4, positions="rotary", dropout=0.3, max_length=32)
    task = TextClassificationTask(encoder=tuned, init_from=str(rotary_checkpoint))
    task.bind(task.tokenizer, ["a", "b"])
    assert task.encoder.blocks[0].attn.dropout == 0.3 and task.encoder.max_length == 32


def test_a_model_without_an_encoder_refuses_init_from(mlm_checkpoint, tmp_path) -> None:
    files = write_planted_graph(tmp_path)
    task = LinkPredictionTask(init_from=str(mlm_checkpoint[1]))  # free embeddings only
    with pytest.raises(ConfigError, match=r"this model has no encoder to start from it"):
        fit_tiny(task, TriplesData(train_path=str(files["train"])), max_steps=1)


def test_a_data_tokenizer_other_than_the_pretrained_one_is_refused(mlm_checkpoint, encoder, tmp_path) -> None:
    other = tmp_path / "other.model"
    Tokenizer.train(["a completely different tokenizer", "for other text"], vocab_size=40).save(other)
    files = write_sentiment_files(tmp_path, train=20, val=10)
    task = TextClassificationTask(encoder=encoder, init_from=str(mlm_checkpoint[1]))
    data = ClassificationData(train_path=str(files["train"]), tokenizer=TokenizerOptions(path=str(other)))
    with pytest.raises(ConfigError, match=r"is not the tokenizer of model\.init_from"):
        fit_tiny(task, data, max_steps=1)


def test_the_command_line_reports_a_mismatch_in_one_line(mlm_checkpoint, tmp_path, capsys) -> None:
    files = write_sentiment_files(tmp_path, train=20, val=10)
    status = main(
        ["fit", "--model", "text-classification", "--model.encoder", "lstm", "--model.init_from",
         str(mlm_checkpoint[1]), "--data", "classification", "--data.train_path", str(files["train"]),
         "--trainer.max_steps", "1", "--trainer.default_root_dir", str(tmp_path), "--trainer.logger", "false"]
    )  # fmt: skip
    stderr = capsys.readouterr().err
    assert status == 2 and "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"nlpkit: error: init_from {mlm_checkpoint[1]} (masked-lm): its encoder is a TransformerEncoder, this "
        "model's a LSTMEncoder; fine-tune the encoder kind that was pretrained"
    )


def test_layer_decay_gives_lower_layers_smaller_learning_rates(mlm_checkpoint, encoder, tmp_path) -> None:
    task, data = classification(tmp_path, encoder, str(mlm_checkpoint[1]))
    task.hparams.layer_decay = 0.5
    task.hparams.warmup_steps = 0
    trainer = fit_tiny(task, data, max_steps=0, limit_val_batches=0)
    rates = {id(p): group["lr"] for group in trainer.optimizers[0].param_groups for p in group["params"]}
    lr = task.hparams.learning_rate
    assert rates[id(task.head.net[-1].weight)] == pytest.approx(lr)
    assert rates[id(task.encoder.norm.weight)] == pytest.approx(lr * 0.5)  # with the top block
    assert rates[id(task.encoder.blocks[1].mlp.fc.weight)] == pytest.approx(lr * 0.5)
    assert rates[id(task.encoder.blocks[0].mlp.fc.weight)] == pytest.approx(lr * 0.25)
    assert rates[id(task.encoder.token_embedding.weight)] == pytest.approx(lr * 0.125)
    assert sum(len(group["params"]) for group in trainer.optimizers[0].param_groups) == len(list(task.parameters()))


def test_gradual_unfreezing_opens_the_encoder_from_the_top(mlm_checkpoint, encoder, tmp_path) -> None:
    files = write_sentiment_files(tmp_path, train=40, val=10)
    task = TextClassificationTask(encoder=encoder, init_from=str(mlm_checkpoint[1]), gradual_unfreezing=2)
    data = ClassificationData(train_path=str(files["train"]), batch_size=8)
    fit_tiny(task, data, max_steps=0)
    embedding, bottom, top = (
        task.encoder.token_embedding.weight, task.encoder.blocks[0].mlp.fc.weight, task.encoder.blocks[1].mlp.fc.weight
    )  # fmt: skip
    start = [p.detach().clone() for p in (embedding, bottom, top)]
    fit_tiny(task, data, max_steps=2)  # steps 0-1: only the head
    assert all(torch.equal(p, s) for p, s in zip((embedding, bottom, top), start, strict=True))
    fit_tiny(task, data, max_steps=3)  # step 2: the top block joins (a fresh trainer counts from 0 again)
    assert not torch.equal(top, start[2]) and torch.equal(bottom, start[1]) and torch.equal(embedding, start[0])
    with pytest.raises(ConfigError, match="excludes freeze_encoder"):
        TextClassificationTask(encoder=encoder, gradual_unfreezing=2, freeze_encoder=True)
    assert json.dumps(task.hparams["gradual_unfreezing"]) == "2"
