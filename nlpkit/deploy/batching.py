"""The model thread of ``nlpkit serve``: concurrent requests' examples run together, in rounds fair to each request."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from nlpkit.data.batching import token_budget_batches
from nlpkit.deploy.limits import ServerLimits
from nlpkit.deploy.requests import RequestError
from nlpkit.training.task import Task

#: what the model runs on a collated batch: ``task.predict_batch``, or generation with given settings
BatchFunction = Callable[[dict[str, Any]], list[Any]]


@dataclass
class _Pending:
    examples: list[dict[str, Any]]
    future: asyncio.Future[list[Any]]
    function: BatchFunction
    key: str  # requests batch together when their keys are equal (the same function and settings)
    parts: deque[list[int]]  # the positions of each model batch not yet run, length-sorted (token_budget_batches)
    results: dict[int, Any] = field(default_factory=dict)  # example position -> result, as its batch finishes

    @property
    def left(self) -> int:
        """Examples not yet handed to the model."""
        return sum(len(part) for part in self.parts)

    def deliver(self, position: int, result: Any) -> None:
        """One example's result; with all of them, the request is answered (unless its client went away)."""
        self.results[position] = result
        if len(self.results) == len(self.examples) and not self.future.done():
            self.future.set_result([self.results[i] for i in range(len(self.examples))])


class MicroBatcher:
    """Runs the examples of concurrent requests batched on one model thread: ``/predict`` requests together,
    ``/embed`` requests together, and ``/generate`` requests with the same settings together.

    Requests wait in arrival order. A round takes the kind of the oldest and, from every waiting request of that
    kind, its next model batch (``max_batch`` examples, ``max_tokens`` tokens, cut from its length-sorted examples
    as ``Task.predict`` cuts them); they run together, and a request with examples left goes to the back. So a
    large request is served a model batch at a time between the others, and a small one never waits for all of it.
    """

    def __init__(self, task: Task, limits: ServerLimits) -> None:
        self.task = task
        self.limits = limits
        self.arrivals: asyncio.Queue[_Pending] = asyncio.Queue()
        self.waiting: list[_Pending] = []  # requests with examples left, in the order they are next served
        self.model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nlpkit-model")
        self.batch_limits = (limits.max_batch, limits.max_tokens)  # one model batch's most examples and tokens
        self.batches = 0  # model batches run so far (the /metadata figures)
        self.examples = 0
        self.queued = 0  # examples not yet handed to the model

    async def run_examples(
        self, examples: list[dict[str, Any]], function: BatchFunction | None = None, key: str = "predict"
    ) -> list[Any]:
        """``function`` (default ``task.predict_batch``) of one request's encoded examples, in order; a 503 with
        ``Retry-After`` when ``max_queued`` examples already wait, so overload is refused instead of queued."""
        if self.queued + len(examples) > self.limits.max_queued:
            raise RequestError(503, f"the server is at capacity ({self.queued} examples waiting); retry", 1)
        self.queued += len(examples)
        future = asyncio.get_running_loop().create_future()
        parts = token_budget_batches([example["length"] for example in examples], *self.batch_limits)
        await self.arrivals.put(_Pending(examples, future, function or self.task.predict_batch, key, deque(parts)))
        return await future

    async def run(self) -> None:
        """Serve rounds for as long as requests come; when idle, the first request waits up to ``max_wait_ms`` (or
        until ``max_batch`` examples) for others to join it."""
        loop = asyncio.get_running_loop()
        while True:
            if not self.waiting:
                self.waiting.append(await self.arrivals.get())
                count, deadline = len(self.waiting[0].examples), loop.time() + self.limits.max_wait_ms / 1000
                while count < self.limits.max_batch and (left := deadline - loop.time()) > 0:
                    try:
                        self.waiting.append(await asyncio.wait_for(self.arrivals.get(), left))
                    except TimeoutError:
                        break
                    count += len(self.waiting[-1].examples)
            while not self.arrivals.empty():
                self.waiting.append(self.arrivals.get_nowait())
            await self._round()

    async def _round(self) -> None:
        """One round: the next examples of every waiting request of the oldest one's kind, run together."""
        for pending in self.waiting:
            if pending.future.done():  # a client that went away, or a request that failed
                self.queued -= pending.left
                pending.parts.clear()
        self.waiting = [pending for pending in self.waiting if pending.parts]
        if not self.waiting:
            return
        kind = self.waiting[0].key
        members = [pending for pending in self.waiting if pending.key == kind]
        parts = [pending.parts.popleft() for pending in members]
        self.queued -= sum(len(part) for part in parts)
        await self._answer(members, parts)
        self.waiting = [pending for pending in self.waiting if pending.key != kind] + members

    async def _answer(self, members: list[_Pending], parts: list[list[int]]) -> None:
        """Run the requests' parts together, each model batch's results given to their requests as it finishes (so
        a small request is answered before the round's long batches); a part that fails by itself fails its
        request with its own error."""
        loop = asyncio.get_running_loop()
        owners = [(pending, position) for pending, part in zip(members, parts, strict=True) for position in part]

        def finished(indices: list[int], results: list[Any]) -> None:  # on the model thread
            loop.call_soon_threadsafe(self._deliver, [owners[i] for i in indices], results)

        examples = [pending.examples[position] for pending, position in owners]
        try:
            await loop.run_in_executor(self.model_thread, self._run, examples, members[0].function, finished)
        except Exception as error:
            if len(members) == 1:  # the request fails with its own error; the server goes on
                if not members[0].future.done():
                    members[0].future.set_exception(error)
                return
            for pending, part in zip(members, parts, strict=True):  # each alone, so only its own error fails it
                if not pending.future.done():
                    await self._answer([pending], [part])

    @staticmethod
    def _deliver(owners: list[tuple[_Pending, int]], results: list[Any]) -> None:
        """Give each request its examples' results."""
        for (pending, position), result in zip(owners, results, strict=True):
            pending.deliver(position, result)

    def _run(
        self, examples: list[dict[str, Any]], function: BatchFunction, on_batch: Callable[[list[int], list[Any]], None]
    ) -> None:
        """``function`` of ``examples`` through the task's own batching loop (length-sorted batches within the token
        budget), each batch's results to ``on_batch``."""

        def counted(batch: dict[str, Any]) -> list[Any]:
            self.batches += 1
            return function(batch)

        self.task.run_examples(examples, counted, *self.batch_limits, on_batch)
        self.examples += len(examples)

    def call(self, function: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Run ``function(*args)`` on the model thread (the steps of a streamed generation, which are not
        micro-batched)."""
        return asyncio.get_running_loop().run_in_executor(self.model_thread, function, *args)
