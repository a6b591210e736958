"""Text classification end to end: accuracy on negated sentiment, multi-label sets, calibration, transfer."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from functools import partial

import pytest
import torch
from nlpkit_classification.data import ClassificationData
from nlpkit_classification.task import TextClassificationTask
from nlpkit_generation.data import LanguageModelingData
from nlpkit_generation.task import CausalLMTask

from nlpkit import LSTMEncoder, TokenizerOptions, TransformerEncoder, get_plugins
from nlpkit.testing import fit_tiny, sentiment_corpus, write_sentiment_files

ENCODERS = {
    "bilstm": partial(LSTMEncoder, embedding_dim=32, hidden_size=48, bidirectional=True),
    "transformer": partial(TransformerEncoder, d_model=48, num_heads=4, num_layers=2, dropout=0.0, positions="rotary"),
}


@pytest.fixture(scope="module")
def sentiment(tmp_path_factory):
    return write_sentiment_files(tmp_path_factory.mktemp("sentiment"), train=600, val=200, seed=3)


def data_for(train, val, **options) -> ClassificationData:
    options.setdefault("tokenizer", TokenizerOptions(vocab_size=150))
    return ClassificationData(train_path=str(train), val_path=str(val), batch_size=32, **options)


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_learns_negated_sentiment_to_95_percent(name, sentiment) -> None:
    torch.manual_seed(0)
    task = TextClassificationTask(encoder=ENCODERS[name], pooling="max", learning_rate=5e-3, warmup_steps=20)
    data = data_for(sentiment["train"], sentiment["val"])
    trainer = fit_tiny(task, data, max_steps=300)
    assert trainer.validate(task, datamodule=data, verbose=False)[0]["val/accuracy"] >= 0.95


def test_negation_defeats_a_linear_bag_of_words() -> None:
    """The data is built so that a linear model of word counts, fitted to convergence, stays below 95%."""
    train, val = sentiment_corpus(600, seed=3), sentiment_corpus(200, seed=4)
    vocabulary = sorted({word for text, _ in train + val for word in text.split()})
    index = {word: i for i, word in enumerate(vocabulary)}

    def counts(rows):
        x = torch.zeros(len(rows), len(vocabulary))
        for row, (text, _) in enumerate(rows):
            for word in text.split():
                x[row, index[word]] += 1
        return x, torch.tensor([float(label == "pos") for _, label in rows])

    (x, y), (x_val, y_val) = counts(train), counts(val)
    weights = torch.zeros(len(vocabulary) + 1, requires_grad=True)
    optimizer = torch.optim.LBFGS([weights], max_iter=500)

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ weights[:-1] + weights[-1], y)
        loss.backward()
        return loss

    optimizer.step(closure)
    accuracy = ((x_val @ weights[:-1] + weights[-1] > 0).float() == y_val).float().mean().item()
    assert accuracy < 0.95


def topic_rows(size: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    topics = {"sports": ["goal", "match", "coach"], "politics": ["vote", "senate", "policy"]}
    filler = ["the", "a", "today", "news", "about", "big", "report", "on"]
    rows = []
    for _ in range(size):
        labels = [topic for topic in topics if rng.random() < 0.5] or [rng.choice(list(topics))]
        words = rng.choices(filler, k=4) + [rng.choice(topics[topic]) for topic in labels]
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": labels})
    return rows


def test_multi_label_sets_thresholds_and_the_checkpoint(tmp_path) -> None:
    for split, size, seed in (("train", 400, 0), ("val", 100, 1)):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in topic_rows(size, seed)))
    torch.manual_seed(0)
    task = TextClassificationTask(encoder=ENCODERS["bilstm"], multi_label=True, pooling="max", learning_rate=5e-3)
    data = data_for(tmp_path / "train.jsonl", tmp_path / "val.jsonl", tokenizer=TokenizerOptions(vocab_size=60))
    trainer = fit_tiny(task, data, max_steps=200)
    assert trainer.validate(task, datamodule=data, verbose=False)[0]["val/accuracy"] >= 0.95
    assert task.labels == ["politics", "sports"]
    both, sports = task.predict(["the senate vote on a goal", "a big match today"])
    assert both["labels"] == ["politics", "sports"] and sports["labels"] == ["sports"]
    assert set(both["probabilities"]) == {"politics", "sports"}
    task.threshold = 0.999999
    assert task.predict(["news about the report"])[0]["labels"] == []
    task.threshold = 0.5
    path = tmp_path / "multi.ckpt"
    trainer.save_checkpoint(path)
    reloaded = TextClassificationTask.load_from_checkpoint(path, weights_only=True)
    assert reloaded.multi_label and reloaded.labels == task.labels
    assert reloaded.predict(["a big match today"]) == task.predict(["a big match today"])


def test_single_label_task_refuses_label_sets_naming_the_line(tmp_path) -> None:
    (tmp_path / "train.jsonl").write_text(
        '{"text": "a goal", "label": ["sports"]}\n{"text": "x", "label": ["a", "b"]}\n'
    )
    with pytest.raises(Exception, match=r"train.jsonl:2: expected one label, found 2 \(set model.multi_label"):
        fit_tiny(
            TextClassificationTask(encoder=ENCODERS["bilstm"]),
            data_for(tmp_path / "train.jsonl", tmp_path / "train.jsonl"),
            max_steps=1,
        )


def test_macro_f1_equals_a_hand_computation_on_a_fixed_confusion_matrix() -> None:
    confusion = [[5, 2, 0], [1, 3, 4], [0, 1, 6]]  # rows: true class, columns: predicted class
    targets = torch.tensor([t for t, row in enumerate(confusion) for p, n in enumerate(row) for _ in range(n)])
    predictions = torch.tensor([p for row in confusion for p, n in enumerate(row) for _ in range(n)])
    f1s = []
    for c in range(3):
        tp = confusion[c][c]
        precision = tp / sum(confusion[r][c] for r in range(3))
        recall = tp / sum(confusion[c])
        f1s.append(2 * precision * recall / (precision + recall))
    metric = get_plugins()["metrics"]["macro-f1"](num_classes=3)
    metric.update(predictions, targets)
    assert metric.compute().item() == pytest.approx(sum(f1s) / 3, abs=1e-6)


def test_temperature_scaling_is_fitted_on_validation_and_lowers_its_calibration_error(sentiment) -> None:
    torch.manual_seed(0)
    task = TextClassificationTask(encoder=ENCODERS["bilstm"], learning_rate=2e-2)  # overconfident on purpose
    data = data_for(sentiment["train"], sentiment["val"])
    trainer = fit_tiny(task, data, max_steps=150)
    assert float(task.temperature) != 1.0
    from nlpkit_classification.report import calibration_error, probabilities

    batches = list(data.val_dataloader())
    with torch.no_grad():
        logits = torch.cat([task(b["tokens"], b["mask"]) for b in batches])
    targets = torch.cat([b["labels"] for b in batches])
    errors = []
    for scale in (1.0, float(task.temperature)):
        metric = calibration_error(2, False)
        metric.update(probabilities(logits / scale, False), targets)
        errors.append(metric.compute().item())
    assert errors[1] <= errors[0]
    assert trainer.global_step == 150


def test_test_command_reports_per_class_calibration_and_a_confusion_matrix_png(tmp_path) -> None:
    files = write_sentiment_files(tmp_path / "data", train=200, val=60)
    common = ["--data", "classification", "--data.train_path", str(files["train"]), "--data.val_path",
              str(files["val"]), "--data.test_path", str(files["val"]), "--data.tokenizer.vocab_size", "100",
              "--trainer.enable_progress_bar", "false"]  # fmt: skip
    command = [sys.executable, "-m", "nlpkit"]
    fit = subprocess.run([*command, "fit", "--model", "text-classification", "--model.encoder", "gru",
                          "--model.encoder.hidden_size", "16", *common, "--trainer.max_steps", "20"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert fit.returncode == 0, fit.stderr[-2000:]
    test = subprocess.run([*command, "test", "--ckpt_path", "runs/checkpoints/last.ckpt", *common],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert test.returncode == 0, test.stderr[-2000:]
    assert "test: per class" in test.stdout and "expected calibration error" in test.stdout
    assert "test/ece_uncalibrated" in test.stdout and "test/f1/pos" in test.stdout
    printed = re.search(r"^confusion matrix: (\S+)$", test.stdout, re.MULTILINE)
    assert printed and (tmp_path / printed[1]).read_bytes().startswith(b"\x89PNG")


def test_folder_per_label_layout(tmp_path) -> None:
    for label, texts in {"pos": ["a superb film", "charming cast"], "neg": ["dull plot", "a tedious film"]}.items():
        (tmp_path / "train" / label).mkdir(parents=True)
        for i, text in enumerate(texts):
            (tmp_path / "train" / label / f"{i}.txt").write_text(text)
    task = TextClassificationTask(encoder=ENCODERS["bilstm"])
    fit_tiny(task, data_for(tmp_path / "train", tmp_path / "train", tokenizer=TokenizerOptions(vocab_size=30)), 2)
    assert task.labels == ["neg", "pos"]


def test_transfer_from_a_language_model_then_linear_probing(tmp_path, sentiment) -> None:
    corpus = tmp_path / "lm.txt"
    corpus.write_text("\n".join(text for text, _ in sentiment_corpus(300, seed=9)) + "\n")
    encoder = partial(LSTMEncoder, embedding_dim=32, hidden_size=32)
    torch.manual_seed(0)
    lm = CausalLMTask(encoder=encoder)
    lm_data = LanguageModelingData(train_path=str(corpus), block_size=16, tokenizer=TokenizerOptions(vocab_size=120))
    trainer = fit_tiny(lm, lm_data, max_steps=20)
    trainer.save_checkpoint(tmp_path / "lm.ckpt")

    task = TextClassificationTask(encoder=encoder, init_from=str(tmp_path / "lm.ckpt"), freeze_encoder=True)
    assert task.tokenizer == lm.tokenizer  # the LM's tokenizer is carried over
    data = data_for(sentiment["train"], sentiment["val"], tokenizer=None)
    fit_tiny(task, data, max_steps=0)  # builds the model from the LM's weights
    lm_state = lm.encoder.state_dict()
    assert all(torch.equal(lm_state[k], v) for k, v in task.encoder.state_dict().items())
    head_before = task.head.net[-1].weight.detach().clone()
    fit_tiny(task, data, max_steps=10)
    assert all(torch.equal(lm_state[k], v) for k, v in task.encoder.state_dict().items())  # frozen
    assert not torch.equal(head_before, task.head.net[-1].weight)  # the head trained
