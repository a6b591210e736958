"""``nlpkit.load``: a trained task from nothing but its checkpoint file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nlpkit.checkpoints import checkpoint_tokenizer, nlpkit_section
from nlpkit.configurable import class_path
from nlpkit.errors import CheckpointError
from nlpkit.io import load_checkpoint
from nlpkit.plugins import get_plugins
from nlpkit.task import Task


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


def task_class_of(section: dict[str, Any], source: object) -> type[Task]:
    """The registered task class a checkpoint's nlpkit section (or an export's manifest) names."""
    tasks = get_plugins()["tasks"]
    name = section.get("task")
    if name:
        return tasks[name]
    task_class = next((e.obj for e in tasks.entries() if class_path(e.obj) == section.get("task_class")), None)
    if task_class is None:
        raise CheckpointError(f"{source}: task {section.get('task_class')} is not registered by any loaded plugin")
    return task_class


def load(path: str | os.PathLike[str], map_location: str = "cpu") -> Task:
    """Load a checkpoint written by ``nlpkit fit`` or ``Trainer.save_checkpoint`` as a ready-to-predict task.

    ``path`` may be a run directory (``runs/demo``): its best checkpoint is loaded, or its last without one.
    The checkpoint is read with ``weights_only=True`` and its tokenizer checked before the task is rebuilt; the
    task class must be registered by a loaded plugin. An export directory (``nlpkit export``) loads as the same
    task, its forward run by ONNX Runtime or TorchScript.
    """
    from nlpkit.export import is_export, load_export

    if is_export(path):
        return load_export(path)
    path = resolve_checkpoint(path)
    checkpoint = load_checkpoint(path)
    section = nlpkit_section(checkpoint, path)
    checkpoint_tokenizer(section, path)  # refuse a bad tokenizer, naming the file, before Lightning runs
    task_class = task_class_of(section, path)
    task = task_class.load_from_checkpoint(path, map_location=map_location, weights_only=True)
    task.datamodule_hparams = checkpoint.get("datamodule_hyper_parameters")
    task.eval()
    return task
