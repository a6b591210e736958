"""Transfer learning: start a task from a pretrained checkpoint's weights and tokenizer, then fine-tune it with
layer-wise learning-rate decay or gradual unfreezing.

A task copies the weights under its ``transfer_prefixes`` (``encoder.`` for most tasks; a seq2seq model also takes
its decoder). What it copies must fit exactly: the same encoder kind, every weight present with the same shape,
or one line saying what differs, never a silent partial load. The encoder's settings must match too: two
encoders with the same weights' shapes compute other functions when a setting that shapes no weight differs (the
heads, the positions, the activation); only the ``tunable_args`` an encoder declares (dropout, word vectors to
start from, the longest input) may be set anew.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import asdict, dataclass, is_dataclass
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from nlpkit.models.encoders.base import Encoder
from nlpkit.models.tokenizers import Tokenizer
from nlpkit.plugin.configurable import current_class_paths, named_class, names_class
from nlpkit.plugin.errors import CheckpointError, ConfigError
from nlpkit.training.checkpoint_io import load_checkpoint
from nlpkit.training.checkpoints import checkpoint_tokenizer, nlpkit_section

if TYPE_CHECKING:
    from nlpkit.training.task import Task

#: weights a task may keep or drop on its own: the next-token head of a causal encoder
OPTIONAL_WEIGHTS = ".lm_head."


def _short(class_path: str) -> str:
    return class_path.rsplit(".", 1)[-1]


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return list(value) if isinstance(value, tuple) else value


def _is_spec(node: Any) -> bool:
    return isinstance(node, dict) and isinstance(node.get("class_path"), str)


def function_settings(spec: dict[str, Any]) -> dict[str, Any]:
    """An encoder spec's arguments that change the function its weights compute: every constructor argument, the
    class's defaults filled in where the spec leaves one out, less the injected and the ``tunable_args``."""
    cls = named_class(spec["class_path"])
    given = dict(spec.get("init_args") or {})
    if not (isinstance(cls, type) and issubclass(cls, Encoder)):
        return given
    settings: dict[str, Any] = {}
    for name, parameter in list(inspect.signature(cls.__init__).parameters.items())[1:]:
        if name in cls.injected_args or name in cls.tunable_args or parameter.kind is parameter.VAR_KEYWORD:
            continue
        if name in given or parameter.default is not parameter.empty:
            settings[name] = given.get(name, parameter.default)
    return settings


def first_difference(theirs: Any, ours: Any, name: str) -> str | None:
    """Where two encoder specs (or values within them) first differ, as ``name is X there and Y here``, in the
    constructors' argument order; None when they build the same function."""
    if _is_spec(theirs) and _is_spec(ours):
        their_class, our_class = named_class(theirs["class_path"]), named_class(ours["class_path"])
        if their_class is None or their_class is not our_class:
            return f"{name} is a {_short(theirs['class_path'])} there and a {_short(ours['class_path'])} here"
        theirs, ours = function_settings(theirs), function_settings(ours)
    theirs, ours = _plain(theirs), _plain(ours)
    if isinstance(theirs, dict) and isinstance(ours, dict):
        # a setting only one side names is one a release added or dropped: its default holds, so it is not compared
        pairs = [(key, theirs[key], ours[key]) for key in ours if key in theirs]
        return next((found for key, a, b in pairs if (found := first_difference(a, b, f"{name}.{key}"))), None)
    if isinstance(theirs, list) and isinstance(ours, list) and len(theirs) == len(ours):
        items = enumerate(zip(theirs, ours, strict=True))
        return next((found for i, (a, b) in items if (found := first_difference(a, b, f"{name}[{i}]"))), None)
    return None if theirs == ours else f"{name} is {theirs!r} there and {ours!r} here"


