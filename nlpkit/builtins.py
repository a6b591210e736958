"""The core's own plugin: registers the encoders, heads, metrics, base data module and commands.

It is loaded through the ``nlpkit`` entry point ``core``, exactly like any other plugin.
"""

from __future__ import annotations

from nlpkit.cli import commands
from nlpkit.plugin.hookspecs import Register, hookimpl

ENCODERS = "nlpkit.models.encoders"


@hookimpl
def register_encoders(register: Register) -> None:
    """The core's sequence encoders (by reference: each module is imported when its name is first used)."""
    register("rnn", f"{ENCODERS}.rnn:ElmanRNNEncoder")
    register("lstm", f"{ENCODERS}.rnn:LSTMEncoder")
    register("gru", f"{ENCODERS}.rnn:GRUEncoder")
    register("transformer", f"{ENCODERS}.transformer:TransformerEncoder")
    register("causal-transformer", f"{ENCODERS}.transformer:CausalTransformerEncoder")
    register("cnn", f"{ENCODERS}.cnn:CNNEncoder")
    register("pretrained", f"{ENCODERS}.pretrained:PretrainedEncoder")
    register("ngram", f"{ENCODERS}.ngram:NGramEncoder")
    register("concat", f"{ENCODERS}.concat:ConcatEncoder")


@hookimpl
def register_heads(register: Register) -> None:
    """Linear and MLP heads."""
    register("linear", "nlpkit.models.heads:LinearHead")
    register("mlp", "nlpkit.models.heads:MLPHead")


@hookimpl
def register_metrics(register: Register) -> None:
    """Accuracy and macro-F1 over class ids."""
    register("accuracy", "nlpkit.training.metrics:accuracy")
    register("macro-f1", "nlpkit.training.metrics:macro_f1")


@hookimpl
def register_datasets(register: Register) -> None:
    """The generic local-files data module."""
    register("files", "nlpkit.data.module:TextDataModule")


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
