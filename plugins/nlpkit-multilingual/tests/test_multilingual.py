"""Multilingual data: temperature sampling, a shared vocabulary with language tags, per-language metrics, zero-shot."""

from __future__ import annotations

from collections import Counter
from functools import partial
from pathlib import Path

import pytest
import torch
from nlpkit_classification.task import TextClassificationTask
from nlpkit_multilingual.data import MultilingualData, sampling_probabilities
from nlpkit_multilingual.sentiment import write_multilingual_sentiment

from nlpkit import ConfigError, LSTMEncoder, TokenizerOptions
from nlpkit.data.batching import BucketBatchSampler
from nlpkit.testing import fit_tiny

SIZES = {"en": 400, "de": 200, "es": 100, "ru": 40}  # ru: a small language, in Cyrillic


def test_sampling_probabilities_follow_the_formula() -> None:
    counts = {"en": 1000, "sw": 10}
    for alpha in (0.0, 0.3, 0.7, 1.0):
        p = sampling_probabilities(counts, alpha)
        expected_sw = 10**alpha / (1000**alpha + 10**alpha)
        assert p["sw"] == pytest.approx(expected_sw) and sum(p.values()) == pytest.approx(1.0)
    assert sampling_probabilities(counts, 0.0)["sw"] == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="alpha must be between 0 and 1"):
        sampling_probabilities(counts, 1.5)


@pytest.fixture(scope="module")
def languages(tmp_path_factory):
    return write_multilingual_sentiment(tmp_path_factory.mktemp("multi"), SIZES)


def multilingual(languages, **options) -> MultilingualData:
    return MultilingualData(
        languages=languages, batch_size=32, tokenizer=TokenizerOptions(vocab_size=200), alpha=0.3, **options
    )


def test_a_small_language_gets_its_expected_share_of_a_long_sample(languages) -> None:
    data = multilingual(languages)
    examples = [{"language": fields["language"], "length": 1} for _, fields in data.read("train")]
    sampler = BucketBatchSampler([1] * len(examples), 32, weights=data.sample_weights(examples))
    drawn = Counter()
    for epoch in range(40):
        sampler.set_epoch(epoch)
        drawn.update(examples[i]["language"] for batch in sampler for i in batch)
    expected = sampling_probabilities(SIZES, 0.3)
    total = sum(drawn.values())
    for language, probability in expected.items():
        assert drawn[language] / total == pytest.approx(probability, abs=0.01)
    assert expected["ru"] > SIZES["ru"] / sum(SIZES.values())  # the small language is sampled more than its share


@pytest.fixture(scope="module")
def trained(languages):
    torch.manual_seed(0)
    task = TextClassificationTask(encoder=partial(LSTMEncoder, embedding_dim=32, hidden_size=48, bidirectional=True),
                                  pooling="max", learning_rate=5e-3)  # fmt: skip
    data = multilingual(languages)
    trainer = fit_tiny(task, data, max_steps=250)
    return task, data, trainer


def test_shared_vocabulary_has_language_tags_and_every_script(trained) -> None:
    task, data, _ = trained
    tokenizer = task.tokenizer
    for code in SIZES:
        assert f"<lang:{code}>" in tokenizer.pieces(f"<lang:{code}> x")
    texts = [fields["text"] for _, fields in data.read("train")]
    assert all(text.startswith("<lang:") for text in texts)
    assert all(tokenizer.unk_id not in ids for ids in tokenizer.encode(texts))


def test_per_language_metrics_add_up_to_the_overall_metric(trained, languages) -> None:
    task, data, trainer = trained
    metrics = trainer.validate(task, datamodule=data, verbose=False)[0]
    counts = {
        code: len(Path(paths["val_path"]).read_text(encoding="utf-8").splitlines()) - 1
        for code, paths in languages.items()
    }
    weighted = sum(metrics[f"val/accuracy/{code}"] * n for code, n in counts.items()) / sum(counts.values())
    assert metrics["val/accuracy"] == pytest.approx(weighted, abs=1e-6)
    macro = sum(metrics[f"val/accuracy/{code}"] for code in counts) / len(counts)
    assert metrics["val/accuracy/macro_languages"] == pytest.approx(macro, abs=1e-6)
    assert metrics["val/accuracy"] >= 0.9
    assert "val/accuracy/transfer_gap" not in metrics  # every language was trained on


