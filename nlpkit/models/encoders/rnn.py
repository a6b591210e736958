"""Recurrent encoders (Elman RNN, LSTM, GRU) over torch's fused RNNs; packing keeps padding out of states."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from nlpkit.models.encoders.base import Encoder, LanguageModelHeadMixin, token_embedding
from nlpkit.models.vectors import WordVectorsOptions
from nlpkit.plugin.errors import ConfigError

#: h (num_layers, B, hidden_size), or the pair (h, c) for an LSTM.
RNNState = Tensor | tuple[Tensor, Tensor]


@dataclass
class RecurrentCache:
    """Decoding cache of a unidirectional recurrent encoder: every row's state after its last real token."""

    state: RNNState

    def select(self, rows: Tensor, among_beams: bool = False) -> None:
        """Keep (and repeat or reorder) the given batch rows, in place: beam search and finished prompts.

        A state holds no shared prompt apart from the rest, so ``among_beams`` changes nothing here."""
        self.state = (
            tuple(part[:, rows] for part in self.state) if isinstance(self.state, tuple) else self.state[:, rows]
        )


@cache
def _cpu_runs_bfloat16_rnns() -> bool:
    """Whether torch's LSTM runs under CPU bfloat16 autocast on this machine (tried once, on a tiny input)."""
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            nn.LSTM(2, 2)(torch.zeros(1, 1, 2))
    except RuntimeError:
        return False
    return True


class RecurrentEncoder(LanguageModelHeadMixin, Encoder):
    """Token embedding, dropout and a stacked torch RNN; subclasses choose the cell with ``rnn_type``.

    Each row's real tokens are moved to the front and packed, so any padding side works and padded positions
    come out as zeros. Unidirectional ones are causal: they decode incrementally and have ``output_logits``.

    :param embedding_dim: width of the token embeddings
    :param hidden_size: width of each direction's state
    :param num_layers: stacked RNN layers
    :param dropout: dropout on the embeddings and between layers
    :param bidirectional: read both ways (then not causal)
    :param tie_weights: a causal encoder's next-token head shares the token embedding
    :param embeddings: start the token embedding from word vectors (``{path, format, freeze}``)
    """

    rnn_type: ClassVar[type[nn.RNNBase]]

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 128,
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        tie_weights: bool = False,
        embeddings: WordVectorsOptions | None = None,
        feature_dim: int = 0,
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.output_dim = hidden_size * (2 if bidirectional else 1)
        self.is_causal = not bidirectional
        self.token_embedding = token_embedding(vocab_size, embedding_dim, embeddings)
        self.feature_dim = feature_dim
        self.dropout = nn.Dropout(dropout)
        self.rnn = self.rnn_type(
            embedding_dim + feature_dim,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,  # torch applies it between layers only
            bidirectional=bidirectional,
        )
        if self.is_causal:
            self.build_lm_head(tie_weights)
        elif tie_weights:
            raise ConfigError("tie_weights needs a unidirectional encoder: a bidirectional one has no next-token head")

    def forward(self, tokens: Tensor, mask: Tensor, features: Tensor | None = None) -> Tensor:
        """Encode a padded batch: ``tokens`` (B, T) long, ``mask`` (B, T) bool, ``features`` (B, T, feature_dim)
        -> (B, T, output_dim)."""
        return self._run(tokens, mask, None, features)[0]

    def _inputs(self, tokens: Tensor, features: Tensor | None) -> Tensor:
        """The RNN's inputs: token embeddings, beside the features when the encoder takes them, after dropout."""
        return self.dropout(self.beside_features(self.token_embedding(tokens), features))

    def layers(self) -> list[list[str]]:
        """The embedding, then each stacked RNN layer (both directions), the next-token head with the top one."""
        groups = [["token_embedding.weight"]]
        for layer in range(self.rnn.num_layers):
            suffixes = (f"_l{layer}", f"_l{layer}_reverse")
            groups.append([f"rnn.{name}" for name, _ in self.rnn.named_parameters() if name.endswith(suffixes)])
        groups[-1] += [name for name, _ in self.named_parameters() if name.startswith("lm_head.")]
        return groups

    def init_cache(self, batch_size: int, capacity: int | None = None) -> RecurrentCache:
        """A zero state for ``batch_size`` sequences (a recurrent state needs no ``capacity``)."""
        if not self.is_causal:
            return super().init_cache(batch_size)
        h = self.token_embedding.weight.new_zeros(self.rnn.num_layers, batch_size, self.rnn.hidden_size)
        return RecurrentCache((h, torch.zeros_like(h)) if isinstance(self.rnn, nn.LSTM) else h)

    def step(self, tokens: Tensor, mask: Tensor | None, cache: RecurrentCache) -> Tensor:
        """Encode the chunk ``tokens`` (B, t) from the cached state, then advance it: (B, t, hidden_size)."""
        if not self.is_causal:
            return super().step(tokens, mask, cache)
        hidden, cache.state = self._run(tokens, mask, cache.state)
        return hidden

    def _recur(self, x: Tensor | PackedSequence, state: RNNState | None) -> tuple[Any, RNNState]:
        """The stacked RNN over ``x``; under CPU bfloat16 autocast on a CPU whose oneDNN has no bfloat16 RNN
        kernels (no AVX-512 bf16, where torch's LSTM fails to build one), the RNN runs in float32 instead."""
        if x.data.device.type == "cpu" and torch.is_autocast_enabled("cpu") and not _cpu_runs_bfloat16_rnns():
            with torch.autocast("cpu", enabled=False):
                return self.rnn(x, state)
        return self.rnn(x, state)

    def _run(
        self, tokens: Tensor, mask: Tensor | None, state: RNNState | None, features: Tensor | None = None
    ) -> tuple[Tensor, RNNState]:
        """Run from ``state`` (None: zeros) over each row's real tokens (``mask`` None: all are real): outputs
        (B, T, H), final state."""
        if mask is None or bool(mask.all()):  # no padding: nothing to pack
            return self._recur(self._inputs(tokens, features), state)
        columns = torch.arange(mask.size(1), device=mask.device)
        # (B, T) column order putting real tokens first, each part in its order (distinct keys: no stable sort,
        # which ONNX export lacks)
        order = torch.argsort(columns + (~mask).long() * mask.size(1), dim=1)
        lengths = mask.sum(1)  # (B,)
        if features is not None:
            features = features.gather(1, order[..., None].expand(-1, -1, features.size(-1)))
        x = self._inputs(tokens.gather(1, order), features)  # (B, T, E + F), real tokens left-aligned
        # packing needs length >= 1: a row without real tokens reads one pad token, undone below
        packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        out, final = self._recur(packed, state)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=tokens.size(1))  # (B, T, H)
        out = torch.zeros_like(out).scatter_(1, order[..., None].expand_as(out), out)  # original column order
        out = out.masked_fill(~mask[..., None], 0.0)
        if state is not None:
            keep = (lengths == 0)[None, :, None]  # (1, B, 1) rows that read nothing keep their state
            final = (
                tuple(torch.where(keep, old, new) for old, new in zip(state, final, strict=True))
                if isinstance(state, tuple)
                else torch.where(keep, state, final)
            )
        return out, final


class ElmanRNNEncoder(RecurrentEncoder):
    """Elman RNN encoder: ``h_t = tanh(W_hh h_{t-1} + W_xh x_t + b_h)``."""

    rnn_type = nn.RNN


class LSTMEncoder(RecurrentEncoder):
    """LSTM encoder."""

    rnn_type = nn.LSTM


class GRUEncoder(RecurrentEncoder):
    """GRU encoder."""

    rnn_type = nn.GRU
