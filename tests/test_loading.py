"""One load route: a checkpoint file is read once and its tokenizer parsed once, whichever way it is loaded
(``nlpkit.load``, ``nlpkit validate/test/predict --ckpt_path``, ``nlpkit export``)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch

import nlpkit
from nlpkit.cli.main import main
from nlpkit.models.tokenizers.sentencepiece import SentencePieceTokenizer
from nlpkit.testing import write_sentiment_files
from tests.test_cli import QUIET, TINY_MODEL, tiny_data

TEXTS = ["a great and moving film", "dull, slow and far too long", "fine"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("run")
    files = write_sentiment_files(root / "data", train=120, val=40)
    fit = ["fit", *TINY_MODEL, *tiny_data(files), *QUIET, "--trainer.max_steps", "4"]
    assert main([*fit, "--trainer.default_root_dir", str(root)]) == 0
    return root / "checkpoints" / "last.ckpt", files


class Reads:
    """How often a checkpoint file is read (``torch.load``, which Lightning calls too) and a SentencePiece model
    parsed, spied on without changing what either does."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.files: Counter[str] = Counter()
        self.tokenizers = 0
        real_load, real_init = torch.load, SentencePieceTokenizer.__init__

        def load(file, *args, **kwargs):
            self.files[str(file)] += 1
            return real_load(file, *args, **kwargs)

        def init(tokenizer, *args, **kwargs):
            self.tokenizers += 1
            real_init(tokenizer, *args, **kwargs)

        monkeypatch.setattr(torch, "load", load)
        monkeypatch.setattr(SentencePieceTokenizer, "__init__", init)


def test_load_reads_the_checkpoint_once_and_equals_lightnings_own_load(trained, monkeypatch) -> None:
    checkpoint, _ = trained
    reads = Reads(monkeypatch)
    task = nlpkit.load(checkpoint)
    assert reads.files == {str(checkpoint): 1} and reads.tokenizers == 1
    monkeypatch.undo()
    reference = type(task).load_from_checkpoint(checkpoint, weights_only=True).eval()  # Lightning's route
    assert task.predict(TEXTS) == reference.predict(TEXTS)
    for (name, ours), (_, theirs) in zip(task.state_dict().items(), reference.state_dict().items(), strict=True):
        assert torch.equal(ours, theirs), name


@pytest.mark.parametrize("command", ["validate", "test", "predict"])
def test_commands_with_ckpt_path_read_the_checkpoint_once(trained, monkeypatch, capsys, command) -> None:
    checkpoint, files = trained
    monkeypatch.chdir(checkpoint.parent)
    data = {"predict": ["--data.predict_path", str(files["predict"])], "test": ["--data.test_path", str(files["val"])]}
    reads = Reads(monkeypatch)
    assert main([command, "--ckpt_path", str(checkpoint), *data.get(command, []), *QUIET]) == 0
    assert reads.files == {str(checkpoint): 1} and reads.tokenizers == 1
    if command == "predict":  # the weights were restored: the predictions are the loaded task's
        monkeypatch.undo()
        printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        texts = files["predict"].read_text(encoding="utf-8").splitlines()
        expected = nlpkit.load(checkpoint).predict(texts)
        assert [row["label"] for row in printed] == [row["label"] for row in expected]
        for row, reference in zip(printed, expected, strict=True):
            assert row["probabilities"] == pytest.approx(reference["probabilities"], abs=5e-5)  # printed: 4 decimals


def test_export_reads_the_checkpoint_once(trained, monkeypatch, tmp_path) -> None:
    checkpoint, _ = trained
    reads = Reads(monkeypatch)
    assert main(["export", str(checkpoint), "--out", str(tmp_path / "export")]) == 0
    assert reads.files[str(checkpoint)] == 1


def test_a_checkpoint_naming_the_modules_of_an_earlier_release_still_loads(trained, tmp_path, capsys) -> None:
    checkpoint, files = trained
    saved = torch.load(checkpoint, weights_only=True)
    hparams = saved["hyper_parameters"]
    assert hparams["encoder"]["class_path"].endswith("LSTMEncoder")
    hparams["encoder"]["class_path"] = "nlpkit.encoders.rnn.LSTMEncoder"  # where 0.1 kept its encoders and heads
    hparams["head"]["class_path"] = "nlpkit.heads.LinearHead"
    legacy = tmp_path / "legacy.ckpt"
    torch.save(saved, legacy)
    assert nlpkit.load(legacy).predict(TEXTS) == nlpkit.load(checkpoint).predict(TEXTS)
    assert main(["predict", "--ckpt_path", str(legacy), "--data.predict_path", str(files["predict"]), *QUIET]) == 0
    assert len([line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]) == 4
