"""``nlpkit.load``: a trained task from nothing but its checkpoint file."""

from __future__ import annotations

import os
from pathlib import Path

from nlpkit.plugin.errors import CheckpointError
from nlpkit.training.checkpoint_io import load_checkpoint
from nlpkit.training.checkpoints import task_from_checkpoint
from nlpkit.training.task import Task


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """``path`` itself when it is not a directory; for a run directory (or its ``checkpoints/``), the best
    checkpoint by validation loss, else the last one."""
    path = Path(path)
    if not path.is_dir():
        return path
    for candidate in (path / folder / name for folder in ("checkpoints", ".") for name in ("best.ckpt", "last.ckpt")):
        if candidate.is_file():
            return candidate
    raise CheckpointError(f"{path}: a directory without best.ckpt or last.ckpt (in it or in its checkpoints/)")


def load(path: str | os.PathLike[str], map_location: str = "cpu") -> Task:
    """Load a checkpoint written by ``nlpkit fit`` or ``Trainer.save_checkpoint`` as a ready-to-predict task.

    ``path`` may be a run directory (``runs/demo``): its best checkpoint is loaded, or its last without one.
    The checkpoint is read once, with ``weights_only=True``, and the task rebuilt from it (its tokenizer parsed
    once); the task class must be registered by a loaded plugin. An export directory (``nlpkit export``) loads as
    the same task, its forward run by ONNX Runtime or TorchScript.
    """
    from nlpkit.deploy.export import is_export, load_export

    if is_export(path):
        return load_export(path)
    path = resolve_checkpoint(path)
    task = task_from_checkpoint(load_checkpoint(path), path)
    return task.to(map_location).eval()
