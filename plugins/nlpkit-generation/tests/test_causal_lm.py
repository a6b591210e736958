"""Causal language modelling: packing, exact epoch perplexity, learning a corpus, encoder checks."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from nlpkit_generation.data import LanguageModelingData, pack_blocks
from nlpkit_generation.task import CausalLMTask

from nlpkit import CausalTransformerEncoder, ConfigError, LSTMEncoder, TokenizerOptions
from nlpkit.plugin.loader import discover
from nlpkit.testing import fit_tiny

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "a journey of a thousand miles begins with a single step",
    "all that glitters is not gold",
    "the early bird catches the worm",
]


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("lm") / "corpus.txt"
    path.write_text("\n".join(CORPUS * 8) + "\n")
    return path


def test_registered_through_the_entry_point() -> None:
    plugins = discover()
    assert plugins["tasks"]["causal-lm"] is CausalLMTask
    assert plugins["datasets"].entry("text").plugin == plugins["metrics"].entry("perplexity").plugin == "generation"


def test_packed_blocks_predict_every_token_once() -> None:
    documents = [[2, 5, 6, 3], [2, 7, 3], [2, 8, 9, 10, 3]]
    blocks = pack_blocks(documents, block_size=4)
    stream = [t for d in documents for t in d]
    targets = [t for b in blocks for t in b["tokens"][1:]]
    assert targets == stream[1:]
    assert [b["length"] for b in blocks] == [5, 5, 4]
    assert all(b["length"] == len(b["tokens"]) for b in blocks)


def lm_data(path, **options) -> LanguageModelingData:
    return LanguageModelingData(
        train_path=str(path), val_path=str(path), batch_size=8, tokenizer=TokenizerOptions(vocab_size=60), **options
    )


@pytest.mark.parametrize(
    "encoder",
    [
        partial(LSTMEncoder, embedding_dim=64, hidden_size=64, tie_weights=True),
        partial(CausalTransformerEncoder, d_model=64, num_heads=4, num_layers=2, dropout=0.0, positions="rotary"),
    ],
    ids=["lstm", "causal-transformer"],
)
def test_learns_a_small_corpus(encoder, corpus_file) -> None:
    torch.manual_seed(0)
    task = CausalLMTask(encoder=encoder, learning_rate=5e-3, warmup_steps=10)
    data = lm_data(corpus_file, block_size=32)
    trainer = fit_tiny(task, data, max_steps=300)
    metrics = trainer.validate(task, datamodule=data, verbose=False)[0]
    assert metrics["val/loss"] < 0.1
    assert metrics["val/perplexity"] == pytest.approx(math.exp(metrics["val/loss"]), rel=0.05)
    prompts = [" ".join(sentence.split()[:3]) for sentence in CORPUS]
    continued = [prompt + g.text for prompt, g in zip(prompts, task.generate(prompts, max_new_tokens=30), strict=True)]
    assert continued == CORPUS


@pytest.mark.parametrize("tie_weights", [True, False])
def test_training_loss_and_gradients_equal_the_full_logits(corpus_file, tie_weights) -> None:
    torch.manual_seed(0)
    task = CausalLMTask(encoder=partial(LSTMEncoder, embedding_dim=16, hidden_size=16, tie_weights=tie_weights))
    data = lm_data(corpus_file)
    data.setup("fit")  # no task yet: trains the tokenizer
    task.bind(data.tokenizer, None)
    batch = task.collate([{**task.encode({"text": text}, labeled=True), "index": i} for i, text in enumerate(CORPUS)])
    assert not batch["mask"].all()  # padding, whose targets are ignored
    losses, gradients = [], []
    for output in (task.training_output, task.step):  # the head a block of rows at a time, and all the logits
        task.zero_grad()
        loss = output(batch).loss
        loss.backward()
        losses.append(loss.detach())
        gradients.append([parameter.grad.clone() for parameter in task.parameters()])
    torch.testing.assert_close(*losses)
    for chunked, full in zip(*gradients, strict=True):
        torch.testing.assert_close(chunked, full)


def test_epoch_perplexity_is_exact_not_a_mean_of_batches(corpus_file) -> None:
    torch.manual_seed(0)
    task = CausalLMTask(encoder=partial(LSTMEncoder, embedding_dim=16, hidden_size=16))
    data = lm_data(corpus_file)  # unpacked: batches hold different numbers of tokens
    trainer = fit_tiny(task, data, max_steps=2)
    reported = trainer.validate(task, datamodule=data, verbose=False)[0]["val/perplexity"]
    total, count = 0.0, 0
    for row in task.score(corpus_file.read_text().splitlines(), batch_size=3):
        total += row["log_likelihood"]
        count += row["tokens"]
    assert reported == pytest.approx(math.exp(-total / count), rel=1e-4)


def test_a_bidirectional_encoder_is_refused(corpus_file) -> None:
    task = CausalLMTask(encoder=partial(LSTMEncoder, hidden_size=8, bidirectional=True))
    with pytest.raises(ConfigError, match="causal-lm needs a causal encoder"):
        fit_tiny(task, lm_data(corpus_file), max_steps=1)


def test_packed_documents_keep_the_tokens_beyond_the_tokenizers_max_length(tmp_path) -> None:
    document = " ".join(CORPUS * 2)
    path = tmp_path / "documents.txt"
    path.write_text(document + "\n")
    task = CausalLMTask(encoder=partial(LSTMEncoder, embedding_dim=16, hidden_size=16))
    options = TokenizerOptions(vocab_size=60, max_length=16)
    data = LanguageModelingData(train_path=str(path), val_path=str(path), batch_size=4, tokenizer=options, block_size=8)
    fit_tiny(task, data, max_steps=1)
    whole = task.tokenizer.encode([document], add_bos=True, add_eos=True, max_length=10_000)[0]
    assert len(whole) > 16
    assert [token for block in data.examples["train"] for token in block["tokens"][1:]] == whole[1:]
