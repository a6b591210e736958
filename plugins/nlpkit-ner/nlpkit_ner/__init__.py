"""nlpkit plugin: named-entity recognition (``token-classification`` task, ``conll`` data, entity metrics)."""

from __future__ import annotations

from nlpkit import Register, hookimpl


@hookimpl
def register_tasks(register: Register) -> None:
    """Token classification with a softmax or CRF head."""
    from nlpkit_ner.task import TokenClassificationTask

    register("token-classification", TokenClassificationTask)


@hookimpl
def register_datasets(register: Register) -> None:
    """CoNLL-style tagged sentences."""
    from nlpkit_ner.data import ConllData

    register("conll", ConllData)


@hookimpl
def register_metrics(register: Register) -> None:
    """Entity-level (strict spans) precision, recall and F1, and token accuracy."""
    from nlpkit_ner.metrics import entity_f1, entity_precision, entity_recall, token_accuracy

    register("entity-f1", entity_f1)
    register("entity-precision", entity_precision)
    register("entity-recall", entity_recall)
    register("token-accuracy", token_accuracy)


@hookimpl
def register_word_features(register: Register) -> None:
    """The word-feature templates: identity, lower, prefixes, suffixes, shape and scripts."""
    from nlpkit_ner.features import TEMPLATES

    for name, template in TEMPLATES.items():
        register(name, template)
