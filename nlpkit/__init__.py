"""nlpkit: sequence models as Lightning modules, SentencePiece tokenization, and task plugins through pluggy.

Names are imported lazily, so ``import nlpkit`` stays fast: Lightning loads on first use of a name that needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "hookimpl": "nlpkit.hookspecs",
    "load": "nlpkit.api",
    "Task": "nlpkit.task",
    "StepOutput": "nlpkit.task",
    "Tokenizer": "nlpkit.tokenization",
    "TokenizerOptions": "nlpkit.tokenization",
    "Encoder": "nlpkit.encoders.base",
    "Head": "nlpkit.heads",
    "TextDataModule": "nlpkit.data.module",
    "Command": "nlpkit.commands",
    "registry": "nlpkit.plugins",
    "get_plugins": "nlpkit.plugins",
    "NlpkitError": "nlpkit.errors",
}

__all__ = [
    "Command",
    "Encoder",
    "Head",
    "NlpkitError",
    "StepOutput",
    "Task",
    "TextDataModule",
    "Tokenizer",
    "TokenizerOptions",
    "__version__",
    "get_plugins",
    "hookimpl",
    "load",
    "registry",
]

if TYPE_CHECKING:
    from nlpkit.api import load
    from nlpkit.commands import Command
    from nlpkit.data.module import TextDataModule
    from nlpkit.encoders.base import Encoder
    from nlpkit.errors import NlpkitError
    from nlpkit.heads import Head
    from nlpkit.hookspecs import hookimpl
    from nlpkit.plugins import get_plugins, registry
    from nlpkit.task import StepOutput, Task
    from nlpkit.tokenization import Tokenizer, TokenizerOptions


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'nlpkit' has no attribute '{name}'")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
