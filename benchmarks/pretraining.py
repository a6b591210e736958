"""Pretraining pays: accuracy of a classifier trained from scratch, from a masked-LM and from a SimCSE checkpoint, and
zero-shot, against fastText and TF-IDF + logistic regression on the same splits (each tuned on the validation split,
``_references.py``); and MLM training throughput against
a plain PyTorch loop.

Task: the WordNet supersense of a noun's definition (six classes: artifact, person, plant, animal, act,
communication), fetched by ``benchmarks/data/corpora.py``. Pretraining text: every WordNet gloss except those of the
validation and test synsets, one gloss an example. The encoder uses rotary positions (with learned positions masked-
LM pretraining stayed on the unigram plateau within the budget). Masked-LM pretraining masks 30% and runs without
dropout, SimCSE and fine-tuning with 0.1. One SentencePiece model (trained on the pretraining text) serves every
nlpkit model, scratch included, so the comparison is about the weights. With 100, 500 and all (45,813) labels, each
of 3 seeds draws its own training subset, the same for every method; figures are means over the seeds. The learning
rate of each initialisation is chosen on the validation set at 500 labels (seed 0). ``--tiny`` is a seconds-long
smoke run on generated sentences.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from nlpkit_classification.data import ClassificationData
from nlpkit_classification.task import TextClassificationTask
from nlpkit_generation.data import LanguageModelingData

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Device, StepClock, emit, read_labeled, write_labeled
from _references import NAMES, text_classification_references
from data.corpora import wordnet_supersenses
from nlpkit_pretraining.contrastive import ContrastiveTask
from nlpkit_pretraining.masked_lm import MaskedLMTask
from nlpkit_pretraining.noising import IGNORE
from nlpkit_pretraining.pairs import SentencePairsData
from nlpkit_pretraining.sample import topic_sentences
from nlpkit_pretraining.zero_shot import ZeroShotTask

from nlpkit import pad
from nlpkit.models.encoders.transformer import TransformerEncoder
from nlpkit.models.tokenizers import Tokenizer, TokenizerOptions

#: label -> what the zero-shot classifier compares a definition with
DESCRIPTIONS = {
    "artifact": "a man-made object, device, tool, building, structure or container",
    "person": "a person who does something: someone, a worker, a member, an expert",
    "plant": "a plant: a tree, shrub, herb, flower or fern of a genus",
    "animal": "an animal: a mammal, bird, fish, insect or other creature of a genus",
    "act": "an act or activity: the action of doing something",
    "communication": "communication: a message, statement, word, text or expression in language",
}
TINY_DESCRIPTIONS = {"sport": "the team scored a goal", "food": "the chef cooked soup", "music": "the band sang a song"}
QUIET = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False, "enable_checkpointing": False}


def corpus(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    """Splits as rows and files, and the pretraining text file: WordNet, or generated sentences with ``--tiny``."""
    if args.tiny:
        rows = {"train": topic_sentences(600, 0), "val": topic_sentences(100, 1), "test": topic_sentences(100, 2)}
        pretrain = directory / "pretrain.txt"
        pretrain.write_text("".join(text + "\n" for text, _ in rows["train"]), encoding="utf-8")
        files = {split: write_labeled(directory / f"{split}.jsonl", split_rows) for split, split_rows in rows.items()}
        return {"rows": rows, "files": files, "pretrain": pretrain, "descriptions": TINY_DESCRIPTIONS}
    files = wordnet_supersenses()
    rows = {split: read_labeled(files[split]) for split in ("train", "val", "test")}
    return {"rows": rows, "files": files, "pretrain": files["pretrain"], "descriptions": DESCRIPTIONS}


def trainer(args: argparse.Namespace, max_steps: int, **options: Any) -> pl.Trainer:
    """A quiet trainer on ``args.device`` for ``max_steps`` steps."""
    return pl.Trainer(max_steps=max_steps, num_sanity_val_steps=0, **args.device.trainer(), **QUIET, **options)


# -- pretraining --------------------------------------------------------------------------------------------------
def pretrain(args: argparse.Namespace, data: dict[str, Any], tokenizer: str, directory: Path) -> dict[str, Any]:
    """Masked-LM pretraining, then unsupervised SimCSE from it; checkpoints and wall times."""
    pl.seed_everything(0, verbose=False)
    mlm = MaskedLMTask(
        encoder=args.mlm_encoder, learning_rate=args.mlm_lr, warmup_steps=args.mlm_steps // 20, probability=args.mask
    )
    text = LanguageModelingData(
        train_path=str(data["pretrain"]),
        batch_size=args.mlm_batch,
        tokenizer=TokenizerOptions(path=tokenizer, max_length=args.max_length),
    )
    start = time.perf_counter()
    run = trainer(args, args.mlm_steps)
    run.fit(mlm, datamodule=text)
    mlm_seconds = time.perf_counter() - start
    run.save_checkpoint(directory / "mlm.ckpt")
    pl.seed_everything(0, verbose=False)
    simcse = ContrastiveTask(encoder=args.encoder, init_from=str(directory / "mlm.ckpt"), learning_rate=args.simcse_lr)
    sentences = SentencePairsData(train_path=str(data["pretrain"]), batch_size=args.batch)
    start = time.perf_counter()
    run = trainer(args, args.simcse_steps)
    run.fit(simcse, datamodule=sentences)
    simcse_seconds = time.perf_counter() - start
    run.save_checkpoint(directory / "simcse.ckpt")
    return {
        "mlm": str(directory / "mlm.ckpt"),
        "simcse": str(directory / "simcse.ckpt"),
        "mlm_seconds": mlm_seconds,
        "simcse_seconds": simcse_seconds,
    }


# -- fine-tuning and references ------------------------------------------------------------------------------------
def subset(rows: list[tuple[str, str]], size: int | None, seed: int) -> list[tuple[str, str]]:
    """``size`` training rows drawn with ``seed`` (all of them when ``size`` is None)."""
    if size is None:
        return rows
    return random.Random(seed).sample(rows, size)


def steps_for(size: int, batch: int, epochs: float) -> int:
    """Steps for ``epochs`` passes over ``size`` examples."""
    return max(1, math.ceil(epochs * size / batch))


def fine_tune(
    args: argparse.Namespace,
    data: dict[str, Any],
    train_file: Path,
    size: int,
    init: str | None,
    seed: int,
    split: str,
    **options: Any,
) -> float:
    """Accuracy on ``split`` of a classifier trained on ``train_file`` from ``init`` (None: from scratch) with the
    task ``options`` (learning rate, layer decay)."""
    pl.seed_everything(seed, verbose=False)
    task = TextClassificationTask(
        encoder=args.encoder, init_from=init, warmup_steps=0, calibrate=False, metrics=["accuracy"], **options
    )
    batch = min(64, max(16, size // 16))
    epochs = args.epochs.get(size, args.epochs["all"])
    classification = ClassificationData(
        train_path=str(train_file),
        batch_size=batch,
        seed=seed,
        tokenizer=TokenizerOptions(path=args.tokenizer_path, max_length=args.max_length),
    )
    task.hparams.warmup_steps = steps_for(size, batch, epochs) // 10
    trainer(args, steps_for(size, batch, epochs), limit_val_batches=0).fit(task, datamodule=classification)
    rows = data["rows"][split]
    predictions = task.predict([text for text, _ in rows], batch_size=256)
    return statistics.fmean(p["label"] == label for p, (_, label) in zip(predictions, rows, strict=True))


def zero_shot(checkpoint: str, data: dict[str, Any]) -> float:
    """Test accuracy of zero-shot classification by similarity to the label descriptions."""
    task = ZeroShotTask(model=checkpoint, labels=data["descriptions"])
    test = data["rows"]["test"]
    predictions = task.predict([text for text, _ in test], batch_size=128)
    return statistics.fmean(p["label"] == label for p, (_, label) in zip(predictions, test, strict=True))


# -- throughput -------------------------------------------------------------------------------------------------
def mlm_throughput(args: argparse.Namespace, tokenizer: Tokenizer) -> tuple[float, float]:
    """MLM training tokens/s: the ``masked-lm`` task under Lightning, and a plain PyTorch loop over the same modules,
    masking, AdamW groups, schedule and clipping; medians of windows after a warm-up, interleaved rounds."""
    generator = torch.Generator().manual_seed(0)
    steps = args.warmup + args.window * args.windows
    blocks = [
        torch.randint(5, tokenizer.vocab_size, (args.block + 1,), generator=generator).tolist()
        for _ in range(steps * args.batch)
    ]
    tokens_per_step = args.batch * (args.block + 1)
    ours, theirs = [], []
    for _ in range(args.rounds):
        torch.manual_seed(0)
        task = MaskedLMTask(encoder=args.mlm_encoder, learning_rate=args.mlm_lr)
        task.bind(tokenizer, None)
        examples = [{"tokens": block, "length": len(block), "masked": True} for block in blocks]
        loader = torch.utils.data.DataLoader(examples, batch_size=args.batch, collate_fn=task.collate)
        clock = StepClock()
        trainer(args, steps, callbacks=[clock], gradient_clip_val=1.0).fit(task, train_dataloaders=loader)
        ours += window_rates(clock.stamps, args, tokens_per_step)
        torch.manual_seed(0)
        reference = MaskedLMTask(encoder=args.mlm_encoder, learning_rate=args.mlm_lr)
        reference.bind(tokenizer, None)
        theirs += window_rates(plain_loop(reference, blocks, args), args, tokens_per_step)
    return statistics.median(ours), statistics.median(theirs)


def plain_loop(model: MaskedLMTask, blocks: list[list[int]], args: argparse.Namespace) -> list[float]:
    """The reference: mask, forward, loss on masked positions, backward, clip, AdamW, schedule; step end times."""
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    keep = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    groups = [{"params": decay, "weight_decay": 0.01}, {"params": keep, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=args.mlm_lr)
    total = len(blocks) // args.batch
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(step / total, 1)))
    )
    model.train().to(args.device.name)
    stamps = [time.perf_counter()]
    for start in range(0, total * args.batch, args.batch):
        tokens, mask = (part.to(args.device.name) for part in pad(blocks[start : start + args.batch]))
        inputs, labels = model.masker(tokens, mask)
        with args.device.autocast():
            hidden = model.encoder(inputs, mask)
            chosen = labels != IGNORE
            loss = F.cross_entropy(model.head(hidden[chosen]).float(), labels[chosen])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        args.device.sync()
        stamps.append(time.perf_counter())
    return stamps


def window_rates(stamps: list[float], args: argparse.Namespace, tokens_per_step: int) -> list[float]:
    """Tokens/s of each window of ``args.window`` steps after ``args.warmup`` steps."""
    return [
        tokens_per_step * args.window / (stamps[start + args.window] - stamps[start])
        for start in range(args.warmup, len(stamps) - args.window, args.window)
    ]


# -- the run -------------------------------------------------------------------------------------------------------
def parse(argv: list[str] | None) -> argparse.Namespace:
    """Sizes of the full run, or of ``--tiny``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run on generated sentences")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", choices=["throughput", "quality"], help="run one part of the benchmark")
    Device.add_options(parser)
    args = parser.parse_args(argv)
    args.device = Device.from_args(args)
    full = {
        "d_model": 128, "layers": 4, "max_length": 64, "vocab": 8000, "block": 63, "batch": 64,
        "mlm_steps": 1700, "mlm_lr": 2e-3, "mlm_batch": 256, "mask": 0.3, "simcse_steps": 400, "simcse_lr": 1e-4,
        "sizes": [100, 500, None], "epochs": {100: 40, 500: 15, "all": 1},
        "learning_rates": [3e-4, 1e-3], "warmup": 3, "window": 5, "windows": 4, "rounds": 3,
    }  # fmt: skip
    tiny = {
        "d_model": 32, "layers": 1, "max_length": 32, "vocab": 120, "block": 15, "batch": 16,
        "mlm_steps": 20, "mlm_lr": 3e-3, "mlm_batch": 16, "mask": 0.3, "simcse_steps": 5, "simcse_lr": 1e-3,
        "sizes": [30, None], "epochs": {30: 2, "all": 1},
        "learning_rates": [1e-3], "warmup": 1, "window": 1, "windows": 2, "rounds": 1,
    }  # fmt: skip
    sizes = tiny if args.tiny else full
    if args.tiny:
        args.seeds = args.seeds[:1]
    args = argparse.Namespace(**vars(args), **sizes)
    args.encoder = partial(
        TransformerEncoder,
        d_model=args.d_model,
        num_heads=4 if args.d_model >= 64 else 2,
        num_layers=args.layers,
        max_length=args.max_length,
        dropout=0.1,
        positions="rotary",
    )
    args.mlm_encoder = partial(args.encoder, dropout=0.0)  # masked-LM pretraining runs without dropout (faster)
    return args


