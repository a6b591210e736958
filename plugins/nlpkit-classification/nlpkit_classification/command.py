"""``nlpkit explain``: which pieces of each text drove a trained classifier's decision, as JSON and an HTML page."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import TYPE_CHECKING

from nlpkit import CheckpointCommand, atomic_write_bytes

if TYPE_CHECKING:
    from nlpkit_classification.task import TextClassificationTask


class ExplainCommand(CheckpointCommand["TextClassificationTask"]):
    """``nlpkit explain --ckpt_path model.ckpt --text "..." [--method gradient_x_input] [--output page.html]``."""

    help = "attribute a text classifier's decisions to the pieces of each text (JSON lines and an HTML page)"
    task_type = "nlpkit_classification.task:TextClassificationTask"
    refusal = "is not a text classifier"
    checkpoint_help = "a checkpoint of a text classification task"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """The attribution method and where the page goes."""
        from nlpkit_classification.explain import METHODS  # torch: only when the command runs

        parser.add_argument(
            "--method", default="integrated_gradients", help=f"attribution method: {' or '.join(METHODS)}"
        )
        parser.add_argument("--steps", type=int, default=32, help="integrated gradients: points on the path")
        parser.add_argument("--target", help="explain this label (default: each text's predicted label)")
        parser.add_argument("--batch_size", type=int, default=16, help="texts per batch (each runs --steps times)")
        parser.add_argument("--output", default="explanations.html", help="the HTML page to write")

    def run_on(self, task: TextClassificationTask, texts: list[str], args: argparse.Namespace) -> int:
        """Explain every text: one JSON line each on stdout, and the HTML page written atomically."""
        from nlpkit_classification.explain import attribute, render_html

        explanations = attribute(task, texts, args.method, args.steps, args.target, args.batch_size)
        atomic_write_bytes(args.output, render_html(explanations, texts).encode("utf-8"))
        for text, explanation in zip(texts, explanations, strict=True):
            print(json.dumps({"text": text, **asdict(explanation)}))
        return 0
