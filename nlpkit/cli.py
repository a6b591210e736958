"""The ``nlpkit`` command: plugins first, then a LightningCLI (fit/validate/test/predict) or a plugin command."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import Any

from nlpkit.configurable import class_path
from nlpkit.errors import ConfigError, NlpkitError, UnknownNameError
from nlpkit.plugins import Plugins, get_plugins

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
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
    if any(getattr(entry.obj, "__name__", None) == value for entry in registry.entries()):
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


def _rewrite_argv(plugins: Plugins, argv: list[str]) -> list[str]:
    rewritten: list[str] = []
    pending_key: str | None = None
    for arg in argv:
        if pending_key is not None:
            rewritten.append(_resolve_value(plugins, pending_key, arg))
            pending_key = None
        elif arg.startswith("--") and "=" in arg:
            key, value = arg[2:].split("=", 1)
            rewritten.append(f"--{key}={_resolve_value(plugins, key, value)}")
        else:
            if arg.startswith("--") and _kind_for_key(arg[2:]) and not arg[2:].endswith(".init_args"):
                pending_key = arg[2:]
            rewritten.append(arg)
    return rewritten


def _install_loader(plugins: Plugins) -> None:
    import yaml
    from jsonargparse import set_loader

    def load(text: str) -> Any:
        return _rewrite_config(plugins, yaml.safe_load(text))

    set_loader(PARSER_MODE, load, exceptions=(yaml.YAMLError, UnknownNameError))


# -- checkpoints as config ---------------------------------------------------------------------------------
def _ckpt_argv(argv: list[str]) -> list[str]:
    """For validate/test/predict with ``--ckpt_path``, the model and data configs stored in the checkpoint (or,
    for ``predict``, in an export directory's ``model.json``)."""
    from nlpkit.export import is_export, read_manifest
    from nlpkit.io import load_checkpoint

    path = next((v for k, v in itertools.pairwise(argv) if k == "--ckpt_path"), None)
    path = path or next((a.split("=", 1)[1] for a in argv if a.startswith("--ckpt_path=")), None)
    if argv[0] not in LIGHTNING_COMMANDS[1:] or not path or path in ("last", "best"):
        return []
    if is_export(path):
        if argv[0] != "predict":
            raise ConfigError(f"{path}: an export holds no weights to {argv[0]} with; pass its checkpoint")
        manifest = read_manifest(path)
        checkpoint = {
            "hyper_parameters": manifest["hyper_parameters"],
            "datamodule_hyper_parameters": manifest.get("data_hyper_parameters"),
        }
    else:
        checkpoint = load_checkpoint(path)
    injected = []
    for key, section in (("model", "hyper_parameters"), ("data", "datamodule_hyper_parameters")):
        hparams = dict(checkpoint.get(section) or {})
        hparams.pop("_instantiator", None)
        hparams.pop("init_from", None)
        class_path = hparams.pop("_class_path", None)
        if class_path:
            injected += [f"--{key}", json.dumps({"class_path": class_path, "init_args": hparams})]
    return injected


# -- the Lightning CLI ---------------------------------------------------------------------------------------
def _lightning_cli(argv: list[str], command: list[str], verbose: bool) -> None:
    """Run LightningCLI on ``argv`` (short names resolved) while ``sys.argv`` is the user's ``command``.

    Lightning's DDP launcher starts the other processes by re-running ``sys.argv``.
    """
    from nlpkit.lightning_cli import run  # imports Lightning: only for fit/validate/test/predict

    saved_argv, sys.argv = sys.argv, [sys.argv[0], *command]
    try:
        with warnings.catch_warnings():
            # LightningCLI warns when sys.argv and its arguments both hold a command; and Lightning cannot see
            # that nlpkit's batch samplers resume a mid-epoch checkpoint themselves (TextDataModule.batch_sampler)
            warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
            warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch")
            # a rerun in the same directory replaces best.ckpt and last.ckpt on purpose
            warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
            run(argv, verbose)
    finally:
        sys.argv = saved_argv


# -- plugin commands -----------------------------------------------------------------------------------------
def _run_command(plugins: Plugins, argv: list[str]) -> int:
    command = plugins["commands"][argv[0]]
    parser = argparse.ArgumentParser(prog=f"nlpkit {argv[0]}", description=command.help)
    command.add_arguments(parser)
    return command.run(parser.parse_args(argv[1:]))


def _usage(plugins: Plugins) -> str:
    lines = ["usage: nlpkit COMMAND [options]   (nlpkit COMMAND --help for a command's options)", "", "commands:"]
    lines += [f"  {name:<12} {text}" for name, text in _LIGHTNING_HELP.items()]
    lines += [f"  {e.name:<12} {e.obj.help} [{e.plugin}]" for e in plugins["commands"].entries()]
    lines += ["", "options: --debug shows the full traceback of an error; --verbose shows Lightning's own messages"]
    return "\n".join(lines)


_LIGHTNING_HELP = {
    "fit": "train a model (YAML with --config, or --model/--data/--trainer options)",
    "validate": "evaluate on the validation split",
    "test": "evaluate on the test split",
    "predict": "predict a file of inputs with a trained checkpoint (--ckpt_path)",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nlpkit`` command; returns the exit status (2 for a user's mistake)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("NLPKIT_DEBUG") == "1"
    verbose = "--verbose" in args
    command, args = args, [arg for arg in args if arg not in ("--debug", "--verbose")]
    try:
        plugins = get_plugins()
        if not args or args[0] in ("-h", "--help"):
            print(_usage(plugins))
            return 0 if args else 2
        if args[0] in plugins["commands"]:
            return _run_command(plugins, args)
        if args[0] not in LIGHTNING_COMMANDS:
            known = [*LIGHTNING_COMMANDS, *plugins["commands"]]
            raise UnknownNameError(f"unknown command '{args[0]}' (commands: {', '.join(known)})")
        _install_loader(plugins)
        _lightning_cli([args[0], *_ckpt_argv(args), *_rewrite_argv(plugins, args[1:])], command, verbose)
        return 0
    except Exception as error:
        cause = _nlpkit_cause(error)  # a class built from the config (a task, a data module) raised it
        if not isinstance(error, _configuration_errors()) and cause is None:
            raise
        if debug:
            traceback.print_exc()
        message = str(cause).strip() if cause is not None else _explain(error)
        print(f"nlpkit: error: {message}", file=sys.stderr)
        return 2


def _nlpkit_cause(error: BaseException) -> NlpkitError | None:
    """The NlpkitError that ``error`` is, or that it was raised from or while handling (jsonargparse wraps the
    errors of the constructors it calls)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, NlpkitError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return None


def _configuration_errors() -> tuple[type[Exception], ...]:
    """Errors of a command line or config that jsonargparse and Lightning raise (imported only on failure)."""
    from jsonargparse import ArgumentError
    from lightning_fabric.utilities.exceptions import MisconfigurationException

    return ArgumentError, MisconfigurationException


def _explain(error: BaseException) -> str:
    """One line from jsonargparse's chained errors: the key it was parsing and the innermost cause."""
    root = error
    while root.__cause__ is not None or root.__context__ is not None:
        root = root.__cause__ or root.__context__  # type: ignore[assignment]
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    cause = next((line.strip() for line in str(root).splitlines() if line.strip()), "")
    head = lines[0].rstrip(":") if lines else type(error).__name__
    if root is error or not cause or cause.rstrip(":") in head:
        return head
    return f"{head.replace('Parser key ', 'in ')}: {cause}"


def console_main() -> None:
    """``nlpkit`` console script."""
    raise SystemExit(main())
