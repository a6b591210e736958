"""Export of text classification: every encoder's ONNX and TorchScript graph matches eager, int8 stays close."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from nlpkit_classification.task import TextClassificationTask

import nlpkit
from nlpkit import (
    CNNEncoder,
    ConcatEncoder,
    ElmanRNNEncoder,
    ExportError,
    GRUEncoder,
    LSTMEncoder,
    NGramEncoder,
    Tokenizer,
    TransformerEncoder,
)
from nlpkit.deploy.export import export
from nlpkit.testing import check_export, sentiment_corpus

TEXTS = [text for text, _ in sentiment_corpus(60, seed=3)]
NGRAM_PART = partial(NGramEncoder, dim=8, buckets=256, char_ngrams=[2, 4])
BIGRU_PART = partial(GRUEncoder, embedding_dim=8, hidden_size=8, bidirectional=True)
ENCODERS = {
    "rnn": partial(ElmanRNNEncoder, embedding_dim=16, hidden_size=16),
    "lstm": partial(LSTMEncoder, embedding_dim=16, hidden_size=16, bidirectional=True, num_layers=2),
    "gru": partial(GRUEncoder, embedding_dim=16, hidden_size=16, bidirectional=True),
    "transformer": partial(TransformerEncoder, d_model=32, num_heads=2, num_layers=2, dim_feedforward=64),
    "cnn": partial(CNNEncoder, embedding_dim=16, num_filters=8),
    "ngram": partial(NGramEncoder, dim=16, ngrams=3, buckets=512, char_ngrams=[1, 3]),
    "concat": partial(ConcatEncoder, encoders=[NGRAM_PART, BIGRU_PART]),
}


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.train(TEXTS, vocab_size=80)


def classifier(tokenizer: Tokenizer, encoder: str, **options) -> TextClassificationTask:
    torch.manual_seed(0)
    task = TextClassificationTask(encoder=ENCODERS[encoder], **options)
    task.bind(tokenizer, ["neg", "neutral", "pos"])
    with torch.no_grad():
        task.temperature.fill_(1.7)  # calibration is part of the exported graph
    return task.eval()


def largest_change(eager: list[dict], exported: list[dict]) -> float:
    """The largest change of a label's probability between two runs' predictions."""
    return max(
        abs(probability - other["probabilities"][label])
        for result, other in zip(eager, exported, strict=True)
        for label, probability in result["probabilities"].items()
    )


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
def test_onnx_matches_eager_for_every_encoder(tokenizer, encoder, tmp_path) -> None:
    pooling = {"transformer": "attention", "concat": "mean+max"}.get(encoder, "mean")
    task = classifier(tokenizer, encoder, pooling=pooling)
    loaded = check_export(task, TEXTS[:24], tmp_path / "onnx")
    assert type(loaded.runtime).__name__ == "OnnxRuntime"
    assert largest_change(task.predict(TEXTS), loaded.predict(TEXTS)) < 1e-4  # predict's own batches, too


def test_torchscript_and_multi_label_match_eager(tokenizer, tmp_path) -> None:
    task = classifier(tokenizer, "lstm", multi_label=True)
    check_export(task, TEXTS[:16], tmp_path / "ts", format="torchscript")
    loaded = nlpkit.load(tmp_path / "ts")
    assert [r["labels"] for r in loaded.predict(TEXTS)] == [r["labels"] for r in task.predict(TEXTS)]


@pytest.mark.parametrize("format", ["onnx", "torchscript"])
def test_int8_export_stays_close(tokenizer, format, tmp_path) -> None:
    task = classifier(tokenizer, "transformer")
    report = export(task, tmp_path / "int8", format, quantize=True)
    assert report.quantized and 0 < report.max_difference < 0.05  # int8 changes the numbers, a little
    loaded = nlpkit.load(tmp_path / "int8")
    assert largest_change(task.predict(TEXTS), loaded.predict(TEXTS)) < 0.05


def test_an_export_holds_no_weights_for_explanations(tokenizer, tmp_path) -> None:
    export(classifier(tokenizer, "gru"), tmp_path / "onnx")
    with pytest.raises(nlpkit.NlpkitError, match="explain needs the model's weights"):
        nlpkit.load(tmp_path / "onnx").predict(TEXTS[:2], explain=True)
    with pytest.raises(ExportError, match="loaded from an export"):
        export(nlpkit.load(tmp_path / "onnx"), tmp_path / "again")
