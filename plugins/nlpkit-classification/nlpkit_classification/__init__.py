"""nlpkit plugin: text classification (``text-classification`` task, ``classification`` data, ``nlpkit explain``)."""

from __future__ import annotations

from nlpkit import Register, hookimpl


@hookimpl
def register_tasks(register: Register) -> None:
    """The text classification task."""
    from nlpkit_classification.task import TextClassificationTask

    register("text-classification", TextClassificationTask)


@hookimpl
def register_datasets(register: Register) -> None:
    """Labelled text in csv/tsv/jsonl files."""
    from nlpkit_classification.data import ClassificationData

    register("classification", ClassificationData)


@hookimpl
def register_commands(register: Register) -> None:
    """``nlpkit explain``: per-token attributions as JSON lines and a colored HTML page."""
    from nlpkit_classification.command import ExplainCommand

    register("explain", ExplainCommand())
