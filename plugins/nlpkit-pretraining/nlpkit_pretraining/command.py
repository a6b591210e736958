"""``nlpkit embed``: sentence vectors of texts from a trained checkpoint, as JSON lines or a NumPy ``.npy`` file."""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from nlpkit import CheckpointCommand, atomic_write_bytes

if TYPE_CHECKING:
    from nlpkit_pretraining.embedding import Embedder


class EmbedCommand(CheckpointCommand["Embedder"]):
    """``nlpkit embed --ckpt_path simcse.ckpt --texts_file texts.txt --output vectors.npy``."""

    help = "embed texts with a contrastive or masked-lm checkpoint or a Hugging Face model folder (JSON lines, or .npy)"
    task_type = "nlpkit_pretraining.embedding:Embedder"
    refusal = "has no sentence vectors"
    checkpoint_help = (
        "a contrastive or masked-lm checkpoint, or a Hugging Face model folder (a sentence-transformers model)"
    )

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """Where to write and how."""
        parser.add_argument("--output", help="a .npy file (float32 array, one row per text) or a .jsonl file; "
                            "default: JSON lines on standard output")  # fmt: skip
        parser.add_argument("--batch_size", type=int, default=64)
        parser.add_argument("--no_normalize", action="store_true", help="keep the pooled vectors' lengths")

    def load_task(self, path: str) -> Embedder:
        """An nlpkit checkpoint with sentence vectors, or a Hugging Face model folder."""
        from nlpkit_pretraining.contrastive import load_embedder  # torch: only when the command runs

        return load_embedder(path)

    def run_on(self, task: Embedder, texts: list[str], args: argparse.Namespace) -> int:
        """Embed every text and write the vectors in input order."""
        vectors = task.embed(texts, batch_size=args.batch_size, normalize=not args.no_normalize)
        if args.output and Path(args.output).suffix == ".npy":
            import numpy as np

            buffer = io.BytesIO()
            np.save(buffer, vectors)
            atomic_write_bytes(args.output, buffer.getvalue())
            return 0
        lines = "".join(
            json.dumps({"text": text, "vector": vector.tolist()}, ensure_ascii=False) + "\n"
            for text, vector in zip(texts, vectors, strict=True)
        )
        if args.output:
            atomic_write_bytes(args.output, lines.encode("utf-8"))
        else:
            sys.stdout.write(lines)
        return 0
