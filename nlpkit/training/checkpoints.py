"""What an nlpkit checkpoint holds beyond Lightning's (its nlpkit section, plain hyperparameters), the checks
made when one is written or read, and the route that rebuilds a task from one."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from nlpkit.models.tokenizers import Tokenizer
from nlpkit.plugin.configurable import Configurable, class_path, current_class_paths
from nlpkit.plugin.errors import CheckpointError, NlpkitError
from nlpkit.plugin.loader import plugin_versions, registry

if TYPE_CHECKING:
    from nlpkit.training.task import Task

CHECKPOINT_KEY = "nlpkit"
CHECKPOINT_FORMAT = 1
_PLAIN = (str, int, float, bool, type(None))


def _is_plain(value: Any) -> bool:
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _is_plain(item) for key, item in value.items())
    return False


def nlpkit_section_of(task: Task) -> dict[str, Any]:
    """The checkpoint section a task writes: its class and name, tokenizer, labels and the plugin versions."""
    return {
        "format": CHECKPOINT_FORMAT,
        "task_class": class_path(type(task)),
        "task": registry("tasks").name_of(type(task)),
        "tokenizer": task.tokenizer.to_bytes() if task.tokenizer else None,
        "max_length": task.tokenizer.max_length if task.tokenizer else None,
        "labels": task.labels,
        "artifacts": task.artifacts(),
        "plugins": plugin_versions(),
    }


def plain_hyperparameters(task: Task) -> dict[str, Any]:
    """The task's hyperparameters as plain data (built modules as their class path and arguments), so a checkpoint
    loads with ``weights_only=True`` and rebuilds the task from nothing else."""
    hparams: dict[str, Any] = {"_class_path": class_path(type(task))}
    for name, value in task.hparams.items():
        if name.startswith("_"):
            continue
        module = getattr(task, name, None)  # a factory argument's built module has the argument's name
        if not _is_plain(value) and isinstance(module, Configurable):
            value = module.spec()
        elif is_dataclass(value) and not isinstance(value, type):
            value = asdict(value)
        if not _is_plain(value):
            raise CheckpointError(f"hyperparameter '{name}' is not plain data ({type(value).__name__})")
        hparams[name] = value
    hparams["init_from"] = None  # the weights are in this checkpoint: loading it needs no other file
    hparams["_instantiator"] = "pytorch_lightning.cli.instantiate_module"
    return hparams


def refuse_nonfinite(state_dict: dict[str, Any]) -> None:
    """A CheckpointError naming the first floating-point tensor that holds a NaN or an infinity."""
    for name, value in state_dict.items():
        if torch.is_tensor(value) and value.is_floating_point() and not value.isfinite().all():
            raise CheckpointError(f"refusing to save a checkpoint whose weights are not finite ({name})")


def refuse_other_shapes(
    own: dict[str, Tensor], saved: dict[str, Any], source: object, explain: Callable[[], str] | None = None
) -> None:
    """A CheckpointError when a saved tensor's shape differs from the model's; ``explain``, asked only then, says
    what may explain it (the settings in which the run resuming the checkpoint differs from the one that wrote it)."""
    for key, value in saved.items():
        if key in own and not torch.is_tensor(value):
            raise CheckpointError(f"{source}: weights {key} are a {type(value).__name__}, not a tensor")
        if key in own and own[key].shape != value.shape:
            why = explain() if explain is not None else ""
            raise CheckpointError(
                f"{source}: weights {key} are {tuple(value.shape)} in the checkpoint but {tuple(own[key].shape)} "
                f"in the model {'this configuration' if why else 'its tokenizer, labels and settings'} builds{why}"
            )


def configuration_differences(checkpoint: dict[str, Any], task: Any, datamodule: Any) -> list[str]:
    """The model and data settings (``model.encoder``, ``data.train_path``) in which ``checkpoint``'s run differs
    from this one's."""
    runs = {
        "model": (checkpoint.get("hyper_parameters") or {}, plain_hyperparameters(task)),
        "data": (checkpoint.get("datamodule_hyper_parameters") or {}, dict(getattr(datamodule, "hparams", {}))),
    }
    differences = []
    for section, (saved, current) in runs.items():
        for key in sorted({*saved, *current} - {"init_from"}):
            if not key.startswith("_") and _plain(saved.get(key)) != _plain(current.get(key)):
                differences.append(f"{section}.{key}")
    return differences


def _plain(value: Any) -> Any:
    """``value`` as JSON would carry it (tuples as lists), for comparing configurations."""
    return json.loads(json.dumps(value, default=str))


def in_words(differences: list[str]) -> str:
    """``model.encoder differs`` or ``model.encoder, data.train_path differ``."""
    return f"{', '.join(differences)} {'differs' if len(differences) == 1 else 'differ'}"


