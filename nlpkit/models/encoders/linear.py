"""Linear layers that run inference fast on the CPU, on a weight packed once for oneDNN.

Without autograd, a projection on the CPU runs through oneDNN on a copy of the weight reordered into oneDNN's
blocked layout (``torch.ops.mkldnn``'s packed linear, also used by ``torch.compile``'s CPU freezing; where a torch
build lacks it, ``F.linear`` runs). Decoding multiplies a few rows by every weight, so its time goes to
reading the weights, and the packed copy reads them faster than ``F.linear`` (MKL on ``nn.Linear``'s ``(out, in)``
weight) does: docs/performance.md has the measured speed-ups.

:func:`linear` keeps one packed copy per weight and uses it only for float32 on the CPU without autograd, while
oneDNN is enabled, and never while tracing, exporting or compiling. The copy is made again when the weight's
storage or version counter changes (``load_state_dict``, in-place ops) and dropped after every optimizer step,
since fused optimizers update weights without bumping their version counter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.utils.weak import WeakIdKeyDictionary

_packed = WeakIdKeyDictionary()  # weight -> ((data_ptr, version), its oneDNN-packed copy)
_HAS_ONEDNN_LINEAR = torch.backends.mkldnn.is_available() and all(
    hasattr(torch.ops.mkldnn, op) for op in ("_reorder_linear_weight", "_linear_pointwise")
)


def _drop_stepped_weights(optimizer: Optimizer, args: object, kwargs: object) -> None:
    """Forget the packed copies of the weights an optimizer step just changed."""
    if _packed:
        for group in optimizer.param_groups:
            for parameter in group["params"]:
                _packed.pop(parameter, None)


register_optimizer_step_post_hook(_drop_stepped_weights)


def _uses_packed(x: Tensor, weight: Tensor) -> bool:
    """Whether ``x @ weight.T`` runs through oneDNN on the packed copy (see the module's docstring)."""
    return (
        _HAS_ONEDNN_LINEAR
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
    """``weight`` reordered for oneDNN's linear, made again when its storage or version counter changes."""
    stamp = (weight.data_ptr(), weight._version)
    held = _packed.get(weight)
    if held is None or held[0] != stamp:
        held = (stamp, torch.ops.mkldnn._reorder_linear_weight(weight.detach()))
        _packed[weight] = held
    return held[1]


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear(x, weight, bias)``, through oneDNN on the packed weight for float32 CPU inference."""
    if not _uses_packed(x, weight):
        return F.linear(x, weight, bias)
    return torch.ops.mkldnn._linear_pointwise(x, packed_weight(weight), bias, "none", [], "")


def project(layer: nn.Module, x: Tensor) -> Tensor:
    """``layer(x)``; a plain ``nn.Linear`` without hooks goes through :func:`linear` (quantized or wrapped
    layers, and any with hooks, run as themselves)."""
    if type(layer) is nn.Linear and not (layer._forward_hooks or layer._forward_pre_hooks):
        return linear(x, layer.weight, layer.bias)
    return layer(x)
