"""Triples files, entity texts, vocabularies, and the index of known answers used for filtering and 1-N targets.

A triple ``(h, r, t)`` asks two queries: the tail ``(h, r, ?)`` and the head ``(?, r, t)``. Both are stored as
``(anchor, query_relation, answer)`` rows: ``(h, r, t)`` and ``(t, r + R, h)`` for ``R`` relations, so one index
serves both directions.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

from nlpkit import ConfigError, DataError, numbered_lines

#: what a query file writes in place of the entity to predict
MISSING = "?"


#: rows gathered before they join the id tensor: only ids are kept, never the names of a whole file
CHUNK_ROWS = 1 << 16


def iter_triples(
    path: str | os.PathLike[str], queries: bool = False
) -> Iterator[tuple[int, str | None, str, str | None]]:
    """``(line, head, relation, tail)`` of each ``head<TAB>relation<TAB>tail`` line, read lazily (blank lines skipped).

    With ``queries`` exactly one of head and tail is ``?`` (the entity to predict, given as None); otherwise none is.
    """
    expected = "head<TAB>relation<TAB>tail" + (" with ? for the entity to predict" if queries else "")
    empty = True
    for number, line in numbered_lines(Path(path)):
        if not line.strip():
            continue
        columns = [column.strip() for column in line.split("\t")]
        if len(columns) != 3:
            raise DataError(path, f"expected {expected}, found {len(columns)} tab-separated columns", line=number)
        head, relation, tail = columns
        if not relation:
            raise DataError(path, f"expected {expected}: the relation is empty", line=number)
        missing = [name for name, value in (("head", head), ("tail", tail)) if value in ("", MISSING)]
        if queries and len(missing) != 1:
            raise DataError(path, f"expected {expected}: mark exactly one of head and tail with ?", line=number)
        if not queries and missing:
            raise DataError(path, f"expected {expected}: the {missing[0]} is empty or ?", line=number)
        empty = False
        yield number, None if head in ("", MISSING) else head, relation, None if tail in ("", MISSING) else tail
    if empty:
        raise DataError(path, f"no triples found (expected {expected})")


def read_triple_ids(
    path: str | os.PathLike[str],
    entities: Vocabulary,
    relations: Vocabulary,
    grow: bool = False,
    queries: bool = False,
) -> Tensor:
    """A file's triples as a ``(M, 3)`` long tensor of ids (``-1`` for ``?``), in one pass that keeps no names.

    With ``grow``, names new to the vocabularies join them (the training split); otherwise an unknown name is an
    error naming the file and line.
    """
    entity_id, relation_id = (entities.add, relations.add) if grow else (entities.id, relations.id)
    chunks, rows = [], []
    for number, head, relation, tail in iter_triples(path, queries):
        try:
            rows.append(
                (
                    -1 if head is None else entity_id(head),
                    relation_id(relation),
                    -1 if tail is None else entity_id(tail),
                )
            )
        except ConfigError as error:
            raise DataError(path, f"{error}: it never occurs in the training triples", line=number) from None
        if len(rows) == CHUNK_ROWS:
            chunks.append(torch.tensor(rows, dtype=torch.long))
            rows = []
    chunks.append(torch.tensor(rows, dtype=torch.long).reshape(-1, 3))
    return torch.cat(chunks)


def read_entity_texts(path: str | os.PathLike[str]) -> dict[str, str]:
    """``entity<TAB>name or description`` lines; an entity given twice is an error."""
    texts: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for number, line in numbered_lines(Path(path)):
        if not line.strip():
            continue
        entity, tab, text = line.partition("\t")
        if not tab or not entity.strip() or not text.strip():
            raise DataError(path, "expected entity<TAB>name or description", line=number)
        entity = entity.strip()
        if entity in texts:
            raise DataError(path, f"entity {entity!r} already has a text (line {first_line[entity]})", line=number)
        texts[entity], first_line[entity] = text.strip(), number
    if not texts:
        raise DataError(path, "no entity texts found (expected entity<TAB>name or description)")
    return texts


class Vocabulary:
    """Names to ids, in first-seen order."""

    def __init__(self, kind: str, names: list[str]) -> None:
        self.kind = kind
        self.names = list(names)
        self.ids = {name: index for index, name in enumerate(self.names)}
        if len(self.ids) != len(self.names):
            raise ConfigError(f"the {kind} vocabulary repeats a name")

    def __len__(self) -> int:
        return len(self.names)

    def add(self, name: str) -> int:
        """The id of ``name``, which joins the vocabulary if it is new."""
        index = self.ids.get(name)
        if index is None:
            index = self.ids[name] = len(self.names)
            self.names.append(name)
        return index

    def id(self, name: str) -> int:
        """The id of ``name``; an unknown one is a ConfigError with the closest known names."""
        if name not in self.ids:
            close = difflib.get_close_matches(name, self.names, n=3)
            hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
            raise ConfigError(f"unknown {self.kind} '{name}'{hint}")
        return self.ids[name]


def as_queries(triples: Tensor, num_relations: int) -> Tensor:
    """``(anchor, query_relation, answer)`` rows: every tail query, then every head query (relation + R)."""
    heads, relations, tails = triples.unbind(dim=1)
    tail_queries = torch.stack([heads, relations, tails], dim=1)
    head_queries = torch.stack([tails, relations + num_relations, heads], dim=1)
    return torch.cat([tail_queries, head_queries])


class AnswerIndex:
    """Every known answer of every ``(anchor, query_relation)``, looked up for a batch at once."""

    def __init__(self, queries: Tensor, num_query_relations: int) -> None:
        self.num_query_relations = num_query_relations
        keys = self._keys(queries[:, 0], queries[:, 1])
        order = torch.argsort(keys, stable=True)
        self.keys = keys[order]
        self.answers = queries[order, 2]

    def _keys(self, anchors: Tensor, relations: Tensor) -> Tensor:
        return anchors * self.num_query_relations + relations

    def lookup(self, anchors: Tensor, relations: Tensor) -> tuple[Tensor, Tensor]:
        """``(rows, answers)``: each known answer of query ``rows[i]`` of the batch, as two flat tensors."""
        keys = self._keys(anchors.to(self.keys.device), relations.to(self.keys.device))
        start = torch.searchsorted(self.keys, keys, right=False)
        counts = torch.searchsorted(self.keys, keys, right=True) - start
        rows = torch.repeat_interleave(torch.arange(len(keys), device=keys.device), counts)
        first = torch.repeat_interleave(start, counts)
        offsets = torch.arange(len(rows), device=keys.device) - torch.repeat_interleave(
            counts.cumsum(0) - counts, counts
        )
        return rows, self.answers[first + offsets]

    def to(self, device: torch.device) -> AnswerIndex:
        """The index on ``device`` (in place; nothing moves when it is there already)."""
        self.keys, self.answers = self.keys.to(device), self.answers.to(device)
        return self
