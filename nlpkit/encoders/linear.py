"""Linear layers that decode a few tokens at a time fast on the CPU.

Decoding multiplies a few rows (one token per sequence) by every weight matrix, so the time goes to reading the
weights. MKL's product of a few rows reads a weight laid out ``(in, out)`` faster than the ``(out, in)`` layout
``nn.Linear`` keeps when the projection is wider than its input, the more so the narrower the input. A sweep of
inputs 256-1024 and outputs up to 32,000 on this project's 2-core AMD EPYC machine (torch 2.13, weights out of
cache, see ``docs/benchmarks.md``) found the copy

- 1.3-3.0x faster for every wider projection at one or two rows;
- 1.1-1.6x faster for inputs of 256 up to 32 rows (0.75-1.05x from 512 inputs up, between 4 and 32 rows);
- 1.0-1.7x faster up to 16 rows for a vocabulary head (outputs more than 5x the inputs).

:func:`linear` keeps that copy per weight, made again whenever the weight changes, and uses it only there:
float32 on the CPU without autograd, never while tracing, exporting or compiling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.weak import WeakIdKeyDictionary

#: where the (in, out) copy is used: (at most these rows, at most these inputs or None for any, outputs more than
#: this many times the inputs)
TRANSPOSED_WHEN = ((2, None, 1), (32, 256, 1), (16, None, 5))

_transposed = WeakIdKeyDictionary()  # weight -> ((data_ptr, version), its (in, out) copy)


def _uses_transposed(x: Tensor, weight: Tensor) -> bool:
    """Whether ``x @ weight.T`` runs on the transposed copy (see the module's docstring)."""
    rows, (outputs, inputs) = x.numel() // max(x.size(-1), 1), weight.shape
    return (
        x.device.type == "cpu"
        and any(
            rows <= most_rows and inputs <= (most_inputs or inputs) and outputs > inputs * wider
            for most_rows, most_inputs, wider in TRANSPOSED_WHEN
        )
        and x.dtype == weight.dtype == torch.float32
        and not torch.is_grad_enabled()
        and not weight.is_inference()
        and not torch.is_autocast_enabled("cpu")
        and not torch.jit.is_tracing()
        and not torch.jit.is_scripting()
        and not torch.onnx.is_in_onnx_export()
        and not torch.compiler.is_compiling()
    )


def transposed_weight(weight: Tensor) -> Tensor:
    """A contiguous ``(in, out)`` copy of ``weight``, made again after any change to the weight."""
    stamp = (weight.data_ptr(), weight._version)
    held = _transposed.get(weight)
    if held is None or held[0] != stamp:
        held = (stamp, weight.detach().t().contiguous())
        _transposed[weight] = held
    return held[1]


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear(x, weight, bias)``, on the transposed weight where a few decoding rows gain from it."""
    if not _uses_transposed(x, weight):
        return F.linear(x, weight, bias)
    rows = x.reshape(-1, x.size(-1))
    product = rows @ transposed_weight(weight) if bias is None else torch.addmm(bias, rows, transposed_weight(weight))
    return product.view(*x.shape[:-1], weight.size(0))


def project(layer: nn.Module, x: Tensor) -> Tensor:
    """``layer(x)``; a plain ``nn.Linear`` without hooks goes through :func:`linear` (quantized or wrapped
    layers, and any with hooks, run as themselves)."""
    if type(layer) is nn.Linear and not (layer._forward_hooks or layer._forward_pre_hooks):
        return linear(x, layer.weight, layer.bias)
    return layer(x)
