"""Named registries of what plugins contribute, with owners, conflicts and did-you-mean errors.

A plugin registers an object, or a ``"module:attr"`` reference to it that is imported only when the name is first
used: listing plugins or commands then imports none of their models (no torch, no Lightning).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from importlib.metadata import EntryPoint
from typing import Any, Generic, TypeVar

from nlpkit.plugin.errors import NameConflictError, PluginError, UnknownNameError, first_line

T = TypeVar("T")

#: The kinds of things plugins register, in hook order.
KINDS = ("encoders", "heads", "metrics", "datasets", "tasks", "commands", "word_features")

#: a lazy registration: ``"package.module:Name"`` (an entry point's value)
REFERENCE = re.compile(r"[\w.]+:[\w.]+")

#: the published base class of each kind whose objects must derive from one; the base declares its kind in
#: ``registry_kind``, so a registration is checked without importing the base
BASE_CLASSES = {
    "encoders": "nlpkit.Encoder",
    "heads": "nlpkit.Head",
    "datasets": "nlpkit.TextDataModule",
    "tasks": "nlpkit.Task",
    "commands": "nlpkit.Command",
}


def check_registration(kind: str, name: str, obj: Any) -> None:
    """A registered object must be what its kind promises; anything else is a :class:`PluginError`."""
    singular = kind[:-1].replace("_", " ")
    declared = getattr(obj, "registry_kind", None)
    if kind == "commands":
        if isinstance(obj, type) or declared != kind:
            raise PluginError(f"command '{name}' must be an {BASE_CLASSES[kind]} instance, got {obj!r}")
        if name in ("fit", "validate", "test", "predict"):
            raise PluginError(f"command '{name}' would hide nlpkit's own '{name}'")
    elif kind in BASE_CLASSES and not (isinstance(obj, type) and declared == kind):
        raise PluginError(f"{singular} '{name}' must be a subclass of {BASE_CLASSES[kind]}, got {obj!r}")
    elif kind == "metrics" and not callable(obj):
        raise PluginError(f"metric '{name}' must be a callable returning a torchmetrics Metric, got {obj!r}")
    elif kind == "word_features" and not callable(obj):
        raise PluginError(f"word feature '{name}' must be a callable from a word to a list of strings, got {obj!r}")


def load_reference(reference: str) -> Any:
    """The object a ``"module:attr"`` reference names, imported now."""
    return EntryPoint(name=reference, value=reference, group="nlpkit").load()


class Entry(Generic[T]):
    """One registered name: the object, or a ``"module:attr"`` reference imported on first use of :attr:`obj`,
    and the plugin that registered it."""

    def __init__(self, name: str, target: T | str, plugin: str, kind: str = "") -> None:
        self.name, self.plugin, self.kind = name, plugin, kind
        self.reference = target if isinstance(target, str) else None
        self._obj: T | None = None if isinstance(target, str) else target
        if self.reference is not None and not REFERENCE.fullmatch(self.reference):
            raise PluginError(f"{self._what} must be an object or a 'module:attr' reference, got {target!r}")

    @property
    def _what(self) -> str:
        return f"{self.kind[:-1].replace('_', ' ') or 'entry'} '{self.name}'"

    def __repr__(self) -> str:
        return f"Entry({self.name!r}, {self.reference or self._obj!r}, {self.plugin!r})"

    @property
    def loaded(self) -> bool:
        """Whether the object is imported (always, unless it was registered by reference and not used yet)."""
        return self._obj is not None

    @property
    def path(self) -> str:
        """The import path ``module.Name`` of what is registered, read without importing a reference."""
        if self.reference is not None:
            return self.reference.replace(":", ".")
        owner = self._obj if hasattr(self._obj, "__qualname__") else type(self._obj)  # a command is an instance
        return f"{owner.__module__}.{owner.__qualname__}"

    @property
    def label(self) -> str:
        """The registered object's own short name (a class's ``__name__``), read without importing it."""
        return self.path.rpartition(".")[2]

    @property
    def obj(self) -> T:
        """The registered object, imported and checked on first use; a reference that does not import or does not
        name what its kind promises is a :class:`PluginError` naming the plugin."""
        if self._obj is None:
            assert self.reference is not None
            try:
                obj = load_reference(self.reference)
                check_registration(self.kind, self.name, obj)
            except Exception as error:
                raise PluginError(
                    f"plugin '{self.plugin}' registered {self._what} as '{self.reference}', which "
                    f"{'is not usable' if isinstance(error, PluginError) else 'cannot be imported'}: "
                    f"{type(error).__name__}: {first_line(error)}"
                ) from error
            self._obj = obj
        return self._obj


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
        names = ", ".join(f"{name!r}: {entry.label}" for name, entry in self._entries.items())
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
        """The registered name of ``obj``, if it is registered (a class matches by its import path, so nothing
        registered by reference is imported to answer)."""
        path = f"{obj.__module__}.{obj.__qualname__}" if isinstance(obj, type) else None
        for entry in self._entries.values():
            if (entry.loaded and entry.obj is obj) or entry.path == path:
                return entry.name
        return None
