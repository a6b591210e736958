"""Hostile and damaged checkpoints: code in a pickle never runs, bad files and bad tokenizers are one-line errors."""

from __future__ import annotations

import io
import pickle
import random
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import sentencepiece as spm
import torch
from nlpkit_classification.data import ClassificationData
from nlpkit_classification.task import TextClassificationTask

import nlpkit
from nlpkit.models.encoders.rnn import LSTMEncoder
from nlpkit.models.tokenizers import Tokenizer, TokenizerOptions
from nlpkit.plugin.errors import CheckpointError
from nlpkit.testing import fit_tiny, sentiment_corpus
from tests.conftest import run_nlpkit

ENCODER = partial(LSTMEncoder, embedding_dim=8, hidden_size=8)
TEXTS = [text for text, _ in sentiment_corpus(100)]


class RunsCode:
    """Unpickling this creates ``marker``: a stand-in for whatever code a checkpoint could smuggle in."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return Path.touch, (self.marker,)


def write_with_pickle(path: Path, value: Any) -> None:
    path.write_bytes(pickle.dumps(value, protocol=2))


# how a hostile file is written, and how it is read by a loader that runs its code (to show the threat is real)
HOSTILE: dict[str, tuple[Callable[[Path, Any], None], Callable[[Path], Any]]] = {
    "torch.save": (lambda path, value: torch.save(value, path), lambda path: torch.load(path, weights_only=False)),
    "plain pickle": (write_with_pickle, lambda path: pickle.loads(path.read_bytes())),
}


def one_line(pattern: str, path: Path) -> str:
    """A regex for a whole one-line message about ``path``."""
    return rf"{re.escape(str(path))}: {pattern}[^\n]*\Z"


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_checkpoint_that_runs_code_is_refused_by_load_predict_and_init_from(kind, tmp_path, sentiment_files) -> None:
    write, unsafe_load = HOSTILE[kind]
    marker, path = tmp_path / "code-ran", tmp_path / "hostile.ckpt"
    write(path, {"state_dict": {}, "nlpkit": {"tokenizer": b"x"}, "payload": RunsCode(marker)})
    refused = one_line(r"refused as unsafe: its pickle would import and call .*getattr", path)

    with pytest.raises(CheckpointError, match=refused):
        nlpkit.load(path)
    with pytest.raises(CheckpointError, match=refused):
        TextClassificationTask(encoder=ENCODER, init_from=str(path))
    predict = run_nlpkit(
        "predict", "--ckpt_path", str(path), "--data.predict_path", str(sentiment_files["predict"]), cwd=tmp_path
    )
    assert predict.returncode == 2, predict.stderr[-2000:]
    (line,) = predict.stderr.strip().splitlines()
    assert re.fullmatch(r"nlpkit: error: " + refused, line), line
    assert not marker.exists()

    unsafe_load(path)  # the same file, unpickled by a loader that runs code
    assert marker.exists()


@pytest.fixture(scope="module")
def checkpoint(sentiment_files, tmp_path_factory) -> Path:
    """A real (barely trained) text-classification checkpoint."""
    torch.manual_seed(0)
    data = ClassificationData(
        train_path=str(sentiment_files["train"]),
        val_path=str(sentiment_files["val"]),
        batch_size=32,
        tokenizer=TokenizerOptions(vocab_size=60),
    )
    trainer = fit_tiny(TextClassificationTask(encoder=ENCODER), data, max_steps=2, limit_val_batches=0)
    path = tmp_path_factory.mktemp("checkpoint") / "model.ckpt"
    trainer.save_checkpoint(path)
    return path


NOT_LOADABLE = "not a loadable nlpkit checkpoint: "
DAMAGED: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "truncated": (
        lambda data: data[: len(data) // 2],
        NOT_LOADABLE + r"a truncated or damaged torch.save archive \(RuntimeError: PytorchStreamReader",
    ),
    "random bytes": (
        lambda data: random.Random(0).randbytes(len(data)),
        NOT_LOADABLE + r"not a torch.save archive \(UnpicklingError: Unsupported operand",
    ),
    "empty": (lambda data: b"", NOT_LOADABLE + "the file is empty"),
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_a_damaged_file_is_a_one_line_error_naming_it(case, checkpoint, tmp_path) -> None:
    damage, expected = DAMAGED[case]
    path = tmp_path / "damaged.ckpt"
    path.write_bytes(damage(checkpoint.read_bytes()))
    with pytest.raises(CheckpointError, match=one_line(expected, path)) as error:
        nlpkit.load(path)
    assert "weights_only" not in str(error.value)  # torch's advice to load it unsafely is not passed on


def sentencepiece_model(**special_ids: int) -> bytes:
    """A valid SentencePiece model trained by SentencePiece itself, with its own special ids."""
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(TEXTS), model_writer=buffer, vocab_size=50, hard_vocab_limit=False, minloglevel=2,
        **special_ids,
    )  # fmt: skip
    return buffer.getvalue()


def rewritten(checkpoint: Path, target: Path, **section: Any) -> Path:
    """A copy of ``checkpoint`` with entries of its nlpkit section replaced."""
    content = torch.load(checkpoint, weights_only=True)
    content["nlpkit"].update(section)
    torch.save(content, target)
    return target


BAD_TOKENIZERS: dict[str, tuple[Callable[[], Any], str]] = {
    "random bytes": (lambda: random.Random(0).randbytes(3000), r"invalid SentencePiece model \(3000 bytes\)"),
    "no nlpkit ids": (sentencepiece_model, r"SentencePiece model lacks nlpkit's special ids .*it has pad -1, unk 0,"),
    "a number": (lambda: 10**6, "a tokenizer is bytes, not int"),  # bytes(10**6) would be a million zeros
    "text": (lambda: "a model", "a tokenizer is bytes, not str"),
    "JSON that is no tokenizer.json": (lambda: b'{"not": "a tokenizer"}', r"invalid tokenizer\.json \(22 bytes\)"),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENIZERS))
def test_a_bad_tokenizer_is_refused_before_the_task_is_built(case, checkpoint, tmp_path) -> None:
    make, expected = BAD_TOKENIZERS[case]
    path = rewritten(checkpoint, tmp_path / "bad-tokenizer.ckpt", tokenizer=make())
    with pytest.raises(CheckpointError, match=one_line(f"unusable tokenizer: {expected}", path)):
        nlpkit.load(path)


def test_a_bad_max_length_is_refused(checkpoint, tmp_path) -> None:
    path = rewritten(checkpoint, tmp_path / "bad-length.ckpt", max_length="long")
    with pytest.raises(CheckpointError, match=one_line("unusable tokenizer: max_length must be a positive", path)):
        nlpkit.load(path)


def test_every_special_id_is_checked() -> None:
    with pytest.raises(CheckpointError, match="it has pad 0, unk 4, bos 2, eos 3"):
        Tokenizer.from_bytes(sentencepiece_model(pad_id=0, unk_id=4, bos_id=2, eos_id=3))


def test_a_tokenizer_that_does_not_fit_the_embedding_is_refused(checkpoint, tmp_path) -> None:
    smaller = Tokenizer.train(TEXTS, vocab_size=40)
    assert (
        smaller.vocab_size
        < Tokenizer.from_bytes(torch.load(checkpoint, weights_only=True)["nlpkit"]["tokenizer"]).vocab_size
    )
    path = rewritten(checkpoint, tmp_path / "other-vocabulary.ckpt", tokenizer=smaller.to_bytes())
    with pytest.raises(CheckpointError, match=r"encoder\.token_embedding\.weight"):
        nlpkit.load(path)
