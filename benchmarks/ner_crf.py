"""The CRF part of the NER benchmark: nlpkit's CRF against pytorch-crf's ``torchcrf.CRF`` on the same scores.

Both CRFs get the same transition, start and end scores and the same random emissions, tags and mixed-length
prefix mask; their NLLs and Viterbi paths are checked equal first. Timed: the mean NLL forward + backward (with
emissions that require gradients, as a model's do) and Viterbi decoding, each the median of ``repeats`` calls
after a warm-up. Needs ``pytorch-crf`` (``pip install pytorch-crf``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
from nlpkit_ner.crf import CRF
from torch import Tensor, nn
from torchcrf import CRF as ReferenceCRF

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Device, emit, median_seconds


def crf_figures(device: Device, batch: int = 32, length: int = 40, tags: int = 9, repeats: int = 20) -> None:
    """Time nlpkit's CRF and pytorch-crf (NLL forward + backward, Viterbi) and emit one line per operation."""
    torch.manual_seed(0)
    ours = CRF(tags).to(device.name)
    reference = ReferenceCRF(tags, batch_first=True).to(device.name)
    with torch.no_grad():
        reference.transitions.copy_(ours.transitions)
        reference.start_transitions.copy_(ours.start)
        reference.end_transitions.copy_(ours.end)
    lengths = torch.randint(1, length + 1, (batch,))
    lengths[0] = length  # the batch is as long as its longest row
    mask = (torch.arange(length) < lengths.unsqueeze(1)).to(device.name)  # (B, T)
    emissions = torch.randn(batch, length, tags, device=device.name, requires_grad=True)  # (B, T, C)
    gold = torch.randint(0, tags, (batch, length)).to(device.name)  # (B, T)

    def nll(crf: nn.Module) -> Tensor:
        """Mean NLL of ``gold`` under ``crf``."""
        return crf(emissions, gold, mask) if crf is ours else -crf(emissions, gold, mask, reduction="mean")

    ours_nll, reference_nll = nll(ours), nll(reference)
    if not torch.allclose(ours_nll, reference_nll, atol=1e-4):
        raise AssertionError(f"the NLLs differ: nlpkit {ours_nll.item()}, pytorch-crf {reference_nll.item()}")
    scores = emissions.detach()  # decoding is inference: no graph on either side
    if ours.decode(scores, mask) != reference.decode(scores, mask):
        raise AssertionError("the Viterbi paths differ")

    operations: dict[str, Callable[[nn.Module], object]] = {
        "nll_forward_backward": lambda crf: nll(crf).backward(),
        "viterbi_decode": lambda crf: crf.decode(scores, mask),
    }
    for operation, run in operations.items():
        seconds = [
            median_seconds(partial(run, crf), repeats=repeats, warmup=2, sync=device.sync) for crf in (ours, reference)
        ]
        emit(
            "ner",
            "crf_seconds",
            "s",
            *seconds,
            reference_name="pytorch-crf",
            higher_is_better=False,
            operation=operation,
            batch=batch,
            length=length,
            tags=tags,
            threads=torch.get_num_threads(),
            **device.config(),
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    Device.add_options(parser)
    crf_figures(Device.from_args(parser.parse_args()))
