"""``python -m nlpkit``: the same as the ``nlpkit`` command."""

from nlpkit.cli.main import console_main

console_main()
