"""Inference speed on real text: eager against ONNX Runtime and int8, against fastText, sklearn-crfsuite and a
Hugging Face pipeline, and the HTTP server's throughput and latency.

1. Classification (review sentences): ``examples/sentiment.yaml`` (n-grams beside a BiLSTM) and its n-gram encoder
   alone, each fitted briefly, then examples/s of ``Task.predict`` eager, from its ONNX export and from the int8
   ONNX export, against fastText's ``predict`` timed in turns with each; test accuracy of each, the int8
   export's against eager.
2. The same-size Transformer: an nlpkit classifier with a 2-layer, 128-wide Transformer encoder against a Hugging
   Face ``pipeline("text-classification")`` over a BERT of the same sizes and vocabulary (its fast tokenizer made
   from the same SentencePiece model), eager and ONNX; goal: ratio >= 2.
3. NER (CoNLL-2003 test sentences): the example's BiLSTM-CRF with character features, eager, ONNX (Viterbi in the
   graph) and int8, against sklearn-crfsuite's ``predict`` with the classic word features (reported).
4. ``nlpkit serve`` of the classifier's ONNX export: requests/s and p50/p99 latency at 1, 8 and 64 concurrent
   clients, each request one sentence (no reference).

Speeds are the median of 3 runs after a warm-up, every model on the same threads. ``--device cuda`` runs the eager
models on the GPU (exports stay on ONNX Runtime's CPU provider); ``--precision bf16-mixed`` runs them under
bfloat16 autocast. ``--tiny`` is a smoke run.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    TINY_FIT,
    Device,
    emit,
    fit_config,
    interleaved_medians,
    median_seconds,
    read_labeled,
    write_labeled,
)
from classification import NGRAM
from data.corpora import conll2003, sentiment_sentences
from ner import crfsuite_reference, sentences_of
from nlpkit_classification.task import TextClassificationTask
from nlpkit_ner.task import TokenClassificationTask

import nlpkit
from nlpkit.deploy.export import export
from nlpkit.models.encoders.rnn import LSTMEncoder
from nlpkit.models.encoders.transformer import TransformerEncoder
from nlpkit.models.tokenizers import Tokenizer
from nlpkit.training.task import Task

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sentiment.yaml"
BATCH = 32
SIZES = {"d_model": 128, "num_heads": 4, "num_layers": 2, "dim_feedforward": 512, "max_length": 128}


def repeats(args: argparse.Namespace, figures: int) -> int:
    """How many timed runs a figure takes the median of: ``figures``, or one for ``--tiny`` (a smoke run)."""
    return 1 if args.tiny else figures


def items_per_second(device: Device, run: Callable[[], object], count: int, times: int) -> float:
    """Items per second of ``run`` (``count`` items) on ``device``, the median of ``times`` after a warm-up."""
    with device.autocast():
        return count / median_seconds(run, repeats=times, sync=device.sync)


def variants(task: Task, directory: Path) -> dict[str, Task]:
    """The task and its ONNX and int8 ONNX exports, loaded back."""
    export(task, directory / "onnx")
    export(task, directory / "onnx-int8", quantize=True)
    return {"eager": task, "onnx": nlpkit.load(directory / "onnx"), "onnx-int8": nlpkit.load(directory / "onnx-int8")}


def accuracy(task: Task, test: list[tuple[str, str]]) -> float:
    """Fraction of ``test`` labelled right."""
    predictions = task.predict([text for text, _ in test], batch_size=BATCH)
    return statistics.fmean(p["label"] == label for p, (_, label) in zip(predictions, test, strict=True))


def fasttext_predictor(train: list[tuple[str, str]], texts: list[str]) -> Callable[[], object]:
    """fastText (word bigrams, 25 epochs: its prediction speed depends little on the settings) fitted on ``train``:
    its ``predict`` on ``texts``, ready to time."""
    import fasttext

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.writelines(f"__label__{label} {text.lower()}\n" for text, label in train)
    model = fasttext.train_supervised(handle.name, epoch=25, lr=0.5, wordNgrams=2, verbose=0, thread=1, seed=0)
    Path(handle.name).unlink()
    return partial(model.predict, [text.lower() for text in texts])


def speeds_in_turns(
    device: Device, run: Callable[[], object], reference: Callable[[], object], count: int, times: int
) -> tuple[float, float]:
    """Items per second of ``run`` and of ``reference`` (``count`` items each), timed in turns (the median of
    ``times`` after a warm-up), so that a change in the machine's speed falls on both alike."""
    with device.autocast():
        seconds = interleaved_medians([run, reference], repeats=times, sync=device.sync)
    return count / seconds[0], count / seconds[1]


