"""Denoising pretraining of the encoder-decoder (BART): rebuild a text from a corrupted copy of it."""

from __future__ import annotations

import re
from itertools import chain
from typing import Any

from nlpkit_generation.seq2seq import Seq2SeqTask

from nlpkit import ConfigError, Record, StepOutput
from nlpkit_pretraining.noising import infill, permute

#: where a text splits into sentences: after . ! ? and a space, or after a full-width 。！？
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])")


class DenoisingTask(Seq2SeqTask):
    """BART pretraining of ``seq2seq``'s Transformer: the source is the text with its sentences shuffled and spans
    of Poisson(``poisson_lambda``) tokens, about ``mask_ratio`` of them, each replaced by one ``<mask>``; the target
    is the text itself. Each batch is corrupted anew.

    Train on plain text (one text per line: the ``text`` data module without ``block_size``), then fine-tune a
    translation or summarisation model with ``seq2seq`` and ``init_from``: the encoder and the decoder carry over
    (build it with the same sizes). ``predict`` rebuilds the texts it is given (``<mask>`` tokens filled in).

    :param mask_ratio: fraction of each text's tokens inside masked spans
    :param poisson_lambda: mean span length
    :param permute_sentences: shuffle the sentences of the source

    The other arguments are those of ``seq2seq``; no metrics by default (validation reports the loss).
    """

    def __init__(
        self,
        mask_ratio: float = 0.3,
        poisson_lambda: float = 3.0,
        permute_sentences: bool = True,
        metrics: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(metrics=metrics or [], **kwargs)
        if not 0 <= mask_ratio < 1 or poisson_lambda < 0:
            raise ConfigError("mask_ratio must be in [0, 1) and poisson_lambda >= 0")
        self.mask_ratio = mask_ratio
        self.poisson_lambda = poisson_lambda
        self.permute_sentences = permute_sentences

    def step(self, batch: dict[str, Any]) -> StepOutput:
        """The loss; rebuilt texts only when metrics score them (none by default: generating them is slow)."""
        if self.metric_names:
            return super().step(batch)
        return StepOutput(self.loss(batch), [], [], len(batch["target"]))

    def input_fields(self, item: Any) -> dict[str, Any]:
        """A text to rebuild becomes ``{"text": item}``."""
        return {"text": item} if isinstance(item, str) else super().input_fields(item)

    def encode(self, fields: dict[str, Any], labeled: bool, record: Record | None = None) -> dict[str, Any]:
        """A text to learn from: its sentences as ids (cut to ``max_length``); one to rebuild: its source ids."""
        text = fields.get("text", fields.get("source"))
        if not labeled:
            return super().encode({"source": text}, labeled=False)
        room = min(self.hparams.max_length, self.tokenizer.max_length) - 2  # type: ignore[union-attr]
        sentences = [ids for ids in self.tokenizer.encode(SENTENCE_END.split(text), max_length=10**9) if ids]  # type: ignore[union-attr]
        kept: list[list[int]] = []
        for ids in sentences:
            if room <= 0:
                break
            kept.append(ids[:room])
            room -= len(kept[-1])
        text_ids = list(chain.from_iterable(kept))
        reference = self.tokenizer.decode([text_ids])[0]  # type: ignore[union-attr]
        return {"sentences": kept, "reference": reference, "length": 2 * (len(text_ids) + 2)}

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        """Sources corrupted afresh and targets (``<s> text </s>``) for texts to learn from; else sources only."""
        if "sentences" not in examples[0]:
            if "tokens" in examples[0]:
                raise ConfigError("denoising reads one text per example: unset data.block_size")
            return super().collate(examples)
        pairs = []
        bos, eos = self.tokenizer.bos_id, self.tokenizer.eos_id  # type: ignore[union-attr]
        for example in examples:
            sentences = example["sentences"]
            shuffled = permute(sentences, None) if self.permute_sentences else sentences
            noised = list(chain.from_iterable(shuffled))
            source = infill(noised, self.mask_ratio, self.poisson_lambda, self.tokenizer.mask_id, None)  # type: ignore[union-attr]
            pairs.append(
                {
                    "source": [bos, *source, eos],
                    "target": [bos, *chain.from_iterable(sentences), eos],
                    "reference": example["reference"],
                    "index": example.get("index", 0),
                }
            )
        return super().collate(pairs)
