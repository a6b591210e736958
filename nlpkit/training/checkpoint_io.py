"""Checkpoint files read without unpickling code, and written whole or not at all."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from nlpkit.plugin.errors import CheckpointError, first_line
from nlpkit.plugin.files import atomic_write_bytes


def load_checkpoint(path: str | os.PathLike[str], mmap: bool = False) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; a missing, corrupt or code-carrying file is a CheckpointError.
    ``mmap`` maps the tensors instead of reading them (for looking at the settings alone)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as error:
        raise CheckpointError(f"{path}: {_why_not_loaded(path, error)}") from error
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path}: not a checkpoint (expected a dict, found {type(checkpoint).__name__})")
    return checkpoint


_ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes zip archives
_UNSAFE_GLOBAL = re.compile(r"GLOBAL (\S+) was not an allowed global")
_UNPICKLER_ERROR = re.compile(r"WeightsUnpickler error:\s*(.+)")


def _why_not_loaded(path: Path, error: Exception) -> str:
    """One line on why ``torch.load`` failed: the code the file's pickle would run, or what is wrong with it.

    torch's own message advises loading without ``weights_only``; that advice is not passed on.
    """
    unsafe = _unsafe_globals(path) or _UNSAFE_GLOBAL.findall(str(error))
    if unsafe:
        return f"refused as unsafe: its pickle would import and call {', '.join(unsafe)} (nlpkit loads weights only)"
    with path.open("rb") as handle:
        head = handle.read(len(_ZIP_MAGIC))
    if not head:
        problem = "the file is empty"
    elif head == _ZIP_MAGIC:
        problem = "a truncated or damaged torch.save archive"
    else:
        problem = "not a torch.save archive"
    return f"not a loadable nlpkit checkpoint: {problem} ({_reason(error)})"


def _unsafe_globals(path: Path) -> list[str]:
    """The functions and classes a ``torch.save`` archive's pickle names beyond the weights-only allowlist.

    The pickle is disassembled, not run; a file that is not a readable archive gives an empty list.
    """
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # not a zip, a damaged one, a pickle that does not parse: nothing to list
        return []


def _reason(error: Exception) -> str:
    """The error's type and the gist of its message (torch follows the first sentence with paragraphs of advice)."""
    detail = _UNPICKLER_ERROR.search(str(error))
    text = detail.group(1).strip() if detail else first_line(error).split(". ", 1)[0].rstrip(".")
    name = type(error).__name__
    return name if text == name else f"{name}: {text}"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO that renames a finished temporary file into place and loads weights only."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        """Serialize ``checkpoint`` in memory, then write it atomically."""
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(path, buffer.getvalue())

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict:
        """Load with ``weights_only=True`` whatever the caller asked."""
        return load_checkpoint(path)