#: the classifiers timed: the example as it is (the hybrid), and its n-gram encoder alone (fastText's model)
CLASSIFIERS = {"examples/sentiment.yaml": [], "ngram encoder (examples/sentiment.yaml's n-gram part)": NGRAM}


def classification(args: argparse.Namespace, device: Device, directory: Path) -> Path:
    """Section 1; returns the example's ONNX export, which the server section serves."""
    prepared = sentiment_sentences()
    limit = 200 if args.tiny else None
    splits = {split: read_labeled(prepared[split], limit) for split in ("train", "val", "test")}
    files = {split: write_labeled(directory / f"{split}.jsonl", rows) for split, rows in splits.items()}
    epochs = TINY_FIT if args.tiny else ["--trainer.max_epochs", "3"]
    texts = [text for rows in splits.values() for text, _ in rows]  # every sentence, for the speed figures
    fasttext = fasttext_predictor(splits["train"], texts)
    config = {"corpus": "sentiment-sentences", "texts": len(texts), "batch_size": BATCH, **device.config()}
    for index, (model, options) in enumerate(CLASSIFIERS.items()):
        fitted = directory / f"model-{index}"
        best = fit_config(EXAMPLE, files, 0, fitted / "fit", [*options, *epochs, *device.cli()])
        eager_accuracy = None
        for name, task in variants(nlpkit.load(best, map_location=device.name), fitted).items():
            run = partial(task.predict, texts, batch_size=BATCH)
            speed, reference = speeds_in_turns(device, run, fasttext, len(texts), repeats(args, 5))
            emit("inference", "classify_examples_per_s", "examples/s", speed, reference, "fastText predict",
                 model=model, runtime=name, **config)  # fmt: skip
            with device.autocast():
                correct = accuracy(task, splits["test"])
            eager_accuracy = eager_accuracy or correct
            emit("inference", "test_accuracy", "fraction", correct, eager_accuracy, "the eager model",
                 model=model, runtime=name, test=len(splits["test"]), **config)  # fmt: skip
    return directory / "model-0" / "onnx"


def hugging_face_pipeline(tokenizer: Tokenizer, labels: int) -> Any:
    """A text-classification pipeline over a BERT of :data:`SIZES` and a fast (Rust) tokenizer of the same pieces
    and scores."""
    import sentencepiece
    from tokenizers import Tokenizer as RustTokenizer
    from tokenizers import decoders, models, pre_tokenizers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast, pipeline

    pieces = sentencepiece.SentencePieceProcessor(model_proto=tokenizer.to_bytes())
    vocabulary = [(pieces.id_to_piece(i), pieces.get_score(i)) for i in range(pieces.get_piece_size())]
    rust = RustTokenizer(models.Unigram(vocabulary, unk_id=pieces.unk_id()))
    rust.pre_tokenizer, rust.decoder = pre_tokenizers.Metaspace(), decoders.Metaspace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=rust, pad_token=pieces.id_to_piece(tokenizer.pad_id),
        unk_token=pieces.id_to_piece(pieces.unk_id()), model_max_length=SIZES["max_length"],
    )  # fmt: skip
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=SIZES["d_model"], num_hidden_layers=SIZES["num_layers"],
        num_attention_heads=SIZES["num_heads"], intermediate_size=SIZES["dim_feedforward"],
        max_position_embeddings=SIZES["max_length"], num_labels=labels, pad_token_id=fast.pad_token_id,
    )  # fmt: skip
    model = BertForSequenceClassification(config).eval()
    return pipeline("text-classification", model=model, tokenizer=fast, device=-1, top_k=None)


def same_size_transformer(args: argparse.Namespace, device: Device, directory: Path) -> None:
    """Section 2."""
    prepared = sentiment_sentences()
    limit = 200 if args.tiny else None
    rows = [row for split in ("train", "val", "test") for row in read_labeled(prepared[split], limit)]
    texts = [text for text, _ in rows]
    tokenizer = Tokenizer.train(texts, vocab_size=8000, max_length=SIZES["max_length"])
    torch.manual_seed(0)
    task = TextClassificationTask(encoder=partial(TransformerEncoder, **SIZES))
    task.bind(tokenizer, sorted({label for _, label in rows}))
    task.eval()
    classify = hugging_face_pipeline(tokenizer, len(task.labels))
    pipeline_run = partial(classify, texts, batch_size=BATCH, truncation=True)
    reference = len(texts) / median_seconds(pipeline_run, repeats=repeats(args, 3))
    config = {"corpus": "sentiment-sentences", "texts": len(texts), "batch_size": BATCH, **SIZES, **device.config()}
    export(task, directory / "transformer-onnx")
    for name, model in (("eager", task.to(device.name)), ("onnx", nlpkit.load(directory / "transformer-onnx"))):
        speed = items_per_second(device, partial(model.predict, texts, batch_size=BATCH), len(texts), repeats(args, 3))
        emit("inference", "classify_examples_per_s", "examples/s", speed, reference,
             "transformers pipeline, BERT of the same sizes", model="transformer", runtime=name, **config)  # fmt: skip


