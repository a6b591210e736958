"""A task's fixed forward, the part that export traces and that an exported model runs in its place.

A task that can be exported names the batch tensors its forward reads (:meth:`Inference.inference_inputs`) and
maps them to named output tensors (:meth:`Inference.infer`); its ``predict_batch`` reads those outputs through
:meth:`Inference.outputs_of`. A task loaded from an export (``nlpkit.load("export/")``) has a :class:`Runtime`
that computes the same outputs with ONNX Runtime or TorchScript, so encoding, batching and the Python results are
the task's own code either way.
"""

from __future__ import annotations

from typing import Any, Protocol

from torch import Tensor

from nlpkit.plugin.errors import ConfigError, ExportError


class Runtime(Protocol):
    """Computes a task's named outputs from its named input tensors (an ONNX Runtime session, a TorchScript
    module)."""

    def __call__(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Outputs for one batch."""
        ...


class Inference:
    """Mixin of :class:`nlpkit.Task`: the fixed forward and the runtime that may replace it."""

    #: set by :func:`nlpkit.deploy.export.load_export`: the exported graph, run instead of :meth:`infer`
    runtime: Runtime | None = None

    def inference_inputs(self) -> tuple[str, ...]:
        """The batch tensors :meth:`infer` reads, in order; a task without a fixed forward raises ExportError."""
        raise ExportError(
            f"{type(self).__name__} defines no fixed forward to export (inference_inputs and infer); "
            "serve or load its checkpoint instead"
        )

    def infer(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Named output tensors of a batch's :meth:`inference_inputs`: what an export computes."""
        raise NotImplementedError

    def outputs_of(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """:meth:`infer` on a collated batch, or the export's runtime when the task was loaded from one."""
        inputs = {name: batch[name] for name in self.inference_inputs()}
        if self.runtime is not None:
            return self.runtime(inputs)
        return self.infer(inputs)

    def export_examples(self) -> list[Any]:
        """Inputs to trace an export with and check it on: texts of different lengths, so the batch has padding.

        They are made of the tokenizer's own pieces, spread over its vocabulary (special tokens left out); a task
        whose inputs are not texts overrides this.
        """
        tokenizer = getattr(self, "tokenizer", None)
        if tokenizer is None:
            raise ExportError(f"{type(self).__name__} reads no text: it must give its own export_examples()")
        special = set(tokenizer.special_ids()) | {tokenizer.unk_id}
        step = max(tokenizer.vocab_size // 40, 1)
        ids = [i for i in range(step // 2, tokenizer.vocab_size, step) if i not in special]
        return [tokenizer.decode([ids[:length]])[0] or "a" for length in (3, 9, 17)]

    def require_weights(self, what: str) -> None:
        """A ConfigError when the task runs from an export, which holds no weights for ``what``."""
        if self.runtime is not None:
            raise ConfigError(f"{what} needs the model's weights: load the checkpoint, not its export")
