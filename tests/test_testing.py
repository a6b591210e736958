"""nlpkit.testing: the helpers plugin authors use, exercised the way the plugin guide shows."""

from __future__ import annotations

import sys
from functools import partial

from nlpkit_classification.data import ClassificationData
from nlpkit_classification.task import TextClassificationTask

from nlpkit.models.encoders.rnn import LSTMEncoder
from nlpkit.plugin.loader import get_plugins
from nlpkit.testing import fit_tiny, isolated_plugins, sentiment_corpus
from tests.conftest import TOY_PLUGINS


def test_isolated_plugins_loads_exactly_the_given_ones_and_restores(monkeypatch, sentiment_files) -> None:
    monkeypatch.syspath_prepend(str(TOY_PLUGINS))
    before = get_plugins()
    with isolated_plugins("nlpkit_toy", "nlpkit_classification") as plugins:
        assert set(plugins.info) == {"core", "nlpkit_toy", "nlpkit_classification"}
        assert get_plugins() is plugins
        task = TextClassificationTask(
            encoder=partial(LSTMEncoder, hidden_size=16, embedding_dim=16),
            head=plugins["heads"]["scaled-linear"],
            metrics=["error-rate"],
        )
        data = ClassificationData(train_path=str(sentiment_files["train"]), val_path=str(sentiment_files["val"]))
        trainer = fit_tiny(task, data, max_steps=3)
        assert trainer.global_step == 3
        assert "val/error-rate" in trainer.validate(task, datamodule=data, verbose=False)[0]
    assert get_plugins() is before
    sys.modules.pop("nlpkit_toy", None)


def test_sentiment_corpus_is_deterministic_balanced_and_negated() -> None:
    corpus = sentiment_corpus(400, seed=1)
    assert corpus == sentiment_corpus(400, seed=1) != sentiment_corpus(400, seed=2)
    positives = sum(label == "pos" for _, label in corpus)
    assert 150 < positives < 250
    negated_positive = [text for text, label in corpus if " not " in text and label == "pos"]
    assert negated_positive and all(
        any(word in text for word in ("awful", "boring", "dull", "terrible", "weak", "clumsy", "tedious"))
        for text in negated_positive
    )