def nlpkit_section(checkpoint: dict[str, Any], source: object) -> dict[str, Any]:
    """The checkpoint's nlpkit section (tokenizer, labels, task, versions), or a CheckpointError."""
    section = checkpoint.get(CHECKPOINT_KEY)
    if not isinstance(section, dict) or "tokenizer" not in section:
        raise CheckpointError(f"{source}: not an nlpkit checkpoint (no '{CHECKPOINT_KEY}' section)")
    return section


def checkpoint_tokenizer(section: dict[str, Any], source: object) -> Tokenizer | None:
    """The tokenizer of a checkpoint's nlpkit section (None for a task that reads no text), checked."""
    if section["tokenizer"] is None:
        return None
    try:
        return Tokenizer.from_bytes(section["tokenizer"], max_length=section.get("max_length") or 512)
    except NlpkitError as error:
        raise CheckpointError(f"{source}: unusable tokenizer: {error}") from error


def task_class_of(section: dict[str, Any], source: object) -> type[Task]:
    """The registered task class a checkpoint's nlpkit section (or an export's manifest) names."""
    tasks = registry("tasks")
    name = section.get("task")
    if name:
        return tasks[name]
    wanted = section.get("task_class")
    task_class = next((e.obj for e in tasks.entries() if wanted in (e.path, class_path(e.obj))), None)
    if task_class is None:
        raise CheckpointError(f"{source}: task {section.get('task_class')} is not registered by any loaded plugin")
    return task_class


def build_task(section: dict[str, Any], hyperparameters: dict[str, Any], source: object) -> Task:
    """An unbound task of the class ``section`` names (a checkpoint's nlpkit section or an export's manifest),
    built from its plain ``hyperparameters``."""
    from pytorch_lightning.cli import instantiate_module

    config = {key: value for key, value in current_class_paths(hyperparameters).items() if key != "_instantiator"}
    return instantiate_module(task_class_of(section, source), config)


def task_from_checkpoint(checkpoint: dict[str, Any], source: object) -> Task:
    """The task a checkpoint read into memory holds: built from its hyperparameters, bound to its tokenizer and
    labels, with its weights."""
    task = build_task(nlpkit_section(checkpoint, source), checkpoint.get("hyper_parameters") or {}, source)
    task.restore(checkpoint, source)
    task.datamodule_hparams = checkpoint.get("datamodule_hyper_parameters")
    return task


class SelfContainedCheckpoints:
    """Mixin of :class:`nlpkit.Task`: checkpoints that carry the tokenizer, labels and plain hyperparameters, and
    the one route that restores a task from one read into memory."""

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store tokenizer, labels and plugin versions; keep hyperparameters plain data (``weights_only`` loads)."""
        if not self.is_built:
            raise CheckpointError("cannot save a task that was never built")
        refuse_nonfinite(checkpoint["state_dict"])
        checkpoint[CHECKPOINT_KEY] = nlpkit_section_of(self)
        checkpoint["hyper_parameters"] = plain_hyperparameters(self)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Lightning's restore (resuming ``fit``): check the checkpoint is this task's, rebuild the modules from its
        tokenizer and labels and check the shapes; Lightning then loads the weights."""
        trainer = self._trainer
        source = trainer.ckpt_path if trainer is not None else "checkpoint"
        self.bind_checkpoint(checkpoint, source)

        def explain() -> str:
            differences = configuration_differences(checkpoint, self, trainer.datamodule) if trainer else []
            return f" (this run's {in_words(differences)} from the checkpoint's)" if differences else ""

        self._saved_weights(checkpoint, source, explain)

    def restore(self, checkpoint: dict[str, Any], source: object) -> None:
        """Bind to a checkpoint already read into memory and load its weights: the one load route of
        ``nlpkit.load`` and ``nlpkit validate/test/predict --ckpt_path`` (the file read once, its tokenizer parsed
        once)."""
        self.bind_checkpoint(checkpoint, source)
        self.load_state_dict(self._saved_weights(checkpoint, source))

    def _saved_weights(
        self, checkpoint: dict[str, Any], source: object, explain: Callable[[], str] | None = None
    ) -> dict[str, Any]:
        saved = checkpoint.get("state_dict", {})
        if getattr(self.encoder, "lm_head_removed", False):  # saved before tasks dropped the unused head
            for key in [key for key in saved if key.startswith("encoder.lm_head.")]:
                del saved[key]
        refuse_other_shapes(self.state_dict(), saved, source, explain)
        return saved

    def bind_checkpoint(self, checkpoint: dict[str, Any], source: object) -> None:
        """:meth:`bind` with a checkpoint's tokenizer and labels, after checking this task made it."""
        section = nlpkit_section(checkpoint, source)
        if section.get("task_class") != class_path(type(self)):
            raise CheckpointError(
                f"{source}: made by task {section.get('task') or section.get('task_class')}, "
                f"not by {registry('tasks').name_of(type(self)) or type(self).__name__}"
            )
        self.restore_artifacts(section.get("artifacts") or {})
        self.bind(checkpoint_tokenizer(section, source), section["labels"], fresh=False)
