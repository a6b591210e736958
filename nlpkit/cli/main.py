"""The ``nlpkit`` command: plugins first, then a LightningCLI (fit/validate/test/predict) or a plugin command."""

from __future__ import annotations

import argparse
import difflib
import itertools
import json
import os
import re
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

from nlpkit.cli.errors import chain, explain
from nlpkit.cli.short_names import install_loader, rewrite_argv
from nlpkit.plugin.configurable import current_class_paths
from nlpkit.plugin.errors import ConfigError, NlpkitError, UnknownNameError
from nlpkit.plugin.loader import Plugins, get_plugins

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


# -- checkpoints as config ---------------------------------------------------------------------------------
def _ckpt_config(argv: list[str]) -> tuple[list[str], dict[str, Any] | None]:
    """For validate/test/predict with ``--ckpt_path``, the model and data configs stored in the checkpoint (or,
    for ``predict``, in an export directory's ``model.json``) as arguments, and the checkpoint itself, read once
    (the task is restored from it, not read again by Lightning)."""
    from nlpkit.deploy.export import is_export, read_manifest
    from nlpkit.training.checkpoint_io import load_checkpoint

    path = next((v for k, v in itertools.pairwise(argv) if k == "--ckpt_path"), None)
    path = path or next((a.split("=", 1)[1] for a in argv if a.startswith("--ckpt_path=")), None)
    if argv[0] not in LIGHTNING_COMMANDS[1:] or not path or path in ("last", "best"):
        return [], None
    checkpoint: dict[str, Any] | None = None
    if is_export(path):
        if argv[0] != "predict":
            raise ConfigError(f"{path}: an export holds no weights to {argv[0]} with; pass its checkpoint")
        manifest = read_manifest(path)
        configs = {
            "hyper_parameters": manifest["hyper_parameters"],
            "datamodule_hyper_parameters": manifest.get("data_hyper_parameters"),
        }
    else:
        checkpoint = configs = load_checkpoint(path)
    injected = []
    for key, section in (("model", "hyper_parameters"), ("data", "datamodule_hyper_parameters")):
        hparams = current_class_paths(dict(configs.get(section) or {}))
        hparams.pop("_instantiator", None)
        hparams.pop("init_from", None)
        class_path = hparams.pop("_class_path", None)
        if class_path:
            injected += [f"--{key}", json.dumps({"class_path": class_path, "init_args": hparams})]
    return injected, checkpoint


# -- the Lightning CLI ---------------------------------------------------------------------------------------
def _lightning_cli(
    argv: list[str], command: list[str], verbose: bool, checkpoint: dict[str, Any] | None = None
) -> None:
    """Run LightningCLI on ``argv`` (short names resolved) while ``sys.argv`` is the user's ``command``.

    Lightning's DDP launcher starts the other processes by re-running ``sys.argv``.
    """
    from nlpkit.cli.lightning import run  # imports Lightning: only for fit/validate/test/predict

    saved_argv, sys.argv = sys.argv, [sys.argv[0], *command]
    try:
        with warnings.catch_warnings():
            # LightningCLI warns when sys.argv and its arguments both hold a command; and Lightning cannot see
            # that nlpkit's batch samplers resume a mid-epoch checkpoint themselves (TextDataModule.batch_sampler)
            warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
            warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch")
            # a rerun of the same configuration replaces its best.ckpt and last.ckpt on purpose (another is refused)
            warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
            run(argv, verbose, checkpoint)
    finally:
        sys.argv = saved_argv


# -- plugin commands -----------------------------------------------------------------------------------------
class CommandParser(argparse.ArgumentParser):
    """The arguments of a plugin command: a mistake is one line naming the option (with the closest choice), not
    argparse's usage block."""

    def error(self, message: str) -> NoReturn:
        """Raise the mistake as a ConfigError (exit status 2 and one line from ``main``)."""
        wrong = re.fullmatch(r"(argument \S+): invalid choice: '(.*)' \(choose from (.*)\)", message)
        if wrong:
            choices = re.findall(r"'([^']*)'", wrong[3])
            close = difflib.get_close_matches(wrong[2], choices, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            message = f"{wrong[1]}: invalid choice '{wrong[2]}'{hint} (choices: {', '.join(choices)})"
            raise ConfigError(f"{self.prog}: {message}")
        raise ConfigError(f"{self.prog}: {message} (--help lists the options)")


def _run_command(plugins: Plugins, argv: list[str]) -> int:
    command = plugins["commands"][argv[0]]
    parser = CommandParser(prog=f"nlpkit {argv[0]}", description=command.help)
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
    "predict": "predict a file of inputs with a trained checkpoint (--ckpt_path; --json: every digit)",
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
        install_loader(plugins)
        if args[0] == "predict" and "--json" in args:  # every digit, as the other commands' --json
            args = [arg for arg in args if arg != "--json"] + ["--predictions.full_precision=true"]
        injected, checkpoint = _ckpt_config(args)
        _lightning_cli([args[0], *injected, *rewrite_argv(plugins, args[1:])], command, verbose, checkpoint)
        return 0
    except Exception as error:
        # a class built from the config (a task, a data module) raised it, and jsonargparse may have wrapped it
        cause = next((cause for cause in chain(error) if isinstance(cause, NlpkitError)), None)
        if not isinstance(error, _configuration_errors()) and cause is None:
            raise
        if debug:
            traceback.print_exc()
        message = str(cause).strip() if cause is not None else explain(error, args)
        print(f"nlpkit: error: {message}", file=sys.stderr)
        return 2


def _configuration_errors() -> tuple[type[Exception], ...]:
    """Errors of a command line or config that jsonargparse and Lightning raise (imported only on failure)."""
    from jsonargparse import ArgumentError
    from lightning_fabric.utilities.exceptions import MisconfigurationException

    return ArgumentError, MisconfigurationException


def console_main() -> None:
    """``nlpkit`` console script."""
    raise SystemExit(main())
