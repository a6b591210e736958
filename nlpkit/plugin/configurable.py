"""Modules that remember the arguments they were built with, so a checkpoint can rebuild them."""

from __future__ import annotations

import importlib
import inspect
from dataclasses import asdict, is_dataclass
from typing import Any, ClassVar


def class_path(cls: type) -> str:
    """The import path of a class (``module.QualifiedName``), as configs and checkpoints name it."""
    return f"{cls.__module__}.{cls.__qualname__}"


#: the modules classes lived in before the core was layered into folders; checkpoints and exports written then name
#: their encoders and heads by these paths
MOVED_MODULES = {"nlpkit.encoders.": "nlpkit.models.encoders.", "nlpkit.heads.": "nlpkit.models.heads."}


def current_class_paths(node: Any) -> Any:
    """Plain config data (hyperparameters) with the class paths of classes that have moved rewritten to where
    they live now, so a checkpoint of an earlier release still loads."""
    if isinstance(node, list):
        return [current_class_paths(item) for item in node]
    if not isinstance(node, dict):
        return node
    updated = {}
    for key, value in node.items():
        if key in ("class_path", "_class_path") and isinstance(value, str):
            old = next((prefix for prefix in MOVED_MODULES if value.startswith(prefix)), None)
            updated[key] = MOVED_MODULES[old] + value[len(old) :] if old else value
        else:
            updated[key] = current_class_paths(value)
    return updated


def names_class(path: str, cls: type) -> bool:
    """Whether the class path ``path`` names ``cls``: its defining module's path, or a shorter one it is published
    under (jsonargparse writes ``nlpkit.LSTMEncoder`` for a class ``nlpkit`` exports)."""
    return path == class_path(cls) or named_class(path) is cls


def named_class(path: str) -> Any:
    """What the import path ``module.name`` names (None when the module or the name is not there)."""
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None


class Configurable:
    """Mixin recording a module's constructor arguments in ``init_args``.

    ``injected_args`` names the leading arguments that the owning task supplies at build time (an encoder's
    ``vocab_size``, a head's ``input_dim``); they are left out of :meth:`spec`, which is the jsonargparse
    ``{"class_path", "init_args"}`` form that ``Callable[..., Module]`` arguments accept.
    """

    injected_args: ClassVar[tuple[str, ...]] = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        obj = super().__new__(cls)
        try:
            bound = inspect.signature(cls.__init__).bind(obj, *args, **kwargs)
        except TypeError:
            if args or kwargs:
                raise
            return obj  # copy.deepcopy and pickle make the object bare, then restore its __dict__ (init_args too)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        arguments.pop(next(iter(arguments)))  # self
        for name, parameter in inspect.signature(cls.__init__).parameters.items():
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                arguments.update(arguments.pop(name))
        # nn.Module.__setattr__ is not ready before __init__, so write the instance dict directly
        obj.__dict__["init_args"] = arguments
        return obj

    def spec(self) -> dict[str, Any]:
        """The class path and the non-injected constructor arguments, as plain data (options given as dataclasses
        as dicts)."""
        cls = type(self)
        init_args = {
            k: asdict(v) if is_dataclass(v) and not isinstance(v, type) else v
            for k, v in self.init_args.items()  # type: ignore[attr-defined]
            if k not in self.injected_args
        }
        return {"class_path": class_path(cls), "init_args": init_args}
