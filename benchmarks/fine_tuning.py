"""Fine-tuning all-MiniLM-L6-v2 on the review sentences: nlpkit against transformers' own loop with the same weights.

* **Accuracy**: ``nlpkit fit --config examples/sentiment-pretrained.yaml`` (data paths and seed changed) against a
  plain PyTorch loop over ``BertForSequenceClassification`` from the same folder, as transformers'
  ``run_glue_no_trainer`` example writes it: AdamW with the example's learning rate, weight decay (none on biases
  and LayerNorms) and batch size, the same maximum length and epochs, a linear decay after the same warm-up
  fraction, gradient clipping at 1.0 (nlpkit's default), and the epoch of best validation accuracy kept. Test
  accuracy, mean of 3 seeds.
* **Training speed**: both sides train on the same batches (the same texts, padded to the longest of each batch),
  nlpkit through its Task and a Lightning Trainer, transformers through the plain loop; real tokens per second,
  the median of 4-step windows after 3 warm-up steps, two interleaved rounds per side.
* **Inference**: examples/s of ``Task.predict`` of nlpkit's fine-tuned checkpoint against a transformers
  ``pipeline("text-classification")`` of the reference's fine-tuned model, the same texts, batch 32, median of 3.

``--tiny`` is a smoke run on 64 sentences.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch
import yaml
from nlpkit_classification.task import TextClassificationTask

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import TINY_FIT, Device, emit, fit_config, median_seconds, read_labeled, timed_steps, write_labeled
from data.corpora import sentiment_sentences
from data.pretrained import minilm
from pretrained import accuracy

import nlpkit
from nlpkit.models.encoders.pretrained import PretrainedEncoder

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sentiment-pretrained.yaml"
CLIP = 1.0
Rows = list[tuple[str, str]]


def example_settings() -> dict[str, Any]:
    """The example config's training settings, which the reference loop uses too."""
    config = yaml.safe_load(EXAMPLE.read_text())
    model = config["model"]["init_args"]
    return {
        "learning_rate": model["learning_rate"],
        "weight_decay": model["weight_decay"],
        "warmup_ratio": model["warmup_ratio"],
        "epochs": config["trainer"]["max_epochs"],
        "batch_size": config["data"]["init_args"]["batch_size"],
        "max_length": model["encoder"]["init_args"]["max_length"],
    }


def reference_optimizer(model: torch.nn.Module, settings: dict[str, Any], total: int) -> tuple[Any, Any]:
    """AdamW without decay on biases and LayerNorm weights, and a linear decay after warm-up (transformers')."""
    from transformers import get_linear_schedule_with_warmup

    plain = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    decayed = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    groups = [{"params": decayed, "weight_decay": settings["weight_decay"]}, {"params": plain, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=settings["learning_rate"])
    warmup = round(settings["warmup_ratio"] * total)
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup, total)


def reference_step(model: Any, optimizer: Any, scheduler: Any, batch: dict[str, torch.Tensor]) -> None:
    """One training step of the reference loop."""
    loss = model(**batch).loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
    optimizer.step()
    scheduler.step()


def reference_inputs(tokenizer: Any, rows: Rows, settings: dict[str, Any]) -> Any:
    """The transformers tokenizer's padded batch of the texts of ``rows``, cut at the maximum length."""
    texts = [text for text, _ in rows]
    return tokenizer(texts, padding=True, truncation=True, max_length=settings["max_length"], return_tensors="pt")


def reference_accuracy(model: Any, tokenizer: Any, rows: Rows, labels: list[str], settings: dict[str, Any]) -> float:
    """The reference model's accuracy on ``rows``."""
    model.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(rows), 64):
            chunk = rows[start : start + 64]
            inputs = reference_inputs(tokenizer, chunk, settings)
            predicted = model(**inputs).logits.argmax(-1).tolist()
            correct += sum(labels[p] == label for p, (_, label) in zip(predicted, chunk, strict=True))
    return correct / len(rows)


