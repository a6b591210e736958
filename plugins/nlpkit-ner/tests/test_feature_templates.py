"""Hashed word-feature templates: each template on Latin, Japanese, Chinese and Korean words, their keys and bags,
a plugin's own template, and taggers that find unseen names in text without spaces by them."""

from __future__ import annotations

import random
import zlib
from functools import partial

import pytest
import torch
from nlpkit_ner.data import ConllData
from nlpkit_ner.features import OUTSIDE, FeatureTemplateOptions, WordFeatures, script_class
from nlpkit_ner.metrics import entity_f1
from nlpkit_ner.task import TokenClassificationTask
from nlpkit_ner.words import split_words, write_conll

from nlpkit import NGramEncoder, TokenizerOptions, registry
from nlpkit.plugin.errors import ConfigError, UnknownNameError
from nlpkit.testing import fit_tiny


def values(template: str, word: str) -> list[str]:
    return registry("word_features")[template](word)


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("Tokyo", {"identity": ["Tokyo"], "lower": ["tokyo"], "prefixes": ["T", "To", "Tok", "Toky"],
                   "suffixes": ["o", "yo", "kyo", "okyo"], "shape": ["Xx"], "scripts": ["upper+lower", "has-lower",
                                                                                        "has-upper"]}),
        ("U.S.", {"shape": ["X.X."], "scripts": ["upper+punct+upper+punct", "has-punct", "has-upper"]}),
        ("1990s", {"shape": ["dx"], "suffixes": ["s", "0s", "90s", "990s"]}),
        ("東京都", {"lower": ["東京都"], "prefixes": ["東", "東京", "東京都"], "shape": ["漢"],
                    "scripts": ["han", "has-han"]}),
        ("トヨタ", {"suffixes": ["タ", "ヨタ", "トヨタ"], "shape": ["ア"], "scripts": ["katakana", "has-katakana"]}),
        ("住んで", {"scripts": ["han+hiragana", "has-han", "has-hiragana"], "shape": ["漢あ"]}),
        ("北京市", {"identity": ["北京市"], "suffixes": ["市", "京市", "北京市"], "scripts": ["han", "has-han"]}),
        ("서울", {"scripts": ["hangul", "has-hangul"], "shape": ["한"]}),
    ],
)  # fmt: skip
def test_each_template_reads_latin_japanese_chinese_and_korean_words(word, expected) -> None:
    for template, wanted in expected.items():
        assert values(template, word) == wanted, template


def test_script_classes() -> None:
    assert [script_class(c) for c in "Aa1.ひカ漢한éß"] == [
        "upper", "lower", "digit", "punct", "hiragana", "katakana", "han", "hangul", "lower", "lower"
    ]  # fmt: skip
    assert script_class("ｶ") == "katakana" and script_class("ー") == "katakana" and script_class("Ж") == "upper"


def test_text_without_spaces_splits_into_characters_and_other_words_stay_whole() -> None:
    words = [word for word, _, _ in split_words("山田さんはSony Groupで働く。서울 state-of-the-art")]
    assert words == ["山", "田", "さ", "ん", "は", "Sony", "Group", "で", "働", "く", "。", "서울", "state-of-the-art"]


def test_keys_name_template_and_offset_and_reach_past_the_sentence() -> None:
    options = FeatureTemplateOptions(templates=["lower"], neighbours=["shape"], window=1, buckets=1000, dim=4)
    features = WordFeatures(options)
    keys = features.values(["Paris", "is", "big"])
    assert keys[0] == ["lower=paris", f"@-1={OUTSIDE}", "shape@1=x"]
    assert keys[1] == ["lower=is", "shape@-1=Xx", "shape@1=x"]
    ids = features.ids(["Paris"])[0]
    assert ids[0] == 1 + zlib.crc32(b"lower=paris") % 999 and all(1 <= i < 1000 for i in ids)


def test_a_words_feature_is_the_sum_of_its_rows_and_padding_adds_nothing() -> None:
    features = WordFeatures(FeatureTemplateOptions(buckets=50, dim=3, dropout=0.5)).eval()
    rows = torch.tensor([[[4, 9, 0, 0], [7, 0, 0, 0]]])
    table = features.embedding.weight
    expected = torch.stack([table[4] + table[9], table[7]])[None]
    torch.testing.assert_close(features(rows), expected)  # eval: no feature is dropped
    features.train()
    torch.manual_seed(0)
    dropped = features(rows.expand(64, -1, -1).contiguous())
    assert (dropped[:, 1] == 0).all(-1).any() and (dropped[:, 1] == table[7]).all(-1).any()


