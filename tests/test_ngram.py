"""The n-gram encoder (fastText's features) and encoders side by side: hashing, the bag means, composition."""

from __future__ import annotations

import zlib
from functools import partial

import pytest
import torch
from torch import nn

from nlpkit.models.encoders.concat import ConcatEncoder
from nlpkit.models.encoders.ngram import HASH_MODULUS, HASH_MULTIPLIER, NGramEncoder, string_bucket, token_ngram_buckets
from nlpkit.models.encoders.rnn import LSTMEncoder
from nlpkit.models.padding import pad
from nlpkit.models.tokenizers import Tokenizer
from nlpkit.plugin.errors import ConfigError
from nlpkit.testing import sentiment_corpus

TEXTS = [text for text, _ in sentiment_corpus(80, seed=1)]


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.train(TEXTS, vocab_size=90)


def reference_bucket(ngram: list[int], buckets: int) -> int:
    """The n-gram's bucket by the hash's definition, one Python integer at a time."""
    hashed = ngram[0]
    for token in ngram[1:]:
        hashed = (hashed * HASH_MULTIPLIER + token + 1) % HASH_MODULUS
    return (hashed * HASH_MULTIPLIER + len(ngram)) % buckets


def test_token_ngram_buckets_are_in_range_and_exist_only_on_real_tokens() -> None:
    tokens, mask = pad([[5, 6, 7, 8], [9, 10]], left=True)
    ids, valid = token_ngram_buckets(tokens, mask, 3, 17)
    assert ids.min() >= 0 and ids.max() < 17
    assert valid.tolist() == [[True, True, False, False], [False, False, False, False]]
    assert ids[0, :2].tolist() == [reference_bucket([5, 6, 7], 17), reference_bucket([6, 7, 8], 17)]


def test_bigram_hash_collides_as_seldom_as_a_random_function() -> None:
    """All 2,500 bigrams of 50 ids into 65,536 buckets: a random function leaves about 47 bigrams sharing a bucket
    (the birthday bound); a weak hash (a sum, or order-blind) collides by the hundreds."""
    grid = torch.arange(50)
    tokens = torch.stack(torch.meshgrid(grid, grid, indexing="ij"), -1).view(-1, 2)
    ids, valid = token_ngram_buckets(tokens, torch.ones_like(tokens, dtype=torch.bool), 2, 65_536)
    distinct = ids[:, 0][valid[:, 0]].unique().numel()
    assert 2500 - distinct < 100
    unigram_order = token_ngram_buckets(tokens[:1, :1], torch.ones(1, 1, dtype=torch.bool), 1, 65_536)[0]
    assert int(unigram_order) != int(ids[0, 0])  # orders are hashed apart: (0) and (0, 0) differ


def test_string_buckets_are_stable_across_processes() -> None:
    assert string_bucket("<ab", 1000) == zlib.crc32(b"<ab") % 1000
    assert {string_bucket(text, 7) for text in ("a", "東京", "ｶﾀｶﾅ", "한국어")} <= set(range(7))


