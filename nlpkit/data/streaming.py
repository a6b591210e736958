"""A training set read from its file as it is consumed: for corpora larger than memory.

The file is read record by record, again and again (one endless epoch; ``trainer.max_steps`` ends training).
Each process of a data-parallel run and each DataLoader worker keeps every n-th record (n = processes x workers),
encodes it, and fills a buffer of ``buffer_size`` examples, which is shuffled and cut into length-bucketed batches.
Memory is bounded by the buffer, whatever the file's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from torch.utils.data import IterableDataset, get_worker_info

from nlpkit.data.batching import BucketBatchSampler
from nlpkit.plugin.errors import ConfigError

#: examples held at once by each worker: shuffled and bucketed together
BUFFER_SIZE = 8192


class StreamedExamples(IterableDataset):
    """Endless batches from ``examples(shard, shards)`` (encoded examples of every ``shards``-th record from
    ``shard`` on), bucketed by length within a buffer and collated by ``collate``.

    :param arrange: turns a buffer of encoded examples into the examples to serve (a language model packs them)
    :param weights: per-example sampling weights of a buffer, or None
    """

    def __init__(
        self,
        examples: Callable[[int, int], Iterator[dict[str, Any]]],
        collate: Callable[[list[dict[str, Any]]], dict[str, Any]],
        arrange: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
        weights: Callable[[list[dict[str, Any]]], list[float] | None],
        batch_size: int,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        buffer_size: int = BUFFER_SIZE,
    ) -> None:
        super().__init__()
        self.examples, self.collate, self.arrange, self.weights = examples, collate, arrange, weights
        self.batch_size, self.seed, self.buffer_size = batch_size, seed, buffer_size
        self.num_replicas, self.rank = num_replicas, rank

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker = get_worker_info()
        workers, worker_id = (worker.num_workers, worker.id) if worker else (1, 0)
        shards, shard = self.num_replicas * workers, self.rank * workers + worker_id
        buffers = 0  # the buffers this shard served: each is shuffled its own way
        while True:  # one pass over the file after another
            buffer: list[dict[str, Any]] = []
            served_before = buffers
            for example in self.examples(shard, shards):
                buffer.append(example)
                if len(buffer) == self.buffer_size:
                    yield from self._batches(buffer, buffers, shard)
                    buffers, buffer = buffers + 1, []
            if buffer:
                yield from self._batches(buffer, buffers, shard)
                buffers += 1
            if buffers == served_before:
                raise ConfigError(f"streamed training file: shard {shard} of {shards} (processes x workers) is empty")

    def _batches(self, buffer: list[dict[str, Any]], number: int, shard: int) -> Iterator[dict[str, Any]]:
        examples = [{**example, "index": i} for i, example in enumerate(self.arrange(buffer))]
        lengths = [example["length"] for example in examples]
        sampler = BucketBatchSampler(
            lengths, self.batch_size, seed=self.seed + 1_000_003 * shard, weights=self.weights(examples)
        )
        sampler.set_epoch(number)
        for batch in sampler:
            yield self.collate([examples[i] for i in batch])
