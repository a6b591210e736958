"""Extra ``nlpkit`` subcommands: the :class:`Command` interface plugins implement, and ``nlpkit plugins``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Generic, TypeVar

from rich.console import Console
from rich.table import Table

from nlpkit.data.readers import read_records
from nlpkit.errors import ConfigError, DataError
from nlpkit.plugins import get_plugins

T = TypeVar("T")
R = TypeVar("R")


def gather_texts(inline: list[str], path: str | None, what: str) -> list[str]:
    """Texts given one by one on the command line, then the non-blank lines of a file; none at all is an error."""
    texts = list(inline)
    if path:
        if not Path(path).is_file():
            raise DataError(path, f"{what} file not found")
        texts += [record.fields["text"] for record in read_records(path, format="txt")]
    if not texts:
        raise ConfigError(f"give at least one --{what[:-1]} or a --{what}_file")
    return texts


def load_task(path: str, kind: type[T], purpose: str) -> T:
    """``nlpkit.load(path)``, refusing a checkpoint of a task that is not a ``kind``."""
    from nlpkit.api import load

    task = load(path)
    if not isinstance(task, kind):
        raise ConfigError(f"{path}: a {type(task).__name__} checkpoint {purpose}")
    return task


class Command:
    """A subcommand registered through ``register_commands``: ``nlpkit NAME [arguments]``."""

    help: str = ""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare the command's arguments on ``parser``."""

    def run(self, args: argparse.Namespace) -> int:
        """Run with parsed ``args``; return the exit status. Raise ``NlpkitError`` for a user's mistake."""
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
        """Each plugin's :meth:`~nlpkit.plugins.PluginInfo.to_dict`."""
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
        console = Console()
        console.print(table)
        for kind, registry in plugins.registries.items():
            for name, owners in registry.conflicts.items():
                console.print(f"[yellow]conflict[/]: {kind[:-1]} '{name}' is registered by {', '.join(owners)}")
