"""``nlpkit new-plugin NAME``: write a ready plugin distribution (pyproject, hooks, tests, README)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from string import Template

from nlpkit.cli.commands import Command
from nlpkit.plugin.errors import ConfigError
from nlpkit.plugin.files import atomic_write_bytes

NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")

PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "nlpkit-$name"
version = "0.1.0"
description = "An nlpkit plugin: a gated classification head and an error-rate metric."
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["nlpkit>=$nlpkit_version"]

[project.optional-dependencies]
test = ["pytest>=8", "nlpkit-classification>=$nlpkit_version"]

# nlpkit finds the plugin through this entry point: no flag, no import by hand
[project.entry-points.nlpkit]
$name = "$package"

[tool.setuptools.packages.find]
include = ["$package*"]
"""

PLUGIN = '''\
"""nlpkit plugin $name: a gated head (``$name-gated``) and a metric (``$name-error-rate``).

The hooks register each by reference (``"module:name"``): nlpkit imports ``$package.layers`` (and torch with it)
only when a config first uses one, so ``nlpkit --help`` and ``nlpkit plugins`` stay instant.
"""

from __future__ import annotations

from nlpkit import Register, hookimpl


@hookimpl
def register_heads(register: Register) -> None:
    """The gated head."""
    register("$name-gated", "$package.layers:GatedHead")


@hookimpl
def register_metrics(register: Register) -> None:
    """The error rate."""
    register("$name-error-rate", "$package.layers:error_rate")
'''

LAYERS = '''\
"""What the $name plugin registers: a gated head and an error-rate metric."""

from __future__ import annotations

import torch
from nlpkit import Head
from torch import Tensor, nn
from torchmetrics import Metric


class GatedHead(Head):
    """A linear head on features scaled by a learned sigmoid gate."""

    def __init__(self, input_dim: int, num_outputs: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.gate = nn.Linear(input_dim, input_dim)
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(input_dim, num_outputs))

    def forward(self, features: Tensor) -> Tensor:
        """Logits ``(..., num_outputs)`` of gated features ``(..., input_dim)``."""
        return self.out(features * self.gate(features).sigmoid())


class ErrorRate(Metric):
    """The share of wrong predictions."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("wrong", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, predictions: Tensor, targets: Tensor) -> None:
        """Count the wrong predictions of a batch."""
        self.wrong += (predictions != targets).sum()
        self.total += targets.numel()

    def compute(self) -> Tensor:
        """Wrong over total (0 before any update)."""
        return self.wrong.float() / self.total.clamp_min(1)


def error_rate(**task_arguments: object) -> ErrorRate:
    """The metric factory; tasks pass their own keyword arguments (classification: ``num_classes``)."""
    return ErrorRate()

'''

TESTS = '''\
"""The plugin loads through nlpkit's entry points, its pieces work, and a real Trainer fits with them."""

from __future__ import annotations

import nlpkit
import pytest
import torch
from nlpkit.testing import fit_tiny, isolated_plugins, write_sentiment_files

from $package.layers import ErrorRate, GatedHead


def test_the_plugin_registers_its_head_and_metric() -> None:
    with isolated_plugins("$package") as plugins:
        assert plugins.info["$package"].status == "loaded", plugins.info["$package"].error
        assert nlpkit.registry("heads")["$name-gated"] is GatedHead
        assert nlpkit.registry("heads").entry("$name-gated").plugin == "$package"
        assert "$name-error-rate" in nlpkit.registry("metrics")


def test_the_head_maps_features_to_logits() -> None:
    head = GatedHead(input_dim=8, num_outputs=3)
    assert head(torch.randn(4, 5, 8)).shape == (4, 5, 3)


def test_the_error_rate_counts_wrong_predictions() -> None:
    metric = ErrorRate()
    metric.update(torch.tensor([0, 1, 2, 1]), torch.tensor([0, 2, 2, 0]))
    metric.update(torch.tensor([1]), torch.tensor([1]))
    assert metric.compute().item() == pytest.approx(2 / 5)


def test_a_classifier_fits_with_the_head_and_metric(tmp_path) -> None:
    from nlpkit import LSTMEncoder, TokenizerOptions
    from nlpkit_classification.data import ClassificationData
    from nlpkit_classification.task import TextClassificationTask

    files = write_sentiment_files(tmp_path, train=200, val=50)
    with isolated_plugins("$package", "nlpkit_classification"):
        task = TextClassificationTask(
            encoder=lambda vocab: LSTMEncoder(vocab, embedding_dim=16, hidden_size=16),
            head=GatedHead,
            metrics=["accuracy", "$name-error-rate"],
        )
        data = ClassificationData(
            train_path=str(files["train"]), val_path=str(files["val"]), tokenizer=TokenizerOptions(vocab_size=100)
        )
        trainer = fit_tiny(task, data, max_steps=10, limit_val_batches=2)
        result = trainer.validate(task, datamodule=data, verbose=False)[0]
    assert 0.0 <= result["val/$name-error-rate"] <= 1.0
    assert result["val/$name-error-rate"] + result["val/accuracy"] == pytest.approx(1.0)
'''

