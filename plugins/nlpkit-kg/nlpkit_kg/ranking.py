"""Filtered rank-based evaluation: realistic ranks from a score matrix, and the metrics over them.

Memory: ranking a chunk of ``B`` queries against ``N`` entities holds the ``(B, N)`` float32 score matrix and, at
most, two masked copies of it while the ranks and the loss are computed (about ``12 * B * N`` bytes), plus the
scorer's own temporaries (distance models broadcast over candidate chunks of at most
``nlpkit_kg.scorers.BROADCAST_ELEMENTS`` floats). Evaluation ranks ``eval_chunk_size`` queries at a time.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric


def filtered_ranks(scores: Tensor, targets: Tensor, filter_rows: Tensor, filter_columns: Tensor) -> Tensor:
    """Realistic filtered rank of each query's target.

    ``scores`` is ``(B, N)`` (higher is better), ``targets`` ``(B,)``; ``(filter_rows[i], filter_columns[i])`` are the
    other known answers, which are left out of the ranking (the target itself may be among them). The realistic rank
    is the mean of the optimistic rank (1 + candidates scoring higher) and the pessimistic one (1 + candidates scoring
    at least as high), i.e. the expected rank when ties are broken at random.
    """
    rows = torch.arange(len(scores), device=scores.device)
    target_scores = scores[rows, targets]
    scores = scores.clone()
    scores[filter_rows, filter_columns] = float("-inf")
    scores[rows, targets] = float("-inf")  # counted by neither comparison below
    higher = (scores > target_scores[:, None]).sum(dim=1)
    ties = (scores == target_scores[:, None]).sum(dim=1)
    return 1.0 + higher.double() + ties.double() / 2


def filtered_cross_entropy(scores: Tensor, targets: Tensor, filter_rows: Tensor, filter_columns: Tensor) -> Tensor:
    """Mean ``-log softmax`` of each target among the candidates that are not other known answers."""
    rows = torch.arange(len(scores), device=scores.device)
    target_scores = scores[rows, targets]
    masked = scores.float().index_put((filter_rows, filter_columns), torch.tensor(float("-inf"), device=scores.device))
    masked[rows, targets] = target_scores.float()
    return (masked.logsumexp(dim=1) - target_scores.float()).mean()


class RankMetric(Metric):
    """A mean over realistic ranks: reciprocal rank, rank, or hits at ``k``; updated with ``(ranks, _)``.

    Sums and counts only, so it costs constant memory and reduces across processes.
    """

    full_state_update = False

    def __init__(self, statistic: str, k: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if statistic not in ("reciprocal_rank", "rank", "hits"):
            raise ValueError(f"unknown rank statistic '{statistic}'")
        if statistic == "hits" and (k is None or k < 1):
            raise ValueError("hits needs k >= 1")
        self.statistic, self.k = statistic, k
        self.add_state("total", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, ranks: Tensor, targets: Any = None) -> None:
        """Add a batch of realistic ranks."""
        ranks = ranks.double()
        if self.statistic == "reciprocal_rank":
            values = ranks.reciprocal()
        elif self.statistic == "hits":
            values = (ranks <= self.k).double()
        else:
            values = ranks
        self.total += values.sum()
        self.count += ranks.numel()

    def compute(self) -> Tensor:
        """The mean (0 before any update)."""
        return self.total / self.count.clamp_min(1)


def mrr(**_: Any) -> RankMetric:
    """Mean reciprocal (realistic, filtered) rank."""
    return RankMetric("reciprocal_rank")


def mean_rank(**_: Any) -> RankMetric:
    """Mean (realistic, filtered) rank; lower is better."""
    return RankMetric("rank")


def hits_at(k: int) -> Any:
    """A factory of the share of queries whose target ranks within the top ``k``."""

    def factory(**_: Any) -> RankMetric:
        return RankMetric("hits", k=k)

    factory.__doc__ = f"Share of queries whose target ranks within the top {k}."
    return factory


#: the factories the plugin registers as ``hits@1``, ``hits@3`` and ``hits@10``
hits_at_1, hits_at_3, hits_at_10 = hits_at(1), hits_at(3), hits_at(10)
