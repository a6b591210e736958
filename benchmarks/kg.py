"""Link prediction on Nations: nlpkit against PyKEEN, same model, dimension, epochs, batch, optimizer and regime.

Two training regimes, each matched on both sides:

- ``1-n``: every entity scored for each (entity, relation) query, binary cross-entropy with label smoothing 0.1,
  inverse relations (PyKEEN: ``lcwa`` with ``BCEWithLogits`` and ``create_inverse_triples``);
- ``negative-sampling``: Bernoulli corruption, 32 negatives per triple, self-adversarial weighting at temperature 1
  with the same margin (PyKEEN: ``slcwa``, ``bernoulli`` sampler, ``NSSA`` loss).

Both: embedding dimension 64 (complex components for ComplEx and RotatE), Adam at 0.01, batch 256, 2 threads.
``epoch_seconds`` is a whole training run (setup included) over its epochs, the median over seeds; the quality
figures are filtered test metrics with realistic ranks, the mean over seeds. Needs ``pykeen`` (the bench extra),
whose package ships the Nations files. ``--tiny`` is a seconds-long smoke run.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from nlpkit_kg import scorers
from nlpkit_kg.data import TriplesData
from nlpkit_kg.task import LinkPredictionTask

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Device, emit

MODELS = {"TransE": scorers.TransE, "DistMult": scorers.DistMult, "ComplEx": scorers.ComplEx, "RotatE": scorers.RotatE}
DIM, BATCH, LR, NEGATIVES, SMOOTHING = 64, 256, 0.01, 32, 0.1


def nations_files() -> dict[str, str]:
    """The Nations splits inside the installed PyKEEN package."""
    import pykeen.datasets.nations as nations

    folder = Path(nations.__file__).parent
    return {
        split: str(folder / f"{name}.txt") for split, name in (("train", "train"), ("val", "valid"), ("test", "test"))
    }


def run_nlpkit(model: str, regime: str, epochs: int, seed: int, device: Device) -> dict[str, float]:
    """Train and test nlpkit's model; seconds per epoch and filtered test metrics."""
    pl.seed_everything(seed, verbose=False)
    task = LinkPredictionTask(
        head=partial(MODELS[model], dim=DIM),
        objective=regime,
        num_negatives=NEGATIVES,
        label_smoothing=SMOOTHING,
        learning_rate=LR,
        min_lr_ratio=1.0,
    )
    files = nations_files()
    data = TriplesData(train_path=files["train"], val_path=files["val"], test_path=files["test"], batch_size=BATCH)
    quiet = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False}
    trainer = pl.Trainer(
        max_epochs=epochs, enable_checkpointing=False, limit_val_batches=0, **device.trainer(), **quiet
    )
    start = time.perf_counter()
    trainer.fit(task, datamodule=data)
    seconds = (time.perf_counter() - start) / epochs
    result = trainer.test(task, datamodule=data, verbose=False)[0]
    return {"epoch_seconds": seconds, "filtered_mrr": result["test/mrr"], "hits_at_10": result["test/hits@10"]}


def run_pykeen(model: str, regime: str, epochs: int, seed: int, device: Device) -> dict[str, float]:
    """Train and test PyKEEN's model with the matched settings."""
    from pykeen.datasets import Nations
    from pykeen.pipeline import pipeline

    margin = MODELS[model].default_margin
    regime_options: dict[str, Any] = (
        {"training_loop": "lcwa", "loss": "BCEWithLogits", "training_kwargs": {"label_smoothing": SMOOTHING}}
        if regime == "1-n"
        else {
            "training_loop": "slcwa",
            "loss": "NSSA",
            "loss_kwargs": {"margin": margin, "adversarial_temperature": 1.0},
            "negative_sampler": "bernoulli",
            "negative_sampler_kwargs": {"num_negs_per_pos": NEGATIVES},
        }
    )
    training = {
        "num_epochs": epochs,
        "batch_size": BATCH,
        "use_tqdm": False,
        **regime_options.pop("training_kwargs", {}),
    }
    result = pipeline(
        dataset=Nations(create_inverse_triples=regime == "1-n"),
        model=model,
        model_kwargs={"embedding_dim": DIM},
        optimizer="Adam",
        optimizer_kwargs={"lr": LR},
        training_kwargs=training,
        evaluation_kwargs={"use_tqdm": False},
        random_seed=seed,
        device=device.name,
        **regime_options,
    )
    metrics = result.metric_results
    return {
        "epoch_seconds": result.train_seconds / epochs,
        "filtered_mrr": metrics.get_metric("both.realistic.inverse_harmonic_mean_rank"),
        "hits_at_10": metrics.get_metric("both.realistic.hits_at_10"),
    }


def summarise(runs: list[dict[str, float]]) -> dict[str, float]:
    """Median seconds, mean quality over the seeds."""
    return {
        "epoch_seconds": statistics.median(run["epoch_seconds"] for run in runs),
        "filtered_mrr": statistics.fmean(run["filtered_mrr"] for run in runs),
        "hits_at_10": statistics.fmean(run["hits_at_10"] for run in runs),
    }


def main() -> None:
    """Emit filtered_mrr, hits_at_10 and epoch_seconds for each model and regime."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    Device.add_options(parser)
    args = parser.parse_args()
    device = Device.from_args(args)
    epochs, seeds = (2, [0]) if args.tiny else (50, [0, 1, 2])
    models = ["DistMult"] if args.tiny else list(MODELS)
    torch.set_num_threads(2)
    logging.disable(logging.WARNING)  # PyKEEN's and Lightning's per-run chatter
    warnings.filterwarnings("ignore")
    for regime in ("1-n", "negative-sampling"):
        for model in models:
            ours = summarise([run_nlpkit(model, regime, epochs, seed, device) for seed in seeds])
            reference = summarise([run_pykeen(model, regime, epochs, seed, device) for seed in seeds])
            config = {
                "dataset": "nations",
                "model": model,
                "regime": regime,
                "dim": DIM,
                "epochs": epochs,
                "batch_size": BATCH,
                "seeds": len(seeds),
                "threads": 2,
                **device.config(),
            }
            for metric, unit, higher in (
                ("filtered_mrr", "mrr", True),
                ("hits_at_10", "share", True),
                ("epoch_seconds", "s", False),
            ):
                emit("kg", metric, unit, ours[metric], reference[metric], "pykeen", higher_is_better=higher, **config)


if __name__ == "__main__":
    main()
