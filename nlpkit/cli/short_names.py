"""Registered short names (``encoder: lstm``) in configs and on the command line, resolved to class paths."""

from __future__ import annotations

import json
from typing import Any

from nlpkit.plugin.configurable import class_path
from nlpkit.plugin.errors import UnknownNameError
from nlpkit.plugin.loader import Plugins

PARSER_MODE = "nlpkit"
#: config keys whose value names a registered class, and the registry it names
KIND_BY_KEY = {"model": "tasks", "data": "datasets"}
KIND_BY_SUFFIX = {"encoder": "encoders", "encoders": "encoders", "head": "heads"}


# -- short names -------------------------------------------------------------------------------------------
def _kind_for_key(key: str) -> str | None:
    parts = [part for part in key.split(".") if part not in ("init_args", "class_path")]
    if not parts:
        return None
    if len(parts) == 1 and parts[0] in KIND_BY_KEY:
        return KIND_BY_KEY[parts[0]]
    return next((kind for suffix, kind in KIND_BY_SUFFIX.items() if parts[-1].endswith(suffix)), None)


def resolve_short_name(plugins: Plugins, key: str, value: str) -> str:
    """The class path for a registered short name under config ``key``; other values pass through."""
    kind = _kind_for_key(key)
    if kind is None or "." in value or not value:
        return value
    registry = plugins[kind]
    if value in registry or value in registry.conflicts:
        obj = registry[value]
        return class_path(obj)
    if any(entry.label == value for entry in registry.entries()):
        return value  # a class name, which jsonargparse resolves itself
    registry.entry(value)  # raises UnknownNameError with the registered names and the closest match
    return value


def _rewrite_config(plugins: Plugins, node: Any, key: str = "") -> Any:
    if isinstance(node, dict):
        rewritten = {}
        for name, value in node.items():
            if name == "class_path" and isinstance(value, str):
                rewritten[name] = resolve_short_name(plugins, key, value)
            elif isinstance(value, str) and _kind_for_key(name):
                rewritten[name] = resolve_short_name(plugins, name, value)
            else:
                rewritten[name] = _rewrite_config(plugins, value, key if name == "init_args" else name)
        return rewritten
    if isinstance(node, list):
        return [_rewrite_config(plugins, item, key) for item in node]
    return node


def _resolve_value(plugins: Plugins, key: str, value: str) -> str:
    """A command-line value for ``key``: a short name, or an inline JSON/YAML block (or list) with short names
    inside."""
    if not value.lstrip().startswith(("{", "[")):
        return resolve_short_name(plugins, key, value)
    import yaml

    name = key.rsplit(".", 1)[-1]
    return json.dumps(_rewrite_config(plugins, {name: yaml.safe_load(value)})[name])


def rewrite_argv(plugins: Plugins, argv: list[str]) -> list[str]:
    """``argv`` with every registered short name given to a class-valued option (or to its ``.help``) replaced by
    its class path."""
    rewritten: list[str] = []
    pending_key: str | None = None
    for arg in argv:
        if pending_key is not None:
            rewritten.append(_resolve_value(plugins, pending_key, arg))
            pending_key = None
        elif arg.startswith("--") and "=" in arg:
            key, value = arg[2:].split("=", 1)
            rewritten.append(f"--{key}={_resolve_value(plugins, key.removesuffix('.help'), value)}")
        else:
            key = arg[2:].removesuffix(".help")  # --model.help NAME: the options of the class NAME names
            if arg.startswith("--") and _kind_for_key(key) and not key.endswith(".init_args"):
                pending_key = key
            rewritten.append(arg)
    return rewritten


def install_loader(plugins: Plugins) -> None:
    """Make jsonargparse's ``nlpkit`` parser mode read YAML with short names resolved."""
    import yaml
    from jsonargparse import set_loader

    def load(text: str) -> Any:
        return _rewrite_config(plugins, yaml.safe_load(text))

    set_loader(PARSER_MODE, load, exceptions=(yaml.YAMLError, UnknownNameError))
