"""Transformer encoders, nanoGPT style: LayerNorm blocks around ``scaled_dot_product_attention``.

``TransformerEncoder`` attends in both directions; ``CausalTransformerEncoder`` is a decoder-only (GPT) body
with a next-token head and a preallocated KV cache for incremental decoding. Blocks are pre-LayerNorm (GPT-2,
the default) or post-LayerNorm with a normalised embedding (BERT, RoBERTa), so pretrained checkpoints of
either kind run in this code (:mod:`nlpkit.models.encoders.pretrained`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nlpkit.models.encoders.base import Encoder, LanguageModelHeadMixin, token_embedding
from nlpkit.models.encoders.linear import project
from nlpkit.models.vectors import WordVectorsOptions
from nlpkit.plugin.errors import ConfigError

PositionKind = Literal["sinusoidal", "learned", "rotary"]
Activation = Literal["gelu", "gelu_tanh", "relu"]
ACTIVATIONS = {"gelu": nn.GELU, "gelu_tanh": lambda: nn.GELU(approximate="tanh"), "relu": nn.ReLU}


@dataclass
class KVCache:
    """Keys and values of every layer, preallocated to a fixed number of slots per row.

    Each chunk given to ``step`` takes the next ``t`` slots of every row, padded columns included;
    ``key_mask`` hides padded slots from attention and ``positions`` counts only real tokens, so padding
    shifts nothing.
    """

    keys: Tensor  # (B, L, nh, S, hd), rotary already applied; batch first, so a row is one contiguous block
    values: Tensor  # (B, L, nh, S, hd)
    key_mask: Tensor  # (B, S) True where the slot holds a real token
    positions: Tensor  # (B,) position of each row's next real token
    length: int = 0  # slots filled so far, the same for every row
    padded: bool = False  # whether any filled slot is padding (else attention needs no mask)
    shared: int = 0  # slots filled at the last select without ``among_beams`` (see :meth:`select`)
    spare: tuple[Tensor, Tensor] | None = None  # the second keys/values buffer of beam reordering

    @classmethod
    def empty(cls, batch_size: int, layers: int, heads: int, capacity: int, head_dim: int, like: Tensor) -> KVCache:
        """A cache of ``capacity`` slots per row, with the dtype and device of ``like``."""
        shape = (batch_size, layers, heads, capacity, head_dim)
        return cls(
            keys=like.new_empty(shape),  # a slot is written before it is ever read
            values=like.new_empty(shape),
            key_mask=torch.zeros(batch_size, capacity, dtype=torch.bool, device=like.device),
            positions=torch.zeros(batch_size, dtype=torch.long, device=like.device),
        )

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store a chunk's ``k``, ``v`` (B, nh, t, hd) in the next slots of ``layer``; return all filled."""
        end = self.length + k.size(2)
        self.keys[:, layer, :, self.length : end] = k
        self.values[:, layer, :, self.length : end] = v
        return self.keys[:, layer, :, :end], self.values[:, layer, :, :end]  # (B, nh, end, hd) views

    def select(self, rows: Tensor, among_beams: bool = False) -> None:
        """Keep (and repeat or reorder) the given batch rows: beam search and finished prompts.

        ``among_beams`` promises that every row takes one repeated from the same row by the last select
        without it (beam search reordering each input's beams). The slots filled before that select hold the
        same prompt in all of them and stay; the later ones are gathered in one pass into a second buffer,
        which then takes the first one's place (while beams are reordered, the cache takes twice the memory).
        """
        if among_beams:
            first, targets = self.shared, self.spare
            if targets is None:  # the second buffer holds nothing yet
                first, targets = 0, (torch.empty_like(self.keys), torch.empty_like(self.values))
        else:
            first, shape = 0, (len(rows), *self.keys.shape[1:])
            targets = (self.keys.new_empty(shape), self.values.new_empty(shape))
        filled = (..., slice(first, self.length), slice(None))  # (rows, L, nh, slots, hd)
        for table, target in zip((self.keys, self.values), targets, strict=True):
            if table.requires_grad and torch.is_grad_enabled():  # autograd cannot record an out= gather
                target[filled] = table[filled].index_select(0, rows)
            else:
                torch.index_select(table[filled], 0, rows, out=target[filled])
        self.spare = (self.keys, self.values) if among_beams else None
        self.keys, self.values = targets
        self.key_mask, self.positions = self.key_mask[rows], self.positions[rows]
        if not among_beams:
            self.shared = self.length


