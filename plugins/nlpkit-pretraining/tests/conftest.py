"""Shared fixtures: real prose (this repository's documentation) and small pretrained checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch
from nlpkit_generation.data import LanguageModelingData
from nlpkit_pretraining.masked_lm import MaskedLMTask

from nlpkit import TokenizerOptions, TransformerEncoder
from nlpkit.testing import fit_tiny

DOCS = Path(__file__).resolve().parents[3] / "docs"
ENCODER = partial(TransformerEncoder, d_model=32, num_heads=2, num_layers=2, dim_feedforward=64, max_length=64)


@pytest.fixture(scope="session")
def prose(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real English prose split by documents: train on most pages of the docs, validate on two others."""
    pages = sorted(DOCS.glob("*.md"))
    directory = tmp_path_factory.mktemp("prose")
    paths = {}
    for split, chosen in (("train", pages[:-2]), ("val", pages[-2:])):
        lines = [line.strip() for page in chosen for line in page.read_text().splitlines()]
        paths[split] = directory / f"{split}.txt"
        paths[split].write_text("\n".join(line for line in lines if len(line.split()) >= 6) + "\n")
    return paths


@pytest.fixture(scope="session")
def encoder() -> partial:
    """The small transformer every pretraining test uses."""
    return ENCODER


@pytest.fixture(scope="session")
def prose_data(prose: dict[str, Path]) -> Callable[..., LanguageModelingData]:
    """Makes the ``text`` data module over the prose, packed into blocks; options override the defaults."""

    def make(**options: Any) -> LanguageModelingData:
        defaults = {"block_size": 48, "batch_size": 16, "tokenizer": TokenizerOptions(vocab_size=400)}
        return LanguageModelingData(train_path=str(prose["train"]), val_path=str(prose["val"]), **defaults | options)

    return make


@pytest.fixture(scope="session")
def mlm_checkpoint(prose_data, tmp_path_factory: pytest.TempPathFactory) -> tuple[MaskedLMTask, Path]:
    """A small transformer pretrained with masked language modelling on the prose, and its checkpoint."""
    torch.manual_seed(0)
    task = MaskedLMTask(encoder=ENCODER, learning_rate=3e-3)
    trainer = fit_tiny(task, prose_data(), max_steps=30)
    path = tmp_path_factory.mktemp("mlm") / "mlm.ckpt"
    trainer.save_checkpoint(path)
    return task, path
