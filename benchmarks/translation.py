"""Translation on real text: the example seq2seq config as a user runs it, on Tatoeba English-Spanish.

nlpkit runs ``nlpkit fit --config examples/translation.yaml`` with only the data paths changed (corpus:
``benchmarks/data/corpora.py``, 2,000 English sentences each held out for validation and test), then translates
the test sources with the decoding chosen on the validation split among :data:`DECODINGS` (greedy and 4-beam
search, each never repeating an n-gram). Reported: corpus chrF and BLEU against the references, and how many test
outputs loop (an n-gram of 4 or more words three times in a row). No pretrained translator can be fetched here, so
chrF's reference measured in the same run is the floor every translator must clear: the English source copied
unchanged (its BLEU is 0). ``--train-pairs N`` trains on the first N training pairs (a smaller corpus, the example
unchanged). ``--tiny`` is a smoke run on a few dozen pairs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from nlpkit_generation.seq2seq import bleu, chrf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import TINY_FIT, Device, emit, fit_config, jsonl_splits
from data.corpora import tatoeba_english_spanish

import nlpkit

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "translation.yaml"
#: the decodings compared on the validation split (GenerationConfig options)
DECODINGS = {
    "greedy": {},
    "greedy, no repeated 3-gram": {"no_repeat_ngram_size": 3},
    "greedy, no repeated 4-gram": {"no_repeat_ngram_size": 4},
    "beam 4, no repeated 3-gram": {"strategy": "beam", "num_beams": 4, "no_repeat_ngram_size": 3},
    "beam 4, length penalty 0.6, no repeated 3-gram": {
        "strategy": "beam", "num_beams": 4, "length_penalty": 0.6, "no_repeat_ngram_size": 3,
    },
}  # fmt: skip


def scores(translations: list[str], references: list[str]) -> dict[str, float]:
    """Corpus chrF and BLEU (the task's own metrics), on a 0-100 scale."""
    return {
        name: 100 * float(metric()(translations, [[reference] for reference in references]))
        for name, metric in (("chrf", chrf), ("bleu", bleu))
    }


def loops(text: str, shortest: int = 4) -> bool:
    """Whether ``text`` repeats an n-gram of ``shortest`` or more words (lower-cased, punctuation aside) three
    times in a row."""
    words = re.findall(r"\w+", text.lower())
    return any(
        words[i : i + n] == words[i + n : i + 2 * n] == words[i + 2 * n : i + 3 * n]
        for n in range(shortest, len(words) // 3 + 1)
        for i in range(len(words) - 3 * n + 1)
    )


def translate(task: object, sources: list[str], device: Device, options: dict[str, Any]) -> list[str]:
    """The task's translations of ``sources`` with the generation ``options``."""
    with device.autocast():
        return [g.text for g in task.generate(sources, batch_size=64, **options)]  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> None:
    """Fit the example; choose the decoding on validation; print test chrF and BLEU against the copied source."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="a smoke run on a few dozen pairs")
    parser.add_argument("--train-pairs", type=int, help="train on the first this many training pairs")
    Device.add_options(parser)
    args = parser.parse_args(argv)
    device = Device.from_args(args)
    limit, extra = (40, ["--data.tokenizer.vocab_size", "300", *TINY_FIT]) if args.tiny else (None, [])
    directory = Path(tempfile.mkdtemp(prefix="nlpkit-translation-"))
    pairs, files = jsonl_splits(tatoeba_english_spanish(), limit, directory)
    if args.train_pairs:
        pairs["train"] = pairs["train"][: args.train_pairs]
        files["train"].write_text("".join(json.dumps(p) + "\n" for p in pairs["train"]), encoding="utf-8")
    start = time.perf_counter()
    best = fit_config(EXAMPLE, files, 0, directory / "run", [*extra, *device.cli()])
    task = nlpkit.load(best, map_location=device.name)
    fit_seconds = time.perf_counter() - start
    val_sources = [pair["source"] for pair in pairs["val"]]
    val_references = [pair["target"] for pair in pairs["val"]]
    val_chrf = {
        name: scores(translate(task, val_sources, device, options), val_references)["chrf"]
        for name, options in DECODINGS.items()
    }
    decoding = max(val_chrf, key=val_chrf.__getitem__)
    sources = [pair["source"] for pair in pairs["test"]]
    references = [pair["target"] for pair in pairs["test"]]
    start = time.perf_counter()
    translations = translate(task, sources, device, DECODINGS[decoding])
    device.sync()
    translate_seconds = time.perf_counter() - start
    ours, copied = scores(translations, references), scores(sources, references)
    config = {"corpus": "tatoeba-en-es", "train": len(pairs["train"]), "test": len(sources), "decoding": decoding,
              "val_chrf": {name: round(value, 2) for name, value in val_chrf.items()},
              "threads": torch.get_num_threads(), **device.config()}  # fmt: skip
    emit("translation", "chrf", "score", ours["chrf"], copied["chrf"], "the English source copied unchanged", **config)
    emit("translation", "bleu", "score", ours["bleu"], **config)  # the copied source scores 0: no ratio
    emit("translation", "fit_seconds", "s", fit_seconds, higher_is_better=False, **config)
    emit("translation", "sentences_per_s", "sentences/s", len(sources) / translate_seconds, **config)
    emit("translation", "looping_outputs", "outputs", sum(map(loops, translations)), higher_is_better=False, **config)
    for source, translation, reference in list(zip(sources, translations, references, strict=True))[:5]:
        print(json.dumps({"source": source, "nlpkit": translation, "reference": reference}, ensure_ascii=False),
              file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()
