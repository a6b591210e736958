"""A tagger's word representation: pretrained word vectors and characters read by the encoder in context,
subword pieces of a WordPiece tokenizer pooled into their word, and both through checkpoints and exports."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from nlpkit_ner.data import ConllData
from nlpkit_ner.sample import sample_sentences
from nlpkit_ner.task import TokenClassificationTask, pool_words
from nlpkit_ner.words import write_conll

import nlpkit
from nlpkit import CheckpointError, ConfigError, Encoder, LSTMEncoder, PretrainedEncoder, TokenizerOptions
from nlpkit.deploy.export import batch_of
from nlpkit.testing import check_export, fit_tiny, tiny_pretrained_model

BILSTM = partial(LSTMEncoder, embedding_dim=16, hidden_size=16, bidirectional=True)


@pytest.fixture(scope="module")
def conll(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("conll")
    files = {"train": directory / "train.conll", "val": directory / "val.conll"}
    write_conll(files["train"], sample_sentences(160, seed=1))
    write_conll(files["val"], sample_sentences(40, seed=2))
    return files


@pytest.fixture(scope="module")
def glove(conll, tmp_path_factory) -> Path:
    """Lower-case vectors for most words of the sample sentences, in GloVe's text format."""
    words = sorted({word.lower() for tokens, _ in sample_sentences(200, seed=1) for word in tokens})[::2]
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("glove") / "vectors.txt"
    path.write_text("".join(f"{w} {' '.join(f'{v:.4f}' for v in rng.normal(size=8))}\n" for w in words))
    return path


def data(conll, **options) -> ConllData:
    options.setdefault("tokenizer", TokenizerOptions(model_type="word", vocab_size=400))
    return ConllData(train_path=str(conll["train"]), val_path=str(conll["val"]), batch_size=16, **options)


def test_vectors_and_characters_join_the_encoders_input_and_survive_a_checkpoint(conll, glove, tmp_path) -> None:
    torch.manual_seed(0)
    options = {"path": str(glove), "freeze": True}
    task = TokenClassificationTask(encoder=BILSTM, char_features="cnn", word_vectors=options, word_features="encoder")
    trainer = fit_tiny(task, data(conll), max_steps=8)
    assert task.encoder.rnn.input_size == 16 + 64 + 8  # token embedding, characters, vectors
    table = task.vectors.embedding
    assert not table.requires_grad and task.vectors.unknown.grad is not None  # unknown words learn their vector
    checkpoint = tmp_path / "tagger.ckpt"
    trainer.save_checkpoint(checkpoint)
    glove.rename(glove.with_suffix(".moved"))  # a checkpoint needs the vectors file no more
    try:
        loaded = nlpkit.load(checkpoint)
    finally:
        glove.with_suffix(".moved").rename(glove)
    torch.testing.assert_close(loaded.vectors.embedding, table)
    texts = ["Ada Lovelace visited Oslo .", "Mr Smith met Alice in Paris"]
    with torch.inference_mode():
        batch = batch_of(task.eval(), texts)
        torch.testing.assert_close(loaded.eval()._emissions(batch), task._emissions(batch))  # every tag's score
    assert loaded.predict(texts) == task.predict(texts)
    hostile = torch.load(checkpoint, weights_only=True)
    hostile["nlpkit"]["artifacts"]["vector_dim"] = 10**9  # would allocate gigabytes before the shapes are compared
    torch.save(hostile, tmp_path / "hostile.ckpt")
    with pytest.raises(CheckpointError, match="the word vectors' vocabulary is not a list of words with a width"):
        nlpkit.load(tmp_path / "hostile.ckpt")
    exported = check_export(loaded, texts, tmp_path / "export")  # the vocabulary goes along (artifacts.json)
    spans = [[(e["label"], e["start"], e["end"]) for e in row] for row in loaded.predict(texts)]
    assert [[(e["label"], e["start"], e["end"]) for e in row] for row in exported.predict(texts)] == spans


def test_wordpiece_pieces_of_a_word_pool_into_its_state(tmp_path) -> None:
    folder = tiny_pretrained_model(tmp_path / "bert")
    task = TokenClassificationTask(encoder=partial(PretrainedEncoder, path=str(folder)), subword_pooling="mean")
    task.bind(task.tokenizer, ["O", "B-PER", "I-PER"])
    words = ["The", "soundtrack", "unbelievably", "moving"]
    example = task.encode({"tokens": words}, labeled=False)
    pieces = task.tokenizer.encode_words(words)  # type: ignore[union-attr]
    assert [len(word) for word in pieces][2] > 1  # "unbelievably" splits
    [window], [firsts], [ends] = example["tokens"], example["firsts"], example["ends"]
    assert window[0] == task.tokenizer.bos_id and window[-1] == task.tokenizer.eos_id  # [CLS] ... [SEP]
    assert [window[f:e] for f, e in zip(firsts, ends, strict=True)] == pieces
    hidden = torch.randn(1, len(window), 5)
    pooled = {kind: pool_words(hidden, torch.tensor([firsts]), torch.tensor([ends]), kind) for kind in ("mean", "max")}
    for index, (first, end) in enumerate(zip(firsts, ends, strict=True)):
        torch.testing.assert_close(pooled["mean"][0, index], hidden[0, first:end].mean(0))
        torch.testing.assert_close(pooled["max"][0, index], hidden[0, first:end].amax(0))


class Plain(Encoder):
    """A third-party encoder that takes no input features (no ``feature_dim``)."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size, self.output_dim = vocab_size, 4
        self.token_embedding = torch.nn.Embedding(vocab_size, 4)


def test_an_encoder_that_takes_no_features_is_refused_by_name(conll, glove) -> None:
    task = TokenClassificationTask(encoder=Plain, word_vectors={"path": str(glove)}, word_features="encoder")
    with pytest.raises(ConfigError, match="gives its encoder 8 input features a token, and this encoder takes none"):
        fit_tiny(task, data(conll), max_steps=1)
