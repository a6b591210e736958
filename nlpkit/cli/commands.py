"""Extra ``nlpkit`` subcommands: the :class:`Command` interface plugins implement, and ``nlpkit plugins``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import ClassVar, Generic, TypeVar

from rich.table import Table

from nlpkit.data.readers import read_records
from nlpkit.plugin.console import console
from nlpkit.plugin.errors import ConfigError, DataError
from nlpkit.plugin.loader import get_plugins
from nlpkit.plugin.registries import load_reference

T = TypeVar("T")
R = TypeVar("R")


class Command:
    """A subcommand registered through ``register_commands``: ``nlpkit NAME [arguments]``."""

    #: the registry its subclasses are registered in (checked by the plugin loader)
    registry_kind: ClassVar[str] = "commands"

    help: str = ""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare the command's arguments on ``parser``."""

    def run(self, args: argparse.Namespace) -> int:
        """Run with parsed ``args``; return the exit status. Raise ``NlpkitError`` for a user's mistake."""
        raise NotImplementedError


class CheckpointCommand(Command, Generic[T]):
    """A command that runs a trained task on texts: ``--ckpt_path`` and the texts, one by one (``--text``, repeated)
    or in a file (``--texts_file``, one a line).

    A subclass sets :attr:`task_type` and :attr:`refusal`, adds its own options in :meth:`add_options` and does its
    work in :meth:`run_on`.
    """

    #: the kind of task the checkpoint must hold: a class, or a ``"module:Class"`` reference imported only when the
    #: command runs (so listing commands imports no model code)
    task_type: ClassVar[type | str] = object
    #: why a checkpoint of another task cannot serve: "a CausalLMTask checkpoint {refusal}"
    refusal: ClassVar[str] = "cannot run this command"
    #: the option naming one input (``--text``), and ``--{input_name}s_file`` its file
    input_name: ClassVar[str] = "text"
    checkpoint_help: ClassVar[str] = "a checkpoint, a run directory (its best checkpoint) or an export"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The checkpoint, the inputs, then :meth:`add_options`."""
        name = self.input_name
        parser.add_argument("--ckpt_path", required=True, help=self.checkpoint_help)
        parser.add_argument(f"--{name}", action="append", default=[], help=f"a {name} (repeat for several)")
        parser.add_argument(f"--{name}s_file", help=f"a text file of {name}s, one a line")
        self.add_options(parser)

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """The command's own options (default: none)."""

    def texts(self, args: argparse.Namespace) -> list[str]:
        """The inputs given one by one, then the non-blank lines of the file; none at all is an error."""
        name = self.input_name
        texts = list(getattr(args, name))
        path = getattr(args, f"{name}s_file")
        if path:
            if not Path(path).is_file():
                raise DataError(path, f"{name}s file not found")
            texts += [record.fields["text"] for record in read_records(path, format="txt")]
        if not texts:
            raise ConfigError(f"give at least one --{name} or a --{name}s_file")
        return texts

    def load_task(self, path: str) -> T:
        """``nlpkit.load(path)``, refusing a checkpoint of a task that is not a :attr:`task_type`."""
        from nlpkit.deploy.loading import load

        task = load(path)
        task_type = load_reference(self.task_type) if isinstance(self.task_type, str) else self.task_type
        if not isinstance(task, task_type):
            raise ConfigError(f"{path}: a {type(task).__name__} checkpoint {self.refusal}")
        return task  # type: ignore[return-value]

    def run(self, args: argparse.Namespace) -> int:
        """Read the inputs, load the checkpoint, then :meth:`run_on`."""
        texts = self.texts(args)
        return self.run_on(self.load_task(args.ckpt_path), texts, args)

    def run_on(self, task: T, texts: list[str], args: argparse.Namespace) -> int:
        """Do the command's work on the loaded task; return the exit status."""
        raise NotImplementedError


class ReportCommand(Command, Generic[R]):
    """A command that prints what it found for people, or as JSON with ``--json``."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """``--json`` for machine-readable output."""
        parser.add_argument("--json", action="store_true", help="print JSON instead of text")

    def report(self) -> R:
        """What to print, as JSON-serialisable data."""
        raise NotImplementedError

    def show(self, report: R) -> None:
        """Print ``report`` for people."""
        raise NotImplementedError

    def run(self, args: argparse.Namespace) -> int:
        """Print the report."""
        report = self.report()
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            self.show(report)
        return 0


class PluginsCommand(ReportCommand[list[dict[str, object]]]):
    """``nlpkit plugins``: every plugin, its version, status and what it registered."""

    help = "list plugins, their status and what each registered"

    def report(self) -> list[dict[str, object]]:
        """Each plugin's :meth:`~nlpkit.plugin.loader.PluginInfo.to_dict`."""
        return [info.to_dict() for info in get_plugins().info.values()]

    def show(self, report: list[dict[str, object]]) -> None:
        """A table of the plugins, then any registration conflicts."""
        plugins = get_plugins()
        table = Table(title="nlpkit plugins")
        for column in ("plugin", "distribution", "version", "status", "registered"):
            table.add_column(column)
        for info in plugins.info.values():
            registered = "\n".join(f"{kind}: {', '.join(names)}" for kind, names in info.registered.items())
            status = {"loaded": "[green]loaded[/]", "disabled": "[dim]disabled[/]"}.get(
                info.status, f"[red]failed[/]: {info.error}"
            )
            table.add_row(info.name, info.distribution or "-", info.version or "-", status, registered)
        output = console()
        output.print(table)
        for kind, registry in plugins.registries.items():
            for name, owners in registry.conflicts.items():
                output.print(f"[yellow]conflict[/]: {kind[:-1]} '{name}' is registered by {', '.join(owners)}")
