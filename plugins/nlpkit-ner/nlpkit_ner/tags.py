"""Tag schemes for entity spans: IOB1, IOB2 (BIO) and BIOES; strict decoding, conversion, valid transitions.

A tag is ``"O"`` or ``PREFIX-TYPE``. IOB2 starts every entity with ``B-`` and continues it with ``I-``; IOB1 uses
``I-`` throughout and ``B-`` only to start an entity right after another one of the same type; BIOES marks
single-token entities ``S-`` and ends longer ones with ``E-``. Decoding is strict, as seqeval's ``mode="strict"``:
only tags that form a valid chunk in the scheme make an entity.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal, get_args

import torch
from torch import Tensor

from nlpkit import ConfigError

Scheme = Literal["iob1", "iob2", "bioes"]
Span = tuple[str, int, int]
"""An entity: its type, its first token and the token after its last."""

_PREFIXES: dict[str, str] = {"iob1": "BI", "iob2": "BI", "bioes": "BEIS"}
_TAG = re.compile(r"O|[BIES]-\S+")

_Tag = tuple[str, str]  # (prefix, type); "O" is ("O", "")
_OUTSIDE: _Tag = ("O", "")
_ANY = "OBIES"
# (prefixes of the previous tag, prefixes of the current tag, types: True the same, False different, None either)
_Pattern = tuple[str, str, bool | None]


@dataclass(frozen=True)
class _Chunking:
    """Which tag starts an entity, which continues it, and which pair of tags closes it validly."""

    start: tuple[_Pattern, ...]
    inside: tuple[_Pattern, ...]
    end: tuple[_Pattern, ...]


# seqeval's strict patterns (seqeval/scheme.py), so that scores agree with its mode="strict"
_STRICT: dict[str, _Chunking] = {
    "iob1": _Chunking(
        start=(("O", "I", None), ("I", "I", False), ("B", "I", None), ("BI", "B", True)),
        inside=(("BI", "I", True),),
        end=(("I", "I", False), ("I", "OB", None), ("B", "O", None), ("B", "I", False), ("B", "B", True)),
    ),
    "iob2": _Chunking(
        start=((_ANY, "B", None),),
        inside=(("BI", "I", True),),
        end=(("BI", "OB", None), ("BI", "I", False)),
    ),
    "bioes": _Chunking(
        start=((_ANY, "BS", None),),
        inside=(("BI", "IE", True),),
        end=(("ES", _ANY, None),),
    ),
}
# the classic (conlleval) reading of IOB1: B- or an I- that does not continue an entity of its type starts one
_LENIENT_IOB1 = _Chunking(
    start=((_ANY, "B", None), ("O", "I", None), ("BI", "I", False)),
    inside=(("BI", "I", True),),
    end=((_ANY, _ANY, None),),
)


def validate_scheme(scheme: str) -> Scheme:
    """``scheme`` itself when it names a tag scheme; otherwise a ConfigError listing the schemes."""
    if scheme not in _PREFIXES:
        raise ConfigError(f"unknown tag scheme {scheme!r}; expected one of {', '.join(get_args(Scheme))}")
    return scheme  # type: ignore[return-value]


def check_tags(tags: Sequence[str]) -> str | None:
    """What is wrong with the first malformed tag (neither ``O`` nor B-, I-, E- or S- and a type), or None."""
    for position, tag in enumerate(tags, 1):
        if not _TAG.fullmatch(tag):
            return f"malformed tag {tag!r} (token {position}): expected 'O' or B-, I-, E- or S- followed by a type"
    return None


def _parse(tags: Sequence[str], scheme: str) -> list[_Tag]:
    """(prefix, type) pairs of well-formed tags of the scheme; a ConfigError names the first tag that is not."""
    prefixes = "O" + _PREFIXES[validate_scheme(scheme)]
    problem = check_tags(tags)
    if problem is not None:
        raise ConfigError(problem)
    foreign = next((tag for tag in tags if tag[0] not in prefixes), None)
    if foreign is not None:
        raise ConfigError(f"tag {foreign!r} is not in the {scheme} scheme, whose prefixes are {', '.join(prefixes)}")
    return [(tag[0], tag[2:]) for tag in tags]


def _matches(patterns: tuple[_Pattern, ...], previous: _Tag, current: _Tag) -> bool:
    """Whether some pattern matches the two consecutive tags."""
    return any(
        previous[0] in before and current[0] in after and (same is None or (previous[1] == current[1]) == same)
        for before, after, same in patterns
    )


def _chunks(tags: list[_Tag], chunking: _Chunking) -> list[Span]:
    """The entities of parsed tags, read as seqeval reads them: start, extend while inside, keep if closed."""
    padded = [*tags, _OUTSIDE]
    found: list[Span] = []
    index = 0
    while index < len(tags):
        previous = padded[index - 1] if index else _OUTSIDE
        if not _matches(chunking.start, previous, padded[index]):
            index += 1
            continue
        end = index + 1
        while _matches(chunking.inside, padded[end - 1], padded[end]):
            end += 1
        if _matches(chunking.end, padded[end - 1], padded[end]):
            found.append((padded[index][1], index, end))
        index = end
    return found


def tags_of(entities: list[Span], length: int, scheme: Scheme) -> list[str]:
    """The tags of ``length`` tokens holding the given ordered, non-overlapping entities."""
    tags = ["O"] * length
    previous_end, previous_type = -1, ""
    for type_, start, end in entities:
        tags[start:end] = [f"I-{type_}"] * (end - start)
        if scheme == "bioes":
            tags[end - 1] = f"E-{type_}"
            tags[start] = f"S-{type_}" if end - start == 1 else f"B-{type_}"
        elif scheme == "iob2" or (start, type_) == (previous_end, previous_type):
            tags[start] = f"B-{type_}"
        previous_end, previous_type = end, type_
    return tags


def spans(tags: Sequence[str], scheme: Scheme) -> list[Span]:
    """The entities (type, start, end exclusive) that the tags encode, decoded strictly as seqeval's strict mode."""
    return _chunks(_parse(tags, scheme), _STRICT[scheme])


