"""The export machinery: comparisons that catch NaN, the directory written whole, foreign directories refused."""

from __future__ import annotations

import json
import math
import stat
from functools import partial

import pytest
import torch
from nlpkit_classification.task import TextClassificationTask

import nlpkit
from nlpkit.deploy.export import MANIFEST, compare_outputs, export, read_manifest
from nlpkit.models.encoders.rnn import GRUEncoder
from nlpkit.models.tokenizers import Tokenizer
from nlpkit.plugin.errors import ConfigError, ExportError
from nlpkit.testing import sentiment_corpus


def test_comparison_reports_nan_and_decoded_mismatches() -> None:
    expected = {"scores": torch.tensor([1.0, -math.inf, 3.0]), "tags": torch.tensor([[1, 2, 3]])}
    same = {"scores": torch.tensor([1.0, -math.inf, 3.0 + 1e-6]), "tags": torch.tensor([[1, 2, 3]])}
    assert compare_outputs(expected, same)[0] == pytest.approx(1e-6, rel=0.1)
    assert compare_outputs(expected, same)[1] == 0
    broken = {"scores": torch.tensor([1.0, -math.inf, math.nan]), "tags": torch.tensor([[1, 0, 0]])}
    assert compare_outputs(expected, broken) == (math.inf, 2)


@pytest.fixture(scope="module")
def task() -> TextClassificationTask:
    torch.manual_seed(0)
    task = TextClassificationTask(encoder=partial(GRUEncoder, embedding_dim=8, hidden_size=8))
    task.bind(Tokenizer.train([text for text, _ in sentiment_corpus(100)], vocab_size=60), ["neg", "pos"])
    return task.eval()


def test_an_export_directory_is_complete_readable_and_replaced_whole(task, tmp_path) -> None:
    target = tmp_path / "out"
    report = export(task, target)
    assert sorted(path.name for path in target.iterdir()) == ["labels.json", MANIFEST, "model.onnx", "tokenizer.model"]
    assert all(path.stat().st_mode & stat.S_IROTH for path in [target, *target.iterdir()])  # not owner-only
    assert report.max_difference < 1e-5 and "onnx" in report.summary()
    manifest = read_manifest(target)
    assert manifest["task"] == "text-classification" and manifest["inputs"] == ["tokens", "mask"]
    export(task, target, "torchscript")  # over an earlier export: replaced, nothing of the old one left
    assert sorted(path.name for path in target.iterdir()) == ["labels.json", MANIFEST, "model.pt", "tokenizer.model"]
    assert [path.name for path in tmp_path.iterdir()] == ["out"]  # no staging or backup directory left behind
    assert type(nlpkit.load(target).runtime).__name__ == "TorchScriptRuntime"


def test_foreign_directories_and_formats_are_refused(task, tmp_path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(ExportError, match="notes: exists and is not an nlpkit export"):
        export(task, tmp_path / "notes")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"
    with pytest.raises(ConfigError, match="export format must be one of onnx, torchscript"):
        export(task, tmp_path / "x", "tflite")  # type: ignore[arg-type]
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / MANIFEST).write_text("{not json")
    with pytest.raises(ExportError, match=r"broken/model\.json: not a readable export manifest"):
        nlpkit.load(tmp_path / "broken")


def test_nlpkit_predict_reads_a_file_with_an_export_alone(tmp_path, monkeypatch, capsys) -> None:
    """``nlpkit export`` keeps the data settings; ``nlpkit predict --ckpt_path EXPORT`` needs no checkpoint."""
    from nlpkit_classification.data import ClassificationData

    from nlpkit.cli.main import main
    from nlpkit.models.tokenizers import TokenizerOptions
    from nlpkit.testing import fit_tiny, write_sentiment_files

    files = write_sentiment_files(tmp_path / "data", train=80, val=20)
    task = TextClassificationTask(encoder=partial(GRUEncoder, embedding_dim=8, hidden_size=8))
    data = ClassificationData(train_path=str(files["train"]), tokenizer=TokenizerOptions(vocab_size=60))
    fit_tiny(task, data, max_steps=3).save_checkpoint(tmp_path / "model.ckpt")
    expected = task.predict(files["predict"].read_text().splitlines())
    assert main(["export", str(tmp_path / "model.ckpt"), "--out", str(tmp_path / "export")]) == 0
    (tmp_path / "model.ckpt").unlink()
    capsys.readouterr()
    predict = ["predict", "--ckpt_path", str(tmp_path / "export"), "--data.predict_path", str(files["predict"])]
    assert main([*predict, "--trainer.enable_progress_bar", "false"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [row["label"] for row in rows] == [row["label"] for row in expected]
    for row, want in zip(rows, expected, strict=True):
        assert row["probabilities"] == pytest.approx(want["probabilities"], abs=1e-4)  # printed: 4 decimals
    assert main(["test", "--ckpt_path", str(tmp_path / "export"), "--data.test_path", str(files["val"])]) == 2
    assert "an export holds no weights to test with; pass its checkpoint" in capsys.readouterr().err
