"""Prediction from Python: a task's encoded inputs run in length-sorted batches within a token budget, the one
batching loop of ``Task.predict`` and ``nlpkit serve``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from typing import Any

import torch

from nlpkit.data.batching import token_budget_batches
from nlpkit.models.encoders.linear import packed_inference
from nlpkit.plugin.errors import ConfigError


class Prediction:
    """Mixin of :class:`nlpkit.Task`: batched prediction over its ``encode_many``, ``collate`` and
    ``predict_batch``."""

    def predict(self, inputs: Sequence[Any], batch_size: int = 32, max_tokens: int | None = 8192) -> list[Any]:
        """Predict a list of inputs (texts, or dicts of fields), batched by length; results keep input order.

        A batch holds at most ``batch_size`` inputs and, padding included, ``max_tokens`` tokens (None: no limit).
        """
        return self.map_batches(inputs, self.predict_batch, batch_size, max_tokens=max_tokens)

    def map_batches(
        self,
        inputs: Sequence[Any],
        function: Callable[[dict[str, Any]], list[Any]],
        batch_size: int,
        labeled: bool = False,
        max_tokens: int | None = None,
    ) -> list[Any]:
        """``function`` over length-sorted batches of the encoded ``inputs`` in eval mode; results in input order."""
        if not self.is_built:
            raise ConfigError("this task has not been trained or loaded yet")
        return self.run_examples(self.encode_many(inputs, labeled), function, batch_size, max_tokens)

    @torch.inference_mode()
    def run_examples(
        self,
        examples: Sequence[dict[str, Any]],
        function: Callable[[dict[str, Any]], list[Any]],
        batch_size: int,
        max_tokens: int | None = None,
        on_batch: Callable[[list[int], list[Any]], None] | None = None,
    ) -> list[Any]:
        """``function`` over length-sorted batches of encoded ``examples`` (at most ``batch_size`` examples and, padding
        included, ``max_tokens`` tokens each), in eval and inference mode; results in the examples' order, and each
        batch's indices and results given to ``on_batch`` as soon as they are done. The one batching loop of
        :meth:`predict` and of ``nlpkit serve``'s micro-batches."""
        results: list[Any] = [None] * len(examples)
        with self.evaluating():
            for indices in token_budget_batches([e["length"] for e in examples], batch_size, max_tokens):
                batch_results = self.run_batch([examples[i] for i in indices], indices, function)
                for i, result in zip(indices, batch_results, strict=True):
                    results[i] = result
                if on_batch is not None:
                    on_batch(indices, batch_results)
        return results

    def run_batch(
        self, examples: list[dict[str, Any]], indices: Sequence[int], function: Callable[[dict[str, Any]], list[Any]]
    ) -> list[Any]:
        """Collate encoded ``examples`` (tagged with ``indices``), move them to the model's device, run ``function``."""
        batch = self.collate([{**example, "index": i} for example, i in zip(examples, indices, strict=True)])
        return function(self.transfer_batch_to_device(batch, self.device, 0))

    @contextmanager
    def evaluating(self, packed: bool = True) -> Iterator[None]:
        """Eval mode and (unless not ``packed``) a :func:`packed_inference` span for the duration, then the previous
        mode again: what every inference entry point runs in. A streamed generation opens one per step with
        ``packed=False``: packing would repeat at every token."""
        was_training = self.training
        self.eval()
        try:
            with packed_inference() if packed else nullcontext():
                yield
        finally:
            self.train(was_training)

    # Lightning's validation, test and predict loops run in a span too (the weights do not change inside one)
    def _open_span(self) -> None:
        """Open a :func:`packed_inference` span for one of Lightning's evaluation loops."""
        self._span = ExitStack()
        self._span.enter_context(packed_inference())

    def _close_span(self) -> None:
        """Close the loop's span, dropping its packed weights."""
        span = getattr(self, "_span", None)
        if span is not None:
            span.close()
            self._span = None

    on_validation_start = on_test_start = on_predict_start = _open_span
    on_validation_end = on_test_end = on_predict_end = _close_span
