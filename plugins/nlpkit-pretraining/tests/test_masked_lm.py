"""The masked-lm task: it learns real text, refuses causal encoders, fills masks, embeds, streams."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch
from nlpkit_pretraining.masked_lm import MaskedLMTask

import nlpkit
from nlpkit import ConfigError, GRUEncoder, LSTMEncoder
from nlpkit.testing import fit_tiny


def test_masked_lm_loss_falls_on_real_prose(encoder, prose_data) -> None:
    torch.manual_seed(0)
    task = MaskedLMTask(encoder=encoder, learning_rate=3e-3)
    data = prose_data()
    trainer = fit_tiny(task, data, max_steps=0, inference_mode=False)  # metric states stay ordinary tensors
    torch.manual_seed(1)  # the same masks for both evaluations
    before = trainer.validate(task, datamodule=data, verbose=False)[0]
    trainer = fit_tiny(task, data, max_steps=60)
    torch.manual_seed(1)
    after = trainer.validate(task, datamodule=data, verbose=False)[0]
    assert after["val/loss"] < before["val/loss"] - 1.0
    assert after["val/perplexity"] == pytest.approx(np.exp(after["val/loss"]), rel=0.05)
    assert after["val/top1-accuracy"] > before["val/top1-accuracy"] + 0.05


def test_recurrent_encoders_pretrain_bidirectionally_and_causal_ones_are_refused(prose_data) -> None:
    task = MaskedLMTask(encoder=partial(GRUEncoder, embedding_dim=16, hidden_size=16, bidirectional=True))
    trainer = fit_tiny(task, prose_data(), max_steps=3)
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    causal = MaskedLMTask(encoder=partial(LSTMEncoder, embedding_dim=16, hidden_size=16))
    with pytest.raises(ConfigError, match="masked-lm needs a bidirectional encoder"):
        fit_tiny(causal, prose_data(), max_steps=1)


def test_output_layer_is_tied_to_the_token_embedding(mlm_checkpoint) -> None:
    task, path = mlm_checkpoint
    loaded = nlpkit.load(path)
    assert not any("head.embedding" in key for key in loaded.state_dict())
    assert loaded.head.embedding[0].weight is loaded.encoder.token_embedding.weight
    torch.testing.assert_close(loaded.head.bias, task.head.bias)


def test_predict_fills_each_mask_and_embed_gives_unit_vectors(mlm_checkpoint) -> None:
    task = nlpkit.load(mlm_checkpoint[1])
    [fills] = task.predict(["the model is <mask> on the <mask> data"])
    assert len(fills) == 2 and all(len(candidates) == task.top_k for candidates in fills)
    scores = [candidate["score"] for candidate in fills[0]]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1
    vectors = task.embed(["a checkpoint carries the tokenizer", "the test suite", ""])
    assert vectors.dtype == np.float32 and vectors.shape == (3, task.encoder.output_dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    texts = ["training the model", "a checkpoint carries the tokenizer", "plugins register tasks"]
    best = task.similar("a checkpoint carries the tokenizer", texts, k=2)
    assert best[0]["index"] == 1 and best[0]["score"] == pytest.approx(1.0, abs=1e-5) and len(best) == 2


def test_streamed_training_file(encoder, prose_data) -> None:
    task = MaskedLMTask(encoder=encoder)
    trainer = fit_tiny(task, prose_data(streaming=True), max_steps=4, limit_val_batches=0)
    assert trainer.global_step == 4


def test_exported_from_the_command_line_fills_masks_as_the_checkpoint(mlm_checkpoint, tmp_path, capsys) -> None:
    from nlpkit.cli.main import main

    task, path = mlm_checkpoint
    assert main(["export", str(path), "--out", str(tmp_path / "mlm")]) == 0
    assert "max |export - eager| = " in capsys.readouterr().out
    exported = nlpkit.load(tmp_path / "mlm")
    texts = ["the model is <mask> on the <mask> data", "<mask> words", "no mask at all"]
    assert np.allclose(exported.embed(texts), task.embed(texts), atol=1e-5)
    for eager_fills, exported_fills in zip(task.predict(texts), exported.predict(texts), strict=True):
        for eager, other in zip(eager_fills, exported_fills, strict=True):
            assert [c["token"] for c in other] == [c["token"] for c in eager]
            assert [c["score"] for c in other] == pytest.approx([c["score"] for c in eager], abs=1e-5)


def test_served_embeddings_of_an_export_equal_embed(mlm_checkpoint, tmp_path) -> None:
    from nlpkit.deploy.export import export
    from nlpkit.testing import ServerProcess

    task, _ = mlm_checkpoint
    texts = ["the model is trained on the data", "a short one"]
    export(task, tmp_path / "mlm")
    server = ServerProcess(tmp_path / "mlm")
    try:
        assert "/embed" in server.get("/metadata")[1]["endpoints"]
        status, body = server.post("/embed", {"inputs": texts})
        assert status == 200
        assert np.allclose(np.array(body["embeddings"]), task.embed(texts), atol=1e-5)
        status, error = server.post("/embed", {"inputs": [{"text": "a"}]})
        assert status == 422 and error["error"] == "inputs: /embed takes texts"
    finally:
        server.stop()
