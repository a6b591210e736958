"""Language modelling on real text: the example config as a user runs it, against a Kneser-Ney n-gram model of the
same tokens.

nlpkit runs ``nlpkit fit --config examples/language-model.yaml`` on WikiText-2 (raw, the published article splits;
``benchmarks/data/corpora.py``) with only the data paths changed: a causal Transformer, and the same config with
an LSTM. The reference is an interpolated modified Kneser-Ney model (``_kneser_ney.py``) of the training split
as the fitted model's tokenizer cuts it, its order (3 to 5) chosen on the validation split. Both score every token of
the test split after each article's ``<s>`` (its ``</s>`` included); bits per character divide the total bits by the
characters of the articles plus one for each article's end, so any vocabulary compares. The neural models read the
test split in the training blocks (each starts with no context); the n-gram model sees its full history.
``--train-words N`` trains on the first articles of the training split up to N words (a smaller corpus, the
example unchanged); the validation figure is what settings are chosen by. ``--tiny`` is a smoke run of the first
variant on a few articles.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from nlpkit_generation.data import pack_blocks
from nlpkit_generation.task import CausalLMTask

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import TINY_FIT, Device, emit, fit_config, jsonl_splits
from _kneser_ney import KneserNey
from data.corpora import wikitext2

import nlpkit
from nlpkit import pad

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "language-model.yaml"
BLOCK_SIZE = 128  # the example's data.block_size
#: the models compared: the example's own, the same trained for one epoch (the example before its time budget),
#: and the overrides that swap in an LSTM
VARIANTS = {
    "causal-transformer": [],
    "causal-transformer, one epoch": ["--trainer.max_epochs", "1"],
    "lstm": ["--model.encoder", "lstm", "--model.encoder.embedding_dim", "512", "--model.encoder.hidden_size", "512",
             "--model.encoder.dropout", "0.1", "--model.encoder.tie_weights", "true", "--model.learning_rate", "0.003"],
}  # fmt: skip


def token_stream(task: CausalLMTask, articles: list[str]) -> list[list[int]]:
    """Each article as ``<s> ... </s>`` ids, whole."""
    return task.tokenizer.encode(articles, add_bos=True, add_eos=True, max_length=sys.maxsize)  # type: ignore[union-attr]


@torch.inference_mode()
def neural_bits(task: CausalLMTask, documents: list[list[int]], batch_size: int = 64) -> float:
    """Total bits of every token after the first of the concatenated ``documents``, read in training blocks."""
    task.eval()
    blocks = [block["tokens"] for block in pack_blocks(documents, BLOCK_SIZE)]
    nats = 0.0
    for start in range(0, len(blocks), batch_size):
        tokens, mask = pad(blocks[start : start + batch_size])
        tokens, mask = tokens.to(task.device), mask.to(task.device)
        logits = task(tokens[:, :-1], mask[:, :-1]).float()
        targets = tokens[:, 1:].masked_fill(~mask[:, 1:], -100)
        nats += float(F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100, reduction="sum"))
    return nats / math.log(2)


def kneser_ney_bits(train: list[int], val: list[int], test: list[int], vocab_size: int) -> tuple[float, int]:
    """Test bits of the Kneser-Ney model whose order (3, 4 or 5) scores the validation stream best; that order."""
    best = min((KneserNey(train, order, vocab_size) for order in (3, 4, 5)), key=lambda model: model.bits(val))
    return best.bits(test), best.order


def first_words(records: list[dict[str, str]], words: int) -> list[dict[str, str]]:
    """The first records whose texts hold ``words`` words (whitespace-separated) in all."""
    kept, total = [], 0
    for record in records:
        if total >= words:
            break
        kept.append(record)
        total += len(record["text"].split())
    return kept


def main(argv: list[str] | None = None) -> None:
    """Fit every variant; print validation and test bits per character against the Kneser-Ney model of the same
    tokens."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="a smoke run on a few articles")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["causal-transformer", "lstm"])
    parser.add_argument("--train-words", type=int, help="train on the first articles up to this many words")
    Device.add_options(parser)
    args = parser.parse_args(argv)
    device = Device.from_args(args)
    limit, extra = (3, ["--data.tokenizer.vocab_size", "200", *TINY_FIT]) if args.tiny else (None, [])
    directory = Path(tempfile.mkdtemp(prefix="nlpkit-language-model-"))
    records, files = jsonl_splits(wikitext2(), limit, directory)
    if args.train_words:
        records["train"] = first_words(records["train"], args.train_words)
        files["train"].write_text("".join(json.dumps(r) + "\n" for r in records["train"]), encoding="utf-8")
    articles = {split: [record["text"] for record in rows] for split, rows in records.items()}
    characters = {split: sum(len(article) + 1 for article in texts) for split, texts in articles.items()}
    train_words = sum(len(article.split()) for article in articles["train"])
    config = {"corpus": "wikitext-2", "train_words": train_words, "test_characters": characters["test"],
              "threads": torch.get_num_threads(), **device.config()}  # fmt: skip
    for variant in args.variants[:1] if args.tiny else args.variants:
        options = VARIANTS[variant]
        start = time.perf_counter()
        best = fit_config(EXAMPLE, files, 0, directory / variant, [*options, *extra, *device.cli()])
        task = nlpkit.load(best, map_location=device.name)
        fit_seconds = time.perf_counter() - start
        streams = {split: token_stream(task, texts) for split, texts in articles.items()}  # type: ignore[arg-type]
        flat = {split: [token for ids in documents for token in ids] for split, documents in streams.items()}
        reference, order = kneser_ney_bits(flat["train"], flat["val"], flat["test"], task.tokenizer.vocab_size)
        with device.autocast():
            val_bits = neural_bits(task, streams["val"])  # type: ignore[arg-type]
            bits = neural_bits(task, streams["test"])  # type: ignore[arg-type]
        emit("language_model", "bits_per_character", "bits", bits / characters["test"],
             reference / characters["test"], f"interpolated modified Kneser-Ney {order}-gram of the same tokens",
             higher_is_better=False, model=variant, vocab_size=task.tokenizer.vocab_size,
             val_bits_per_character=round(val_bits / characters["val"], 4), test_tokens=len(flat["test"]),
             **config)  # fmt: skip
        emit("language_model", "fit_seconds", "s", fit_seconds, higher_is_better=False, model=variant, **config)


if __name__ == "__main__":
    main()
