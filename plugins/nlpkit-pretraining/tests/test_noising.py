"""Masking and noising statistics, on a real SentencePiece model trained on the fly."""

from __future__ import annotations

import pytest
import torch
from nlpkit_pretraining.noising import IGNORE, Masker, MaskingOptions, infill, permute
from nlpkit_pretraining.sample import paraphrase_pairs, topic_sentences

from nlpkit import ConfigError, Tokenizer, pad

TEXTS = [text for pair in paraphrase_pairs(300) for text in pair] + [text for text, _ in topic_sentences(300)]


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.train(TEXTS, vocab_size=120, special_tokens=["<lang:en>"])


@pytest.fixture(scope="module")
def batch(tokenizer: Tokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    return pad(tokenizer.encode(TEXTS[:400] * 3, add_bos=True, add_eos=True))


def masked(tokenizer: Tokenizer, batch, **options):
    tokens, mask = batch
    inputs, labels = Masker(tokenizer, MaskingOptions(**options))(tokens, mask, torch.Generator().manual_seed(0))
    return tokens, mask, inputs, labels


def test_special_ids_are_the_control_and_user_defined_symbols(tokenizer: Tokenizer) -> None:
    special = {tokenizer.vocabulary()[i] for i in tokenizer.special_ids()}
    assert special == {"<pad>", "<s>", "</s>", "<mask>", "<lang:en>"}


def test_token_masking_chooses_15_percent_and_replaces_80_10_10(tokenizer: Tokenizer, batch) -> None:
    tokens, mask, inputs, labels = masked(tokenizer, batch)
    chosen = labels != IGNORE
    text = mask & ~torch.isin(tokens, torch.tensor(tokenizer.special_ids()))
    assert not (chosen & ~text).any()  # never padding, <s>, </s>
    per_row = chosen.sum(1).float() / text.sum(1).float()
    assert per_row.mean() == pytest.approx(0.15, abs=0.02)
    assert torch.equal(labels[chosen], tokens[chosen])
    assert torch.equal(inputs[~chosen], tokens[~chosen])  # nothing else changes
    shown_as_mask = (inputs[chosen] == tokenizer.mask_id).float().mean()
    unchanged = (inputs[chosen] == tokens[chosen]).float().mean()
    assert shown_as_mask == pytest.approx(0.8, abs=0.03)
    assert unchanged == pytest.approx(0.1 + 0.1 / (tokenizer.vocab_size - 5), abs=0.03)  # kept, or drawn itself
    random = inputs[chosen][(inputs[chosen] != tokenizer.mask_id) & (inputs[chosen] != tokens[chosen])]
    assert not torch.isin(random, torch.tensor(tokenizer.special_ids())).any()


def test_whole_word_masking_takes_every_piece_of_a_chosen_word(tokenizer: Tokenizer, batch) -> None:
    tokens, mask, _, labels = masked(tokenizer, batch, unit="whole-word")
    starts = torch.tensor([piece.startswith("▁") for piece in tokenizer.vocabulary()])
    chosen = labels != IGNORE
    continues = mask & ~starts[tokens] & ~torch.isin(tokens, torch.tensor(tokenizer.special_ids()))
    # a piece that continues a word is chosen exactly when the piece before it is
    inner = continues[:, 1:]
    assert inner.sum() > 100
    assert torch.equal(chosen[:, 1:][inner], chosen[:, :-1][inner])
    assert chosen.sum() / (mask.sum() - 2 * len(mask)) == pytest.approx(0.15, abs=0.03)


def test_span_masking_takes_runs_of_words_within_the_budget(tokenizer: Tokenizer, batch) -> None:
    _, mask, _, labels = masked(tokenizer, batch, unit="span", span_p=0.3)
    chosen = labels != IGNORE
    text = (mask.sum(1) - 2).float()
    assert (chosen.sum(1) <= torch.round(0.15 * text).clamp(min=1)).all()
    runs = (chosen[:, 1:] & ~chosen[:, :-1]).sum()  # starts of chosen runs
    assert chosen.sum() / runs > 1.5  # spans, not scattered single tokens


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="add up to at most 1"):
        MaskingOptions(mask_fraction=0.9, random_fraction=0.2)
    with pytest.raises(ConfigError, match="token, whole-word or span"):
        MaskingOptions(unit="sentence")  # type: ignore[arg-type]


def test_infilling_masks_spans_with_one_token_each() -> None:
    generator = torch.Generator().manual_seed(0)
    ids = list(range(10, 110))
    out = infill(ids, 0.3, 3.0, mask_id=4, generator=generator)
    kept = [token for token in out if token != 4]
    assert kept == sorted(kept) and set(kept) <= set(ids)  # the rest in order
    assert 1 - len(kept) / len(ids) == pytest.approx(0.3, abs=0.05)
    assert out.count(4) < len(ids) - len(kept)  # spans collapse: fewer masks than masked tokens
    assert infill([], 0.3, 3.0, 4, generator) == []


def test_permutation_shuffles_whole_sentences() -> None:
    sentences = [[1, 2], [3], [4, 5, 6], [7]]
    orders = {tuple(map(tuple, permute(sentences, torch.Generator().manual_seed(s)))) for s in range(20)}
    assert len(orders) > 5 and all(sorted(order) == sorted(map(tuple, sentences)) for order in orders)