def reference_fine_tune(
    folder: Path, splits: dict[str, Rows], seed: int, settings: dict[str, Any]
) -> tuple[Any, Any, float]:
    """transformers' loop: the model of best validation accuracy, its tokenizer, and its test accuracy."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(seed)
    labels = sorted({label for _, label in splits["train"]})
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=len(labels))
    size = settings["batch_size"]
    steps_per_epoch = -(-len(splits["train"]) // size)
    optimizer, scheduler = reference_optimizer(model, settings, steps_per_epoch * settings["epochs"])
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    order, shuffling = list(range(len(splits["train"]))), random.Random(seed)
    for _ in range(settings["epochs"]):
        shuffling.shuffle(order)
        model.train()
        for start in range(0, len(order), size):
            chunk = [splits["train"][i] for i in order[start : start + size]]
            inputs = reference_inputs(tokenizer, chunk, settings)
            inputs["labels"] = torch.tensor([labels.index(label) for _, label in chunk])
            reference_step(model, optimizer, scheduler, inputs)
        score = reference_accuracy(model, tokenizer, splits["val"], labels, settings)
        if best is None or score > best[0]:
            best = (score, {k: v.clone() for k, v in model.state_dict().items()})
    model.load_state_dict(best[1])  # type: ignore[index]
    return model, tokenizer, reference_accuracy(model, tokenizer, splits["test"], labels, settings)


def same_batches(folder: Path, rows: Rows, labels: list[str], settings: dict[str, Any], steps: int) -> list[dict]:
    """``steps`` training batches of the review sentences in shuffled order, as nlpkit's tokenizer encodes them."""
    from nlpkit import pad
    from nlpkit.models.tokenizers import Tokenizer

    tokenizer = Tokenizer.load(folder, max_length=settings["max_length"])
    order = list(range(len(rows)))
    random.Random(0).shuffle(order)
    batches = []
    for step in range(steps):
        chunk = [rows[order[(step * settings["batch_size"] + i) % len(rows)]] for i in range(settings["batch_size"])]
        tokens, mask = pad(tokenizer.encode_inputs([text for text, _ in chunk]))
        label_ids = torch.tensor([labels.index(label) for _, label in chunk])
        batches.append({"tokens": tokens, "mask": mask, "labels": label_ids, "index": torch.arange(len(chunk))})
    return batches


def training_speed(
    folder: Path, rows: Rows, settings: dict[str, Any], device: Device, steps: int, rounds: int = 2
) -> tuple[float, float]:
    """Real tokens/s of nlpkit's Task under a Trainer and of the reference loop, on the same batches, in ``rounds``
    interleaved rounds."""
    from transformers import AutoModelForSequenceClassification

    labels = sorted({label for _, label in rows})
    batches = same_batches(folder, rows, labels, settings, steps)
    tokens = [int(batch["mask"].sum()) for batch in batches]
    warmup, chunk = 3, 4

    def rates(stamps: list[float]) -> list[float]:
        return [
            sum(tokens[s : s + chunk]) / (stamps[s + chunk] - stamps[s]) for s in range(warmup, steps - chunk, chunk)
        ]

    ours, theirs = [], []
    for _ in range(rounds):
        torch.manual_seed(0)
        task = TextClassificationTask(
            encoder=partial(PretrainedEncoder, path=str(folder), max_length=settings["max_length"]),
            learning_rate=settings["learning_rate"],
            weight_decay=settings["weight_decay"],
            warmup_ratio=settings["warmup_ratio"],
            calibrate=False,
            metrics=[],
        )
        task.bind(task.tokenizer, labels)
        ours += rates(timed_steps(task, batches, device, CLIP))
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=len(labels)).to(device.name)
        model.train()
        optimizer, scheduler = reference_optimizer(model, settings, steps)
        stamps = [time.perf_counter()]
        for batch in batches:
            inputs = {"input_ids": batch["tokens"], "attention_mask": batch["mask"].long(), "labels": batch["labels"]}
            with device.autocast():
                reference_step(model, optimizer, scheduler, {k: v.to(device.name) for k, v in inputs.items()})
            device.sync()
            stamps.append(time.perf_counter())
        theirs += rates(stamps)
    return statistics.median(ours), statistics.median(theirs)


