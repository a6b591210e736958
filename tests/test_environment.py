"""``nlpkit env``: versions, the device, threads and the memory allocator read from the process's mappings."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from nlpkit.cli.environment import allocator_hint, memory_allocator
from nlpkit.cli.main import main


def test_env_describes_this_process(capsys) -> None:
    assert main(["env", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["torch"] == torch.__version__
    assert facts["cpu threads"] == torch.get_num_threads()
    assert facts["memory allocator"] == memory_allocator() != "unknown"  # Linux: read from /proc/self/maps
    assert (facts["hint"] is not None) == (facts["memory allocator"] == "glibc" and facts["device"] == "cpu")


def test_the_allocator_is_the_preloaded_library_mapped_into_the_process(tmp_path: Path) -> None:
    maps = tmp_path / "maps"
    maps.write_text("7f00-7f01 r-xp 00000000 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n")
    assert memory_allocator(maps) == "glibc"
    with maps.open("a") as lines:
        lines.write("7f02-7f03 r-xp 00000000 08:01 2 /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4\n")
    assert memory_allocator(maps) == "tcmalloc"
    assert memory_allocator(tmp_path / "absent") == "unknown"
    assert allocator_hint("glibc", "cpu") and allocator_hint("tcmalloc", "cpu") is None
    assert allocator_hint("glibc", "cuda") is None