def test_mean_pooled_states_equal_a_hand_computed_embedding_bag(tokenizer) -> None:
    """Every position's state is the mean of its bag (token, token n-grams starting there, the piece's character
    n-grams); mean-pooled, a sentence is the mean of those bag means, computed here with ``nn.EmbeddingBag``."""
    torch.manual_seed(0)
    buckets, vocab = 997, tokenizer.vocab_size
    encoder = NGramEncoder(vocab, dim=5, ngrams=3, buckets=buckets, char_ngrams=[1, 3]).eval()
    encoder.initialize(tokenizer)
    table = torch.cat([encoder.token_embedding.weight, encoder.ngram_embedding.weight]).detach()
    bag = nn.EmbeddingBag.from_pretrained(table, mode="mean")
    text = TEXTS[0]
    ids = tokenizer.encode_plain([text])[0]
    pieces = tokenizer.vocabulary()
    bags = []
    for start, token in enumerate(ids):
        rows = [token]
        rows += [vocab + reference_bucket(ids[start : start + n], buckets) for n in (2, 3) if start + n <= len(ids)]
        piece = pieces[token]
        chars = "<" + piece[1:] if piece.startswith("▁") else piece
        grams = [chars[i : i + n] for n in (1, 2, 3) for i in range(len(chars) - n + 1)][:24]
        rows += [vocab + zlib.crc32(gram.encode()) % buckets for gram in grams]
        bags.append(rows)
    flat = torch.tensor([row for rows in bags for row in rows])
    offsets = torch.tensor([0, *torch.tensor([len(rows) for rows in bags]).cumsum(0)[:-1].tolist()])
    expected = bag(flat, offsets).mean(0)
    tokens, mask = pad([ids, ids[:3]])
    with torch.no_grad():
        states = encoder(tokens, mask)
    torch.testing.assert_close(states[0].mean(0), expected, atol=1e-6, rtol=0)
    with torch.no_grad():  # the shorter row of the batch sees only its own tokens
        alone = encoder(*pad([ids[:3]]))
    torch.testing.assert_close(states[1, :3], alone[0], atol=1e-6, rtol=0)


def test_special_pieces_have_no_character_ngrams(tokenizer) -> None:
    encoder = NGramEncoder(tokenizer.vocab_size, dim=4, buckets=64, char_ngrams=[2, 4])
    encoder.initialize(tokenizer)
    assert (encoder.piece_ngrams[tokenizer.special_ids()] == -1).all()
    long_piece = next(i for i, piece in enumerate(tokenizer.vocabulary()) if len(piece) >= 4 and piece[0] != "<")
    assert (encoder.piece_ngrams[long_piece] >= 0).sum() >= 3


def test_character_ngrams_are_saved_with_the_weights(tokenizer) -> None:
    encoder = NGramEncoder(tokenizer.vocab_size, dim=4, buckets=64, char_ngrams=[1, 2])
    encoder.initialize(tokenizer)
    rebuilt = NGramEncoder(tokenizer.vocab_size, **encoder.spec()["init_args"])
    rebuilt.load_state_dict(encoder.state_dict())
    assert torch.equal(rebuilt.piece_ngrams, encoder.piece_ngrams)


@pytest.mark.parametrize(
    "arguments", [{"ngrams": 0}, {"buckets": 0}, {"char_ngrams": [3, 2]}, {"char_ngrams": [0, 2]}, {"char_ngrams": [2]}]
)
def test_bad_settings_are_config_errors(arguments) -> None:
    with pytest.raises(ConfigError):
        NGramEncoder(10, **arguments)


def test_concat_keeps_each_parts_states() -> None:
    torch.manual_seed(0)
    parts = [partial(NGramEncoder, dim=4, buckets=31), partial(LSTMEncoder, embedding_dim=3, hidden_size=5)]
    encoder = ConcatEncoder(20, parts).eval()
    tokens, mask = pad([[4, 5, 6, 7], [8, 9]])
    with torch.no_grad():
        states = encoder(tokens, mask)
        first, second = (part(tokens, mask) for part in encoder.parts)
    assert encoder.output_dim == 9 and states.shape == (2, 4, 9)
    torch.testing.assert_close(states[..., :4], first)
    torch.testing.assert_close(states[..., 4:][mask], second[mask])
    assert encoder.token_embedding is encoder.parts[0].token_embedding


def test_concat_gives_input_features_to_every_part() -> None:
    encoder = ConcatEncoder(20, [partial(NGramEncoder, dim=4, buckets=31), partial(LSTMEncoder, hidden_size=5)], 3)
    tokens, mask = pad([[4, 5, 6]])
    assert encoder(tokens, mask, torch.ones(1, 3, 3)).shape == (1, 3, 4 + 3 + 5)
    with pytest.raises(ValueError, match="feature_dim 3"):
        encoder(tokens, mask)


def test_concat_needs_parts() -> None:
    with pytest.raises(ConfigError, match="at least one"):
        ConcatEncoder(20, [])
