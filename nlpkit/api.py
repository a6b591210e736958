"""``nlpkit.load``: a trained task from nothing but its checkpoint file."""

from __future__ import annotations

import io
import os
from pathlib import Path

from nlpkit.errors import CheckpointError
from nlpkit.io import load_checkpoint
from nlpkit.plugins import get_plugins
from nlpkit.task import CHECKPOINT_KEY, Task


def load(path: str | os.PathLike[str], map_location: str = "cpu") -> Task:
    """Load a checkpoint written by ``nlpkit fit`` or ``Trainer.save_checkpoint`` as a ready-to-predict task.

    The checkpoint is read with ``weights_only=True``; the task class must be registered by a loaded plugin.
    """
    checkpoint = load_checkpoint(path)
    section = checkpoint.get(CHECKPOINT_KEY)
    if not isinstance(section, dict):
        raise CheckpointError(f"{path}: not an nlpkit checkpoint (no '{CHECKPOINT_KEY}' section)")
    tasks = get_plugins()["tasks"]
    name = section.get("task")
    if name:
        task_class = tasks[name]
    else:
        task_class = next((e.obj for e in tasks.entries() if _path(e.obj) == section.get("task_class")), None)
        if task_class is None:
            raise CheckpointError(f"{path}: task {section.get('task_class')} is not registered by any loaded plugin")
    task = task_class.load_from_checkpoint(
        io.BytesIO(Path(path).read_bytes()), map_location=map_location, weights_only=True
    )
    task.eval()
    return task


def _path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