def inference_speed(
    checkpoint: Path, model: Any, tokenizer: Any, texts: list[str], settings: dict[str, Any]
) -> tuple[float, float]:
    """Examples/s of nlpkit's predict and of a transformers pipeline of the reference's model, the same texts."""
    from transformers import pipeline

    task = nlpkit.load(checkpoint)
    classify = pipeline("text-classification", model=model.eval(), tokenizer=tokenizer, device=-1, top_k=None)
    options = {"batch_size": 32, "truncation": True, "max_length": settings["max_length"]}
    ours = median_seconds(lambda: task.predict(texts, batch_size=32), repeats=3)
    theirs = median_seconds(lambda: classify(texts, **options), repeats=3)
    return len(texts) / ours, len(texts) / theirs


def main(argv: list[str] | None = None) -> None:
    """Print the figures as JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="a smoke run on 64 sentences")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    Device.add_options(parser)
    args = parser.parse_args(argv)
    device = Device.from_args(args)
    folder, settings = minilm(), example_settings()
    limit = 64 if args.tiny else None
    splits = {split: read_labeled(path, limit) for split, path in sentiment_sentences().items()}
    seeds = args.seeds[:1] if args.tiny else args.seeds
    directory = Path(tempfile.mkdtemp(prefix="nlpkit-fine-tuning-"))
    files = {split: write_labeled(directory / f"{split}.jsonl", rows) for split, rows in splits.items()}
    config = {
        "corpus": "sentiment-sentences",
        "train": len(splits["train"]),
        "test": len(splits["test"]),
        "model": "all-MiniLM-L6-v2",
        **settings,
        "threads": torch.get_num_threads(),
        **device.config(),
    }
    epochs = TINY_FIT if args.tiny else []
    if args.tiny:
        settings["epochs"] = 1
    ours, theirs, checkpoint, reference = [], [], None, None
    for seed in seeds:
        checkpoint = fit_config(EXAMPLE, files, seed, directory / f"nlpkit-{seed}", [*epochs, *device.cli()])
        ours.append(accuracy(checkpoint, splits["test"], device))
        reference = reference_fine_tune(folder, splits, seed, settings)
        theirs.append(reference[2])
    emit(
        "fine_tuning",
        "test_accuracy",
        "fraction",
        statistics.fmean(ours),
        statistics.fmean(theirs),
        "transformers' own loop (BertForSequenceClassification)",
        seeds=len(seeds),
        per_seed=ours,
        reference_per_seed=theirs,
        points=round(100 * (statistics.fmean(ours) - statistics.fmean(theirs)), 2),
        **config,
    )
    steps, rounds = (8, 1) if args.tiny else (23, 2)  # a smoke run: one window of one round
    nlpkit_speed, reference_speed = training_speed(folder, splits["train"], settings, device, steps, rounds)
    emit(
        "fine_tuning",
        "train_tokens_per_s",
        "tokens/s",
        nlpkit_speed,
        reference_speed,
        "transformers' own loop, the same batches",
        **config,
    )
    texts = [text for text, _ in splits["test"]]
    ours_rate, pipeline_rate = inference_speed(checkpoint, reference[0], reference[1], texts, settings)  # type: ignore[arg-type,index]
    emit(
        "fine_tuning",
        "predict_examples_per_s",
        "examples/s",
        ours_rate,
        pipeline_rate,
        "transformers pipeline, the same weights fine-tuned",
        **config,
    )


if __name__ == "__main__":
    main()
