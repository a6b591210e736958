"""Plugin discovery: every plugin, the core's own included, loads from the ``nlpkit`` entry-point group.

Entry points are loaded one by one: a plugin that fails to import, declares an unknown hook or raises
inside a hook is reported by name and left out, and the others keep working.
"""

from __future__ import annotations

import difflib
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any

import pluggy

from nlpkit.plugin import hookspecs
from nlpkit.plugin.errors import PluginError, first_line
from nlpkit.plugin.registries import KINDS, Entry, Registry, check_registration

ENTRY_POINT_GROUP = "nlpkit"
#: Plugins that load even under an ``NLPKIT_PLUGINS`` allowlist (disable them explicitly).
ALWAYS_ALLOWED = ("core",)


class PluginWarning(UserWarning):
    """A plugin failed to load; the others keep working."""


@dataclass
class PluginInfo:
    """What ``nlpkit plugins`` shows for one plugin."""

    name: str
    entry_point: str
    distribution: str | None
    version: str | None
    status: str  # "loaded", "failed" or "disabled"
    error: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return dict(self.__dict__)


class Plugins:
    """The loaded plugins: the pluggy manager, one registry per kind, and a report per plugin."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.manager.add_hookspecs(hookspecs)
        self.registries: dict[str, Registry[Any]] = {kind: Registry(kind) for kind in KINDS}
        self.info: dict[str, PluginInfo] = {}

    def __getitem__(self, kind: str) -> Registry[Any]:
        return self.registries[kind]

    def add(self, name: str, plugin: ModuleType | object, info: PluginInfo) -> None:
        """Register ``plugin`` under ``name`` and run its registry hooks; a failure is recorded, not raised."""
        self.info[name] = info
        try:
            self._check_hook_names(plugin)
            self.manager.register(plugin, name=name)
        except Exception as error:  # pluggy raises ValueError and PluginValidationError
            self._fail(info, f"invalid plugin: {first_line(error)}")
            return
        try:
            staged = self._collect(name, plugin)
        except Exception as error:
            self.manager.unregister(plugin)
            self._fail(info, f"{type(error).__name__} in its hook: {first_line(error)}")
            return
        for kind, entries in staged.items():  # commit only once every hook of the plugin succeeded
            for entry in entries:
                self.registries[kind].add(entry)
            if entries:
                info.registered[kind] = [entry.name for entry in entries]

    def finish(self) -> Plugins:
        """Check that no hook implementation lacks a spec and make the registries read-only."""
        self.manager.check_pending()
        failed = {n: i.error or "" for n, i in self.info.items() if i.status == "failed"}
        for registry in self.registries.values():
            registry.freeze(failed)
        return self

    def _check_hook_names(self, plugin: object) -> None:
        known = {name for name in dir(hookspecs) if name.startswith("register_")}
        for attribute in dir(plugin):
            if self.manager.parse_hookimpl_opts(plugin, attribute) is not None and attribute not in known:
                close = difflib.get_close_matches(attribute, sorted(known), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise PluginError(f"implements unknown hook '{attribute}'{hint}")

    def _collect(self, name: str, plugin: object) -> dict[str, list[Entry[Any]]]:
        others = [p for p in self.manager.get_plugins() if p is not plugin]
        staged: dict[str, list[Entry[Any]]] = {}
        for kind in KINDS:
            entries = staged.setdefault(kind, [])

            def register(entry_name: str, obj: Any, *, _kind: str = kind, _entries: list[Entry[Any]] = entries) -> None:
                if not isinstance(entry_name, str) or not entry_name:
                    raise PluginError(f"registered a non-empty string name expected, got {entry_name!r}")
                if not isinstance(obj, str):  # a "module:attr" reference is checked when it is first used
                    check_registration(_kind, entry_name, obj)
                _entries.append(Entry(entry_name, obj, name, _kind))

            self.manager.subset_hook_caller(f"register_{kind}", remove_plugins=others)(register=register)
        return staged

    @staticmethod
    def _fail(info: PluginInfo, reason: str) -> None:
        info.status, info.error = "failed", reason
        warnings.warn(
            f"nlpkit plugin '{info.name}' ({info.entry_point}) failed to load: {reason}",
            PluginWarning,
            stacklevel=3,
        )


def _names_from_env(variable: str) -> set[str] | None:
    value = os.environ.get(variable, "").strip()
    return {name.strip() for name in value.split(",") if name.strip()} if value else None


def discover(points: Iterable[EntryPoint] | None = None) -> Plugins:
    """Load every plugin of the ``nlpkit`` entry-point group, honouring the environment's allow/deny lists.

    ``NLPKIT_PLUGINS`` (comma list) loads only the named plugins (plus ``core``);
    ``NLPKIT_DISABLE_PLUGINS`` (comma list) excludes plugins, ``core`` included.
    """
    allow = _names_from_env("NLPKIT_PLUGINS")
    deny = _names_from_env("NLPKIT_DISABLE_PLUGINS") or set()
    plugins = Plugins()
    points = entry_points(group=ENTRY_POINT_GROUP) if points is None else points
    for point in sorted(points, key=lambda p: (p.name != "core", p.name)):
        dist = getattr(point, "dist", None)
        info = PluginInfo(
            name=point.name,
            entry_point=point.value,
            distribution=dist.name if dist else None,
            version=dist.version if dist else None,
            status="loaded",
        )
        if point.name in deny or (allow is not None and point.name not in allow | set(ALWAYS_ALLOWED)):
            info.status = "disabled"
            plugins.info[point.name] = info
            continue
        if point.name in plugins.info:
            info.name = f"{point.name} ({info.distribution})"
            plugins.info[info.name] = info
            plugins._fail(info, f"another distribution already provides a plugin named '{point.name}'")
            continue
        try:
            module = point.load()
        except Exception as error:
            plugins.info[point.name] = info
            plugins._fail(info, f"import failed: {type(error).__name__}: {first_line(error)}")
            continue
        plugins.add(point.name, module, info)
    return plugins.finish()


_loaded: Plugins | None = None


def get_plugins() -> Plugins:
    """The process-wide plugins, discovered on first use."""
    global _loaded
    if _loaded is None:
        _loaded = discover()
    return _loaded


def reset_plugins(plugins: Plugins | None = None) -> None:
    """Replace the process-wide plugins (``None``: rediscover on next use); for tests and ``nlpkit.testing``."""
    global _loaded
    _loaded = plugins


def registry(kind: str) -> Registry[Any]:
    """The registry of ``kind`` ('encoders', 'heads', 'metrics', 'datasets', 'tasks', 'commands',
    'word_features')."""
    return get_plugins()[kind]


def plugin_versions() -> dict[str, str | None]:
    """Loaded plugin names and their distribution versions, recorded in every checkpoint."""
    return {name: info.version for name, info in get_plugins().info.items() if info.status == "loaded"}
