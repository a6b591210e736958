"""nlpkit plugin: self-supervised pretraining and what it enables: masked language modelling (``masked-lm``),
BART denoising of the encoder-decoder (``denoising``), contrastive sentence embeddings (``contrastive``, with
``nlpkit embed``), and zero-shot classification (``zero-shot``)."""

from __future__ import annotations

from nlpkit import Register, hookimpl


@hookimpl
def register_tasks(register: Register) -> None:
    """The pretraining tasks and zero-shot classification."""
    register("masked-lm", "nlpkit_pretraining.masked_lm:MaskedLMTask")
    register("denoising", "nlpkit_pretraining.denoising:DenoisingTask")
    register("contrastive", "nlpkit_pretraining.contrastive:ContrastiveTask")
    register("zero-shot", "nlpkit_pretraining.zero_shot:ZeroShotTask")


@hookimpl
def register_datasets(register: Register) -> None:
    """Texts and pairs of texts for contrastive training."""
    register("sentence-pairs", "nlpkit_pretraining.pairs:SentencePairsData")


@hookimpl
def register_metrics(register: Register) -> None:
    """Top-1 accuracy of masked tokens and of sentence pairs."""
    register("top1-accuracy", "nlpkit_pretraining.embedding:top1_accuracy")


@hookimpl
def register_commands(register: Register) -> None:
    """``nlpkit embed``."""
    from nlpkit_pretraining.command import EmbedCommand

    register("embed", EmbedCommand())