def main(argv: list[str] | None = None) -> None:
    """Pretrain, fine-tune with every initialisation, size and seed, compare, and print the figures."""
    args = parse(argv)
    directory = Path(tempfile.mkdtemp(prefix="nlpkit-pretraining-"))
    data = corpus(args, directory)
    pretrain_texts = data["pretrain"].read_text(encoding="utf-8").splitlines()
    tokenizer = Tokenizer.train(pretrain_texts, vocab_size=args.vocab, max_length=args.max_length)
    args.tokenizer_path = str(directory / "tokenizer.model")
    tokenizer.save(args.tokenizer_path)
    shape = {"d_model": args.d_model, "layers": args.layers, "vocab": tokenizer.vocab_size}
    common = {"corpus": "toy" if args.tiny else "wordnet-supersenses", **shape, "threads": torch.get_num_threads(),
              **args.device.config()}  # fmt: skip

    if args.only != "quality":
        ours, plain = mlm_throughput(args, tokenizer)
        emit("pretraining", "mlm_train_tokens_per_s", "tokens/s", ours, plain, "plain PyTorch loop", batch=args.batch,
             block=args.block + 1, **common)  # fmt: skip
    if args.only == "throughput":
        return

    checkpoints = pretrain(args, data, args.tokenizer_path, directory)
    for name in ("mlm", "simcse"):
        steps = args.mlm_steps if name == "mlm" else args.simcse_steps
        emit("pretraining", f"{name}_pretraining_seconds", "s", checkpoints[f"{name}_seconds"], higher_is_better=False,
             steps=steps, **common)  # fmt: skip

    rows = data["rows"]
    inits = {"scratch": None, "mlm": checkpoints["mlm"], "simcse": checkpoints["simcse"]}
    tuning_size = args.sizes[-2]
    tuning_file = write_labeled(directory / "tune.jsonl", subset(rows["train"], tuning_size, 0))
    rates = {}
    for name, init in inits.items():
        scores = {
            lr: fine_tune(args, data, tuning_file, tuning_size, init, 0, "val", learning_rate=lr)
            for lr in args.learning_rates
        }
        rates[name] = max(scores, key=scores.get)
    results: dict[tuple[str, int | None], list[float]] = {}
    for size in args.sizes:
        for seed in args.seeds:
            train = subset(rows["train"], size, seed)
            train_file = write_labeled(directory / f"train-{size}-{seed}.jsonl", train)
            count = len(train)
            duration = 5 if args.tiny else 60
            for name, reference in text_classification_references(
                train, rows["val"], rows["test"], seed, None, duration
            ).items():
                results.setdefault((name, size), []).append(reference["accuracy"])
            for name, init in inits.items():
                accuracy = fine_tune(args, data, train_file, count, init, seed, "test", learning_rate=rates[name])
                results.setdefault((name, size), []).append(accuracy)
    for size in args.sizes:
        labels = size or len(rows["train"])
        mean = {
            name: statistics.fmean(results[(name, size)]) for name in ("scratch", "mlm", "simcse", "fastText", "tfidf")
        }
        for name in ("scratch", "mlm", "simcse"):
            config = {"init": name, "labels": labels, "seeds": len(args.seeds), "learning_rate": rates[name], **common}
            emit("pretraining", "accuracy", "fraction", mean[name], mean["fastText"], NAMES["fastText"], **config)
            emit("pretraining", "accuracy", "fraction", mean[name], mean["tfidf"], NAMES["tfidf"], **config)
            if name != "scratch":
                emit("pretraining", "accuracy", "fraction", mean[name], mean["scratch"], "the same model from scratch",
                     points_over_scratch=round(100 * (mean[name] - mean["scratch"]), 2), **config)  # fmt: skip
    majority = max(statistics.fmean(label == name for _, label in rows["test"]) for name in data["descriptions"])
    for name in ("simcse", "mlm"):
        accuracy = zero_shot(checkpoints[name], data)
        emit("pretraining", "zero_shot_accuracy", "fraction", accuracy, majority, "majority class", model=name,
             points_over_majority=round(100 * (accuracy - majority), 2), **common)  # fmt: skip


if __name__ == "__main__":
    main()