def convert(tags: Sequence[str], source: Scheme, target: Scheme) -> list[str]:
    """The same entities in another scheme (IOB1 is read leniently: an I- after O or another type starts one)."""
    parsed = _parse(tags, source)
    entities = _chunks(parsed, _LENIENT_IOB1 if source == "iob1" else _STRICT[source])
    return tags_of(entities, len(tags), validate_scheme(target))


def detect_scheme(sequences: Iterable[Sequence[str]]) -> Scheme:
    """BIOES if any S- or E- tag appears, IOB1 if some entity starts with I-, otherwise IOB2."""
    starts_inside = False
    for tags in sequences:
        for previous, tag in pairwise(["O", *tags]):
            if tag[:2] in ("E-", "S-"):
                return "bioes"
            starts_inside |= tag[:2] == "I-" and previous[2:] != tag[2:]
    return "iob1" if starts_inside else "iob2"


def labels_for(types: Iterable[str], scheme: Scheme) -> list[str]:
    """Every tag of the scheme for the entity types: ``"O"`` first, then sorted by type and prefix."""
    labels = [
        "O",
        *(f"{prefix}-{type_}" for type_ in sorted(set(types)) for prefix in _PREFIXES[validate_scheme(scheme)]),
    ]
    problem = check_tags(labels)
    if problem is not None:
        raise ConfigError(f"bad entity type: {problem}")
    return labels


def _may_follow(previous: _Tag, current: _Tag, scheme: Scheme) -> bool:
    """Whether ``current`` may come right after ``previous``; a sentence starts and ends next to an O."""
    continues = previous[0] in "BI" and previous[1] == current[1]
    if scheme == "bioes":
        return (continues and current[0] in "IE") if previous[0] in "BI" else current[0] in "OBS"
    return current[0] != ("I" if scheme == "iob2" else "B") or continues


def allowed_transitions(labels: Sequence[str], scheme: Scheme) -> tuple[Tensor, Tensor, Tensor]:
    """Bool tensors: ``allowed[i, j]``: label j may follow label i; ``start``/``end``: a sentence may start/end so."""
    parsed = _parse(labels, scheme)
    allowed = torch.tensor(
        [[_may_follow(row, column, scheme) for column in parsed] for row in parsed], dtype=torch.bool
    )
    start = torch.tensor([_may_follow(_OUTSIDE, label, scheme) for label in parsed], dtype=torch.bool)
    end = torch.tensor([_may_follow(label, _OUTSIDE, scheme) for label in parsed], dtype=torch.bool)
    return allowed.reshape(len(parsed), len(parsed)), start, end


def is_valid(tags: Sequence[str], scheme: Scheme) -> bool:
    """Whether the sequence may start with its first tag, every tag may follow the one before, and it may end so."""
    return all(
        _may_follow(previous, current, scheme)
        for previous, current in pairwise([_OUTSIDE, *_parse(tags, scheme), _OUTSIDE])
    )
