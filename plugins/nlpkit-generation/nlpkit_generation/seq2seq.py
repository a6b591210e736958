"""Sequence-to-sequence: a transformer encoder-decoder with a shared vocabulary, cached incremental decoding,
label-smoothed training, and BLEU/chrF of translations made by the shared generate().
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.text import BLEUScore, CHRFScore

from nlpkit.data import Record, pad, unpad
from nlpkit.encoders.linear import linear, project
from nlpkit.encoders.transformer import (
    MLP,
    KVCache,
    PositionKind,
    SelfAttention,
    TransformerEncoder,
    attention_mask,
    count_positions,
)
from nlpkit.errors import ConfigError, ExportError
from nlpkit.task import StepOutput
from nlpkit.tokenization import BOS_ID
from nlpkit_generation.decoding import GenerationConfig
from nlpkit_generation.task import IGNORE, GenerativeTask


def bleu() -> Metric:
    """Corpus BLEU (4-grams) of translations against their references."""
    return BLEUScore()


def chrf() -> Metric:
    """Corpus chrF (character n-gram F-score) of translations against their references."""
    return CHRFScore()


@dataclass
class SourceMemory:
    """The encoded source: every decoder layer's cross-attention keys and values, and the source padding mask."""

    keys: Tensor  # (L, B, nh, S, hd)
    values: Tensor  # (L, B, nh, S, hd)
    mask: Tensor  # (B, S) True where the source has a real token

    @property
    def attn_mask(self) -> Tensor:
        """The source keys every query may see: (B, 1, 1, S)."""
        return self.mask[:, None, None, :]

    def select(self, rows: Tensor, among_beams: bool = False) -> None:
        """Keep (and repeat or reorder) the given batch rows, in place; the beams of one input share one
        source, so reordering them (``among_beams``) moves nothing."""
        if among_beams:
            return
        self.keys, self.values, self.mask = self.keys[:, rows], self.values[:, rows], self.mask[rows]


@dataclass
class Seq2SeqState:
    """What decoding carries between steps: the decoder's self-attention KV cache and the source memory."""

    cache: KVCache
    memory: SourceMemory

    def select(self, rows: Tensor, among_beams: bool = False) -> None:
        """Keep (and repeat or reorder) the given batch rows of the cache and the memory, in place: beam search."""
        self.cache.select(rows, among_beams)
        self.memory.select(rows, among_beams)


