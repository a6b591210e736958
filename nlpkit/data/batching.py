"""Length-bucketed batches with dynamic padding: similar lengths share a batch, so little compute is padding."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of indices whose lengths are close.

    With ``shuffle``, indices are shuffled, cut into pools of ``pool_factor`` batches, sorted by length
    inside each pool, batched, and the batches shuffled; the order depends only on ``seed`` and the epoch.
    With ``weights``, an epoch instead draws as many indices with replacement, each with probability
    proportional to its weight (temperature-based sampling of languages, say). Without ``shuffle``, batches
    follow length order (the fastest for prediction).

    Under data parallelism every process builds the same global batches of ``batch_size * num_replicas``
    indices and takes every ``num_replicas``-th index of each from ``rank`` on: a step of ``num_replicas``
    processes sees exactly the batch one process with that global batch size would (and every process gets
    similar lengths, so none waits on another). :meth:`skip_next` resumes an epoch after the batches trained on.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        pool_factor: int = 50,
        drop_last: bool = False,
        weights: Sequence[float] | None = None,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), got {rank}")
        self.lengths = list(lengths)
        self.batch_size = batch_size * num_replicas  # the global batch, which each process takes a share of
        self.shuffle = shuffle
        self.seed = seed
        self.pool_factor = pool_factor
        self.drop_last = drop_last
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.double)
        self.epoch = 0
        self.num_replicas = num_replicas
        self.rank = rank
        self._skip = 0

    def skip_next(self, count: int) -> None:
        """Leave out the first ``count`` batches of the next epoch (those trained on before a restart)."""
        self._skip = count

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for ``epoch`` (Lightning calls this each epoch)."""
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        count = len(self.lengths)
        if not self.shuffle:
            order = sorted(range(count), key=self.lengths.__getitem__)
            return self._cut(order)
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        if self.weights is not None:
            order = torch.multinomial(self.weights, count, replacement=True, generator=generator).tolist()
        else:
            order = torch.randperm(count, generator=generator).tolist()
        pool = self.batch_size * self.pool_factor
        batches: list[list[int]] = []
        for start in range(0, count, pool):
            batches.extend(self._cut(sorted(order[start : start + pool], key=self.lengths.__getitem__)))
        shuffled = torch.randperm(len(batches), generator=generator).tolist()
        return [batches[i] for i in shuffled]

    def _cut(self, order: list[int]) -> list[list[int]]:
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._batches()
        if self.num_replicas > 1:
            batches = [self._share(batch) for batch in batches]
        skip, self._skip = self._skip, 0
        return iter(batches[skip:])

    def _share(self, batch: list[int]) -> list[int]:
        """This process's share of a global batch (one with fewer indices than processes lends its own again)."""
        if len(batch) < self.num_replicas:
            batch = [batch[i % len(batch)] for i in range(self.num_replicas)]
        return batch[self.rank :: self.num_replicas]

    def __len__(self) -> int:
        full, rest = divmod(len(self.lengths), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)


def token_budget_batches(lengths: Sequence[int], batch_size: int, max_tokens: int | None = None) -> list[list[int]]:
    """Indices in length order, cut into batches of at most ``batch_size`` indices and (padding included, so the
    longest length times the count) at most ``max_tokens`` tokens; an input longer than the budget goes alone."""
    if batch_size < 1 or (max_tokens is not None and max_tokens < 1):
        raise ValueError(f"batch_size and max_tokens must be >= 1, got {batch_size} and {max_tokens}")
    batches: list[list[int]] = []
    batch: list[int] = []
    for index in sorted(range(len(lengths)), key=lengths.__getitem__):
        full = len(batch) == batch_size
        over = max_tokens is not None and (len(batch) + 1) * max(lengths[index], 1) > max_tokens
        if batch and (full or over):
            batches.append(batch)
            batch = []
        batch.append(index)
    if batch:
        batches.append(batch)
    return batches
