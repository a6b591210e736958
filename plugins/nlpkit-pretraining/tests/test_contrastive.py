"""Contrastive sentence embeddings: paraphrases end up closer than random pairs; ``embed``, ``similar``, ``nlpkit
embed``."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest
import torch
from nlpkit_pretraining.contrastive import ContrastiveTask
from nlpkit_pretraining.pairs import SentencePairsData
from nlpkit_pretraining.sample import SUBJECTS, paraphrase_pairs

import nlpkit
from nlpkit import ConfigError, GRUEncoder, TokenizerOptions
from nlpkit.cli.main import main
from nlpkit.testing import fit_tiny

ENCODER = partial(GRUEncoder, embedding_dim=32, hidden_size=32, bidirectional=True, dropout=0.1)


def write_pairs(path, pairs) -> str:
    path.write_text("".join(json.dumps({"text_a": a, "text_b": b}) + "\n" for a, b in pairs), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def simcse(tmp_path_factory):
    """A supervised SimCSE model trained on paraphrase pairs of the first four subjects, and its checkpoint."""
    directory = tmp_path_factory.mktemp("simcse")
    train = write_pairs(directory / "train.jsonl", paraphrase_pairs(600, seed=0, concepts=range(4)))
    val = write_pairs(directory / "val.jsonl", paraphrase_pairs(64, seed=1, concepts=range(4)))
    torch.manual_seed(0)
    task = ContrastiveTask(encoder=ENCODER, learning_rate=5e-3)
    data = SentencePairsData(train_path=train, val_path=val, batch_size=32, tokenizer=TokenizerOptions(vocab_size=90))
    trainer = fit_tiny(task, data, max_steps=120, val_check_interval=19, inference_mode=False)
    trainer.save_checkpoint(directory / "simcse.ckpt")
    return task, directory / "simcse.ckpt", trainer.validate(task, datamodule=data, verbose=False)[0]


def mean_cosine(task, pairs) -> float:
    first, second = task.embed([a for a, _ in pairs]), task.embed([b for _, b in pairs])
    return float((first * second).sum(1).mean())


def test_paraphrases_end_up_closer_than_random_pairs(simcse) -> None:
    task, _, metrics = simcse
    held_out = paraphrase_pairs(60, seed=5)  # every subject, unseen combinations
    shuffled = [b for _, b in held_out[1:]] + [held_out[0][1]]  # each first text with another pair's second
    random_pairs = [(a, b) for (a, _), b in zip(held_out, shuffled, strict=True)]
    assert mean_cosine(task, held_out) > mean_cosine(task, random_pairs) + 0.3
    # a text's partner is often the closest of its batch of 32 (chance: 1/32; other pairs of the batch often mean the
    # same, 4 subjects x 6 actions, so the exact partner cannot always win)
    assert metrics["val/top1-accuracy"] > 0.15


def test_similar_ranks_the_paraphrase_first(simcse) -> None:
    task = nlpkit.load(simcse[1])
    subject, action = SUBJECTS[1], ("repaired the car", "fixed the automobile")
    candidates = [f"{SUBJECTS[0][0]} {action[1]}", f"{subject[1]} {action[1]}", f"{SUBJECTS[2][1]} dozed off fast"]
    best = task.similar(f"{subject[0]} {action[0]}", candidates, k=3)
    assert best[0]["index"] == 1 and best[0]["score"] > best[-1]["score"]
    with pytest.raises(ConfigError, match="k must be at least 1"):
        task.similar("x", candidates, k=0)


def test_unpaired_validation_compares_two_dropout_views(tmp_path) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("".join(f"{a}\n" for a, _ in paraphrase_pairs(64, seed=2)), encoding="utf-8")
    task = ContrastiveTask(encoder=ENCODER)
    data = SentencePairsData(train_path=str(texts), val_path=str(texts), batch_size=32)
    trainer = fit_tiny(task, data, max_steps=1)
    task.eval()
    torch.manual_seed(0)
    first = trainer.validate(task, datamodule=data, verbose=False)[0]["val/loss"]
    torch.manual_seed(1)
    second = trainer.validate(task, datamodule=data, verbose=False)[0]["val/loss"]
    assert first != second and first > 0.01  # dropout differs between the views: not two identical vectors
    assert not task.training and not task.encoder.training  # evaluation mode is back


def test_embed_command_writes_npy_and_json_lines(simcse, tmp_path, capsys) -> None:
    _, checkpoint, _ = simcse
    texts = tmp_path / "texts.txt"
    texts.write_text("the cat fell asleep quickly\na kitten dozed off fast\n", encoding="utf-8")
    command = ["embed", "--ckpt_path", str(checkpoint), "--texts_file", str(texts)]
    assert main([*command, "--output", str(tmp_path / "v.npy")]) == 0
    vectors = np.load(tmp_path / "v.npy")
    assert vectors.dtype == np.float32 and vectors.shape == (2, 64)
    np.testing.assert_allclose(vectors, nlpkit.load(checkpoint).embed(texts.read_text().splitlines()), atol=1e-5)
    capsys.readouterr()
    assert main([*command, "--text", "one more"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["text"] for row in rows] == ["one more", "the cat fell asleep quickly", "a kitten dozed off fast"]
    np.testing.assert_allclose(rows[1]["vector"], vectors[0], atol=1e-5)
    assert main(["embed", "--ckpt_path", str(tmp_path / "missing.ckpt"), "--text", "x"]) == 2
    assert capsys.readouterr().err.strip() == f"nlpkit: error: {tmp_path / 'missing.ckpt'}: no such checkpoint file"


def test_an_export_embeds_and_ranks_as_the_checkpoint(simcse, tmp_path) -> None:
    from nlpkit.testing import check_export

    task, _ = simcse[:2]
    texts = ["a cat sat on the mat", "the weather is cold today", "dogs bark"]
    exported = check_export(task, texts, tmp_path / "simcse")
    assert np.allclose(exported.embed(texts), task.embed(texts), atol=1e-5)
    assert [r["index"] for r in exported.similar(texts[0], texts)] == [
        r["index"] for r in task.similar(texts[0], texts)
    ]
