"""nlpkit plugin: one model for many languages: temperature-sampled multilingual data with language tags,
per-language metrics and zero-shot transfer (``multilingual`` data), and language identification (``language-id``)."""

from __future__ import annotations

from nlpkit import Register, hookimpl


@hookimpl
def register_datasets(register: Register) -> None:
    """Several languages through any registered data module; language-labelled text."""
    from nlpkit_multilingual.data import MultilingualData
    from nlpkit_multilingual.language_id import LanguageIdData

    register("multilingual", MultilingualData)
    register("language-id", LanguageIdData)


@hookimpl
def register_tasks(register: Register) -> None:
    """Language identification."""
    from nlpkit_multilingual.language_id import LanguageIdTask

    register("language-id", LanguageIdTask)