@dataclass
class Pretrained:
    """What ``init_from`` takes from a checkpoint: its tokenizer, its weights, and which encoder made them."""

    path: str
    tokenizer: Tokenizer
    state: dict[str, Tensor]
    encoder: dict[str, Any] | None  # the checkpoint's encoder spec, when its hyperparameters hold one
    task: str

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Pretrained:
        """Read a checkpoint (weights only) for transfer; a checkpoint of a model without text is refused."""
        checkpoint = load_checkpoint(path)
        section = nlpkit_section(checkpoint, path)
        tokenizer = checkpoint_tokenizer(section, path)
        if tokenizer is None:
            raise CheckpointError(f"init_from {path}: its model reads no text, so it has no encoder to start from")
        encoder = current_class_paths((checkpoint.get("hyper_parameters") or {}).get("encoder"))
        task = section.get("task") or _short(str(section.get("task_class")))
        spec = encoder if _is_spec(encoder) else None
        return cls(str(path), tokenizer, dict(checkpoint.get("state_dict") or {}), spec, task)

    def load_into(self, task: Task, prefixes: tuple[str, ...]) -> None:
        """Copy the weights under ``prefixes`` into the built ``task``.

        Refuses, in one line, another encoder kind, a setting of the encoder that changes its function (named),
        and a weight that is missing on either side or has another shape (another width, depth or vocabulary).
        """
        where = f"init_from {self.path} ({self.task})"
        ours = type(task.encoder)
        if self.encoder is not None and not names_class(self.encoder["class_path"], ours):
            raise CheckpointError(
                f"{where}: its encoder is a {_short(self.encoder['class_path'])}, this model's a {ours.__name__}; "
                "fine-tune the encoder kind that was pretrained"
            )
        if self.encoder is not None and isinstance(task.encoder, Encoder):
            difference = first_difference(self.encoder, task.encoder.spec(), "encoder")
            if difference is not None:
                raise CheckpointError(f"{where}: {difference}; build the encoder with the pretrained settings")
        own = task.state_dict()
        copied: dict[str, Tensor] = {}
        for prefix in prefixes:
            theirs = {key: value for key, value in self.state.items() if key.startswith(prefix)}
            if not theirs:
                continue
            mine = {key for key in own if key.startswith(prefix)}
            for key in sorted(mine ^ theirs.keys()):
                if OPTIONAL_WEIGHTS in key:
                    continue
                side = "this model lacks" if key in theirs else "the checkpoint lacks"
                raise CheckpointError(f"{where}: {side} weight {key}; the two encoders differ in shape or depth")
            for key in sorted(mine & theirs.keys()):
                if own[key].shape != theirs[key].shape:
                    raise CheckpointError(
                        f"{where}: weight {key} is {tuple(theirs[key].shape)} there and {tuple(own[key].shape)} "
                        "here; build the encoder with the pretrained sizes"
                    )
                copied[key] = theirs[key]
        if not any(key.startswith(prefixes[0]) for key in copied):
            raise CheckpointError(f"{where}: the checkpoint holds no {prefixes[0].rstrip('.')} weights to start from")
        task.load_state_dict(copied, strict=False)


def layer_groups(encoder: nn.Module) -> list[list[nn.Parameter]]:
    """The encoder's parameters in groups from the bottom (embeddings) to the top layer (see ``Encoder.layers``)."""
    named = dict(encoder.named_parameters())
    groups = [[named[name] for name in names if name in named] for names in encoder.layers()]  # type: ignore[operator]
    listed = {id(parameter) for group in groups for parameter in group}
    rest = [parameter for parameter in named.values() if id(parameter) not in listed]
    if rest:  # anything a subclass added without naming it trains with the top layer
        groups[-1] = groups[-1] + rest
    return [group for group in groups if group]


def learning_rate_scales(task: Task, layer_decay: float | None) -> dict[int, float]:
    """Per parameter id, the factor its learning rate is multiplied by: ``layer_decay ** depth_from_top`` for the
    encoder's layer groups (the task's own layers keep factor 1)."""
    if layer_decay is None or task.encoder is None:
        return {}
    if not 0 < layer_decay <= 1:
        raise ConfigError(f"layer_decay must be in (0, 1], got {layer_decay}")
    groups = layer_groups(task.encoder)
    return {
        id(parameter): layer_decay ** (len(groups) - depth) for depth, group in enumerate(groups) for parameter in group
    }


def unfreeze_top(task: Task, open_groups: int) -> None:
    """Train the encoder's top ``open_groups`` layer groups and freeze the others (a step of ULMFiT's gradual
    unfreezing); the task's own layers always train."""
    groups = layer_groups(task.encoder)  # type: ignore[arg-type]
    open_groups = min(len(groups), open_groups)
    for depth, group in enumerate(groups):
        for parameter in group:
            parameter.requires_grad_(depth >= len(groups) - open_groups)
