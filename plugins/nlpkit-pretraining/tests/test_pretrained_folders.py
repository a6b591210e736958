"""Hugging Face model folders in the pretraining tasks: sentence vectors as sentence-transformers pools them,
zero-shot classification with no training, and masked-LM pretraining that continues the model's own head."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from nlpkit_pretraining.contrastive import ContrastiveTask, load_embedder
from nlpkit_pretraining.masked_lm import MaskedLMTask
from nlpkit_pretraining.pairs import SentencePairsData
from nlpkit_pretraining.zero_shot import ZeroShotTask

from nlpkit import PretrainedEncoder, pad
from nlpkit.testing import fit_tiny, tiny_pretrained_model

transformers = pytest.importorskip("transformers")
TEXTS = ["the film was great", "the plot was dull and clumsy", "a charming and moving soundtrack", "boring"]


@pytest.fixture(scope="module")
def sentence_model(tmp_path_factory) -> Path:
    return tiny_pretrained_model(tmp_path_factory.mktemp("sentence"), pooling="mean")


def test_a_folder_embeds_as_sentence_transformers_pools_it(sentence_model) -> None:
    embedder = load_embedder(str(sentence_model))
    reference = transformers.AutoModel.from_pretrained(sentence_model).eval()
    tokens, mask = pad(embedder.tokenizer.encode_inputs(TEXTS))  # type: ignore[union-attr]
    with torch.no_grad():
        states = reference(input_ids=tokens, attention_mask=mask.long()).last_hidden_state
    weights = mask[..., None].float()
    expected = torch.nn.functional.normalize((states * weights).sum(1) / weights.sum(1), dim=-1)
    np.testing.assert_allclose(embedder.embed(TEXTS), expected.numpy(), atol=1e-5)


def test_zero_shot_classifies_with_a_folder_and_no_training(sentence_model) -> None:
    labels = {"pos": "a great film", "neg": "a dull film"}
    task = ZeroShotTask(model=str(sentence_model), labels=labels, temperature=0.1)
    results = task.predict(TEXTS)
    vectors = load_embedder(str(sentence_model)).embed([*TEXTS, *labels.values()])
    expected = torch.from_numpy(vectors[: len(TEXTS)] @ vectors[len(TEXTS) :].T / 0.1).softmax(-1)
    for result, row in zip(results, expected.tolist(), strict=True):
        assert result["probabilities"] == pytest.approx(dict(zip(labels, row, strict=True)), abs=1e-5)
        assert result["label"] == max(result["probabilities"], key=result["probabilities"].get)


@pytest.mark.parametrize("family", ["bert", "roberta"])  # cls.predictions, lm_head
def test_masked_lm_continues_the_pretrained_head_and_learns(family, tmp_path, prose_data) -> None:
    folder = tiny_pretrained_model(tmp_path / "mlm", family, masked_lm=True)
    task = MaskedLMTask(encoder=partial(PretrainedEncoder, path=str(folder)))
    task.bind(task.tokenizer, None)
    reference = transformers.AutoModelForMaskedLM.from_pretrained(folder).eval()
    tokens, mask = pad(task.tokenizer.encode_inputs(TEXTS))  # type: ignore[union-attr]
    with torch.no_grad():
        expected = reference(input_ids=tokens, attention_mask=mask.long()).logits
        ours = task.eval().head(task.encoder(tokens, mask))  # type: ignore[misc]
    torch.testing.assert_close(ours[mask], expected[mask], atol=1e-4, rtol=0)
    torch.manual_seed(0)
    trainer = fit_tiny(MaskedLMTask(encoder=partial(PretrainedEncoder, path=str(folder))), prose_data(), max_steps=3)
    assert torch.isfinite(trainer.callback_metrics["train/loss"])


def test_simcse_fine_tunes_a_folders_encoder(sentence_model, prose) -> None:
    torch.manual_seed(0)
    task = ContrastiveTask(encoder=partial(PretrainedEncoder, path=str(sentence_model)))
    before = load_embedder(str(sentence_model)).embed(TEXTS)
    trainer = fit_tiny(task, SentencePairsData(train_path=str(prose["train"]), batch_size=16), max_steps=3)
    assert torch.isfinite(trainer.callback_metrics["train/loss"]) and task.pool.kind == "mean"
    assert not np.allclose(task.embed(TEXTS), before, atol=1e-4)
