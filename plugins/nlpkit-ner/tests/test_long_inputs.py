"""Sentences longer than the model's max_length: read in overlapping windows of words, never cut off, never a crash."""

from __future__ import annotations

import random
from functools import partial
from itertools import pairwise

import pytest
import torch
from nlpkit_ner.data import ConllData
from nlpkit_ner.sample import sample_sentences
from nlpkit_ner.task import TokenClassificationTask
from nlpkit_ner.words import stitch, windows, write_conll

import nlpkit
from nlpkit import ConfigError, LSTMEncoder, TokenizerOptions
from nlpkit.testing import fit_tiny

MAX_LENGTH = 16  # pieces, <s> included: about ten words of the sample sentences
ENCODER = partial(LSTMEncoder, embedding_dim=32, hidden_size=32, bidirectional=True)
FILLER = "nobody expected the rain today ."
SENTENCE = "Ada Lovelace visited Oslo on Monday ."


def long_sentences(count: int, per_sentence: int, seed: int) -> list[tuple[list[str], list[str]]]:
    """Sample sentences joined ``per_sentence`` at a time: each far longer than MAX_LENGTH."""
    short = sample_sentences(count * per_sentence, seed=seed)
    joined = [short[i : i + per_sentence] for i in range(0, len(short), per_sentence)]
    return [([t for tokens, _ in group for t in tokens], [t for _, tags in group for t in tags]) for group in joined]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    directory = tmp_path_factory.mktemp("long-ner")
    write_conll(directory / "train.conll", sample_sentences(300, seed=0))
    write_conll(directory / "long.conll", long_sentences(25, per_sentence=8, seed=1))
    data = ConllData(
        train_path=str(directory / "train.conll"),
        val_path=str(directory / "long.conll"),
        batch_size=16,
        tokenizer=TokenizerOptions(vocab_size=120, max_length=MAX_LENGTH),
    )
    torch.manual_seed(0)
    task = TokenClassificationTask(encoder=ENCODER, learning_rate=1e-2, stride=4)
    trainer = fit_tiny(task, data, max_steps=150)
    return task.eval(), trainer, data


def test_an_entity_after_five_windows_of_filler_is_found(trained) -> None:
    task, _, _ = trained
    filler = " ".join([FILLER] * 14)  # 84 words, over 5 x MAX_LENGTH
    assert len(filler.split()) > 5 * MAX_LENGTH
    text = f"{filler} {SENTENCE}"
    (entities,) = task.predict([text])
    assert [(e["text"], e["label"]) for e in entities] == [("Ada Lovelace", "PER"), ("Oslo", "LOC")]
    assert all(text[e["start"] : e["end"]] == e["text"] for e in entities)
    assert len(task.encode(task.input_fields(text), labeled=False)["windows"]) >= 5
    (words,) = task.predict([text.split()])  # pre-tokenised input is windowed the same way
    assert [(e["text"], e["label"]) for e in words] == [("Ada Lovelace", "PER"), ("Oslo", "LOC")]


def test_long_sentences_are_trained_and_evaluated_whole(trained) -> None:
    task, trainer, data = trained
    metrics = trainer.validate(task, datamodule=data, verbose=False)[0]
    assert metrics["val/entity-recall"] >= 0.85  # cut at MAX_LENGTH, the words after it would all be "O"
    assert metrics["val/loss"] < 1.0  # every window's gold tags are a valid CRF path, entities cut at its edges too


def test_checkpoint_keeps_the_stride(trained, tmp_path) -> None:
    task, trainer, _ = trained
    trainer.save_checkpoint(tmp_path / "ner.ckpt")
    loaded = nlpkit.load(tmp_path / "ner.ckpt")
    text = " ".join([FILLER] * 10 + [SENTENCE])
    assert loaded.stride == 4
    assert loaded.predict([text]) == task.predict([text])


def test_inputs_without_words_or_with_one_huge_word_predict_nothing(trained) -> None:
    task, _, _ = trained
    assert task.crf is not None  # the CRF needs at least one word per row: an empty window must not reach it
    inputs = ["", "   ", [], {"tokens": []}, "x" * 5000, SENTENCE]
    results = task.predict(inputs, batch_size=len(inputs))
    assert results[:5] == [[], [], [], [], []]
    assert [e["text"] for e in results[5]] == ["Ada Lovelace", "Oslo"]


def test_windows_cover_every_word_within_the_budget_and_stitch_at_the_middle() -> None:
    assert windows([1] * 10, budget=4, overlap=2) == [(0, 4), (2, 6), (4, 8), (6, 10)]
    window_of_word = stitch([[0] * 4, [1] * 4, [2] * 4, [3] * 4], windows([1] * 10, budget=4, overlap=2))
    assert window_of_word == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3]  # word 3 is last in window 0, second in window 1
    assert windows([], budget=4, overlap=2) == [(0, 0)]
    assert windows([1, 9, 1], budget=4, overlap=0) == [(0, 1), (1, 2), (2, 3)]  # a word over budget stands alone
    rng = random.Random(0)
    for _ in range(200):
        sizes = [rng.randint(1, 6) for _ in range(rng.randint(1, 60))]
        budget, overlap = rng.randint(1, 20), rng.randint(0, 10)
        ranges = windows(sizes, budget, overlap)
        assert ranges[0][0] == 0 and ranges[-1][1] == len(sizes)
        for (start, end), (next_start, next_end) in pairwise(ranges):
            assert start < next_start <= end <= next_end  # moving on, with no gap
            assert end - next_start <= min(overlap, (end - start) // 2)
        assert all(sum(sizes[start:end]) <= budget or end - start == 1 for start, end in ranges)
        assert stitch([list(range(start, end)) for start, end in ranges], ranges) == list(range(len(sizes)))


def test_stride_is_a_number_of_words() -> None:
    with pytest.raises(ConfigError, match="stride must be a number of words >= 0"):
        TokenClassificationTask(encoder=ENCODER, stride=-1)
