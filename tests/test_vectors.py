"""Word vectors: each format read from a tiny file, malformed rows named by file and line, vectors copied into a
token embedding by the tokenizer's vocabulary, frozen rows that stay while the others train."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from nlpkit.models.encoders.cnn import CNNEncoder
from nlpkit.models.encoders.rnn import LSTMEncoder
from nlpkit.models.tokenizers import Tokenizer
from nlpkit.models.vectors import WordVectors, WordVectorsOptions, vector_row
from nlpkit.plugin.errors import ConfigError, DataError
from nlpkit.testing import sentiment_corpus

WORDS = ["the", "film", "great", "dull"]
VECTORS = np.arange(12, dtype=np.float32).reshape(4, 3) / 10


def write(tmp_path: Path, kind: str) -> WordVectorsOptions:
    """The four test vectors in ``kind``'s format."""
    rows = [f"{word} {' '.join(str(v) for v in vector)}" for word, vector in zip(WORDS, VECTORS, strict=True)]
    if kind == "npy":
        np.save(tmp_path / "vectors.npy", VECTORS)
        (tmp_path / "words.txt").write_text("\n".join(WORDS) + "\n")
        return WordVectorsOptions(path=str(tmp_path / "vectors.npy"))
    header = ["4 3"] if kind == "word2vec" else []
    path = tmp_path / ("vectors.vec" if kind == "word2vec" else "vectors.txt")
    path.write_text("\n".join(header + rows) + "\n")
    return WordVectorsOptions(path=str(path))


@pytest.mark.parametrize("kind", ["glove", "word2vec", "npy"])
def test_each_format_reads_the_same_vectors(kind, tmp_path) -> None:
    vectors = WordVectors.read(write(tmp_path, kind))
    assert vectors.words == WORDS and vectors.dim == 3
    np.testing.assert_allclose(vectors.vectors, VECTORS, rtol=1e-6)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("the 0.1 0.2 0.3\nfilm 0.1 0.2\n", r"vectors\.txt:2: expected a word and 3 numbers"),
        ("the 0.1 0.2 0.3\n\ngreat 0.1 x 0.3\n", r"vectors\.txt:3: expected a word and 3 numbers"),
        ("", r"vectors\.txt: holds no word vectors"),
    ],
)
def test_a_malformed_row_is_named_by_file_and_line(content, message, tmp_path) -> None:
    (tmp_path / "vectors.txt").write_text(content)
    with pytest.raises(DataError, match=message):
        WordVectors.read(WordVectorsOptions(path=str(tmp_path / "vectors.txt")))


def test_bad_headers_word_lists_and_files_are_named(tmp_path) -> None:
    (tmp_path / "bad.vec").write_text("the 0.1 0.2\n")
    with pytest.raises(DataError, match=r"bad\.vec:1: expected a word2vec header 'count dim'"):
        WordVectors.read(WordVectorsOptions(path=str(tmp_path / "bad.vec")))
    options = write(tmp_path, "npy")
    (tmp_path / "words.txt").write_text("the\nfilm\n")
    with pytest.raises(DataError, match=r"words\.txt: expected 4 words \(the matrix's rows\), found 2"):
        WordVectors.read(options)
    with pytest.raises(DataError, match="word vectors file not found"):
        WordVectors.read(WordVectorsOptions(path=str(tmp_path / "missing.txt")))


def test_lookup_tries_the_word_then_lower_case_then_without_subword_marks() -> None:
    index = {"the": 0, "film": 1}
    assert [vector_row(index, w) for w in ("the", "The", "▁film", "##film", "Ġthe", "dull")] == [0, 0, 1, 1, 0, None]


@pytest.mark.parametrize("freeze", [True, False])
def test_an_encoder_starts_from_the_vectors_and_frozen_rows_stay(freeze, tmp_path) -> None:
    options = write(tmp_path, "glove")
    options.freeze = freeze
    texts = [text for text, _ in sentiment_corpus(100)]
    tokenizer = Tokenizer.train(texts, vocab_size=200, model_type="word", lowercase=True)
    encoder = LSTMEncoder(tokenizer.vocab_size, embedding_dim=3, hidden_size=4, embeddings=options)
    encoder.initialize(tokenizer)
    film, plot = tokenizer.token_id("film"), tokenizer.token_id("plot")
    torch.testing.assert_close(encoder.token_embedding.weight[film], torch.from_numpy(VECTORS[1]))
    tokens = torch.tensor([[film, plot, film]])
    before = encoder.token_embedding.weight.detach().clone()
    optimizer = torch.optim.SGD(encoder.parameters(), lr=1.0)
    encoder(tokens, torch.ones_like(tokens, dtype=torch.bool)).sum().backward()
    optimizer.step()
    after = encoder.token_embedding.weight.detach()
    assert not torch.equal(after[plot], before[plot])  # a word the file lacks learns its vector
    assert torch.equal(after[film], before[film]) is freeze
    assert int(encoder.token_embedding.pretrained_rows.sum()) == 4  # the four file words the vocabulary holds


def test_vectors_of_another_width_are_refused_with_the_width_to_set(tmp_path) -> None:
    tokenizer = Tokenizer.train(WORDS * 5, vocab_size=20, model_type="word")
    encoder = partial(CNNEncoder, embedding_dim=8, embeddings=write(tmp_path, "glove"))(tokenizer.vocab_size)
    with pytest.raises(ConfigError, match="the word vectors have 3 dimensions, the token embedding 8: set the "):
        encoder.initialize(tokenizer)
    assert encoder.spec()["init_args"]["embeddings"]["path"].endswith("vectors.txt")  # plain data, as checkpoints hold


def test_binary_files_are_refused_by_line_and_words_may_hold_spaces(tmp_path) -> None:
    (tmp_path / "vectors.txt").write_bytes(b"the 0.1 0.2\n\xff\xfe 0.3 0.4\n")
    with pytest.raises(DataError, match=r"vectors\.txt:2: not UTF-8 text"):
        WordVectors.read(WordVectorsOptions(path=str(tmp_path / "vectors.txt")))
    (tmp_path / "spaced.txt").write_text("the 0.1 0.2\nnew york 0.3 0.4\n")  # GloVe 840B has such words
    assert WordVectors.read(WordVectorsOptions(path=str(tmp_path / "spaced.txt"))).words == ["the", "new york"]