class CrossAttention(nn.Module):
    """Multi-head attention of target states over the encoded source, whose keys and values are computed once."""

    def __init__(self, d_model: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.query = nn.Linear(d_model, d_model)
        self.key_value = nn.Linear(d_model, 2 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.resid_dropout = nn.Dropout(dropout)

    def _heads(self, x: Tensor) -> Tensor:
        """(B, T, C) -> (B, nh, T, hd)."""
        B, T, C = x.size()
        return x.view(B, T, self.num_heads, C // self.num_heads).transpose(1, 2)

    def keys_values(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values (B, nh, S, hd) of the encoder outputs ``memory`` (B, S, C)."""
        keys, values = project(self.key_value, memory).split(memory.size(2), dim=2)
        return self._heads(keys), self._heads(values)

    def forward(self, x: Tensor, keys: Tensor, values: Tensor, attn_mask: Tensor) -> Tensor:
        """Attend ``x`` (B, T, C) to the source ``keys``/``values`` (B, nh, S, hd) under ``attn_mask`` (B, 1, 1, S)."""
        B, T, C = x.size()
        dropout_p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(self._heads(project(self.query, x)), keys, values, attn_mask, dropout_p)
        return self.resid_dropout(project(self.proj, y.transpose(1, 2).contiguous().view(B, T, C)))  # (B, T, C)


class DecoderBlock(nn.Module):
    """Pre-LayerNorm decoder block: causal self-attention, cross-attention over the source, then the MLP."""

    def __init__(self, d_model: int, num_heads: int, dim_feedforward: int, dropout: float) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model)
        self.self_attn = SelfAttention(d_model, num_heads, dropout, causal=True)
        self.ln_2 = nn.LayerNorm(d_model)
        self.cross_attn = CrossAttention(d_model, num_heads, dropout)
        self.ln_3 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model, dim_feedforward, dropout)

    def forward(
        self,
        x: Tensor,
        attn_mask: Tensor,
        rotary: tuple[Tensor, Tensor] | None,
        cache: KVCache | None,
        layer: int,
        memory: SourceMemory,
    ) -> Tensor:
        """(B, T, C) -> (B, T, C); ``layer`` picks this block's slots of ``cache`` and ``memory``."""
        x = x + self.self_attn(self.ln_1(x), attn_mask, rotary, cache, layer)
        x = x + self.cross_attn(self.ln_2(x), memory.keys[layer], memory.values[layer], memory.attn_mask)
        return x + self.mlp(self.ln_3(x))


class Seq2SeqTransformer(nn.Module):
    """Encoder-decoder transformer over one vocabulary: ``encoder`` reads the source, a decoder stack writes the target.

    The token embedding of ``encoder`` is shared by the decoder and tied to the output projection; the decoder
    uses the encoder's kind of positions (its own table when learned). Implements the ``Decoder`` protocol of
    :mod:`nlpkit_generation.decoding`.

    :param encoder: the source encoder; its width, heads, positions and ``max_length`` size the decoder
    :param num_layers: decoder blocks
    :param dim_feedforward: MLP width of the decoder blocks (default ``4 * d_model``)
    :param dropout: dropout of the decoder
    :param bos_id: the id every target starts with (the tokenizer's ``bos_id``)
    """

    def __init__(
        self,
        encoder: TransformerEncoder,
        num_layers: int = 3,
        dim_feedforward: int | None = None,
        dropout: float = 0.1,
        bos_id: int = BOS_ID,
    ) -> None:
        super().__init__()
        d_model = encoder.output_dim
        self.bos_id = bos_id
        self.encoder = encoder
        self.max_length = encoder.max_length
        learned = encoder.positions == "learned"
        self.position_embedding = nn.Embedding(encoder.max_length, d_model) if learned else None
        self.dropout = nn.Dropout(dropout)
        dim_feedforward = dim_feedforward or 4 * d_model
        self.blocks = nn.ModuleList(
            DecoderBlock(d_model, encoder.num_heads, dim_feedforward, dropout) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        for name, module in self.named_children():
            if name != "encoder":
                module.apply(TransformerEncoder._init_weights)
        for name, parameter in self.blocks.named_parameters():
            if name.endswith("proj.weight"):  # GPT-2: scale the residual projections by depth
                nn.init.normal_(parameter, std=0.02 / math.sqrt(2 * num_layers))

    def encode(self, source: Tensor, source_mask: Tensor) -> SourceMemory:
        """Encode ``source`` (B, S) with its mask (B, S) and project every layer's cross-attention keys/values."""
        hidden = self.encoder(source, source_mask)  # (B, S, C)
        keys, values = zip(*(block.cross_attn.keys_values(hidden) for block in self.blocks), strict=True)
        return SourceMemory(torch.stack(keys), torch.stack(values), source_mask)

    def _embed(self, tokens: Tensor, positions: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor] | None]:
        """Target embeddings (B, T, C) at ``positions`` (B, T), and the rotary cos/sin (B, 1, T, hd / 2) if rotary."""
        x = self.encoder.token_embedding(tokens)
        rotary = None
        if self.position_embedding is not None:
            x = x + self.position_embedding(positions)
        elif self.encoder.positions == "sinusoidal":
            x = x + self.encoder.position_table[positions]
        else:
            rotary = (self.encoder.rotary_cos[positions].unsqueeze(1), self.encoder.rotary_sin[positions].unsqueeze(1))
        return self.dropout(x), rotary

    def decode(self, tokens: Tensor, mask: Tensor, memory: SourceMemory, cache: KVCache | None = None) -> Tensor:
        """Next-token logits (B, t, V) of the target chunk ``tokens`` (B, t) with its mask, over ``memory``.

        With ``cache``, the chunk follows (and is appended to) what the cache holds; without, it starts the target.
        """
        start, end = (cache.length, cache.length + tokens.size(1)) if cache is not None else (0, tokens.size(1))
        positions = count_positions(mask)  # (B, t)
        key_mask = mask
        if cache is not None:
            if end > cache.key_mask.size(1):
                raise ValueError(f"KV cache full: {end} slots needed, {cache.key_mask.size(1)} allocated")
            positions = positions + cache.positions[:, None]
            cache.key_mask[:, start:end] = mask
            key_mask = cache.key_mask[:, :end]
        attn_mask = attention_mask(key_mask, start, tokens.size(1), causal=True)  # (B, 1, t, end)
        x, rotary = self._embed(tokens, positions)
        for layer, block in enumerate(self.blocks):
            x = block(x, attn_mask, rotary, cache, layer, memory)
        if cache is not None:
            cache.length = end
            cache.positions = cache.positions + mask.sum(1)
        return linear(self.norm(x), self.encoder.token_embedding.weight)

    def forward(self, source: Tensor, source_mask: Tensor, target_in: Tensor, target_mask: Tensor) -> Tensor:
        """Teacher-forced next-token logits (B, T, V) of ``target_in`` (B, T) given ``source`` (B, S)."""
        return self.decode(target_in, target_mask, self.encode(source, source_mask))

    def init_cache(self, batch_size: int, capacity: int) -> KVCache:
        """An empty self-attention KV cache of ``capacity`` target slots per row."""
        weight, heads = self.encoder.token_embedding.weight, self.encoder.num_heads
        return KVCache.empty(batch_size, len(self.blocks), heads, capacity, weight.size(1) // heads, weight)

    def begin(self, source: Tensor, source_mask: Tensor, max_new_tokens: int) -> tuple[Tensor, Seq2SeqState]:
        """Encode a padded source batch and feed ``<s>``: the first target token's logits (B, V) and the state.

        The state has room for ``<s>`` and ``max_new_tokens`` extensions, so the target fits in ``max_length``.
        """
        if not 1 <= max_new_tokens < self.max_length:
            raise ConfigError(
                f"max_new_tokens must be between 1 and the model's max_length - 1 ({self.max_length - 1})"
            )
        memory = self.encode(source, source_mask)
        state = Seq2SeqState(self.init_cache(source.size(0), max_new_tokens + 1), memory)
        bos = torch.full_like(source[:, :1], self.bos_id)
        return self.decode(bos, torch.ones_like(bos, dtype=torch.bool), memory, state.cache)[:, -1], state

    def start(self, inputs: list[list[int]], max_new_tokens: int) -> tuple[Tensor, Seq2SeqState]:
        """Begin decoding the sources ``inputs`` (ids per row, as :meth:`Seq2SeqTask.encode` makes them)."""
        source, source_mask = pad(inputs)
        device = self.encoder.token_embedding.weight.device
        return self.begin(source.to(device), source_mask.to(device), max_new_tokens)

    def extend(self, tokens: Tensor, state: Seq2SeqState) -> Tensor:
        """Feed one target token per row ``tokens`` (B,); the next logits (B, V)."""
        chunk = tokens[:, None]
        return self.decode(chunk, torch.ones_like(chunk, dtype=torch.bool), state.memory, state.cache)[:, -1]


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
