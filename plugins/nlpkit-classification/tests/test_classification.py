"""Text classification: data fields and label checks, pooling, class weights, the registered names."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from nlpkit_classification.data import ClassificationData
from nlpkit_classification.task import TextClassificationTask

from nlpkit import DataError, LSTMEncoder, Pool, TokenizerOptions
from nlpkit.plugin.loader import discover
from nlpkit.testing import fit_tiny, write_sentiment_files


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_sentiment_files(tmp_path_factory.mktemp("data"), train=120, val=40)


def tiny_task(**options) -> TextClassificationTask:
    return TextClassificationTask(encoder=partial(LSTMEncoder, embedding_dim=16, hidden_size=16), **options)


def data_for(train, val, **options) -> ClassificationData:
    return ClassificationData(
        train_path=str(train), val_path=str(val), tokenizer=TokenizerOptions(vocab_size=80), **options
    )


def test_registered_through_the_entry_point() -> None:
    plugins = discover()
    assert plugins["tasks"]["text-classification"] is TextClassificationTask
    assert plugins["datasets"].entry("classification").plugin == "classification"


def test_a_label_only_in_validation_is_an_error_naming_the_line(files, tmp_path) -> None:
    val = tmp_path / "val.csv"
    val.write_text("text,label\nthe film was great,pos\nthe film was odd,neutral\n")
    with pytest.raises(DataError, match=r"val.csv:3: label 'neutral' in the val data never occurs in the training"):
        fit_tiny(tiny_task(), data_for(files["train"], val), max_steps=1)


def test_configurable_fields_in_jsonl_and_missing_field_errors(tmp_path) -> None:
    train = tmp_path / "train.jsonl"
    train.write_text('{"review": "the film was great", "stars": 5}\n{"review": "the film was dull", "stars": 1}\n')
    data = data_for(train, train, text_field="review", label_field="stars")
    task = tiny_task()
    fit_tiny(task, data, max_steps=2)
    assert task.labels == ["1", "5"]
    with pytest.raises(DataError, match=r"train.jsonl:1: expected a text field 'text' \(found: review, stars\)"):
        fit_tiny(tiny_task(), data_for(train, train), max_steps=1)


@pytest.mark.parametrize("kind", ["mean", "max", "mean+max", "first", "attention"])
def test_pooling_never_looks_at_padding(kind: str) -> None:
    torch.manual_seed(0)
    pool = Pool(kind, 8)
    hidden = torch.randn(1, 5, 8)
    mask = torch.ones(1, 5, dtype=torch.bool)
    noise, no = torch.randn(1, 3, 8) * 100, torch.zeros(1, 3, dtype=torch.bool)
    right = pool(torch.cat([hidden, noise], dim=1), torch.cat([mask, no], dim=1))
    left = pool(torch.cat([noise, hidden], dim=1), torch.cat([no, mask], dim=1))
    torch.testing.assert_close(pool(hidden, mask), right)
    torch.testing.assert_close(pool(hidden, mask), left)


def test_mean_and_max_pooling_by_hand() -> None:
    hidden = torch.tensor([[[1.0, -2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[True, True, False]])
    torch.testing.assert_close(Pool("mean", 2)(hidden, mask), torch.tensor([[2.0, 1.0]]))
    torch.testing.assert_close(Pool("max", 2)(hidden, mask), torch.tensor([[3.0, 4.0]]))
    both = Pool("mean+max", 2)
    torch.testing.assert_close(both(hidden, mask), torch.tensor([[2.0, 1.0, 3.0, 4.0]]))
    assert both.output_dim == 4


def test_class_weights_change_the_loss(files) -> None:
    losses = []
    for weights in (None, [1.0, 5.0]):
        torch.manual_seed(0)
        task = tiny_task(class_weights=weights)
        data = data_for(files["train"], files["val"])
        trainer = fit_tiny(task, data, max_steps=1)
        losses.append(trainer.validate(task, datamodule=data, verbose=False)[0]["val/loss"])
    assert losses[0] != pytest.approx(losses[1])


def test_predictions_are_distributions_over_the_labels(files) -> None:
    task = tiny_task(pooling="attention")
    fit_tiny(task, data_for(files["train"], files["val"]), max_steps=3)
    (result,) = task.predict(["the cast was superb"])
    assert set(result["probabilities"]) == {"neg", "pos"}
    assert sum(result["probabilities"].values()) == pytest.approx(1.0)
    assert result["label"] == max(result["probabilities"], key=result["probabilities"].get)
