"""NER: entity F1 on CoNLL-2003 English of ``nlpkit fit --config examples/ner.yaml`` (only the data paths
changed) against sklearn-crfsuite with the classic word features, scored by the same strict entity F1; training
tokens/s and prediction sentences/s of BiLSTM-CRF and Transformer-CRF taggers on generated sentences; and the
CRF's own speed against pytorch-crf (benchmarks/ner_crf.py). ``--tiny`` is a smoke run (200 CoNLL sentences).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import pytorch_lightning as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Device, StepClock, emit, fit_config, median_seconds
from data.corpora import conll2003
from ner_crf import crf_figures
from nlpkit_ner.data import ConllData
from nlpkit_ner.metrics import entity_f1
from nlpkit_ner.sample import sample_sentences
from nlpkit_ner.task import TokenClassificationTask
from nlpkit_ner.words import write_conll

from nlpkit.cli import main as nlpkit_command
from nlpkit.data.readers import read_records
from nlpkit.encoders.rnn import LSTMEncoder
from nlpkit.encoders.transformer import TransformerEncoder
from nlpkit.tokenization import TokenizerOptions

BATCH = 32


def word_features(tokens: list[str], i: int) -> dict[str, object]:
    """The classic CRF features of a word and its neighbours (as in the sklearn-crfsuite tutorial)."""
    word = tokens[i]
    features: dict[str, object] = {
        "bias": 1.0, "lower": word.lower(), "suffix3": word[-3:], "suffix2": word[-2:],
        "upper": word.isupper(), "title": word.istitle(), "digit": word.isdigit(),
    }  # fmt: skip
    for offset, name in ((-1, "prev"), (1, "next")):
        if 0 <= i + offset < len(tokens):
            features.update(
                {f"{name}.lower": tokens[i + offset].lower(), f"{name}.title": tokens[i + offset].istitle()}
            )
        else:
            features[f"{name}.edge"] = True
    return features


def crfsuite_reference(train: list, test: list) -> dict[str, float]:
    """sklearn-crfsuite (L-BFGS, c1=0.1, c2=0.1): entity F1 on the test set and prediction speed."""
    import sklearn_crfsuite

    features = lambda sentences: [[word_features(tokens, i) for i in range(len(tokens))] for tokens, _ in sentences]  # noqa: E731
    model = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=0.1, c2=0.1, max_iterations=100)
    model.fit(features(train), [tags for _, tags in train])
    test_features = features(test)
    start = time.perf_counter()
    predicted = model.predict(test_features)
    seconds = time.perf_counter() - start
    types = sorted({tag[2:] for _, tags in train for tag in tags if tag != "O"})
    metric = entity_f1(types, "iob2")
    metric.update(predicted, [tags for _, tags in test])
    return {"entity_f1": float(metric.compute()), "predict_sentences_per_s": len(test) / seconds}


def tagger_figures(encoder: partial, directory: Path, test: list, epochs: int, device: Device) -> dict[str, float]:
    """Train a CRF tagger with a Lightning Trainer; its training tokens/s and prediction speed."""
    torch.manual_seed(0)
    task = TokenClassificationTask(encoder=encoder, crf=True, learning_rate=5e-3, warmup_steps=30)
    data = ConllData(
        train_path=str(directory / "train.conll"), val_path=str(directory / "test.conll"),
        test_path=str(directory / "test.conll"), batch_size=BATCH, train_scheme="iob2",
        tokenizer=TokenizerOptions(vocab_size=200),
    )  # fmt: skip
    clock = StepClock(count=lambda batch: int(batch["mask"].sum()))
    trainer = pl.Trainer(
        max_epochs=epochs, **device.trainer(), logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, callbacks=[clock],
    )  # fmt: skip
    trainer.fit(task, datamodule=data)
    warmup = max(len(clock.counts) // 10, 1)
    tokens_per_s = sum(clock.counts[warmup:]) / (clock.stamps[-1] - clock.stamps[warmup])
    sentences = [{"tokens": tokens} for tokens, _ in test]
    with device.autocast():
        seconds = median_seconds(lambda: task.predict(sentences, batch_size=BATCH), repeats=3, sync=device.sync)
    return {
        "train_tokens_per_s": tokens_per_s,
        "predict_sentences_per_s": len(test) / seconds,
    }


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ner.yaml"


def sentences_of(path: Path, limit: int | None = None) -> list[tuple[list[str], list[str]]]:
    """``(tokens, tags)`` of the first ``limit`` sentences of a CoNLL file."""
    records = read_records(path)[:limit]
    return [(record.fields["tokens"], record.fields["tags"]) for record in records]


def test_f1(checkpoint: Path, test_file: Path, directory: Path, device: Device) -> float:
    """``nlpkit test`` of ``checkpoint`` on ``test_file``: the logged strict entity F1."""
    argv = ["test", "--ckpt_path", str(checkpoint), "--data.test_path", str(test_file),
            "--trainer.logger", "CSVLogger", "--trainer.logger.save_dir", str(directory),
            "--trainer.enable_progress_bar", "false", *device.cli()]  # fmt: skip
    with contextlib.redirect_stdout(sys.stderr):
        if nlpkit_command(argv) != 0:
            raise SystemExit(f"nlpkit test failed: {' '.join(argv)}")
    with next(directory.rglob("metrics.csv")).open(newline="") as handle:
        return next(float(row["test/entity-f1"]) for row in csv.DictReader(handle) if row.get("test/entity-f1"))


def conll_quality(args: argparse.Namespace, directory: Path, device: Device) -> None:
    """Entity F1 of the example config on CoNLL-2003 against sklearn-crfsuite on the same splits."""
    limit = 200 if args.tiny else None
    files = {}
    for split, path in conll2003().items():
        files[split] = directory / f"conll-{split}.conll"
        write_conll(files[split], sentences_of(path, limit))
    train, test = sentences_of(files["train"]), sentences_of(files["test"])
    reference = crfsuite_reference(train, test)
    start = time.perf_counter()
    epochs = ["--trainer.max_epochs", "1"] if args.tiny else []
    best = fit_config(EXAMPLE, files, 0, directory / "conll-fit", [*epochs, *device.cli()])
    seconds = time.perf_counter() - start
    config = {"corpus": "conll2003", "train": len(train), "test": len(test), "seed": 0, "fit_seconds": round(seconds),
              "threads": torch.get_num_threads(), **device.config()}  # fmt: skip
    emit("ner", "entity_f1", "fraction", test_f1(best, files["test"], directory / "conll-test", device),
         reference["entity_f1"], "sklearn-crfsuite (word features)", tagger="examples/ner.yaml", **config)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Print every NER figure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    parser.add_argument("--only", choices=["quality", "speed"], help="run one part of the benchmark")
    Device.add_options(parser)
    args = parser.parse_args(argv)
    device = Device.from_args(args)
    train_size, test_size, epochs = (80, 40, 1) if args.tiny else (2000, 500, 8)
    directory = Path(tempfile.mkdtemp(prefix="nlpkit-ner-bench-"))
    if args.only != "speed":
        conll_quality(args, directory, device)
    if args.only == "quality":
        return
    train, test = sample_sentences(train_size, seed=5), sample_sentences(test_size, seed=6)
    write_conll(directory / "train.conll", train)
    write_conll(directory / "test.conll", test)
    reference = crfsuite_reference(train, test)
    encoders = {
        "bilstm-crf": partial(LSTMEncoder, embedding_dim=64, hidden_size=128, bidirectional=True),
        "transformer-crf": partial(TransformerEncoder, d_model=128, num_heads=4, num_layers=2, positions="rotary"),
    }
    for name, encoder in encoders.items():
        ours = tagger_figures(encoder, directory, test, epochs, device)
        config = {"tagger": name, "train": train_size, "test": test_size, "epochs": epochs, "batch": BATCH,
                  "threads": torch.get_num_threads(), **device.config()}  # fmt: skip
        emit("ner", "train_tokens_per_s", "tokens/s", ours["train_tokens_per_s"], **config)
        emit("ner", "predict_sentences_per_s", "sentences/s", ours["predict_sentences_per_s"],
             reference["predict_sentences_per_s"], "sklearn-crfsuite (word features)", **config)  # fmt: skip
    crf_figures(device, repeats=3) if args.tiny else crf_figures(device)


if __name__ == "__main__":
    main()