def ner(args: argparse.Namespace, device: Device, directory: Path) -> None:
    """Section 3."""
    files = conll2003()
    train = sentences_of(files["train"], 200 if args.tiny else 2000)
    test = sentences_of(files["test"], 100 if args.tiny else None)
    reference = crfsuite_reference(train, test)["predict_sentences_per_s"]
    tokenizer = Tokenizer.train([" ".join(tokens) for tokens, _ in train], vocab_size=4000)
    labels = sorted({tag for _, tags in train for tag in tags})
    encoder = partial(LSTMEncoder, embedding_dim=100, hidden_size=128, bidirectional=True)
    torch.manual_seed(0)
    task = TokenClassificationTask(encoder=encoder, crf=True, char_features="cnn")
    task.bind(tokenizer, labels)
    task.eval()
    sentences = [{"tokens": tokens} for tokens, _ in test]
    config = {"corpus": "conll2003", "sentences": len(test), "batch_size": BATCH, **device.config()}
    for name, model in variants(task.to(device.name), directory / "ner").items():
        speed = items_per_second(
            device, partial(model.predict, sentences, batch_size=BATCH), len(sentences), repeats(args, 3)
        )
        emit("inference", "tag_sentences_per_s", "sentences/s", speed, reference, "sklearn-crfsuite predict",
             model="BiLSTM-CRF, character CNN (examples/ner.yaml sizes)", runtime=name, **config)  # fmt: skip


def server(args: argparse.Namespace, exported: Path, texts: list[str]) -> None:
    """Section 4: ``nlpkit serve`` in a subprocess, clients on threads of this one."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "nlpkit", "serve", str(exported), "--port", str(port), "--max_wait_ms", "2"],
        stdout=subprocess.DEVNULL, stderr=sys.stderr,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url)
        requests = 50 if args.tiny else 600
        for clients in (1, 8, 64):
            latencies, seconds = _load(url, texts, clients, requests)
            config = {"clients": clients, "requests": requests, "runtime": "onnx", "model": "examples/sentiment.yaml"}
            emit("inference", "server_requests_per_s", "requests/s", requests / seconds, **config)
            for quantile, value in (("p50", 0.5), ("p99", 0.99)):
                latency = latencies[min(int(value * len(latencies)), len(latencies) - 1)] * 1000
                emit("inference", f"server_latency_{quantile}", "ms", latency, higher_is_better=False, **config)
    finally:
        process.terminate()
        process.wait(timeout=60)


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("nlpkit serve did not start")


def _load(url: str, texts: list[str], clients: int, requests: int) -> tuple[list[float], float]:
    """Sorted latencies of ``requests`` one-text requests sent by ``clients`` concurrent clients, and the wall time."""

    def one(index: int) -> float:
        body = json.dumps({"inputs": [texts[index % len(texts)]]}).encode()
        start = time.perf_counter()
        with urllib.request.urlopen(urllib.request.Request(f"{url}/predict", data=body), timeout=60) as response:
            response.read()
        return time.perf_counter() - start

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(clients)))  # warm-up
        start = time.perf_counter()
        latencies = sorted(pool.map(one, range(requests)))
    return latencies, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    """Run the sections; every figure is one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="a smoke run on a few hundred examples")
    Device.add_options(parser)
    parser.add_argument("--sections", nargs="+", default=["classification", "transformer", "ner", "server"])
    args = parser.parse_args(argv)
    device = Device.from_args(args)
    directory = Path(tempfile.mkdtemp(prefix="nlpkit-inference-"))
    exported = None
    if "classification" in args.sections or "server" in args.sections:
        exported = classification(args, device, directory)
    if "transformer" in args.sections:
        same_size_transformer(args, device, directory)
    if "ner" in args.sections:
        ner(args, device, directory)
    if "server" in args.sections and exported is not None:
        texts = [text for text, _ in read_labeled(sentiment_sentences()["test"])]
        server(args, exported, texts)


if __name__ == "__main__":
    main()