def test_bad_options_and_unknown_templates_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="feature_templates"):
        FeatureTemplateOptions.of({"templates": ["lower"], "widow": 2})
    with pytest.raises(ConfigError, match="window >= 0"):
        WordFeatures(FeatureTemplateOptions(window=-1))
    with pytest.raises(UnknownNameError, match="unknown word feature 'sufixes'; did you mean 'suffixes'"):
        WordFeatures(FeatureTemplateOptions(templates=["sufixes"]))


# -- taggers on generated text without spaces -------------------------------------------------------------------
SURNAMES = ["山田", "田中", "佐藤", "鈴木", "高橋", "伊藤", "渡辺", "中村", "小林", "加藤", "吉田", "山本"]
CITIES = ["東京", "大阪", "京都", "札幌", "福岡", "神戸", "仙台", "横浜", "奈良", "広島", "長崎", "金沢"]
COMPANIES = ["トヨタ", "ソニー", "ホンダ", "パナソニック", "ニコン", "キヤノン", "マツダ", "スズキ", "ヤマハ", "カシオ"]
PATTERNS = [
    "{PER}さんは{LOC}に住んでいます。", "{ORG}は{LOC}で新しい工場を建てた。", "昨日{PER}さんが{ORG}を訪れた。",
    "{LOC}の天気は晴れです。", "{PER}さんは{ORG}で働いている。",
]  # fmt: skip


def japanese_sentences(names: dict[str, list[str]], size: int, seed: int) -> list[tuple[list[str], list[str]]]:
    """Character-tagged sentences (IOB2) from the patterns, filled with the given names."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(size):
        chars, tags = [], []
        pattern = rng.choice(PATTERNS)
        while pattern:
            if pattern.startswith("{"):
                kind, pattern = pattern[1:4], pattern[5:]
                name = rng.choice(names[kind])
                chars += list(name)
                tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(name) - 1)
            else:
                chars.append(pattern[0])
                tags.append("O")
                pattern = pattern[1:]
        sentences.append((chars, tags))
    return sentences


def test_a_character_tagger_with_templates_finds_unseen_japanese_names(tmp_path) -> None:
    """Trained on some names, tested on names it never saw: the neighbours (さん after a person, に and で after a
    place) and the scripts (Katakana companies) find them."""
    seen = {"PER": SURNAMES[:8], "LOC": CITIES[:8], "ORG": COMPANIES[:7]}
    unseen = {"PER": SURNAMES[8:], "LOC": CITIES[8:], "ORG": COMPANIES[7:]}
    files = {"train": tmp_path / "train.conll", "val": tmp_path / "val.conll"}
    write_conll(files["train"], japanese_sentences(seen, 300, seed=0))
    test = japanese_sentences(unseen, 60, seed=1)
    write_conll(files["val"], test)
    torch.manual_seed(0)
    task = TokenClassificationTask(
        encoder=partial(NGramEncoder, dim=16, buckets=1024, char_ngrams=[1, 2]),
        feature_templates={"dim": 32, "buckets": 65536}, learning_rate=0.01,
    )  # fmt: skip
    tokenizer = TokenizerOptions(vocab_size=200, model_type="word")
    fit_tiny(task, ConllData(train_path=str(files["train"]), val_path=str(files["val"]), batch_size=16,
                             tokenizer=tokenizer), max_steps=120)  # fmt: skip
    predicted = task.predict([{"tokens": chars} for chars, _ in test])
    metric = entity_f1(types=["LOC", "ORG", "PER"], scheme="iob2")
    found = []
    for (chars, _), entities in zip(test, predicted, strict=True):
        tags, offsets = ["O"] * len(chars), [2 * i for i in range(len(chars))]  # one character a word
        for entity in entities:
            first, last = offsets.index(entity["start"]), offsets.index(entity["end"] - 1)
            tags[first : last + 1] = [f"B-{entity['label']}"] + [f"I-{entity['label']}"] * (last - first)
        found.append(tags)
    metric.update(found, [tags for _, tags in test])
    assert float(metric.compute()) > 0.8
