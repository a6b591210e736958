"""Linear layers that decode one token at a time fast on the CPU.

Decoding a sequence or two multiplies one or two rows by every weight matrix, so the time goes to reading the
weights. For a projection wider than its input (the attention's ``qkv``, the MLP's first layer, the vocabulary
head), MKL's product reads a ``(in, out)`` copy of the weight 1.7-2.9x faster than the ``(out, in)`` layout
``nn.Linear`` keeps (measured on this project's 2-core AMD EPYC machine with torch 2.13's MKL; see
``docs/benchmarks.md``). :func:`linear` keeps that copy per weight, refreshed whenever the weight changes, and
uses it only where it pays: one or two rows, float32, on the CPU, without autograd, never while tracing,
exporting or compiling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.weak import WeakIdKeyDictionary

#: rows (tokens across the batch) up to which the transposed layout is used
DECODING_ROWS = 2

_transposed = WeakIdKeyDictionary()  # weight -> ((data_ptr, version), its (in, out) copy)


def _uses_transposed(x: Tensor, weight: Tensor) -> bool:
    """Whether ``x @ weight.T`` runs on the transposed copy (see the module's docstring)."""
    return (
        x.device.type == "cpu"
        and x.numel() <= DECODING_ROWS * x.size(-1)
        and weight.size(0) > weight.size(1)
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
    """``F.linear(x, weight, bias)``, on the transposed weight when one or two rows decode on the CPU."""
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
