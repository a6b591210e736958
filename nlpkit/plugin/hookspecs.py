"""The plugin contract: the hooks a plugin may implement, and the markers to declare them.

Every hook receives a ``register`` callable: ``register(name, obj)``, where ``obj`` may also be a
``"module:attr"`` reference that is imported when the name is first used (so ``nlpkit --help`` and ``nlpkit
plugins`` import no model code). The core records which plugin registered each name, so conflicts and errors
can name the plugin. Hook arguments are never renamed or removed; new behaviour gets a new hook.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

import pluggy

if TYPE_CHECKING:
    from torchmetrics import Metric

    from nlpkit import Command, Encoder, Head, Task, TextDataModule

PROJECT_NAME = "nlpkit"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Decorate a plugin's hook implementations with this marker.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

Registered = TypeVar("Registered", contravariant=True)


class Register(Protocol[Registered]):
    """``register(name, obj)``: what every hook receives; ``obj`` is what the hook's kind promises (an encoder
    class for ``register_encoders``, and so on), or a ``"module:attr"`` reference to it, imported and checked
    when the name is first used. The core records the plugin that registered each name."""

    def __call__(self, name: str, obj: Registered | str, /) -> None:
        """Register ``obj`` (or the object a ``"module:attr"`` reference names) under ``name``."""


@hookspec
def register_encoders(register: Register[type[Encoder]]) -> None:
    """Register sequence encoders: subclasses of :class:`nlpkit.Encoder`.

    :param register: call ``register(name, encoder_class)``; ``name`` is what a config writes as
        ``encoder: NAME``. The class takes ``vocab_size`` as its first argument.

    *Since 0.1.*
    """


@hookspec
def register_heads(register: Register[type[Head]]) -> None:
    """Register output heads: subclasses of :class:`nlpkit.Head`.

    :param register: call ``register(name, head_class)``; the class takes ``input_dim`` and
        ``num_outputs`` as its first two arguments and maps features ``(..., input_dim)`` to
        logits ``(..., num_outputs)``. A family of heads with another interface names the arguments
        its task injects in ``injected_args`` (a link scorer that takes ``num_relations``, say); a task
        accepts only the heads of the family it knows.

    *Since 0.1.*
    """


@hookspec
def register_metrics(register: Register[Callable[..., Metric]]) -> None:
    """Register metrics: callables returning a ``torchmetrics.Metric``.

    :param register: call ``register(name, factory)``; tasks build the metric with keyword arguments
        that depend on the task (classification passes ``num_classes``) and update it with
        ``(predictions, targets)``.

    *Since 0.1.*
    """


@hookspec
def register_datasets(register: Register[type[TextDataModule]]) -> None:
    """Register data modules: subclasses of :class:`nlpkit.TextDataModule`.

    :param register: call ``register(name, datamodule_class)``; ``name`` is what a config writes
        as ``data: NAME``.

    *Since 0.1.*
    """


@hookspec
def register_tasks(register: Register[type[Task]]) -> None:
    """Register tasks: subclasses of :class:`nlpkit.Task` (a LightningModule).

    :param register: call ``register(name, task_class)``; ``name`` is what a config writes as
        ``model: NAME``.

    *Since 0.1.*
    """


@hookspec
def register_commands(register: Register[Command]) -> None:
    """Register extra ``nlpkit`` subcommands beside fit/validate/test/predict.

    :param register: call ``register(name, command)`` with an :class:`nlpkit.Command` instance;
        ``nlpkit NAME ...`` then runs it.

    *Since 0.1.*
    """


@hookspec
def register_word_features(register: Register[Callable[[str], list[str]]]) -> None:
    """Register word-feature templates: what a tagging task reads of every word besides its pieces, as
    sklearn-crfsuite's feature functions do.

    :param register: call ``register(name, template)``; ``template(word)`` returns the word's values as a list
        of strings (none, one or several: ``["ing", "ng", "g"]``), each hashed with the template's name and the
        word's offset into a learned embedding. A template must be a pure function of the word.

    *Since 0.1.*
    """
