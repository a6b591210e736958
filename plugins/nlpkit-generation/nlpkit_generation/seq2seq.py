"""Sequence-to-sequence: a transformer encoder-decoder with a shared vocabulary, cached incremental decoding,
label-smoothed training, and BLEU/chrF of translations made by the shared generate().
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.text import BLEUScore, CHRFScore

from nlpkit import (
    ExportError,
    PositionKind,
    Record,
    Seq2SeqState,
    Seq2SeqTransformer,
    StepOutput,
    TransformerEncoder,
    pad,
    unpad,
)
from nlpkit_generation.decoding import GenerationConfig
from nlpkit_generation.task import IGNORE, GenerativeTask


def bleu() -> Metric:
    """Corpus BLEU (4-grams) of translations against their references."""
    return BLEUScore()


def chrf() -> Metric:
    """Corpus chrF (character n-gram F-score) of translations against their references."""
    return CHRFScore()


class Seq2SeqTask(GenerativeTask):
    """Translation-style generation: a :class:`Seq2SeqTransformer` trained with label-smoothed cross-entropy.

    Validation and test report BLEU and chrF of translations made with the ``generation`` settings (greedy by
    default; validation with ``validation_generation`` where given); predictions are ``{"text": translation,
    "score": ...}``. Source and target share the tokenizer.

    :param d_model: width of the encoder and decoder
    :param num_heads: attention heads
    :param num_encoder_layers: source encoder blocks
    :param num_decoder_layers: decoder blocks
    :param dropout: dropout everywhere
    :param max_length: the longest source or target, in tokens (longer ones are truncated)
    :param positions: learned, sinusoidal or rotary positions, on both sides
    :param label_smoothing: probability mass spread over the vocabulary in the training loss
    :param metrics: registered metric names (default bleu and chrf)
    :param generation: decoding settings for validation, test, ``predict``, ``generate`` and ``stream``
    :param validation_generation: decoding settings for validation alone (None: ``generation``), so that validation
        during a fit can decode greedily while test and prediction use beam search
    """

    continues_input = False
    transfer_prefixes = ("encoder.", "model.")  # init_from a denoising (or seq2seq) checkpoint takes the decoder too

    def __init__(
        self,
        d_model: int = 256,
        num_heads: int = 4,
        num_encoder_layers: int = 3,
        num_decoder_layers: int = 3,
        dropout: float = 0.1,
        max_length: int = 256,
        positions: PositionKind = "learned",
        label_smoothing: float = 0.1,
        metrics: list[str] | None = None,
        generation: GenerationConfig | None = None,
        validation_generation: GenerationConfig | None = None,
        **kwargs: Any,
    ) -> None:
        source_encoder = partial(
            TransformerEncoder,
            d_model=d_model,
            num_heads=num_heads,
            num_layers=num_encoder_layers,
            dropout=dropout,
            max_length=max_length,
            positions=positions,
        )
        super().__init__(source_encoder, metrics=["bleu", "chrf"] if metrics is None else metrics, **kwargs)
        self.hparams.pop("encoder", None)  # rebuilt from the arguments above (the CLI never recorded it)
        self.generation = generation or GenerationConfig(max_new_tokens=min(128, max_length - 1))
        self.validation_generation = validation_generation

    def build(self) -> None:
        """The decoder on top of the source encoder, and the metrics."""
        hp = self.hparams
        self.model = Seq2SeqTransformer(
            self.encoder,
            num_layers=hp.num_decoder_layers,
            dropout=hp.dropout,
            bos_id=self.tokenizer.bos_id,  # type: ignore[union-attr]
        )
        self.build_metrics()

    def input_fields(self, item: Any) -> dict[str, Any]:
        """A text to translate becomes ``{"source": item}``; dicts of fields pass through."""
        return {"source": item} if isinstance(item, str) else super().input_fields(item)

    def _ids(self, text: str) -> list[int]:
        """``<s> text </s>`` as ids, within the model's and the tokenizer's ``max_length``."""
        limit = min(self.hparams.max_length, self.tokenizer.max_length)  # type: ignore[union-attr]
        return self.tokenizer.encode([text], add_bos=True, add_eos=True, max_length=limit)[0]  # type: ignore[union-attr]

    def encode(self, fields: dict[str, Any], labeled: bool, record: Record | None = None) -> dict[str, Any]:
        """Source ids; when labelled, target ids and the reference text."""
        example: dict[str, Any] = {"source": self._ids(fields["source"])}
        if labeled:
            example.update(target=self._ids(fields["target"]), reference=fields["target"])
        example["length"] = len(example["source"]) + len(example.get("target", ()))
        return example

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        """Padded source (and target) ids and masks, reference texts and input indices."""
        source, source_mask = pad([example["source"] for example in examples])
        batch: dict[str, Any] = {
            "source": source,
            "source_mask": source_mask,
            "index": torch.tensor([example["index"] for example in examples]),
        }
        if "target" in examples[0]:
            batch["target"], batch["target_mask"] = pad([example["target"] for example in examples])
            batch["reference"] = [example["reference"] for example in examples]
        return batch

    def inference_inputs(self) -> tuple[str, ...]:
        """Not exportable: a translation is decoded token by token, each step reading the ones before."""
        raise ExportError(
            "seq2seq cannot be exported: it translates by decoding token by token with a KV cache, which is no "
            "fixed forward; serve its checkpoint (nlpkit serve) instead"
        )

    def forward(self, source: Tensor, source_mask: Tensor, target_in: Tensor, target_mask: Tensor) -> Tensor:
        """Teacher-forced next-token logits ``(B, T, vocab_size)``."""
        return self.model(source, source_mask, target_in, target_mask)

    def loss(self, batch: dict[str, Any]) -> Tensor:
        """Label-smoothed cross-entropy over the real target tokens of a batch, teacher-forced."""
        target, mask = batch["target"], batch["target_mask"]
        logits = self(batch["source"], batch["source_mask"], target[:, :-1], mask[:, :-1])  # t predicts t + 1
        labels = target[:, 1:].masked_fill(~mask[:, 1:], IGNORE)
        return F.cross_entropy(
            logits.flatten(0, 1).float(),
            labels.flatten(),
            ignore_index=IGNORE,
            label_smoothing=self.hparams.label_smoothing,
        )

    def step(self, batch: dict[str, Any]) -> StepOutput:
        """The loss; out of training, also translations and references for the metrics."""
        loss, target = self.loss(batch), batch["target"]
        if self.training:  # the metrics only run on validation and test
            return StepOutput(loss, [], [], len(target))
        validating = self._trainer is not None and (self.trainer.validating or self.trainer.sanity_checking)
        config = self.validation_generation if validating else None
        translations = [generation.text for generation in self.generate_batch(batch, config)]
        return StepOutput(loss, translations, [[text] for text in batch["reference"]], len(target))

    def decoder_inputs(self, batch: dict[str, Any]) -> list[list[int]]:
        """Each row's source ids."""
        return unpad(batch["source"], batch["source_mask"])

    def start(self, inputs: list[list[int]], max_new_tokens: int) -> tuple[Tensor, Seq2SeqState]:
        """``Decoder`` protocol: begin decoding source ids (``<s> source </s>`` per row)."""
        return self.model.start(inputs, max_new_tokens)

    def extend(self, tokens: Tensor, state: Seq2SeqState) -> Tensor:
        """``Decoder`` protocol: feed one token per row, get the next logits."""
        return self.model.extend(tokens, state)
