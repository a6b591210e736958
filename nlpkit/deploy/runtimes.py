"""The runtimes an export runs in place of a task's forward: ONNX Runtime and TorchScript."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor

from nlpkit.plugin.errors import ConfigError


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
