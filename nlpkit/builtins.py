"""The core's own plugin: registers the encoders, heads, metrics, base data module and commands.

It is loaded through the ``nlpkit`` entry point ``core``, exactly like any other plugin.
"""

from __future__ import annotations

from nlpkit.cli import commands
from nlpkit.data.module import TextDataModule
from nlpkit.models.heads import LinearHead, MLPHead
from nlpkit.plugin.hookspecs import Register, hookimpl
from nlpkit.training import metrics


@hookimpl
def register_encoders(register: Register) -> None:
    """The core's sequence encoders."""
    from nlpkit.models.encoders.cnn import CNNEncoder
    from nlpkit.models.encoders.concat import ConcatEncoder
    from nlpkit.models.encoders.ngram import NGramEncoder
    from nlpkit.models.encoders.pretrained import PretrainedEncoder
    from nlpkit.models.encoders.rnn import ElmanRNNEncoder, GRUEncoder, LSTMEncoder
    from nlpkit.models.encoders.transformer import CausalTransformerEncoder, TransformerEncoder

    register("rnn", ElmanRNNEncoder)
    register("lstm", LSTMEncoder)
    register("gru", GRUEncoder)
    register("transformer", TransformerEncoder)
    register("causal-transformer", CausalTransformerEncoder)
    register("cnn", CNNEncoder)
    register("pretrained", PretrainedEncoder)
    register("ngram", NGramEncoder)
    register("concat", ConcatEncoder)


@hookimpl
def register_heads(register: Register) -> None:
    """Linear and MLP heads."""
    register("linear", LinearHead)
    register("mlp", MLPHead)


@hookimpl
def register_metrics(register: Register) -> None:
    """Accuracy and macro-F1 over class ids."""
    register("accuracy", metrics.accuracy)
    register("macro-f1", metrics.macro_f1)


@hookimpl
def register_datasets(register: Register) -> None:
    """The generic local-files data module."""
    register("files", TextDataModule)


@hookimpl
def register_commands(register: Register) -> None:
    """``nlpkit plugins``, ``nlpkit new-plugin``, ``nlpkit export``, ``nlpkit serve`` and ``nlpkit env``."""
    from nlpkit.cli.deployment import ExportCommand, ServeCommand
    from nlpkit.cli.environment import EnvCommand
    from nlpkit.cli.scaffold import NewPluginCommand

    register("plugins", commands.PluginsCommand())
    register("new-plugin", NewPluginCommand())
    register("export", ExportCommand())
    register("serve", ServeCommand())
    register("env", EnvCommand())
