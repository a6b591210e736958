"""nlpkit plugin: text generation: causal language models over any causal encoder (``causal-lm``), an
encoder-decoder Transformer for paired text (``seq2seq``), one validated ``generate()`` for both (greedy,
sampling, beam search, streaming) and the ``nlpkit generate`` command."""

from __future__ import annotations

from nlpkit import Register, hookimpl


@hookimpl
def register_tasks(register: Register) -> None:
    """The causal language model."""
    register("causal-lm", "nlpkit_generation.task:CausalLMTask")
    register("seq2seq", "nlpkit_generation.seq2seq:Seq2SeqTask")


@hookimpl
def register_datasets(register: Register) -> None:
    """Plain text (optionally packed into fixed-length blocks) and paired source/target text."""
    register("text", "nlpkit_generation.data:LanguageModelingData")
    register("paired", "nlpkit_generation.paired:PairedData")


@hookimpl
def register_metrics(register: Register) -> None:
    """Perplexity over a whole epoch; corpus BLEU and chrF of generated text."""
    register("perplexity", "nlpkit_generation.task:perplexity")
    register("bleu", "nlpkit_generation.seq2seq:bleu")
    register("chrf", "nlpkit_generation.seq2seq:chrf")


@hookimpl
def register_commands(register: Register) -> None:
    """``nlpkit generate``."""
    from nlpkit_generation.command import GenerateCommand

    register("generate", GenerateCommand())
