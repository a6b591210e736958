"""Text classification: accuracy and speed of nlpkit's LSTM and Transformer classifiers against fastText trained
on the same generated split in the same run (the reference a user would otherwise pick).

Training speed is examples/s over the Lightning training steps (after a warm-up epoch fraction); inference is
``Task.predict`` on the test texts at batch 64 (tokenization included), fastText's ``predict`` on the same list.
``--tiny`` is a seconds-long smoke run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import pytorch_lightning as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import StepClock, emit, median_seconds
from nlpkit_classification.data import ClassificationData
from nlpkit_classification.task import TextClassificationTask

from nlpkit.encoders.rnn import LSTMEncoder
from nlpkit.encoders.transformer import TransformerEncoder
from nlpkit.testing import sentiment_corpus, write_sentiment_files
from nlpkit.tokenization import TokenizerOptions

BATCH = 64


def fasttext_reference(train: list[tuple[str, str]], test: list[tuple[str, str]], epochs: int) -> dict[str, float]:
    """Train fastText (word bigrams, so negation is visible to it) and measure accuracy and speed."""
    import fasttext

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.writelines(f"__label__{label} {text}\n" for text, label in train)
    start = time.perf_counter()
    model = fasttext.train_supervised(handle.name, epoch=epochs, wordNgrams=2, lr=0.5, verbose=0, thread=2)
    train_seconds = time.perf_counter() - start
    texts = [text for text, _ in test]
    start = time.perf_counter()
    labels, _ = model.predict(texts)
    predict_seconds = time.perf_counter() - start
    correct = sum(predicted[0] == f"__label__{label}" for predicted, (_, label) in zip(labels, test, strict=True))
    Path(handle.name).unlink()
    return {
        "accuracy": correct / len(test),
        "train_examples_per_s": len(train) * epochs / train_seconds,
        "predict_examples_per_s": len(test) / predict_seconds,
    }


def nlpkit_figures(encoder: partial, files: dict[str, Path], test: list[tuple[str, str]], epochs: int) -> dict:
    """Train a classifier with a Lightning Trainer, then time prediction and measure test accuracy."""
    torch.manual_seed(0)
    task = TextClassificationTask(encoder=encoder, pooling="max", learning_rate=3e-3, warmup_steps=50)
    data = ClassificationData(
        train_path=str(files["train"]), val_path=str(files["val"]), batch_size=BATCH,
        tokenizer=TokenizerOptions(vocab_size=300),
    )  # fmt: skip
    clock = StepClock()
    trainer = pl.Trainer(
        max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, callbacks=[clock],
    )  # fmt: skip
    trainer.fit(task, datamodule=data)
    steps = len(clock.stamps) - 1
    warmup = max(steps // 10, 1)
    train_rate = BATCH * (steps - warmup) / (clock.stamps[-1] - clock.stamps[warmup])  # full batches, ~exact
    texts = [text for text, _ in test]
    seconds = median_seconds(lambda: task.predict(texts, batch_size=BATCH), repeats=3)
    predictions = task.predict(texts, batch_size=BATCH)
    correct = sum(p["label"] == label for p, (_, label) in zip(predictions, test, strict=True))
    return {
        "accuracy": correct / len(test),
        "train_examples_per_s": train_rate,
        "predict_examples_per_s": len(test) / seconds,
    }


def main(argv: list[str] | None = None) -> None:
    """Print accuracy, training and prediction speed per encoder, each against fastText."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    args = parser.parse_args(argv)
    train_size, test_size, epochs = (200, 100, 1) if args.tiny else (20000, 2000, 2)
    directory = Path(tempfile.mkdtemp(prefix="nlpkit-bench-"))
    files = write_sentiment_files(directory, train=train_size, val=test_size // 2, seed=11)
    train, test = sentiment_corpus(train_size, seed=11), sentiment_corpus(test_size, seed=99)
    reference = fasttext_reference(train, test, epochs=5)
    encoders = {
        "bilstm": partial(LSTMEncoder, embedding_dim=64, hidden_size=128, bidirectional=True),
        "transformer": partial(TransformerEncoder, d_model=128, num_heads=4, num_layers=2, dropout=0.1),
    }
    for name, encoder in encoders.items():
        ours = nlpkit_figures(encoder, files, test, epochs)
        config = {"encoder": name, "train": train_size, "test": test_size, "batch": BATCH, "epochs": epochs,
                  "fasttext": "wordNgrams=2, 5 epochs", "threads": torch.get_num_threads()}  # fmt: skip
        units = {"accuracy": "fraction", "train_examples_per_s": "examples/s", "predict_examples_per_s": "examples/s"}
        for metric, unit in units.items():
            emit("classification", metric, unit, ours[metric], reference[metric], "fastText", **config)


if __name__ == "__main__":
    main()
