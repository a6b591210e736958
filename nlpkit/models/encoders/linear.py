"""Linear layers that run inference fast on the CPU, on a weight packed once for oneDNN.

Without autograd, a projection on the CPU runs through oneDNN on a copy of the weight reordered into oneDNN's
blocked layout (``torch.ops.mkldnn``'s packed linear, also used by ``torch.compile``'s CPU freezing; where a torch
build lacks it, ``F.linear`` runs). Decoding multiplies a few rows by every weight, so its time goes to
reading the weights, and the packed copy reads them faster than ``F.linear`` (MKL on ``nn.Linear``'s ``(out, in)``
weight) does: docs/performance.md has the measured speed-ups.

:func:`linear` uses a packed copy only inside :func:`packed_inference`, a span that every inference entry point
opens (``Task.evaluating``: ``predict``, generation, embedding, the server's batches; Lightning's validation, test
and predict loops), for float32 on the CPU without autograd, while oneDNN is enabled, and never while tracing,
exporting or compiling. A weight is packed on its first use in the span (again if an in-place op bumps its version
there), and every copy is dropped when the thread's outermost span ends. So an edit between two inference calls,
whatever its path (``weight.data.mul_``, ``load_state_dict``, ``.to()``, ``half().float()``, an optimizer step,
a new storage), can never meet a stale copy.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.weak import WeakIdKeyDictionary


@dataclass
class _Span:
    depth: int = 0  # spans open on the thread
    packs: WeakIdKeyDictionary = field(default_factory=WeakIdKeyDictionary)  # weight -> ((data_ptr, version), copy)


_spans: dict[int, _Span] = {}  # thread id -> its open span
_HAS_ONEDNN_LINEAR = torch.backends.mkldnn.is_available() and all(
    hasattr(torch.ops.mkldnn, op) for op in ("_reorder_linear_weight", "_linear_pointwise")
)


@contextmanager
def packed_inference() -> Iterator[None]:
    """A span of inference in which float32 CPU projections may run on packed weights (see the module's docstring);
    the packs are dropped when the thread's outermost span ends. Spans nest."""
    thread = threading.get_ident()  # a generator may end on another thread than it began on: close this one's
    span = _spans.setdefault(thread, _Span())
    span.depth += 1
    try:
        yield
    finally:
        span.depth -= 1
        if span.depth == 0:
            del _spans[thread]


def _uses_packed(x: Tensor, weight: Tensor) -> bool:
    """Whether ``x @ weight.T`` runs through oneDNN on the packed copy (see the module's docstring)."""
    return (
        _HAS_ONEDNN_LINEAR
        and threading.get_ident() in _spans
        and x.device.type == "cpu"
        and x.dtype == weight.dtype == torch.float32
        and not torch.is_grad_enabled()
        and not weight.is_inference()
        and torch.backends.mkldnn.enabled
        and not torch.is_autocast_enabled("cpu")
        and not torch.jit.is_tracing()
        and not torch.jit.is_scripting()
        and not torch.onnx.is_in_onnx_export()
        and not torch.compiler.is_compiling()
    )


def packed_weight(weight: Tensor) -> Tensor:
    """``weight`` reordered for oneDNN's linear, kept for the open span (made again when its storage or version
    counter changes within it)."""
    stamp = (weight.data_ptr(), weight._version)
    packs = _spans[threading.get_ident()].packs
    held = packs.get(weight)
    if held is None or held[0] != stamp:
        held = (stamp, torch.ops.mkldnn._reorder_linear_weight(weight.detach()))
        packs[weight] = held
    return held[1]


#: the row counts the packed linear runs at. oneDNN keeps a compiled kernel (about a megabyte) for every input shape
#: it meets, so rows are padded up to the next of these, and more rows run in blocks of the last: a server that met
#: every batch shape grew by gigabytes, and padding wastes at most a third of a block (on average a seventh)
PACKED_ROWS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)


_PACKED_ROW_SET = frozenset(PACKED_ROWS)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear(x, weight, bias)``, through oneDNN on the packed weight for float32 CPU inference inside a
    :func:`packed_inference` span, at the row counts of :data:`PACKED_ROWS` only."""
    if not _uses_packed(x, weight):
        return F.linear(x, weight, bias)
    packed = packed_weight(weight)
    if x.numel() // x.shape[-1] in _PACKED_ROW_SET:  # decoding's few rows, and many batches: as they are
        return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")
    rows, outputs = x.reshape(-1, x.shape[-1]), []
    for start in range(0, len(rows), PACKED_ROWS[-1]):
        block = rows[start : start + PACKED_ROWS[-1]]
        padded = next(count for count in PACKED_ROWS if count >= len(block))
        if padded > len(block):  # only the last block can be short
            block = F.pad(block, (0, 0, 0, padded - len(block)))
        outputs.append(torch.ops.mkldnn._linear_pointwise(block, packed, bias, "none", [], "")[: len(rows) - start])
    return torch.cat(outputs).view(*x.shape[:-1], weight.shape[0])


def project(layer: nn.Module, x: Tensor) -> Tensor:
    """``layer(x)``; a plain ``nn.Linear`` without hooks goes through :func:`linear` (quantized or wrapped
    layers, and any with hooks, run as themselves)."""
    if type(layer) is nn.Linear and not (layer._forward_hooks or layer._forward_pre_hooks):
        return linear(x, layer.weight, layer.bias)
    return layer(x)
