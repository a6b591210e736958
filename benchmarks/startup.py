"""Start-up cost: ``import nlpkit`` and plugin discovery, each in fresh processes.

References, measured in the same run: a bare interpreter (for the import) and ``import pytorch_lightning``
alone (for discovery, which imports Lightning through the core plugin's classes). ``--tiny`` times each once.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, median_seconds

import nlpkit


def python(code: str) -> None:
    """Run ``code`` in a fresh interpreter."""
    subprocess.run([sys.executable, "-c", code], check=True)


def main(argv: list[str] | None = None) -> None:
    """Print the start-up figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="time each start once")
    repeats = 1 if parser.parse_args(argv).tiny else 7
    bare = median_seconds(lambda: python("pass"), repeats)
    imported = median_seconds(lambda: python("import nlpkit"), repeats)
    emit("startup", "import_s", "s", imported, bare, "bare interpreter start", False, command="import nlpkit")
    lightning = median_seconds(lambda: python("import pytorch_lightning"), repeats)
    discovery = median_seconds(lambda: python("from nlpkit.plugin.loader import discover; discover()"), repeats)
    emit(
        "startup", "plugin_discovery_s", "s", discovery, lightning, "import pytorch_lightning alone", False,
        command="nlpkit.plugin.loader.discover()", plugins=len(nlpkit.get_plugins().info),
    )  # fmt: skip


if __name__ == "__main__":
    main()
