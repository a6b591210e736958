"""Which pieces of a text drove a classifier's decision: integrated gradients, gradient x input, an HTML view."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

import torch
from torch import Tensor, nn

from nlpkit import ConfigError

if TYPE_CHECKING:
    from nlpkit_classification.task import TextClassificationTask

ExplainMethod = Literal["integrated_gradients", "gradient_x_input"]
METHODS: tuple[str, ...] = get_args(ExplainMethod)


@dataclass
class Explanation:
    """One text's attributions: the explained label, the text's pieces (no ``<s>``) and one score per piece."""

    label: str
    pieces: list[str]
    scores: list[float]


def attribute(
    task: TextClassificationTask,
    texts: Sequence[str],
    method: str = "integrated_gradients",
    steps: int = 32,
    target: str | None = None,
    batch_size: int = 16,
) -> list[Explanation]:
    """Attribute the logit of ``target`` (default: each text's predicted label) to each piece of each text.

    ``gradient_x_input`` multiplies the logit's gradient by the piece embeddings; ``integrated_gradients``
    averages the gradient over ``steps`` midpoints of the path from a baseline where every piece's embedding
    is zero (``<s>`` keeps its own), so a text's scores sum to about ``logit(text) - logit(baseline)``.
    Each batch runs ``batch_size * steps`` rows at once.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown attribution method '{method}' (methods: {', '.join(METHODS)})")
    if steps < 1:
        raise ConfigError(f"steps must be at least 1, not {steps}")
    labels = list(task.labels or [])
    if target is not None and target not in labels:
        raise ConfigError(f"unknown target label '{target}' (labels: {', '.join(labels)})")
    if method == "integrated_gradients":
        alphas = (torch.arange(steps, dtype=torch.float32) + 0.5) / steps
    else:
        alphas = torch.ones(1)
    target_id = None if target is None else labels.index(target)

    def explain_batch(batch: dict[str, Any]) -> list[Explanation]:
        tokens, mask = batch["tokens"], batch["mask"]
        targets = task(tokens, mask).argmax(dim=-1) if target_id is None else torch.full_like(tokens[:, 0], target_id)
        with torch.inference_mode(False), torch.enable_grad():  # map_batches runs in inference mode
            scores = _path_scores(task, tokens.clone(), mask.clone(), alphas.to(tokens.device), targets.clone())
        results = []
        for index, label_id, row in zip(batch["index"].tolist(), targets.tolist(), scores, strict=True):
            pieces = task.text_tokenizer.pieces(texts[index])[: len(row)]
            results.append(Explanation(labels[label_id], pieces, row))
        return results

    return task.map_batches(texts, explain_batch, batch_size)


def _path_scores(
    task: TextClassificationTask, tokens: Tensor, mask: Tensor, alphas: Tensor, targets: Tensor
) -> list[list[float]]:
    """Per text piece: its embedding times the target logit's gradient averaged over the path points ``alphas``."""
    steps = len(alphas)
    seen: dict[str, Tensor] = {}
    tokenizer = task.text_tokenizer
    framing = torch.tensor(sorted({tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id}), device=tokens.device)

    def scale_pieces(module: nn.Module, args: tuple[Tensor, ...], output: Tensor) -> Tensor:
        ids = args[0]  # the encoder may reorder columns (packing), so find the pieces in what it embeds
        embedded = output.detach()
        seen["is_piece"] = ~torch.isin(ids, framing)  # not padding, nor the start or end of the input
        seen["pieces"] = embedded * seen["is_piece"][..., None]
        seen["scaled"] = (seen["pieces"] * alphas.repeat(len(ids) // steps)[:, None, None]).requires_grad_()
        return seen["scaled"] + (embedded - seen["pieces"])

    assert task.encoder is not None, "a loaded classifier has its encoder"
    handle = task.encoder.token_embedding.register_forward_hook(scale_pieces)
    try:
        # cuDNN computes RNN gradients in training mode only; the native kernels work in eval mode
        with torch.backends.cudnn.flags(enabled=False):
            logits = task(tokens.repeat_interleave(steps, dim=0), mask.repeat_interleave(steps, dim=0))
    finally:
        handle.remove()
    chosen = logits.gather(1, targets.repeat_interleave(steps)[:, None]).sum()
    (gradient,) = torch.autograd.grad(chosen, seen["scaled"])
    rows, width = tokens.shape
    gradient = gradient.float().view(rows, steps, width, -1).mean(dim=1)
    pieces = seen["pieces"].float().view(rows, steps, width, -1)[:, 0]
    is_piece = seen["is_piece"].view(rows, steps, width)[:, 0]
    scores = (pieces * gradient).sum(dim=-1)
    return [row[keep].tolist() for row, keep in zip(scores, is_piece, strict=True)]


def _background(score: float, scale: float) -> str:
    """Green for a positive score, red for a negative one, more opaque the larger it is against ``scale``."""
    strength = min(abs(score) / scale, 1.0) if scale > 0 else 0.0
    color = "22, 163, 74" if score >= 0 else "220, 38, 38"
    return f"rgba({color}, {0.85 * strength:.3f})"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #111; }
.text { font-family: ui-monospace, monospace; white-space: pre-wrap; line-height: 2; margin: 0.3em 0 1.5em; }
.piece { padding: 0.15em 0; border-radius: 3px; }
.label { font-weight: bold; }
.legend span { padding: 0.2em 0.6em; margin-right: 1em; border-radius: 3px; }
"""


def _shown(piece: str) -> str:
    """A piece as it reads in the text: a word-start mark (SentencePiece's ``▁``, byte-level BPE's ``Ġ``) is a space,
    WordPiece's continuation mark ``##`` goes."""
    if piece.startswith(("▁", "Ġ")):
        return " " + piece[1:]
    return piece.removeprefix("##")


def render_html(explanations: Sequence[Explanation], texts: Sequence[str]) -> str:
    """A self-contained HTML page: each text's pieces colored by their score, its label, and a legend."""
    sections = []
    for explanation, text in zip(explanations, texts, strict=True):
        scale = max((abs(score) for score in explanation.scores), default=0.0)
        spans = "".join(
            f'<span class="piece" style="background: {_background(score, scale)}" '
            f'title="{html.escape(piece)} {score:+.4f}">{html.escape(_shown(piece))}</span>'
            for piece, score in zip(explanation.pieces, explanation.scores, strict=True)
        )
        sections.append(
            f'<section><div>{html.escape(text)} &rarr; <span class="label">{html.escape(explanation.label)}</span>'
            f'</div><div class="text">{spans}</div></section>'
        )
    legend = (
        f'<p class="legend"><span style="background: {_background(1, 1)}">towards the label</span>'
        f'<span style="background: {_background(-1, 1)}">against the label</span>'
        "(darker: larger contribution, relative to the text's largest)</p>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>nlpkit explanations</title>'
        f"<style>{_STYLE}</style></head><body><h1>nlpkit explanations</h1>{legend}{''.join(sections)}</body></html>\n"
    )