def _position_angles(max_length: int, dim: int) -> Tensor:
    """Angles ``pos / 10000^(2i / dim)`` for every position and frequency: (max_length, ceil(dim / 2))."""
    inv_freq = 10000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    return torch.outer(torch.arange(max_length, dtype=torch.float64), inv_freq).float()


def _sinusoidal_table(max_length: int, dim: int) -> Tensor:
    """The fixed sin/cos position encodings of "Attention Is All You Need": (max_length, dim)."""
    angles = _position_angles(max_length, dim)
    table = torch.zeros(max_length, dim)
    table[:, 0::2] = angles.sin()
    table[:, 1::2] = angles.cos()[:, : dim // 2]
    return table


def _rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotary position embedding of ``x`` (B, nh, T, hd) with ``cos``, ``sin`` (B, 1, T, hd / 2)."""
    x1, x2 = x.chunk(2, dim=-1)  # (B, nh, T, hd / 2) each
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).type_as(x)


def count_positions(mask: Tensor) -> Tensor:
    """Index of each column among its row's real tokens (B, T); a padded column reuses a neighbour's index."""
    return (mask.long().cumsum(1) - 1).clamp(min=0)


def attention_mask(key_mask: Tensor, start: int, length: int, causal: bool) -> Tensor:
    """Keys (B, S) visible to the ``length`` queries in slots ``start``...: (B, 1, length, S).

    Every query also sees itself: that changes nothing for real queries, and it spares padded queries an
    all-masked row, which gives NaN on some SDPA backends and older torch versions.
    """
    slots = torch.arange(key_mask.size(1), device=key_mask.device)  # (S,)
    query_slots = torch.arange(start, start + length, device=key_mask.device)[:, None]  # (t, 1)
    allowed = key_mask[:, None, :]  # (B, 1, S)
    if causal:
        allowed = allowed & (slots <= query_slots)  # (B, t, S)
    return (allowed | (slots == query_slots)).unsqueeze(1)  # (B, 1, t, S)


class SelfAttention(nn.Module):
    """Multi-head self-attention over ``scaled_dot_product_attention``, with optional rotary and KV cache."""

    def __init__(self, d_model: int, num_heads: int, dropout: float, causal: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.causal = causal
        self.qkv = nn.Linear(d_model, 3 * d_model)  # query, key, value projections for all heads at once
        self.proj = nn.Linear(d_model, d_model)
        self.resid_dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: Tensor,
        attn_mask: Tensor | None,
        rotary: tuple[Tensor, Tensor] | None,
        cache: KVCache | None,
        layer: int,
    ) -> Tensor:
        """Attend ``x`` (B, T, C) under ``attn_mask`` (B, 1, T, S) to itself, plus ``cache`` when decoding.

        ``attn_mask`` None means no padding: SDPA then applies causality itself (its fastest kernels); a chunk
        of several queries after cached slots always comes with a mask.
        """
        B, T, C = x.size()  # batch size, sequence length, embedding dimensionality (d_model)
        q, k, v = project(self.qkv, x).split(C, dim=2)  # (B, T, C) each
        q, k, v = (z.view(B, T, self.num_heads, C // self.num_heads).transpose(1, 2) for z in (q, k, v))
        # q, k, v: (B, nh, T, hd)
        if rotary is not None:
            q, k = _rotate(q, *rotary), _rotate(k, *rotary)
        if cache is not None:
            k, v = cache.update(layer, k, v)  # (B, nh, S, hd): every earlier slot plus this chunk
        dropout_p = self.dropout if self.training else 0.0
        is_causal = attn_mask is None and self.causal and T > 1  # one query sees every key before it
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal)
        # y: (B, nh, T, hd)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble all head outputs side by side
        return self.resid_dropout(project(self.proj, y))


class MLP(nn.Module):
    """Position-wise feed-forward network: Linear -> activation (GELU) -> Linear -> dropout."""

    def __init__(self, d_model: int, dim_feedforward: int, dropout: float, activation: Activation = "gelu") -> None:
        super().__init__()
        self.fc = nn.Linear(d_model, dim_feedforward)
        self.gelu = ACTIVATIONS[activation]()
        self.proj = nn.Linear(dim_feedforward, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, C) -> (B, T, C)."""
        return self.dropout(project(self.proj, self.gelu(project(self.fc, x))))


@dataclass(frozen=True)
class BlockOptions:
    """What distinguishes one family's blocks from another's: where the LayerNorms sit, their epsilon, the MLP's
    activation."""

    norm_first: bool = True  # pre-LayerNorm (GPT-2) or post-LayerNorm (BERT)
    layer_norm_eps: float = 1e-5
    activation: Activation = "gelu"


class TransformerBlock(nn.Module):
    """A transformer block: pre-LayerNorm ``x + attn(ln(x))`` then ``x + mlp(ln(x))``, or post-LayerNorm
    ``ln(x + attn(x))`` then ``ln(x + mlp(x))``."""

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        dim_feedforward: int,
        dropout: float,
        causal: bool,
        options: BlockOptions = BlockOptions(),
    ) -> None:
        super().__init__()
        self.norm_first = options.norm_first
        self.ln_1 = nn.LayerNorm(d_model, eps=options.layer_norm_eps)
        self.attn = SelfAttention(d_model, num_heads, dropout, causal)
        self.ln_2 = nn.LayerNorm(d_model, eps=options.layer_norm_eps)
        self.mlp = MLP(d_model, dim_feedforward, dropout, options.activation)

    def forward(
        self,
        x: Tensor,
        attn_mask: Tensor | None,
        rotary: tuple[Tensor, Tensor] | None,
        cache: KVCache | None,
        layer: int,
    ) -> Tensor:
        """(B, T, C) -> (B, T, C); see :class:`SelfAttention` for the other arguments."""
        if not self.norm_first:
            x = self.ln_1(x + self.attn(x, attn_mask, rotary, cache, layer))
            return self.ln_2(x + self.mlp(x))
        x = x + self.attn(self.ln_1(x), attn_mask, rotary, cache, layer)
        x = x + self.mlp(self.ln_2(x))
        return x


