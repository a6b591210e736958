"""nlpkit plugin: one model for many languages: temperature-sampled multilingual data with language tags,
per-language metrics and zero-shot transfer (``multilingual`` data), and language identification (``language-id``)."""

from __future__ import annotations

from nlpkit import Register, hookimpl


@hookimpl
def register_datasets(register: Register) -> None:
    """Several languages through any registered data module; language-labelled text."""
    register("multilingual", "nlpkit_multilingual.data:MultilingualData")
    register("language-id", "nlpkit_multilingual.language_id:LanguageIdData")


@hookimpl
def register_tasks(register: Register) -> None:
    """Language identification."""
    register("language-id", "nlpkit_multilingual.language_id:LanguageIdTask")
