"""nlpkit plugin: text generation: causal language models over any causal encoder (``causal-lm``), one validated
``generate()`` (greedy, sampling, beam search, streaming) and the ``nlpkit generate`` command."""

from __future__ import annotations

from nlpkit import hookimpl
from nlpkit.hookspecs import Register


@hookimpl
def register_tasks(register: Register) -> None:
    """The causal language model."""
    from nlpkit_generation.task import CausalLMTask

    register("causal-lm", CausalLMTask)


@hookimpl
def register_datasets(register: Register) -> None:
    """Plain text, optionally packed into fixed-length blocks."""
    from nlpkit_generation.data import LanguageModelingData

    register("text", LanguageModelingData)


@hookimpl
def register_metrics(register: Register) -> None:
    """Perplexity over a whole epoch."""
    from nlpkit_generation.task import perplexity

    register("perplexity", perplexity)


@hookimpl
def register_commands(register: Register) -> None:
    """``nlpkit generate``."""
    from nlpkit_generation.command import GenerateCommand

    register("generate", GenerateCommand())
