"""nlpkit plugin: text generation: causal language models over any causal encoder (``causal-lm``), an
encoder-decoder Transformer for paired text (``seq2seq``), one validated ``generate()`` for both (greedy,
sampling, beam search, streaming) and the ``nlpkit generate`` command."""

from __future__ import annotations

from nlpkit import Register, hookimpl


@hookimpl
def register_tasks(register: Register) -> None:
    """The causal language model."""
    from nlpkit_generation.seq2seq import Seq2SeqTask
    from nlpkit_generation.task import CausalLMTask

    register("causal-lm", CausalLMTask)
    register("seq2seq", Seq2SeqTask)


@hookimpl
def register_datasets(register: Register) -> None:
    """Plain text (optionally packed into fixed-length blocks) and paired source/target text."""
    from nlpkit_generation.data import LanguageModelingData
    from nlpkit_generation.paired import PairedData

    register("text", LanguageModelingData)
    register("paired", PairedData)


@hookimpl
def register_metrics(register: Register) -> None:
    """Perplexity over a whole epoch; corpus BLEU and chrF of generated text."""
    from nlpkit_generation.seq2seq import bleu, chrf
    from nlpkit_generation.task import perplexity

    register("perplexity", perplexity)
    register("bleu", bleu)
    register("chrf", chrf)


@hookimpl
def register_commands(register: Register) -> None:
    """``nlpkit generate``."""
    from nlpkit_generation.command import GenerateCommand

    register("generate", GenerateCommand())
