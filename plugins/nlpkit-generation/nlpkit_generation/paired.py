"""Source-target pairs for seq2seq: one jsonl/csv/tsv file of pairs, or two line-aligned plain-text files."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from nlpkit import ConfigError, DataError, Record, TextDataModule, detect_format, read_records


class PairedData(TextDataModule):
    """Pairs from the fields of one file, or from two plain-text files whose lines align.

    With ``{split}_target_path`` set, ``{split}_path`` holds one source per line and the target file the
    translation on the same line (blank lines must match). A plain-text ``predict_path`` holds sources only.
    The tokenizer is trained on the sources and the targets together.

    :param source_field: the JSON key or column of the source text
    :param target_field: the JSON key or column of the target text
    :param train_target_path: targets aligned line by line with a plain-text ``train_path``
    :param val_target_path: targets aligned with a plain-text ``val_path``
    :param test_target_path: targets aligned with a plain-text ``test_path``
    """

    def __init__(
        self,
        *args: Any,
        source_field: str = "source",
        target_field: str = "target",
        train_target_path: str | None = None,
        val_target_path: str | None = None,
        test_target_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.source_field = source_field
        self.target_field = target_field
        self.target_paths = {"train": train_target_path, "val": val_target_path, "test": test_target_path}

    def fields(self, record: Record, labeled: bool) -> dict[str, Any]:
        """``{"source"}``, and ``{"target"}`` when labelled, of a record."""
        names = {"source": self.source_field, "target": self.target_field} if labeled else {"source": self.source_field}
        return {key: record.text(name) for key, name in names.items()}

    def texts(self, fields: dict[str, Any]) -> Iterator[str]:
        """The source and, when present, the target."""
        yield fields["source"]
        if "target" in fields:
            yield fields["target"]

    def read(self, split: str, labeled: bool = True) -> list[tuple[Record, dict[str, Any]]]:
        """Records of ``split``: from one file of pairs, or from a plain-text file and its aligned target file."""
        path, target_path = self.paths[split], self.target_paths.get(split)
        if not path or not (target_path or detect_format(path, self.format) == "txt"):
            return super().read(split, labeled)
        sources = read_records(path, "txt")
        if target_path:
            targets = read_records(target_path, "txt")
            _check_aligned(sources, targets)
            pairs = [
                Record({self.source_field: s.fields["text"], self.target_field: t.fields["text"]}, s.path, s.line)
                for s, t in zip(sources, targets, strict=True)
            ]
        elif labeled:
            raise ConfigError(f"data.{split}_path is plain text: set data.{split}_target_path to its aligned targets")
        else:
            pairs = [Record({self.source_field: s.fields["text"]}, s.path, s.line) for s in sources]
        return [(record, self.fields(record, labeled)) for record in pairs]


def _check_aligned(sources: list[Record], targets: list[Record]) -> None:
    """Raise a DataError naming both files unless their non-blank lines pair up line by line."""
    source_path, target_path = sources[0].path, targets[0].path
    if len(sources) != len(targets):
        raise DataError(
            source_path, f"{len(sources)} lines, but its target file {target_path} has {len(targets)}; they must align"
        )
    for source, target in zip(sources, targets, strict=True):
        if source.line != target.line:
            raise DataError(
                source_path,
                f"pairs with line {target.line} of the target file {target_path}: blank lines must match",
                line=source.line,
            )
