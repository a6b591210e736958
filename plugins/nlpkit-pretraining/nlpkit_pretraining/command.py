"""``nlpkit embed``: sentence vectors of texts from a trained checkpoint, as JSON lines or a NumPy ``.npy`` file."""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

from nlpkit.commands import Command, gather_texts
from nlpkit.io import atomic_write_bytes
from nlpkit_pretraining.contrastive import load_embedder


class EmbedCommand(Command):
    """``nlpkit embed --ckpt_path simcse.ckpt --texts_file texts.txt --output vectors.npy``."""

    help = "embed texts with a contrastive or masked-lm checkpoint or a Hugging Face model folder (JSON lines, or .npy)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The checkpoint, the texts, where to write and how."""
        parser.add_argument("--ckpt_path", required=True, help="a contrastive or masked-lm checkpoint, or a Hugging "
                            "Face model folder (a sentence-transformers model)")  # fmt: skip
        parser.add_argument("--text", action="append", default=[], help="a text (repeat for several)")
        parser.add_argument("--texts_file", help="a text file of texts, one a line")
        parser.add_argument("--output", help="a .npy file (float32 array, one row per text) or a .jsonl file; "
                            "default: JSON lines on standard output")  # fmt: skip
        parser.add_argument("--batch_size", type=int, default=64)
        parser.add_argument("--no_normalize", action="store_true", help="keep the pooled vectors' lengths")

    def run(self, args: argparse.Namespace) -> int:
        """Embed every text and write the vectors in input order."""
        texts = gather_texts(args.text, args.texts_file, "texts")
        task = load_embedder(args.ckpt_path)
        vectors = task.embed(texts, batch_size=args.batch_size, normalize=not args.no_normalize)
        if args.output and Path(args.output).suffix == ".npy":
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
