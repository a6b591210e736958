"""A task's fixed forward, the part that export traces and that an exported model runs in its place.

A task that can be exported names the batch tensors its forward reads (:meth:`Inference.inference_inputs`) and
maps them to named output tensors (:meth:`Inference.infer`); its ``predict_batch`` reads those outputs through
:meth:`Inference.outputs_of`. A task loaded from an export (``nlpkit.load("export/")``) has a :class:`Runtime`
that computes the same outputs with ONNX Runtime or TorchScript, so encoding, batching and the Python results are
the task's own code either way.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from nlpkit.errors import ConfigError, ExportError


class Runtime(Protocol):
    """Computes a task's named outputs from its named input tensors (an ONNX Runtime session, a TorchScript
    module)."""

    def __call__(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Outputs for one batch."""
        ...


class Inference:
    """Mixin of :class:`nlpkit.Task`: the fixed forward and the runtime that may replace it."""

    #: set by :func:`nlpkit.export.load_export`: the exported graph, run instead of :meth:`infer`
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


class OnnxRuntime:
    """An ONNX model run by ONNX Runtime on the CPU (``pip install 'nlpkit[export]'``)."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        try:
            import onnxruntime
        except ImportError as error:
            raise ConfigError("running an ONNX export needs onnxruntime: pip install 'nlpkit[export]'") from error
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.log_severity_level = 3  # errors only: the quantizer's graphs make it chatty about shape inference
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [graph_input.name for graph_input in self.session.get_inputs()]  # the exporter drops
        self.output_names = [output.name for output in self.session.get_outputs()]  # inputs the graph never reads

    def __call__(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Run the session on the batch's tensors (as NumPy arrays, zero-copy on the CPU)."""
        feed = {name: inputs[name].cpu().numpy() for name in self.input_names}
        outputs = self.session.run(self.output_names, feed)
        return {name: torch.from_numpy(value) for name, value in zip(self.output_names, outputs, strict=True)}


class TorchScriptRuntime:
    """A traced TorchScript module whose positional outputs are named by ``output_names``."""

    def __init__(self, path: str | Path, output_names: list[str]) -> None:
        with warnings.catch_warnings():  # TorchScript is deprecated in torch, and still its one C++-loadable format
            warnings.filterwarnings("ignore", r"`torch.jit.load` is deprecated", DeprecationWarning)
            self.module = torch.jit.load(str(path), map_location="cpu").eval()
        self.output_names = output_names

    def __call__(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Call the module with the inputs in order."""
        with torch.inference_mode():
            outputs = self.module(*inputs.values())
        return dict(zip(self.output_names, outputs, strict=True))
