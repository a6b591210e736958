"""Named registries of what plugins contribute, with owners, conflicts and did-you-mean errors."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from nlpkit.plugin.errors import NameConflictError, UnknownNameError

T = TypeVar("T")

#: The kinds of things plugins register, in hook order.
KINDS = ("encoders", "heads", "metrics", "datasets", "tasks", "commands", "word_features")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered object: its short name, the object, and the plugin that registered it."""

    name: str
    obj: T
    plugin: str


class Registry(Mapping[str, T]):
    """Short names (as used in YAML and on the CLI) to objects, each owned by one plugin.

    Read-only once the plugins are loaded. A name registered by two plugins stays ambiguous: asking for it
    is an error naming both, never a silent choice.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._conflicts: dict[str, list[str]] = {}
        self._failed_plugins: dict[str, str] = {}
        self._frozen = False

    def __repr__(self) -> str:
        """What it holds, as a mapping prints: ``Registry('encoders', {'rnn': ElmanRNNEncoder, ...})``."""
        names = ", ".join(f"{name!r}: {getattr(entry.obj, '__name__', entry.obj)!s}" for name, entry in
                          self._entries.items())  # fmt: skip
        return f"Registry({self.kind!r}, {{{names}}})"

    @property
    def singular(self) -> str:
        """One of the kind, in words (``word feature`` for ``word_features``)."""
        return self.kind[:-1].replace("_", " ")

    def add(self, entry: Entry[T]) -> None:
        """Add ``entry``; a name already owned by another plugin becomes a conflict."""
        if self._frozen:
            raise RuntimeError(f"the {self.kind} registry is read-only once plugins are loaded")
        if entry.name in self._conflicts:
            self._conflicts[entry.name].append(entry.plugin)
        elif entry.name in self._entries:
            self._conflicts[entry.name] = [self._entries.pop(entry.name).plugin, entry.plugin]
        else:
            self._entries[entry.name] = entry

    def freeze(self, failed_plugins: Mapping[str, str]) -> None:
        """Make the registry read-only; ``failed_plugins`` (name -> reason) are mentioned in lookup errors."""
        self._failed_plugins = dict(failed_plugins)
        self._frozen = True

    def entry(self, name: str) -> Entry[T]:
        """The entry for ``name``, or a one-line error listing the names there are and the closest match."""
        if name in self._entries:
            return self._entries[name]
        if name in self._conflicts:
            owners = " and ".join(f"'{p}'" for p in self._conflicts[name])
            raise NameConflictError(
                f"{self.singular} '{name}' is registered by plugins {owners}; "
                f"disable one of them with NLPKIT_DISABLE_PLUGINS"
            )
        known = sorted(self._entries)
        message = f"unknown {self.singular} '{name}'"
        close = difflib.get_close_matches(name, known, n=1)
        if close:
            message += f"; did you mean '{close[0]}'?"
        message += f" Registered {self.kind.replace('_', ' ')}: {', '.join(known) if known else '(none)'}"
        if self._failed_plugins:
            failed = "; ".join(f"'{p}' ({reason})" for p, reason in self._failed_plugins.items())
            message += f". Plugins that failed to load and may provide it: {failed}"
        raise UnknownNameError(message)

    def __getitem__(self, name: str) -> T:
        return self.entry(name).obj

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def entries(self) -> list[Entry[T]]:
        """All unambiguous entries, sorted by name."""
        return [self._entries[name] for name in self]

    @property
    def conflicts(self) -> dict[str, list[str]]:
        """Names registered by more than one plugin, with the plugins that did."""
        return {name: list(owners) for name, owners in self._conflicts.items()}

    def name_of(self, obj: object) -> str | None:
        """The registered name of ``obj``, if it is registered."""
        for entry in self._entries.values():
            if entry.obj is obj:
                return entry.name
        return None
