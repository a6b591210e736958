"""The next-token loss of a language-model head, computed a block of rows at a time.

``F.cross_entropy(hidden @ weight.T, targets)`` holds every row's logits (rows x vocabulary floats, 64 MB for 2,048
tokens of an 8,000-piece vocabulary), then their gradient. :func:`head_cross_entropy` forms the logits of
``chunk_rows`` rows at a time, turns them into their gradient in place and folds that into the gradients of the
hidden states and the weight at once, so the backward pass only scales what the forward pass kept (its speed is in
docs/performance.md).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class _HeadCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of ``hidden @ weight.T`` against ``targets``, with both gradients formed in the forward."""

    @staticmethod
    def forward(
        ctx: Any, hidden: Tensor, weight: Tensor, targets: Tensor, ignore_index: int, chunk_rows: int
    ) -> Tensor:
        """(N, D) hidden states, (V, D) head weight, (N,) targets -> the mean loss over non-ignored targets."""
        real = targets != ignore_index
        safe_targets = targets.masked_fill(~real, 0)
        row_weights = real.to(hidden.dtype) / real.sum()  # the mean over real targets (NaN when there are none)
        total = hidden.new_zeros(())
        grad_hidden = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        grad_weight = torch.zeros_like(weight) if ctx.needs_input_grad[1] else None
        for start in range(0, hidden.size(0), chunk_rows):
            rows = slice(start, start + chunk_rows)
            log_probs = torch.log_softmax(hidden[rows] @ weight.t(), dim=1)  # (c, V)
            picked = log_probs.gather(1, safe_targets[rows, None]).squeeze(1)  # (c,)
            total -= (picked * row_weights[rows]).sum()
            if grad_hidden is None and grad_weight is None:
                continue
            grad_logits = log_probs.exp_()  # softmax minus the one-hot target, per real row's share of the mean
            grad_logits[torch.arange(grad_logits.size(0), device=grad_logits.device), safe_targets[rows]] -= 1
            grad_logits *= row_weights[rows, None]
            if grad_hidden is not None:
                torch.mm(grad_logits, weight, out=grad_hidden[rows])
            if grad_weight is not None:
                grad_weight.addmm_(grad_logits.t(), hidden[rows])
        ctx.save_for_backward(grad_hidden, grad_weight)
        return total

    @staticmethod
    def backward(ctx: Any, grad_loss: Tensor) -> tuple[Tensor | None, ...]:
        """Scale the gradients the forward pass formed."""
        grad_hidden, grad_weight = ctx.saved_tensors
        return (
            None if grad_hidden is None else grad_hidden * grad_loss,
            None if grad_weight is None else grad_weight * grad_loss,
            None,
            None,
            None,
        )


def head_cross_entropy(
    hidden: Tensor, weight: Tensor, targets: Tensor, ignore_index: int = -100, chunk_rows: int = 512
) -> Tensor:
    """``F.cross_entropy(hidden @ weight.T, targets, ignore_index=ignore_index)`` for (N, D) ``hidden``, (V, D)
    ``weight`` and (N,) ``targets``, never holding more than ``chunk_rows`` rows of logits."""
    return _HeadCrossEntropy.apply(hidden, weight, targets, ignore_index, chunk_rows)
