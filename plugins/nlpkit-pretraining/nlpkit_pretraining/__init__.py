"""nlpkit plugin: self-supervised pretraining and what it enables: masked language modelling (``masked-lm``),
BART denoising of the encoder-decoder (``denoising``), contrastive sentence embeddings (``contrastive``, with
``nlpkit embed``), and zero-shot classification (``zero-shot``)."""

from __future__ import annotations

from nlpkit import Register, hookimpl


@hookimpl
def register_tasks(register: Register) -> None:
    """The pretraining tasks and zero-shot classification."""
    from nlpkit_pretraining.contrastive import ContrastiveTask
    from nlpkit_pretraining.denoising import DenoisingTask
    from nlpkit_pretraining.masked_lm import MaskedLMTask
    from nlpkit_pretraining.zero_shot import ZeroShotTask

    register("masked-lm", MaskedLMTask)
    register("denoising", DenoisingTask)
    register("contrastive", ContrastiveTask)
    register("zero-shot", ZeroShotTask)


@hookimpl
def register_datasets(register: Register) -> None:
    """Texts and pairs of texts for contrastive training."""
    from nlpkit_pretraining.pairs import SentencePairsData

    register("sentence-pairs", SentencePairsData)


@hookimpl
def register_metrics(register: Register) -> None:
    """Top-1 accuracy of masked tokens and of sentence pairs."""
    from nlpkit_pretraining.embedding import top1_accuracy

    register("top1-accuracy", top1_accuracy)


@hookimpl
def register_commands(register: Register) -> None:
    """``nlpkit embed``."""
    from nlpkit_pretraining.command import EmbedCommand

    register("embed", EmbedCommand())
