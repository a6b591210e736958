"""A linear-chain conditional random field over per-token tag scores, batched, with optional forbidden moves.

Shapes: B batch, T time steps, C tags. Masks are prefix masks: each row's real positions come first, at least one
per row (what a right-padded batch gives). The loops run over time only; every step handles the whole batch.
Padded positions are never read: their emissions and tags may hold anything (e.g. ``-100`` labels).
All arithmetic is float32, also under bf16 autocast or with bf16 parameters.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import cache

import torch
from torch import Tensor, nn

FORBIDDEN_SCORE = -1e4  # added to a forbidden move's score: exp(-1e4) is 0 in float32, so it carries no mass


class CRF(nn.Module):
    """Linear-chain CRF; bool ``allowed`` (C, C), ``allowed_start`` (C,), ``allowed_end`` (C,) forbid moves."""

    def __init__(
        self,
        num_tags: int,
        allowed: Tensor | None = None,
        allowed_start: Tensor | None = None,
        allowed_end: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags))  # (C, C), from row tag to column tag
        self.start = nn.Parameter(torch.empty(num_tags))  # (C,)
        self.end = nn.Parameter(torch.empty(num_tags))  # (C,)
        for name, shape, mask in (
            ("transition_penalty", (num_tags, num_tags), allowed),
            ("start_penalty", (num_tags,), allowed_start),
            ("end_penalty", (num_tags,), allowed_end),
        ):
            self.register_buffer(name, _penalty(mask, shape), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw every score uniformly from [-0.1, 0.1] (pytorch-crf's initialisation)."""
        for parameter in (self.transitions, self.start, self.end):
            nn.init.uniform_(parameter, -0.1, 0.1)

    def forward(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Mean negative log-likelihood over the batch (the training loss): (B, T, C), (B, T), (B, T) -> ()."""
        return -self.log_likelihood(emissions, tags, mask).mean()

    def log_likelihood(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """log p(tags | emissions) per row: (B, T, C), (B, T) long, (B, T) bool -> (B,)."""
        emissions, mask, lengths = self._prepare(emissions, mask)
        return self._score(emissions, tags, mask, lengths) - self._log_partition(emissions, lengths)

    def log_partition(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """log Z per row, the forward algorithm in log space: (B, T, C), (B, T) bool -> (B,)."""
        emissions, _, lengths = self._prepare(emissions, mask)
        return self._log_partition(emissions, lengths)

    def score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Unnormalised score of the given tag paths: (B, T, C), (B, T) long, (B, T) bool -> (B,)."""
        emissions, mask, lengths = self._prepare(emissions, mask)
        return self._score(emissions, tags, mask, lengths)

    @torch.no_grad()
    def decode(self, emissions: Tensor, mask: Tensor) -> list[list[int]]:
        """Viterbi: each row's highest-scoring tag path, of its real length: (B, T, C), (B, T) bool."""
        paths = self.best_paths(emissions, mask)
        return [row[:length] for row, length in zip(paths.tolist(), mask.sum(1).tolist(), strict=True)]

    def best_paths(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """Viterbi as a tensor: each row's best tag path (B, T) long, 0 past its end. Exports to an ONNX loop."""
        emissions, mask, _ = self._prepare(emissions, mask)
        return scripted_viterbi()(emissions, mask, *self._potentials())

    def _potentials(self) -> tuple[Tensor, Tensor, Tensor]:
        """The float32 transition (C, C), start (C,) and end (C,) scores with forbidden moves penalised."""
        return (
            self.transitions.float() + self.transition_penalty,
            self.start.float() + self.start_penalty,
            self.end.float() + self.end_penalty,
        )

    def _prepare(self, emissions: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Check shapes and the prefix mask; float32 emissions (B, T, C), padding zeroed, bool mask, lengths (B,)."""
        batch, length, num_tags = emissions.shape
        if num_tags != self.num_tags or mask.shape != (batch, length):
            raise ValueError(f"emissions {tuple(emissions.shape)} and mask {tuple(mask.shape)} do not fit {num_tags=}")
        mask = mask.bool()
        lengths = mask.sum(dim=1)  # (B,)
        prefix = torch.arange(length, device=mask.device) < lengths.unsqueeze(1)  # (B, T)
        if not bool(((prefix == mask).all() & (lengths > 0).all()).item()):
            raise ValueError("the mask must be a prefix mask with at least one real position per row")
        return emissions.float().masked_fill(~mask.unsqueeze(2), 0.0), mask, lengths

    def _score(self, emissions: Tensor, tags: Tensor, mask: Tensor, lengths: Tensor) -> Tensor:
        """Gold path scores (B,) from prepared emissions (B, T, C), tags (B, T), bool mask (B, T), lengths (B,)."""
        transitions, start, end = self._potentials()
        tags = tags.long().masked_fill(~mask, 0)  # padding labels may be out of range (e.g. -100)
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2).sum(dim=1)  # (B,); padding emits 0
        moves = transitions[tags[:, :-1], tags[:, 1:]]  # (B, T - 1)
        moved = (moves * mask[:, 1:]).sum(dim=1)  # (B,)
        last = tags.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)  # (B,)
        return start[tags[:, 0]] + emitted + moved + end[last]

    def _log_partition(self, emissions: Tensor, lengths: Tensor) -> Tensor:
        """log Z (B,) from prepared emissions (B, T, C) and lengths (B,)."""
        transitions, start, end = self._potentials()
        steps = emissions.unbind(1)  # T x (B, C); unbind's backward stacks the gradients once
        alpha = start + steps[0]  # (B, C): log-sum of the scores of all paths ending in each tag
        alphas = [alpha]
        for emission in steps[1:]:
            alpha = torch.logsumexp(alpha.unsqueeze(2) + transitions, dim=1) + emission  # (B, C)
            alphas.append(alpha)
        rows = torch.arange(len(lengths), device=lengths.device)
        return torch.logsumexp(torch.stack(alphas)[lengths - 1, rows] + end, dim=1)  # (B,), each at its own end


def viterbi(emissions: Tensor, mask: Tensor, transitions: Tensor, start: Tensor, end: Tensor) -> Tensor:
    """Best paths (B, T) long, 0 past each row's end, of float emissions (B, T, C) under a prefix mask (B, T).

    :func:`scripted_viterbi` compiles it, so that tracing (ONNX and TorchScript export) keeps its loops over time
    instead of unrolling them.
    Past a row's end its scores stay as they were and its back-pointers point to themselves, so the last step holds
    every row's best scores at its own end and the backtrack carries its last tag unchanged down to it.
    """
    batch, length, num_tags = emissions.shape
    keep = torch.arange(num_tags, device=emissions.device).expand(batch, num_tags)  # (B, C)
    best = start + emissions[:, 0]  # (B, C): best score of a path ending in each tag
    # pointers[t - 1, b, j]: row b's best tag at t - 1 of a path with tag j at t (filled in place: no quadratic copies)
    pointers = keep.new_zeros(max(length - 1, 0), batch, num_tags)  # (T - 1, B, C)
    for t in range(1, length):
        scores, pointer = (best.unsqueeze(2) + transitions).max(dim=1)  # (B, C) each: over the previous tag
        real = mask[:, t].unsqueeze(1)  # (B, 1)
        best = torch.where(real, scores + emissions[:, t], best)
        pointers[t - 1] = torch.where(real, pointer, keep)
    tag = (best + end).argmax(dim=1, keepdim=True)  # (B, 1): each row's best last tag
    path = keep.new_zeros(batch, length)  # (B, T)
    path[:, length - 1] = tag.squeeze(1)
    for step in range(length - 1):
        tag = pointers[length - 2 - step].gather(1, tag)
        path[:, length - 2 - step] = tag.squeeze(1)
    return path * mask.long()


@cache
def scripted_viterbi() -> Callable[..., Tensor]:
    """:func:`viterbi` compiled by TorchScript (once, on first use)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"`torch.jit.script` is deprecated", DeprecationWarning)
        return torch.jit.script(viterbi)


def _penalty(allowed: Tensor | None, shape: tuple[int, ...]) -> Tensor:
    """``FORBIDDEN_SCORE`` where ``allowed`` is False, else 0 (all zeros without a mask), float32 of ``shape``."""
    if allowed is None:
        return torch.zeros(shape)
    if tuple(allowed.shape) != shape:
        raise ValueError(f"an allowed mask of shape {tuple(allowed.shape)} where {shape} was expected")
    return torch.where(allowed.bool(), 0.0, FORBIDDEN_SCORE).float()