class TransformerEncoder(Encoder):
    """Bidirectional transformer encoder: embeddings, pre-LayerNorm blocks, final LayerNorm (or, with
    ``norm_first`` False, a normalised embedding and post-LayerNorm blocks: BERT's layout).

    Positions count only each row's real tokens, so left padding, right padding and no padding agree.

    :param d_model: width of the embeddings and every block
    :param num_heads: attention heads per block
    :param num_layers: blocks
    :param dim_feedforward: the MLP's inner width (default ``4 * d_model``)
    :param dropout: dropout on the embeddings, the attention weights and each block's outputs
    :param max_length: the longest input, in tokens
    :param positions: ``learned`` absolute positions, fixed ``sinusoidal`` ones, or ``rotary``
    :param norm_first: pre-LayerNorm blocks and a final LayerNorm (else BERT's post-LayerNorm)
    :param layer_norm_eps: every LayerNorm's epsilon
    :param activation: the MLP's ``gelu`` (exact), ``gelu_tanh`` or ``relu``
    :param token_types: rows of a token-type (segment) embedding added to every token as type 0 (BERT: 2)
    :param position_offset: learned positions start at this row (RoBERTa: 2)
    :param embeddings: start the token embedding from word vectors (``{path, format, freeze}``)
    :param feature_dim: per-token input features, projected and added to the embeddings (the projection starts at
        zero, so a pretrained model starts as it was)
    """

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 256,
        num_heads: int = 4,
        num_layers: int = 4,
        dim_feedforward: int | None = None,
        dropout: float = 0.1,
        max_length: int = 512,
        positions: PositionKind = "learned",
        norm_first: bool = True,
        layer_norm_eps: float = 1e-5,
        activation: Activation = "gelu",
        token_types: int = 0,
        position_offset: int = 0,
        embeddings: WordVectorsOptions | None = None,
        feature_dim: int = 0,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {', '.join(ACTIVATIONS)}, not {activation!r}")
        if positions not in get_args(PositionKind):
            raise ConfigError(f"positions must be one of {get_args(PositionKind)}, not {positions!r}")
        if d_model % num_heads or (positions == "rotary" and (d_model // num_heads) % 2):
            raise ConfigError(f"d_model {d_model} must split into {num_heads} heads (of even size for rotary)")
        self.vocab_size = vocab_size
        self.output_dim = d_model
        self.num_heads = num_heads
        self.max_length = max_length
        self.positions = positions
        self.position_offset = position_offset
        self.layer_norm_eps = layer_norm_eps
        self.token_embedding = token_embedding(vocab_size, d_model, embeddings)
        self.feature_dim = feature_dim
        self.feature_projection = nn.Linear(feature_dim, d_model) if feature_dim else None
        self.token_type_embedding = nn.Embedding(token_types, d_model) if token_types else None
        if positions == "learned":
            self.position_embedding = nn.Embedding(position_offset + max_length, d_model)
        elif positions == "sinusoidal":
            self.register_buffer("position_table", _sinusoidal_table(max_length, d_model), persistent=False)
        else:
            angles = _position_angles(max_length, d_model // num_heads)  # (max_length, hd / 2)
            self.register_buffer("rotary_cos", angles.cos(), persistent=False)
            self.register_buffer("rotary_sin", angles.sin(), persistent=False)
        self.embedding_norm = None if norm_first else nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)
        dim_feedforward = dim_feedforward or 4 * d_model
        options = BlockOptions(norm_first, layer_norm_eps, activation)
        self.blocks = nn.ModuleList(
            TransformerBlock(d_model, num_heads, dim_feedforward, dropout, self.is_causal, options)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model, eps=layer_norm_eps) if norm_first else nn.Identity()
        self.apply(self._init_weights)
        for name, parameter in self.named_parameters():
            if name.endswith("proj.weight"):  # GPT-2: scale the residual projections by depth
                nn.init.normal_(parameter, std=0.02 / math.sqrt(2 * num_layers))
        if self.feature_projection is not None:
            nn.init.zeros_(self.feature_projection.weight)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """GPT-2 initialisation: N(0, 0.02) weights, zero biases, a zero padding embedding."""
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
            if module.padding_idx is not None:
                nn.init.zeros_(module.weight[module.padding_idx])

    def layers(self) -> list[list[str]]:
        """The embeddings (and the input-feature projection), then each block; the final LayerNorm (and a next-token
        head) go with the top block."""
        names = [name for name, _ in self.named_parameters()]
        bottom = [name for name in names if not name.startswith("blocks.")]
        groups = [[name for name in bottom if "embedding" in name or name.startswith("feature_projection.")]]
        groups += [[name for name in names if name.startswith(f"blocks.{i}.")] for i in range(len(self.blocks))]
        groups[-1] += [name for name in names if name.startswith(("norm.", "lm_head."))]
        return groups

    def forward(self, tokens: Tensor, mask: Tensor, features: Tensor | None = None) -> Tensor:
        """Encode a padded batch: ``tokens`` (B, T) long, ``mask`` (B, T) bool, ``features`` (B, T, feature_dim)
        -> (B, T, d_model)."""
        if bool(mask.all()):  # no padding: plain positions, and SDPA's own (causal) masking
            positions = torch.arange(tokens.size(1), device=tokens.device).expand_as(tokens)
            return self._encode(tokens, positions, None, None, features)
        attn_mask = attention_mask(mask, 0, tokens.size(1), self.is_causal)  # (B, 1, T, T)
        return self._encode(tokens, count_positions(mask), attn_mask, None, features)

    def _encode(
        self,
        tokens: Tensor,
        positions: Tensor,
        attn_mask: Tensor | None,
        cache: KVCache | None,
        features: Tensor | None = None,
    ) -> Tensor:
        """Embed ``tokens`` (B, T) at ``positions`` (B, T) (with the projected ``features``) and run every block:
        (B, T, d_model)."""
        x = self.token_embedding(tokens)  # (B, T, C)
        if (checked := self.input_features(features)) is not None:
            x = x + self.feature_projection(checked.to(x.dtype))  # type: ignore[misc]
        if self.token_type_embedding is not None:  # every token is of the first type (one segment)
            x = x + self.token_type_embedding.weight[0]
        rotary = None
        if self.positions == "learned":
            x = x + self.position_embedding(positions + self.position_offset)
        elif self.positions == "sinusoidal":
            x = x + self.position_table[positions]
        else:
            rotary = (self.rotary_cos[positions].unsqueeze(1), self.rotary_sin[positions].unsqueeze(1))
            # rotary: cos, sin (B, 1, T, hd / 2), broadcast over heads
        if self.embedding_norm is not None:
            x = self.embedding_norm(x)
        x = self.dropout(x)
        for layer, block in enumerate(self.blocks):
            x = block(x, attn_mask, rotary, cache, layer)
        return self.norm(x)


class CausalTransformerEncoder(LanguageModelHeadMixin, TransformerEncoder):
    """Decoder-only (GPT) transformer: causal attention, a next-token head, KV-cached incremental decoding."""

    is_causal = True

    def __init__(self, vocab_size: int, *, tie_weights: bool = True, **kwargs: Any) -> None:
        """``kwargs`` are :class:`TransformerEncoder`'s; ``tie_weights`` shares the embedding with the head."""
        super().__init__(vocab_size, **kwargs)
        self.build_lm_head(tie_weights)
        if self.lm_head is not None:
            self._init_weights(self.lm_head)

    def init_cache(self, batch_size: int, capacity: int | None = None) -> KVCache:
        """An empty KV cache of ``capacity`` slots (default ``max_length``) for each of ``batch_size`` rows.

        Every column of every chunk passed to :meth:`step` takes a slot, padded columns included.
        """
        head_dim = self.output_dim // self.num_heads
        capacity = capacity or self.max_length
        return KVCache.empty(
            batch_size, len(self.blocks), self.num_heads, capacity, head_dim, self.token_embedding.weight
        )

    def step(self, tokens: Tensor, mask: Tensor | None, cache: KVCache) -> Tensor:
        """Encode the chunk ``tokens`` (B, t) after everything in ``cache`` and append it: (B, t, d_model).

        While no slot of the cache is padding, one-token steps and a first chunk attend without a mask
        (SDPA's fastest path).
        """
        start, end = cache.length, cache.length + tokens.size(1)
        if end > cache.key_mask.size(1):
            raise ValueError(f"KV cache full: {end} slots needed, {cache.key_mask.size(1)} allocated")
        if mask is not None and bool(mask.all()):
            mask = None
        if mask is None:
            positions = cache.positions[:, None] + torch.arange(tokens.size(1), device=tokens.device)  # (B, t)
            cache.key_mask[:, start:end] = True
        else:
            positions = cache.positions[:, None] + count_positions(mask)  # (B, t)
            cache.key_mask[:, start:end] = mask
            cache.padded = True
        attn_mask = None
        if cache.padded or (start > 0 and tokens.size(1) > 1):
            attn_mask = attention_mask(cache.key_mask[:, :end], start, tokens.size(1), self.is_causal)
            # attn_mask: (B, 1, t, end)
        hidden = self._encode(tokens, positions, attn_mask, cache)  # each layer writes its k, v to start:end
        cache.length = end
        cache.positions = cache.positions + (tokens.size(1) if mask is None else mask.sum(1))
        return hidden
