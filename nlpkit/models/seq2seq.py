"""A transformer encoder-decoder over one vocabulary, with cached incremental decoding: the network of
sequence-to-sequence tasks (translation, denoising pretraining)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nlpkit.models.encoders.linear import linear, project
from nlpkit.models.encoders.transformer import (
    MLP,
    KVCache,
    SelfAttention,
    TransformerEncoder,
    attention_mask,
    count_positions,
)
from nlpkit.models.padding import pad
from nlpkit.plugin.errors import ConfigError


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
    uses the encoder's kind of positions (its own table when learned). Its ``start`` and ``extend``
    are what incremental decoding calls (the generation plugin's ``generate``).

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
        *,
        bos_id: int,
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
        """Begin decoding the sources ``inputs`` (ids per row, each ``<s> source </s>``)."""
        source, source_mask = pad(inputs)
        device = self.encoder.token_embedding.weight.device
        return self.begin(source.to(device), source_mask.to(device), max_new_tokens)

    def extend(self, tokens: Tensor, state: Seq2SeqState) -> Tensor:
        """Feed one target token per row ``tokens`` (B,); the next logits (B, V)."""
        chunk = tokens[:, None]
        return self.decode(chunk, torch.ones_like(chunk, dtype=torch.bool), state.memory, state.cache)[:, -1]
