"""Export a trained task's fixed forward to ONNX or TorchScript, with everything needed to run it beside it.

An export directory holds the graph (``model.onnx`` or ``model.pt``), the tokenizer (a SentencePiece
``tokenizer.model`` or a Hugging Face ``tokenizer.json``), the labels (``labels.json``) and ``model.json`` (task,
hyperparameters, input and output names, plugin versions). ``nlpkit.load(directory)`` rebuilds the task from it
and runs the graph in place of the weights, so prediction goes through the task's own encoding, batching and
results.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from nlpkit.deploy.runtimes import OnnxRuntime, TorchScriptRuntime
from nlpkit.models.tokenizers import Tokenizer
from nlpkit.plugin.configurable import class_path
from nlpkit.plugin.errors import ConfigError, ExportError
from nlpkit.plugin.files import current_umask
from nlpkit.plugin.loader import plugin_versions, registry
from nlpkit.plugin.version import __version__
from nlpkit.training.inference import Runtime
from nlpkit.training.task import Task

Format = Literal["onnx", "torchscript"]
FORMATS: tuple[Format, ...] = ("onnx", "torchscript")
GRAPH_FILES: dict[Format, str] = {"onnx": "model.onnx", "torchscript": "model.pt"}
MANIFEST = "model.json"
#: what a task's modules are built from besides the tokenizer and labels (:meth:`Task.artifacts`)
ARTIFACTS = "artifacts.json"
#: the file names a tokenizer is exported as, by backend
TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json")
EXPORT_FORMAT = 1
OPSET = 17
#: the layers torch's dynamic quantization makes int8 in a TorchScript export. Not its LSTM and GRU: traced over
#: packed sequences, torch's quantized RNNs keep the example's batch sizes and fail on any other batch
QUANTIZED_LAYERS = {nn.Linear}


@dataclass
class ExportReport:
    """What :func:`export` wrote and how closely the export reproduces the model on the example inputs."""

    directory: Path
    format: Format
    quantized: bool
    max_difference: float  # the largest |export - eager| over every floating-point output
    mismatches: int  # integer outputs (decoded tags) that differ from eager

    def summary(self) -> str:
        """One line for the command line."""
        size = sum(path.stat().st_size for path in self.directory.iterdir()) / 2**20
        mode = f"{self.format}, int8 dynamic" if self.quantized else self.format
        agreement = f"max |export - eager| = {self.max_difference:.2e}"
        if self.mismatches:
            agreement += f", {self.mismatches} decoded positions differ"
        return f"exported to {self.directory} ({mode}, {size:.1f} MiB); on the example inputs {agreement}"


class _Graph(nn.Module):
    """The task's :meth:`~nlpkit.training.inference.Inference.infer` as a module of positional tensors, for tracing."""

    def __init__(self, task: Task, names: tuple[str, ...]) -> None:
        super().__init__()
        self.task = task
        self.names = names

    def forward(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        """Outputs in the order ``infer`` names them."""
        return tuple(self.task.infer(dict(zip(self.names, tensors, strict=True))).values())


def batch_of(task: Task, items: list[Any]) -> dict[str, Any]:
    """A collated batch of raw inputs, as ``predict`` makes one."""
    examples = task.encode_many(items)
    return task.collate([{**example, "index": i} for i, example in enumerate(examples)])


def export(task: Task, directory: str | Path, format: Format = "onnx", quantize: bool = False) -> ExportReport:
    """Write ``task`` to ``directory`` (replacing an earlier export there) and check it against eager outputs.

    ``quantize`` makes weights int8 with dynamic quantization: ONNX Runtime's for ONNX (every MatMul, LSTM and GRU),
    torch's for TorchScript (Linear layers). The task's ``datamodule_hparams`` (set by ``nlpkit.load``) go along, so
    ``nlpkit predict --ckpt_path EXPORT`` reads files as training did. The directory appears whole or not at all.
    """
    if format not in FORMATS:
        raise ConfigError(f"export format must be one of {', '.join(FORMATS)}, got {format!r}")
    if task.runtime is not None:
        raise ExportError("this model was loaded from an export: export its checkpoint instead")
    names = task.inference_inputs()
    target = Path(directory)
    _refuse_foreign_directory(target)
    device = task.device
    task.cpu()  # traced on the CPU, where ONNX Runtime runs it; moved back below
    with task.evaluating(), torch.no_grad():
        batch = batch_of(task, task.export_examples())
        inputs = {name: batch[name] for name in names}
        reference = task.infer(inputs)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            graph = _Graph(task, names).eval()
            with _quiet_tracing(task):
                _write_graph(graph, inputs, reference, staging, format, quantize)
            _write_manifest(task, staging, format, quantize, names, list(reference))
            outputs = runtime_for(staging, json.loads((staging / MANIFEST).read_text()))(inputs)
            difference, mismatches = compare_outputs(reference, outputs)
            staging.chmod(0o777 & ~current_umask())  # mkdtemp makes it owner-only
            _replace_directory(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            task.to(device)
    return ExportReport(target, format, quantize, difference, mismatches)


@contextmanager
def _quiet_tracing(task: Task) -> Iterator[None]:
    """Trace without the notes that are not the user's to act on: tracer warnings about branches fixed at trace
    time, the exporter's C++ notes on packed sequences, ONNX Runtime's quantizer advice. Lightning's own attributes
    (``trainer``) are skipped as during its ``to_torchscript``."""
    stderr = 2  # the C++ notes go to the process's stderr, whatever sys.stderr is
    sys.stderr.flush()
    saved = os.dup(stderr)
    quantizer_log = logging.getLogger()
    level = quantizer_log.level
    task._jit_is_scripting = True
    try:
        with warnings.catch_warnings(), open(os.devnull, "w") as devnull:
            warnings.simplefilter("ignore")
            quantizer_log.setLevel(logging.ERROR)
            os.dup2(devnull.fileno(), stderr)
            yield
    finally:
        os.dup2(saved, stderr)
        os.close(saved)
        quantizer_log.setLevel(level)
        task._jit_is_scripting = False


def _write_graph(
    graph: _Graph,
    inputs: dict[str, Tensor],
    outputs: dict[str, Tensor],
    directory: Path,
    format: Format,
    quantize: bool,
) -> None:
    """Trace ``graph`` on ``inputs`` (giving ``outputs``) into ``directory``, every axis of every tensor dynamic."""
    path = directory / GRAPH_FILES[format]
    example = tuple(inputs.values())
    if format == "torchscript":
        if quantize:
            graph = torch.ao.quantization.quantize_dynamic(graph, QUANTIZED_LAYERS, dtype=torch.qint8)
        torch.jit.trace(graph, example, check_trace=False).save(str(path))
        return
    try:
        import onnx  # noqa: F401  (the exporter needs it)
    except ImportError as error:
        raise ConfigError("ONNX export needs onnx and onnxruntime: pip install 'nlpkit[export]'") from error
    axes = {name: {axis: f"{name}_{axis}" for axis in range(value.dim())} for name, value in (inputs | outputs).items()}
    # the TorchScript-based exporter: it records both the RNNs' packed sequences and the CRF's Viterbi loop
    torch.onnx.export(
        graph, example, str(path), dynamo=False, input_names=list(inputs), output_names=list(outputs),
        dynamic_axes=axes, opset_version=OPSET,
    )  # fmt: skip
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        float_path = path.with_suffix(".float.onnx")
        path.rename(float_path)
        quantize_dynamic(str(float_path), str(path), weight_type=QuantType.QInt8)
        float_path.unlink()


def _write_manifest(
    task: Task, directory: Path, format: Format, quantize: bool, inputs: tuple[str, ...], outputs: list[str]
) -> None:
    from nlpkit.training.checkpoints import plain_hyperparameters

    tokenizer: Tokenizer | None = task.tokenizer
    if tokenizer is not None:
        tokenizer.save(directory / tokenizer.filename)
    (directory / "labels.json").write_text(json.dumps(task.labels, ensure_ascii=False, indent=1) + "\n", "utf-8")
    if artifacts := task.artifacts():
        (directory / ARTIFACTS).write_text(json.dumps(artifacts, ensure_ascii=False), "utf-8")
    hyperparameters = {k: v for k, v in plain_hyperparameters(task).items() if k != "_instantiator"}
    manifest = {
        "export_format": EXPORT_FORMAT,
        "nlpkit_version": __version__,
        "task": registry("tasks").name_of(type(task)),
        "task_class": class_path(type(task)),
        "runtime": format,
        "graph": GRAPH_FILES[format],
        "quantized": "dynamic-int8" if quantize else None,
        "inputs": list(inputs),
        "outputs": outputs,
        "onnx_opset": OPSET if format == "onnx" else None,
        "max_length": tokenizer.max_length if tokenizer is not None else None,
        "hyper_parameters": hyperparameters,
        "data_hyper_parameters": task.datamodule_hparams,
        "plugins": plugin_versions(),
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", "utf-8")


def compare_outputs(reference: dict[str, Tensor], outputs: dict[str, Tensor]) -> tuple[float, int]:
    """The largest absolute difference over floating outputs, and the count of differing integer entries."""
    difference, mismatches = 0.0, 0
    for name, expected in reference.items():
        got = outputs[name].to(expected.dtype)
        if expected.is_floating_point():
            gap = torch.where(got == expected, 0.0, (got - expected).abs())  # equal infinities differ by nothing
            difference = max(difference, float(gap.nan_to_num(nan=math.inf).max()) if gap.numel() else 0.0)
        else:
            mismatches += int((got != expected).sum())
    return difference, mismatches


def _refuse_foreign_directory(target: Path) -> None:
    """An ExportError when ``target`` is a file or a non-empty directory that is not an earlier export."""
    if target.exists() and (not target.is_dir() or (any(target.iterdir()) and not (target / MANIFEST).is_file())):
        raise ExportError(f"{target}: exists and is not an nlpkit export; choose a new or empty directory")


def _replace_directory(staging: Path, target: Path) -> None:
    """Move the finished ``staging`` directory to ``target``, the earlier export (if any) out of the way first."""
    previous = target.with_name(f".{target.name}.previous")
    if target.exists():
        shutil.rmtree(previous, ignore_errors=True)
        target.rename(previous)
    staging.rename(target)
    shutil.rmtree(previous, ignore_errors=True)


# -- loading ---------------------------------------------------------------------------------------------------
def is_export(path: str | Path) -> bool:
    """Whether ``path`` is an export directory (it holds ``model.json``)."""
    return (Path(path) / MANIFEST).is_file()


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """``model.json`` of an export directory, checked."""
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise ExportError(f"{path}: not a readable export manifest ({error})") from error
    if not isinstance(manifest, dict) or manifest.get("export_format") != EXPORT_FORMAT:
        raise ExportError(f"{path}: not an nlpkit export manifest of format {EXPORT_FORMAT}")
    return manifest


def runtime_for(directory: Path, manifest: dict[str, Any], threads: int | None = None) -> Runtime:
    """The runtime that runs an export's graph."""
    graph = directory / manifest["graph"]
    if manifest["runtime"] == "onnx":
        return OnnxRuntime(graph, threads)
    return TorchScriptRuntime(graph, manifest["outputs"])


def load_export(directory: str | Path, threads: int | None = None) -> Task:
    """The task of an export directory, its forward run by ONNX Runtime or TorchScript (``nlpkit.load`` calls
    this for a directory holding ``model.json``)."""
    from nlpkit.training.checkpoints import build_task

    manifest = read_manifest(directory)
    task = build_task(manifest, manifest["hyper_parameters"], directory)
    attach_export(task, directory, threads, manifest)
    return task.eval()


def attach_export(
    task: Task, directory: str | Path, threads: int | None = None, manifest: dict[str, Any] | None = None
) -> None:
    """Bind ``task`` (built from the export's hyperparameters) to the export's tokenizer and labels, and run its
    forward with the export's runtime (``nlpkit predict --ckpt_path EXPORT`` does this to the CLI's model);
    ``manifest`` is the export's ``model.json`` when the caller has already read it."""
    directory = Path(directory)
    manifest = manifest or read_manifest(directory)
    tokenizer_path = next((directory / name for name in TOKENIZER_FILES if (directory / name).is_file()), None)
    tokenizer = Tokenizer.load(tokenizer_path, manifest["max_length"]) if tokenizer_path else None
    if (directory / ARTIFACTS).is_file():
        task.restore_artifacts(json.loads((directory / ARTIFACTS).read_text("utf-8")))
    task.bind(tokenizer, json.loads((directory / "labels.json").read_text("utf-8")), fresh=False)
    task.runtime = runtime_for(directory, manifest, threads)
