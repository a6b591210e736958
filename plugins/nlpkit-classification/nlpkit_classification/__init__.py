"""nlpkit plugin: text classification (``text-classification`` task, ``classification`` data, ``nlpkit explain``)."""

from __future__ import annotations

from nlpkit import Register, hookimpl


@hookimpl
def register_tasks(register: Register) -> None:
    """The text classification task."""
    register("text-classification", "nlpkit_classification.task:TextClassificationTask")


@hookimpl
def register_datasets(register: Register) -> None:
    """Labelled text in csv/tsv/jsonl files."""
    register("classification", "nlpkit_classification.data:ClassificationData")


@hookimpl
def register_commands(register: Register) -> None:
    """``nlpkit explain``: per-token attributions as JSON lines and a colored HTML page."""
    from nlpkit_classification.command import ExplainCommand

    register("explain", ExplainCommand())
