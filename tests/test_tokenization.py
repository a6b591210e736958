"""SentencePiece tokenizer trained on the fly: round trips, special tokens, truncation, files and bytes."""

from __future__ import annotations

import pytest

from nlpkit.models.tokenizers import Tokenizer, TokenizerOptions
from nlpkit.models.tokenizers.sentencepiece import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from nlpkit.plugin.errors import CheckpointError, ConfigError, DataError
from nlpkit.testing import sentiment_corpus

TEXTS = [text for text, _ in sentiment_corpus(300)]


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.train(TEXTS, vocab_size=120, special_tokens=["<lang:en>", "<lang:de>"])


def test_round_trip_and_fixed_special_ids(tokenizer: Tokenizer) -> None:
    texts = ["the movie was not great", "the cast felt superb overall"]
    ids = tokenizer.encode(texts, add_bos=True, add_eos=True)
    assert all(seq[0] == BOS_ID and seq[-1] == EOS_ID for seq in ids)
    assert tokenizer.decode(ids) == texts
    assert (tokenizer.pad_id, tokenizer.unk_id) == (PAD_ID, UNK_ID)
    assert tokenizer.vocab_size <= 120


def test_special_tokens_are_single_pieces(tokenizer: Tokenizer) -> None:
    de = tokenizer.token_id("<lang:de>")
    assert de != tokenizer.token_id("<lang:en>") and de > EOS_ID
    assert "<lang:de>" in tokenizer.pieces("<lang:de> the film")
    assert de in tokenizer.encode(["<lang:de> the film"])[0]
    assert tokenizer.token_id("<mask>") == tokenizer.mask_id
    with pytest.raises(ConfigError, match="'<lang:fr>' is not in the tokenizer's vocabulary"):
        tokenizer.token_id("<lang:fr>")


def test_truncation_keeps_bos_and_eos(tokenizer: Tokenizer) -> None:
    long_text = " ".join(TEXTS[:20])
    ids = tokenizer.encode([long_text], add_bos=True, add_eos=True, max_length=10)[0]
    assert len(ids) == 10 and ids[0] == BOS_ID and ids[-1] == EOS_ID
    assert len(tokenizer.with_max_length(7).encode([long_text])[0]) == 7


def test_unknown_characters_map_to_unk_unless_byte_fallback(tokenizer: Tokenizer) -> None:
    assert UNK_ID in tokenizer.encode(["the film was 美"])[0]
    fallback = Tokenizer.train(TEXTS, vocab_size=400, byte_fallback=True)
    ids = fallback.encode(["the film was 美"])[0]
    assert UNK_ID not in ids
    assert fallback.decode([ids]) == ["the film was 美"]


def test_bpe_and_unigram_both_train(tokenizer: Tokenizer) -> None:
    bpe = Tokenizer.train(TEXTS, vocab_size=120, model_type="bpe")
    assert bpe.decode(bpe.encode(["the plot was dull"])) == ["the plot was dull"]
    assert bpe.to_bytes() != tokenizer.to_bytes()


def test_training_is_deterministic() -> None:
    assert Tokenizer.train(TEXTS, vocab_size=100).to_bytes() == Tokenizer.train(TEXTS, vocab_size=100).to_bytes()


def test_save_writes_atomically_and_loads_back(tokenizer: Tokenizer, tmp_path) -> None:
    path = tmp_path / "sub" / "spm.model"
    tokenizer.save(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["spm.model"]  # no temporary file left
    assert Tokenizer.load(path) == tokenizer
    assert Tokenizer.from_options(TokenizerOptions(path=str(path)), texts=[]) == tokenizer


def test_bytes_that_are_not_a_model_are_refused(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="invalid SentencePiece model"):
        Tokenizer.from_bytes(b"definitely not a sentencepiece model")
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"\x00\x01garbage")
    with pytest.raises(DataError, match=r"bad.model: not a usable tokenizer"):
        Tokenizer.load(bad)
    with pytest.raises(DataError, match="tokenizer file not found"):
        Tokenizer.load(tmp_path / "missing.model")


def test_empty_training_text_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="training text is empty"):
        Tokenizer.train(["", "   "])


def test_whole_documents_longer_than_a_sentencepiece_sentence_train_a_vocabulary() -> None:
    document = " ".join(TEXTS * 3)  # one line of about 23,000 characters: SentencePiece alone would skip it
    assert len(document) > 4 * 4192
    tokenizer = Tokenizer.train([document], vocab_size=120)
    assert tokenizer.vocab_size >= 0.8 * Tokenizer.train(TEXTS, vocab_size=120).vocab_size  # as if given lines
    words = "the movie was not great"
    assert len(tokenizer.encode([words])[0]) < len(words.replace(" ", ""))  # pieces longer than characters