README = """\
# nlpkit-$name

An [nlpkit](https://pypi.org/project/nlpkit/) plugin, written by `nlpkit new-plugin $name`. It registers:

- the head `$name-gated` (`$package.layers.GatedHead`): a linear head on gated features;
- the metric `$name-error-rate` (`$package.layers.ErrorRate`): the share of wrong predictions.

## Use

```console
pip install -e .
nlpkit plugins                    # '$name' is listed, loaded, with what it registered
nlpkit fit --config sentiment.yaml --model.head $name-gated --model.metrics '[accuracy, $name-error-rate]'
```

## Test

```console
pip install -e ".[test]"
pytest
```

The tests use `nlpkit.testing`: `isolated_plugins(...)` loads exactly the given plugins (as entry points do),
`write_sentiment_files(...)` writes a tiny corpus, and `fit_tiny(task, data)` trains a few real Lightning steps.
Change the hooks in `$package/__init__.py` to register your own encoders, heads, metrics, datasets, tasks and
commands; the hook reference lists them all. Register what imports torch by reference (`"$package.layers:GatedHead"`),
so listing plugins and commands imports none of it.
"""


def write_plugin(name: str, directory: Path) -> list[Path]:
    """Write the plugin distribution ``nlpkit-NAME`` into ``directory`` (which must not exist or be empty)."""
    if not NAME.fullmatch(name):
        raise ConfigError(f"plugin name '{name}' must be lower-case letters and digits, words joined by '-'")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ConfigError(f"{directory} already exists and is not empty")
    from nlpkit.plugin.version import __version__

    package = "nlpkit_" + name.replace("-", "_")
    values = {"name": name, "package": package, "nlpkit_version": __version__}
    files = {
        "pyproject.toml": PYPROJECT,
        f"{package}/__init__.py": PLUGIN,
        f"{package}/layers.py": LAYERS,
        f"tests/test_{package[len('nlpkit_') :]}.py": TESTS,
        "README.md": README,
    }
    written = []
    try:
        for relative, template in files.items():
            path = directory / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, Template(template).substitute(values).encode("utf-8"))
            written.append(path)
    except OSError as error:
        raise ConfigError(f"{directory}: cannot write the plugin there ({error.strerror or error})") from error
    return written


class NewPluginCommand(Command):
    """``nlpkit new-plugin NAME``: a plugin distribution ready to ``pip install -e`` and test."""

    help = "write a new plugin distribution (pyproject, hooks, tests, README)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The plugin's name and where to write it."""
        parser.add_argument("name", help="the plugin's name: lower-case words joined by '-' (e.g. sarcasm)")
        parser.add_argument("--directory", help="where to write it (default: ./nlpkit-NAME)")

    def run(self, args: argparse.Namespace) -> int:
        """Write the files and say what to do next."""
        directory = Path(args.directory or f"nlpkit-{args.name}")
        for path in write_plugin(args.name, directory):
            print(f"wrote {path}")
        print(f"next: pip install -e '{directory}[test]' && pytest {directory / 'tests'}")
        return 0
