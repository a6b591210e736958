"""nlpkit: sequence models as Lightning modules, SentencePiece tokenization, and task plugins through pluggy.

This module is the published surface: what a user and a plugin may import (with :mod:`nlpkit.testing` for a
plugin's tests). Everything else is private to nlpkit and may change between releases. Names are imported lazily,
so ``import nlpkit`` stays fast: Lightning loads on first use of a name that needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nlpkit.plugin.version import __version__

#: published name -> the module that defines it, by layer
_EXPORTS = {
    # the plugin contract
    "hookimpl": "nlpkit.plugin.hookspecs",
    "Register": "nlpkit.plugin.hookspecs",
    "registry": "nlpkit.plugin.loader",
    "get_plugins": "nlpkit.plugin.loader",
    "NlpkitError": "nlpkit.plugin.errors",
    "ConfigError": "nlpkit.plugin.errors",
    "DataError": "nlpkit.plugin.errors",
    "CheckpointError": "nlpkit.plugin.errors",
    "ExportError": "nlpkit.plugin.errors",
    "PluginError": "nlpkit.plugin.errors",
    "TrainingError": "nlpkit.plugin.errors",
    "atomic_write_bytes": "nlpkit.plugin.files",
    # models
    "Tokenizer": "nlpkit.models.tokenizers.base",
    "TokenizerOptions": "nlpkit.models.tokenizers.base",
    "Encoder": "nlpkit.models.encoders.base",
    "EncoderFactory": "nlpkit.models.encoders.base",
    "LanguageModelHeadMixin": "nlpkit.models.encoders.base",
    "head_cross_entropy": "nlpkit.models.encoders.head_loss",
    "packed_inference": "nlpkit.models.encoders.linear",
    "PretrainedEncoder": "nlpkit.models.encoders.pretrained",
    "TransformerEncoder": "nlpkit.models.encoders.transformer",
    "CausalTransformerEncoder": "nlpkit.models.encoders.transformer",
    "PositionKind": "nlpkit.models.encoders.transformer",
    "LSTMEncoder": "nlpkit.models.encoders.rnn",
    "GRUEncoder": "nlpkit.models.encoders.rnn",
    "ElmanRNNEncoder": "nlpkit.models.encoders.rnn",
    "CNNEncoder": "nlpkit.models.encoders.cnn",
    "NGramEncoder": "nlpkit.models.encoders.ngram",
    "ConcatEncoder": "nlpkit.models.encoders.concat",
    "is_model_folder": "nlpkit.models.encoders.pretrained",
    "Head": "nlpkit.models.heads",
    "HeadFactory": "nlpkit.models.heads",
    "LinearHead": "nlpkit.models.heads",
    "Pool": "nlpkit.models.pooling",
    "Pooling": "nlpkit.models.pooling",
    "Seq2SeqTransformer": "nlpkit.models.seq2seq",
    "Seq2SeqState": "nlpkit.models.seq2seq",
    "WordVectors": "nlpkit.models.vectors",
    "WordVectorsOptions": "nlpkit.models.vectors",
    "vector_row": "nlpkit.models.vectors",
    # data
    "Record": "nlpkit.data.readers",
    "read_records": "nlpkit.data.readers",
    "detect_format": "nlpkit.data.readers",
    "numbered_lines": "nlpkit.data.readers",
    "pad": "nlpkit.models.padding",
    "unpad": "nlpkit.models.padding",
    "TextDataModule": "nlpkit.data.module",
    # training
    "Task": "nlpkit.training.task",
    "StepOutput": "nlpkit.training.task",
    # deployment
    "load": "nlpkit.deploy.loading",
    # the command line
    "Command": "nlpkit.cli.commands",
    "CheckpointCommand": "nlpkit.cli.commands",
}

__all__ = [
    "CNNEncoder",
    "CausalTransformerEncoder",
    "CheckpointCommand",
    "CheckpointError",
    "Command",
    "ConcatEncoder",
    "ConfigError",
    "DataError",
    "ElmanRNNEncoder",
    "Encoder",
    "EncoderFactory",
    "ExportError",
    "GRUEncoder",
    "Head",
    "HeadFactory",
    "LSTMEncoder",
    "LanguageModelHeadMixin",
    "LinearHead",
    "NGramEncoder",
    "NlpkitError",
    "PluginError",
    "Pool",
    "Pooling",
    "PositionKind",
    "PretrainedEncoder",
    "Record",
    "Register",
    "Seq2SeqState",
    "Seq2SeqTransformer",
    "StepOutput",
    "Task",
    "TextDataModule",
    "Tokenizer",
    "TokenizerOptions",
    "TrainingError",
    "TransformerEncoder",
    "WordVectors",
    "WordVectorsOptions",
    "__version__",
    "atomic_write_bytes",
    "detect_format",
    "get_plugins",
    "head_cross_entropy",
    "hookimpl",
    "is_model_folder",
    "load",
    "numbered_lines",
    "packed_inference",
    "pad",
    "read_records",
    "registry",
    "unpad",
    "vector_row",
]

if TYPE_CHECKING:
    from nlpkit.cli.commands import CheckpointCommand, Command
    from nlpkit.data.module import TextDataModule
    from nlpkit.data.readers import Record, detect_format, numbered_lines, read_records
    from nlpkit.deploy.loading import load
    from nlpkit.models.encoders.base import Encoder, EncoderFactory, LanguageModelHeadMixin
    from nlpkit.models.encoders.cnn import CNNEncoder
    from nlpkit.models.encoders.concat import ConcatEncoder
    from nlpkit.models.encoders.head_loss import head_cross_entropy
    from nlpkit.models.encoders.linear import packed_inference
    from nlpkit.models.encoders.ngram import NGramEncoder
    from nlpkit.models.encoders.pretrained import PretrainedEncoder, is_model_folder
    from nlpkit.models.encoders.rnn import ElmanRNNEncoder, GRUEncoder, LSTMEncoder
    from nlpkit.models.encoders.transformer import CausalTransformerEncoder, PositionKind, TransformerEncoder
    from nlpkit.models.heads import Head, HeadFactory, LinearHead
    from nlpkit.models.padding import pad, unpad
    from nlpkit.models.pooling import Pool, Pooling
    from nlpkit.models.seq2seq import Seq2SeqState, Seq2SeqTransformer
    from nlpkit.models.tokenizers import Tokenizer, TokenizerOptions
    from nlpkit.models.vectors import WordVectors, WordVectorsOptions, vector_row
    from nlpkit.plugin.errors import (
        CheckpointError,
        ConfigError,
        DataError,
        ExportError,
        NlpkitError,
        PluginError,
        TrainingError,
    )
    from nlpkit.plugin.files import atomic_write_bytes
    from nlpkit.plugin.hookspecs import Register, hookimpl
    from nlpkit.plugin.loader import get_plugins, registry
    from nlpkit.training.task import StepOutput, Task


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'nlpkit' has no attribute '{name}'")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
