"""The console nlpkit prints tables to."""

from __future__ import annotations

import sys

from rich.console import Console

#: the width of a console writing to a file or a pipe: wide enough that no table row is cut (rich would use 80)
UNCUT_WIDTH = 10_000


def console() -> Console:
    """A rich console on standard output, as wide as the terminal, or never cutting a line when piped to a file."""
    return Console(width=None if sys.stdout.isatty() else UNCUT_WIDTH)