def test_zero_shot_languages_and_the_transfer_gap(languages) -> None:
    torch.manual_seed(0)
    task = TextClassificationTask(encoder=partial(LSTMEncoder, embedding_dim=16, hidden_size=16), metrics=["accuracy"])
    data = multilingual(languages, train_languages=["en", "de"])
    trainer = fit_tiny(task, data, max_steps=30)
    assert task.trained_languages == {"en", "de"}
    metrics = trainer.validate(task, datamodule=data, verbose=False)[0]
    seen = (metrics["val/accuracy/en"] + metrics["val/accuracy/de"]) / 2
    unseen = (metrics["val/accuracy/es"] + metrics["val/accuracy/ru"]) / 2
    assert metrics["val/accuracy/transfer_gap"] == pytest.approx(seen - unseen, abs=1e-6)


def test_configuration_mistakes_are_clear(languages) -> None:
    with pytest.raises(ConfigError, match="train_languages names languages without data: \\['fr'\\]"):
        multilingual(languages, train_languages=["fr"])
    with pytest.raises(ConfigError, match="unknown keys \\['train'\\]"):
        multilingual({"en": {"train": "x.csv"}})


def test_translation_sources_carry_the_target_language_tag(tmp_path) -> None:
    for code, target in (("de", "hallo welt"), ("fr", "bonjour le monde")):
        (tmp_path / f"en-{code}.jsonl").write_text(f'{{"source": "hello world", "target": "{target}"}}\n')
    data = MultilingualData(
        dataset="paired",
        languages={code: {"train_path": str(tmp_path / f"en-{code}.jsonl")} for code in ("de", "fr")},
    )
    rows = [fields for _, fields in data.read("train")]
    assert [(r["source"], r["target"], r["language"]) for r in rows] == [
        ("<lang:de> hello world", "hallo welt", "de"),
        ("<lang:fr> hello world", "bonjour le monde", "fr"),
    ]
    assert {"<lang:de>", "<lang:fr>"} <= set(data.tokenizer_options.special_tokens)


def test_language_embeddings_add_one_learned_vector_per_language(languages) -> None:
    from nlpkit.training.languages import LanguageEmbeddings

    torch.manual_seed(0)
    task = TextClassificationTask(
        encoder=partial(LSTMEncoder, embedding_dim=16, hidden_size=16), language_embeddings=True, metrics=["accuracy"]
    )
    data = multilingual(languages)
    trainer = fit_tiny(task, data, max_steps=20)
    assert isinstance(task.language_embeddings, LanguageEmbeddings)
    assert task.language_embeddings.embedding.weight.shape == (4, 16)
    assert task.language_embeddings.embedding.weight.grad is not None  # it trained
    tokenizer, embedding = task.tokenizer, task.encoder.token_embedding

    def added(text: str) -> torch.Tensor:
        ids = torch.tensor(tokenizer.encode([text]))
        return (embedding(ids) - torch.nn.functional.embedding(ids, embedding.weight, padding_idx=0))[0]

    index = task.language_embeddings.language_of_token[tokenizer.token_id("<lang:ru>")]
    ru = task.language_embeddings.embedding.weight[index]
    tagged = added("<lang:ru> фильм был отличный")
    torch.testing.assert_close(tagged, ru.expand_as(tagged))  # every position of the Russian text
    assert torch.count_nonzero(added("фильм был отличный")) == 0  # a text without a language token: nothing
    assert "val/accuracy/ru" in trainer.validate(task, datamodule=data, verbose=False)[0]


def test_language_embeddings_need_language_tokens_and_refuse_step_by_step_decoding() -> None:
    from nlpkit_generation.task import CausalLMTask

    from nlpkit import Tokenizer

    texts = ["<lang:en> the film was great", "<lang:de> der Film war toll"] * 20
    tagged = Tokenizer.train(texts, vocab_size=60, special_tokens=["<lang:en>", "<lang:de>"])
    lm = CausalLMTask(encoder=partial(LSTMEncoder, embedding_dim=8, hidden_size=8), language_embeddings=True)
    lm.bind(tagged, None)
    with pytest.raises(ConfigError, match="language_embeddings cannot decode step by step"):
        lm.generate(["<lang:en> the"])
    plain = TextClassificationTask(encoder=partial(LSTMEncoder, hidden_size=8), language_embeddings=True)
    with pytest.raises(ConfigError, match="needs <lang:xx> tokens"):
        plain.bind(Tokenizer.train(texts, vocab_size=60), ["neg", "pos"])
