"""nlpkit plugin: named-entity recognition (``token-classification`` task, ``conll`` data, entity metrics)."""

from __future__ import annotations

from nlpkit import Register, hookimpl


@hookimpl
def register_tasks(register: Register) -> None:
    """Token classification with a softmax or CRF head."""
    register("token-classification", "nlpkit_ner.task:TokenClassificationTask")


@hookimpl
def register_datasets(register: Register) -> None:
    """CoNLL-style tagged sentences."""
    register("conll", "nlpkit_ner.data:ConllData")


@hookimpl
def register_metrics(register: Register) -> None:
    """Entity-level (strict spans) precision, recall and F1, and token accuracy."""
    register("entity-f1", "nlpkit_ner.metrics:entity_f1")
    register("entity-precision", "nlpkit_ner.metrics:entity_precision")
    register("entity-recall", "nlpkit_ner.metrics:entity_recall")
    register("token-accuracy", "nlpkit_ner.metrics:token_accuracy")


@hookimpl
def register_word_features(register: Register) -> None:
    """The word-feature templates: identity, lower, prefixes, suffixes, shape and scripts."""
    for name in ("identity", "lower", "prefixes", "suffixes", "shape", "scripts"):
        register(name, f"nlpkit_ner.features:{name}")
