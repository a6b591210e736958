"""Translation on real text: the example seq2seq config as a user runs it, on Tatoeba English-Spanish.

nlpkit runs ``nlpkit fit --config examples/translation.yaml`` with only the data paths changed (corpus:
``benchmarks/data/corpora.py``, 2,000 English sentences each held out for validation and test), then translates
the test sources greedily. Reported: corpus chrF and BLEU against the references. No pretrained translator can be
fetched here, so chrF's reference measured in the same run is the floor every translator must clear: the English
source copied unchanged (its BLEU is 0). ``--tiny`` is a smoke run on a few hundred pairs.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from nlpkit_generation.seq2seq import bleu, chrf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, fit_config, jsonl_splits, tiny_and_device
from data.corpora import tatoeba_english_spanish

import nlpkit

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "translation.yaml"


def scores(translations: list[str], references: list[str]) -> dict[str, float]:
    """Corpus chrF and BLEU (the task's own metrics), on a 0-100 scale."""
    return {
        name: 100 * float(metric()(translations, [[reference] for reference in references]))
        for name, metric in (("chrf", chrf), ("bleu", bleu))
    }


def main(argv: list[str] | None = None) -> None:
    """Fit the example; print test chrF and BLEU against the copied source."""
    tiny, device = tiny_and_device(__doc__, "a few hundred pairs", argv)
    limit, extra = (300, ["--data.tokenizer.vocab_size", "300"]) if tiny else (None, [])
    directory = Path(tempfile.mkdtemp(prefix="nlpkit-translation-"))
    pairs, files = jsonl_splits(tatoeba_english_spanish(), limit, directory)
    start = time.perf_counter()
    best = fit_config(EXAMPLE, files, 0, directory / "run", [*extra, *device.cli()])
    task = nlpkit.load(best, map_location=device.name)
    fit_seconds = time.perf_counter() - start
    sources = [pair["source"] for pair in pairs["test"]]
    references = [pair["target"] for pair in pairs["test"]]
    start = time.perf_counter()
    with device.autocast():
        translations = [generation.text for generation in task.generate(sources, batch_size=64)]  # type: ignore[attr-defined]
    device.sync()
    translate_seconds = time.perf_counter() - start
    ours, copied = scores(translations, references), scores(sources, references)
    config = {"corpus": "tatoeba-en-es", "train": len(pairs["train"]), "test": len(sources), "decoding": "greedy",
              "threads": torch.get_num_threads(), **device.config()}  # fmt: skip
    emit("translation", "chrf", "score", ours["chrf"], copied["chrf"], "the English source copied unchanged", **config)
    emit("translation", "bleu", "score", ours["bleu"], **config)  # the copied source scores 0: no ratio
    emit("translation", "fit_seconds", "s", fit_seconds, higher_is_better=False, **config)
    emit("translation", "sentences_per_s", "sentences/s", len(sources) / translate_seconds, **config)
    for source, translation, reference in list(zip(sources, translations, references, strict=True))[:5]:
        print(json.dumps({"source": source, "nlpkit": translation, "reference": reference}, ensure_ascii=False),
              file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()
