"""NER: entity F1 on CoNLL-2003 English of ``nlpkit fit --config examples/ner.yaml`` and of
``examples/ner-glove.yaml`` (only the data paths changed; with ``--ablate``, also without the feature templates)
against sklearn-crfsuite, on the tutorial's classic word features and on exactly the keys of nlpkit's default feature
templates, the stronger on the validation split taken, its c1 and c2 chosen there too, every tagger scored by the
same strict entity F1 on the test split;
training tokens/s and prediction sentences/s of BiLSTM-CRF and Transformer-CRF taggers on generated sentences; and
the CRF's own speed against pytorch-crf (benchmarks/ner_crf.py). ``--tiny`` is a smoke run (200 CoNLL sentences).
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
from _common import TINY_FIT, Device, StepClock, emit, fit_config, median_seconds
from data.corpora import conll2003
from ner_crf import crf_figures
from nlpkit_ner.data import ConllData
from nlpkit_ner.features import FeatureTemplateOptions, WordFeatures
from nlpkit_ner.metrics import entity_f1
from nlpkit_ner.sample import sample_sentences
from nlpkit_ner.task import TokenClassificationTask
from nlpkit_ner.words import write_conll

from nlpkit.cli.main import main as nlpkit_command
from nlpkit.data.readers import read_records
from nlpkit.models.encoders.rnn import LSTMEncoder
from nlpkit.models.encoders.transformer import TransformerEncoder
from nlpkit.models.tokenizers import TokenizerOptions

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


#: the L1 and L2 penalties tried on the validation split (around sklearn-crfsuite's tutorial's 0.1 and 0.1)
CRFSUITE_GRID = [(c1, c2) for c1 in (0.05, 0.1, 0.3) for c2 in (0.01, 0.1)]
#: the features sklearn-crfsuite reads: the tutorial's classic ones, or exactly the keys of nlpkit's default
#: feature templates (``nlpkit_ner.features``: form, case, affixes 1-4, shape, scripts, neighbours at -2..+2)
FEATURE_SETS = ("classic", "templates")
#: with ``--ablate``, each config is fitted again with one part taken out
ABLATIONS = {"without feature templates": ["--model.feature_templates", "null"]}


def sentence_features(sentences: list, feature_set: str = "classic") -> list:
    """The features of every word of every sentence, as sklearn-crfsuite takes them."""
    if feature_set == "classic":
        return [[word_features(tokens, i) for i in range(len(tokens))] for tokens, _ in sentences]
    templates = WordFeatures(FeatureTemplateOptions())
    return [[{"bias": 1.0, **dict.fromkeys(keys, 1.0)} for keys in templates.values(tokens)] for tokens, _ in sentences]


def crfsuite_f1(model: object, train: list, sentences: list, feature_set: str) -> float:
    """The strict entity F1 of a fitted sklearn-crfsuite model on ``sentences``."""
    types = sorted({tag[2:] for _, tags in train for tag in tags if tag != "O"})
    metric = entity_f1(types, "iob2")
    predicted = model.predict(sentence_features(sentences, feature_set))  # type: ignore[attr-defined]
    metric.update(predicted, [tags for _, tags in sentences])
    return float(metric.compute())


def crfsuite_reference(
    train: list, test: list, val: list | None = None, feature_set: str = "classic"
) -> dict[str, float]:
    """sklearn-crfsuite (L-BFGS, 100 iterations) on ``feature_set``: entity F1 on the test set and prediction speed;
    with ``val``, c1 and c2 are chosen from :data:`CRFSUITE_GRID` by validation F1 (else 0.1 and 0.1), and that F1
    is reported too."""
    import sklearn_crfsuite

    features, tags = sentence_features(train, feature_set), [tags for _, tags in train]

    def fitted(c1: float, c2: float) -> object:
        return sklearn_crfsuite.CRF(algorithm="lbfgs", c1=c1, c2=c2, max_iterations=100).fit(features, tags)

    settings, model, val_f1 = (0.1, 0.1), None, float("nan")
    if val is not None:
        scored = []
        for pair in CRFSUITE_GRID:
            candidate = fitted(*pair)
            scored.append((crfsuite_f1(candidate, train, val, feature_set), pair, candidate))
        val_f1, settings, model = max(scored, key=lambda row: row[0])
        print(f"reference sklearn-crfsuite ({feature_set}): chosen on validation: c1, c2 = {settings}",
              file=sys.stderr, flush=True)  # fmt: skip
    model = model or fitted(*settings)
    test_features = sentence_features(test, feature_set)
    start = time.perf_counter()
    model.predict(test_features)  # type: ignore[attr-defined]
    seconds = time.perf_counter() - start
    return {"entity_f1": crfsuite_f1(model, train, test, feature_set), "predict_sentences_per_s": len(test) / seconds,
            "val_entity_f1": val_f1, "c1": settings[0], "c2": settings[1]}  # fmt: skip


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


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def sentences_of(path: Path, limit: int | None = None) -> list[tuple[list[str], list[str]]]:
    """``(tokens, tags)`` of the first ``limit`` sentences of a CoNLL file."""
    records = read_records(path)[:limit]
    return [(record.fields["tokens"], record.fields["tags"]) for record in records]


def test_f1(checkpoint: Path, test_file: Path, directory: Path, device: Device, stage: str = "test") -> float:
    """``nlpkit test`` (or ``validate``, with ``stage`` val) of ``checkpoint`` on ``test_file``: the logged strict
    entity F1."""
    command = "test" if stage == "test" else "validate"
    argv = [command, "--ckpt_path", str(checkpoint), f"--data.{stage}_path", str(test_file),
            "--trainer.logger", "CSVLogger", "--trainer.logger.save_dir", str(directory),
            "--trainer.enable_progress_bar", "false", *device.cli()]  # fmt: skip
    with contextlib.redirect_stdout(sys.stderr):
        if nlpkit_command(argv) != 0:
            raise SystemExit(f"nlpkit {command} failed: {' '.join(argv)}")
    with next(directory.rglob("metrics.csv")).open(newline="") as handle:
        key = f"{stage}/entity-f1"
        return next(float(row[key]) for row in csv.DictReader(handle) if row.get(key))


def conll_quality(args: argparse.Namespace, directory: Path, device: Device) -> None:
    """Entity F1 of each example config on CoNLL-2003 against sklearn-crfsuite on the same splits."""
    limit = 200 if args.tiny else None
    files = {}
    for split, path in conll2003().items():
        files[split] = directory / f"conll-{split}.conll"
        write_conll(files[split], sentences_of(path, limit))
    train, val, test = (sentences_of(files[split]) for split in ("train", "val", "test"))
    references = {feature_set: crfsuite_reference(train, test, val, feature_set) for feature_set in FEATURE_SETS}
    common = {"corpus": "conll2003", "train": len(train), "test": len(test)}
    for feature_set, figures in references.items():
        emit("ner", "reference_entity_f1", "fraction", figures["entity_f1"], model=f"sklearn-crfsuite ({feature_set})",
             c1=figures["c1"], c2=figures["c2"], val_entity_f1=round(figures["val_entity_f1"], 4),
             **common)  # fmt: skip
    strongest = max(FEATURE_SETS, key=lambda feature_set: references[feature_set]["val_entity_f1"])
    reference = references[strongest]
    name = (f"sklearn-crfsuite: {strongest} features (the stronger on validation; c1 {reference['c1']}, "
            f"c2 {reference['c2']} chosen there)")  # fmt: skip
    runs = [(example, f"examples/{example}", []) for example in args.configs]
    if args.ablate:
        runs += [(example, f"examples/{example} {change}", options) for example in args.configs
                 for change, options in ABLATIONS.items()]  # fmt: skip
    for index, (example, tagger, options) in enumerate(runs):
        start = time.perf_counter()
        epochs = TINY_FIT if args.tiny else []
        overrides = [*options, *epochs, *device.cli()]
        best = fit_config(EXAMPLES / example, files, 0, directory / f"conll-{index}", overrides)
        seconds = time.perf_counter() - start
        config = {**common, "seed": 0, "fit_seconds": round(seconds), "threads": torch.get_num_threads(),
                  **device.config()}  # fmt: skip
        f1 = test_f1(best, files["test"], directory / f"conll-test-{index}", device)
        emit("ner", "entity_f1", "fraction", f1, reference["entity_f1"], name, tagger=tagger, **config)


def main(argv: list[str] | None = None) -> None:
    """Print every NER figure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    parser.add_argument("--only", choices=["quality", "speed"], help="run one part of the benchmark")
    parser.add_argument("--configs", nargs="+", default=["ner.yaml", "ner-glove.yaml"], help="example configs")
    parser.add_argument("--ablate", action="store_true", help="also fit each config without its feature templates")
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
