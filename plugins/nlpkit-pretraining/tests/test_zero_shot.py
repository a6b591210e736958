"""Zero-shot classification with a causal LM (verbalised prompts) and with sentence embeddings, no training step."""

from __future__ import annotations

import json
from functools import partial

import pytest
import pytorch_lightning as pl
import torch
from nlpkit_classification.data import ClassificationData
from nlpkit_generation.data import LanguageModelingData
from nlpkit_generation.task import CausalLMTask
from nlpkit_pretraining.contrastive import ContrastiveTask
from nlpkit_pretraining.pairs import SentencePairsData
from nlpkit_pretraining.sample import topic_sentences
from nlpkit_pretraining.zero_shot import ZeroShotTask

from nlpkit import ConfigError, LSTMEncoder, TokenizerOptions
from nlpkit.cli.main import main
from nlpkit.testing import fit_tiny

#: each label's description: a sentence of its topic that no training text holds (its words are there, in other
#: sentences); the label names themselves never occur in training either
DESCRIPTIONS = {
    "sport": "the coach broke the record .",
    "food": "my aunt fried some fish .",
    "music": "the choir tuned the guitar .",
}
TEMPLATE = "{text} {label}"


def documents(size: int, seed: int) -> list[tuple[str, str]]:
    """``size`` two-sentence texts, each of one topic, none holding a description: what the models learn from."""
    pending: dict[str, str] = {}
    texts = []
    for sentence, topic in topic_sentences(4 * size, seed=seed):
        if sentence in DESCRIPTIONS.values():
            continue
        if topic in pending:
            texts.append((pending.pop(topic), sentence))
        else:
            pending[topic] = sentence
    return texts[:size]


def test_no_label_or_description_occurs_in_the_training_text() -> None:
    text = " ".join(f"{first} {second}" for first, second in documents(600, seed=0))
    assert not [word for word in [*DESCRIPTIONS, *DESCRIPTIONS.values()] if word in text]


@pytest.fixture(scope="module")
def language_model(tmp_path_factory) -> str:
    """A causal LM of unlabelled two-sentence texts of one topic each."""
    directory = tmp_path_factory.mktemp("zero-shot")
    corpus = directory / "lm.txt"
    corpus.write_text("".join(f"{a} {b}\n" for a, b in documents(600, seed=0)), encoding="utf-8")
    torch.manual_seed(0)
    task = CausalLMTask(encoder=partial(LSTMEncoder, embedding_dim=32, hidden_size=64), learning_rate=1e-2)
    data = LanguageModelingData(train_path=str(corpus), tokenizer=TokenizerOptions(vocab_size=150), batch_size=32)
    fit_tiny(task, data, max_steps=300).save_checkpoint(directory / "lm.ckpt")
    return str(directory / "lm.ckpt")


@pytest.fixture(scope="module")
def test_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("topics") / "test.csv"
    rows = [(s, t) for s, t in topic_sentences(60, seed=1) if s not in DESCRIPTIONS.values()]
    path.write_text("text,label\n" + "".join(f"{s},{t}\n" for s, t in rows), encoding="utf-8")
    return path


def accuracy(task: ZeroShotTask, test_file) -> float:
    """The share of the test file's sentences ``task`` labels right."""
    test = [line.split(",") for line in test_file.read_text().splitlines()[1:]]
    predictions = task.predict([text for text, _ in test])
    return sum(p["label"] == label for p, (_, label) in zip(predictions, test, strict=True)) / len(test)


def test_prompt_scores_are_the_likelihoods_less_the_prompt_without_text(language_model) -> None:
    task = ZeroShotTask(model=language_model, labels=DESCRIPTIONS, template=TEMPLATE)
    assert task.method == "prompt"
    texts = ["the chef baked fresh bread .", "the band sang on stage ."]
    expected = torch.tensor(
        [
            [
                task.scorer.score([f"{text} {description}"])[0]["log_likelihood"]
                - task.scorer.score([description])[0]["log_likelihood"]
                for description in DESCRIPTIONS.values()
            ]
            for text in texts
        ]
    )
    torch.testing.assert_close(task.logits(texts), expected, atol=1e-4, rtol=0)
    results = task.predict(texts)
    assert [r["label"] for r in results] == ["food", "music"]
    assert sum(results[0]["probabilities"].values()) == pytest.approx(1.0)


def test_zero_shot_classifies_held_out_sentences_without_training(language_model, test_file) -> None:
    task = ZeroShotTask(model=language_model, labels=DESCRIPTIONS, template=TEMPLATE)
    data = ClassificationData(test_path=str(test_file), batch_size=16)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    metrics = trainer.test(task, datamodule=data, verbose=False)[0]
    assert metrics["test/accuracy"] == pytest.approx(accuracy(task, test_file))
    assert metrics["test/accuracy"] >= 0.9  # chance is a third; 1.0 over seeds 0-2
    with pytest.raises(ConfigError, match="nothing to train"):
        fit_tiny(task, ClassificationData(train_path=str(test_file)), max_steps=1)


def test_similarity_to_label_descriptions(tmp_path, test_file) -> None:
    pairs = tmp_path / "pairs.jsonl"
    rows = documents(400, seed=3)
    pairs.write_text("".join(json.dumps({"text_a": a, "text_b": b}) + "\n" for a, b in rows), encoding="utf-8")
    torch.manual_seed(0)
    embedder = ContrastiveTask(encoder=partial(LSTMEncoder, embedding_dim=32, hidden_size=32, bidirectional=True))
    data = SentencePairsData(train_path=str(pairs), batch_size=16, tokenizer=TokenizerOptions(vocab_size=120))
    fit_tiny(embedder, data, max_steps=150).save_checkpoint(tmp_path / "simcse.ckpt")
    task = ZeroShotTask(model=str(tmp_path / "simcse.ckpt"), labels=DESCRIPTIONS)
    assert task.method == "similarity"
    assert accuracy(task, test_file) >= 0.7  # chance is a third; 0.82-0.84 over seeds 0-2


def test_bad_labels_and_models_are_one_line_errors(language_model, tmp_path) -> None:
    with pytest.raises(ConfigError, match="label 'food' has an empty description"):
        ZeroShotTask(model=language_model, labels={"sport": "a game", "food": " "})
    with pytest.raises(ConfigError, match="at least two labels"):
        ZeroShotTask(model=language_model, labels=["sport"])
    with pytest.raises(ConfigError, match="method 'similarity' needs a contrastive or masked-lm model"):
        ZeroShotTask(model=language_model, labels=DESCRIPTIONS, method="similarity")
    with pytest.raises(ConfigError, match=r"must contain \{text\} and \{label\}"):
        ZeroShotTask(model=language_model, labels=DESCRIPTIONS, template="{text} is it?")


def test_the_command_line_predicts_with_no_checkpoint_of_its_own(language_model, tmp_path, capsys) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("the striker won the match .\nthe pianist played a new song .\n", encoding="utf-8")
    command = ["predict", "--model", "zero-shot", "--model.model", language_model, "--model.template", TEMPLATE,
               "--data", "classification", "--data.predict_path", str(texts),
               "--trainer.enable_progress_bar", "false"]  # fmt: skip
    assert main([*command, "--model.labels", json.dumps(DESCRIPTIONS)]) == 0
    assert [json.loads(line)["label"] for line in capsys.readouterr().out.splitlines()] == ["sport", "music"]
    assert main([*command, "--model.labels", '{"a": "", "b": "x"}']) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == "nlpkit: error: label 'a' has an empty description; describe it in a few words"
