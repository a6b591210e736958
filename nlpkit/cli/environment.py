"""What this process runs on (versions, device, threads, memory allocator): ``nlpkit env`` and the benchmarks.

Training on the CPU allocates and frees activation and gradient buffers every step. On this project's 2-core
machine, training ran a median 8% faster with tcmalloc preloaded than with glibc's malloc, and 14% slower with
jemalloc (``docs/performance.md``); :func:`allocator_hint` says so when a CPU process runs on glibc's malloc.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from pathlib import Path

from nlpkit.cli.commands import ReportCommand

#: shared-library name fragments of the allocators worth preloading, and how they are reported
ALLOCATORS = {"libtcmalloc": "tcmalloc", "libjemalloc": "jemalloc", "libmimalloc": "mimalloc"}
TCMALLOC_HINT = (
    "glibc malloc: on the CPU, training ran 8% faster with tcmalloc (Debian/Ubuntu: apt-get install "
    "libtcmalloc-minimal4, then LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4)"
)


def memory_allocator(maps: Path = Path("/proc/self/maps")) -> str:
    """The allocator mapped into this process: ``tcmalloc``, ``jemalloc`` or ``mimalloc`` when one was
    preloaded, else ``glibc``; ``unknown`` where ``maps`` cannot be read (not Linux)."""
    try:
        mapped = maps.read_text()
    except OSError:
        return "unknown"
    return next((name for fragment, name in ALLOCATORS.items() if fragment in mapped), "glibc")


def allocator_hint(allocator: str, device: str) -> str | None:
    """One line recommending tcmalloc when a process on the CPU runs on glibc's malloc; otherwise None."""
    return TCMALLOC_HINT if allocator == "glibc" and device == "cpu" else None


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe() -> dict[str, str | int | None]:
    """Versions, the device training would use, threads and the allocator, as ``nlpkit env`` prints them."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    allocator = memory_allocator()
    return {
        "nlpkit": _version("nlpkit"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "pytorch-lightning": _version("pytorch-lightning"),
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "cpu threads": torch.get_num_threads(),
        "cpu capability": torch.backends.cpu.get_cpu_capability(),
        "memory allocator": allocator,
        "hint": allocator_hint(allocator, device),
    }


class EnvCommand(ReportCommand[dict[str, str | int | None]]):
    """``nlpkit env``: what to paste into a bug report, and whether the CPU could run faster."""

    help = "show versions, the device, threads and the memory allocator"

    def report(self) -> dict[str, str | int | None]:
        """:func:`describe`."""
        return describe()

    def show(self, report: dict[str, str | int | None]) -> None:
        """One ``name: value`` line each."""
        sys.stdout.write("".join(f"{name}: {value}\n" for name, value in report.items() if value is not None))
