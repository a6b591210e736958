"""Explanations: the decisive word gets the largest attribution, IG completeness, the HTML page, ``nlpkit explain``."""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import partial

import pytest
import torch
from nlpkit_classification.command import ExplainCommand
from nlpkit_classification.data import ClassificationData
from nlpkit_classification.explain import METHODS, Explanation, attribute, render_html
from nlpkit_classification.task import TextClassificationTask

from nlpkit import ConfigError, DataError, LSTMEncoder, TokenizerOptions
from nlpkit.testing import fit_tiny

FILLER = ["the", "a", "movie", "film", "plot", "story", "actor", "scene", "music"]
FILLER += ["about", "with", "and", "was", "is", "very", "quite", "rather", "really"]
KEYWORDS = {"excellent": "pos", "dreadful": "neg"}
SPAN = re.compile(r'<span class="piece" style="background: rgba\((\d+), (\d+), (\d+), ([\d.]+)\)"[^>]*>([^<]*)</span>')


def keyword_corpus(size: int, seed: int) -> list[tuple[str, str, str]]:
    """``(text, label, keyword)``: 4-8 filler words shared by both labels, and one decisive keyword anywhere."""
    rng = random.Random(seed)
    rows = []
    for _ in range(size):
        words = [rng.choice(FILLER) for _ in range(rng.randint(4, 8))]
        keyword = rng.choice(list(KEYWORDS))
        words.insert(rng.randint(0, len(words)), keyword)
        rows.append((" ".join(words), KEYWORDS[keyword], keyword))
    return rows


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread, and far faster than on several when the cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[TextClassificationTask, str]:
    """A bidirectional LSTM classifier trained on the keyword corpus, and its checkpoint's path."""
    directory = tmp_path_factory.mktemp("explain")
    with (directory / "train.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(row[:2] for row in keyword_corpus(400, seed=0))
    torch.manual_seed(0)
    # trained short of saturation: gradient x input fades where the LSTM's gates saturate
    task = TextClassificationTask(
        encoder=partial(LSTMEncoder, embedding_dim=32, hidden_size=16, bidirectional=True), learning_rate=3e-3
    )
    data = ClassificationData(train_path=str(directory / "train.csv"), tokenizer=TokenizerOptions(vocab_size=60))
    trainer = fit_tiny(task, data, max_steps=60, limit_val_batches=0)
    trainer.save_checkpoint(directory / "model.ckpt")
    return task, str(directory / "model.ckpt")


@pytest.fixture(scope="module")
def held_out() -> list[tuple[str, str, str]]:
    """Texts the model never saw."""
    return keyword_corpus(100, seed=2)


def word_scores(explanation: Explanation) -> list[tuple[str, float]]:
    """Whole words and the sum of their pieces' scores (a piece starting with ``▁`` starts a word)."""
    words: list[list] = []
    for piece, score in zip(explanation.pieces, explanation.scores, strict=True):
        if piece.startswith("▁") or not words:
            words.append([piece.removeprefix("▁"), score])
        else:
            words[-1][0] += piece
            words[-1][1] += score
    return [(word, score) for word, score in words]


@pytest.mark.parametrize("method", METHODS)
def test_the_decisive_word_gets_the_largest_attribution(trained, held_out, method: str) -> None:
    task, _ = trained
    texts = [text for text, _, _ in held_out]
    predicted = [prediction["label"] for prediction in task.predict(texts)]
    assert sum(p == label for p, (_, label, _) in zip(predicted, held_out, strict=True)) >= 0.95 * len(held_out)
    explanations = attribute(task, texts, method=method)
    assert [e.label for e in explanations] == predicted
    assert [e.pieces for e in explanations] == [task.tokenizer.pieces(text) for text in texts]
    found = sum(
        max(word_scores(explanation), key=lambda item: item[1])[0] == keyword
        for explanation, (_, _, keyword) in zip(explanations, held_out, strict=True)
    )
    assert found >= 0.9 * len(held_out)


def test_a_target_label_is_explained_instead_of_the_prediction(trained, held_out) -> None:
    task, _ = trained
    positive = [text for text, label, _ in held_out if label == "pos"]
    explanations = attribute(task, positive, target="neg")
    assert {e.label for e in explanations} == {"neg"}
    against = sum(min(word_scores(e), key=lambda item: item[1])[0] == "excellent" for e in explanations)
    assert against >= 0.9 * len(positive)


def test_integrated_gradients_sum_to_the_logit_difference_from_the_baseline(trained, held_out) -> None:
    task, _ = trained
    texts = [text for text, _, _ in held_out[:20]]
    explanations = attribute(task, texts, steps=64)
    embedding = task.encoder.token_embedding.weight
    pad_id = task.tokenizer.pad_id
    assert torch.count_nonzero(embedding[pad_id]) == 0  # so pad ids in place of the pieces are the zero baseline
    differences = []
    for text, explanation in zip(texts, explanations, strict=True):
        tokens = torch.tensor(task.tokenizer.encode([text], add_bos=True))
        baseline = torch.where(tokens == task.tokenizer.bos_id, tokens, torch.full_like(tokens, task.tokenizer.pad_id))
        mask = torch.ones_like(tokens, dtype=torch.bool)
        with torch.no_grad():
            logits = task(torch.cat([tokens, baseline]), torch.cat([mask, mask]))
        target = task.labels.index(explanation.label)
        difference = (logits[0, target] - logits[1, target]).item()
        assert sum(explanation.scores) == pytest.approx(difference, rel=1e-2, abs=1e-3)
        differences.append(abs(difference))
    assert max(differences) > 0.5


def test_padding_in_a_batch_changes_no_score(trained) -> None:
    task, _ = trained
    short, long = "the film was excellent", "a very long story about the music and the actor was rather dreadful"
    alone = attribute(task, [short], method="gradient_x_input")[0]
    batched = attribute(task, [long, short], method="gradient_x_input")[1]
    assert alone.pieces == batched.pieces == task.tokenizer.pieces(short)
    assert batched.scores == pytest.approx(alone.scores, abs=1e-5)


def test_unknown_method_target_or_steps_name_the_choices(trained) -> None:
    task, _ = trained
    with pytest.raises(ConfigError, match=r"method 'bogus' \(methods: integrated_gradients, gradient_x_input\)"):
        attribute(task, ["the film"], method="bogus")
    with pytest.raises(ConfigError, match=r"unknown target label 'neutral' \(labels: neg, pos\)"):
        attribute(task, ["the film"], target="neutral")
    with pytest.raises(ConfigError, match="steps must be at least 1"):
        attribute(task, ["the film"], steps=0)


def test_render_html_colors_each_piece_and_escapes_the_text() -> None:
    explanations = [Explanation("pos", ["▁good", "▁<script>", "s"], [1.0, -0.5, 0.0])]
    page = render_html(explanations, ["good <script>s"])
    assert "<script" not in page and "&lt;script&gt;s" in page
    assert SPAN.findall(page) == [
        ("22", "163", "74", "0.850", " good"),
        ("220", "38", "38", "0.425", " &lt;script&gt;"),
        ("22", "163", "74", "0.000", "s"),
    ]
    assert '<span class="label">pos</span>' in page and "towards the label" in page and "against the label" in page


def run_explain(*argv: str) -> int:
    """``nlpkit explain`` in this process, parsed by the command's own arguments."""
    parser = argparse.ArgumentParser()
    command = ExplainCommand()
    command.add_arguments(parser)
    return command.run(parser.parse_args(argv))


def test_explain_command_writes_the_page_and_json_lines(trained, tmp_path, capsys) -> None:
    task, checkpoint = trained
    texts_file = tmp_path / "texts.txt"
    texts_file.write_text("a very dreadful plot\n\nthe <script> was excellent\n", encoding="utf-8")
    page = tmp_path / "out" / "page.html"
    status = run_explain(
        "--ckpt_path", checkpoint, "--text", "the film was excellent", "--texts_file", str(texts_file),
        "--method", "gradient_x_input", "--output", str(page),
    )  # fmt: skip
    assert status == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    texts = ["the film was excellent", "a very dreadful plot", "the <script> was excellent"]
    expected = attribute(task, texts, method="gradient_x_input")
    assert [row["text"] for row in rows] == texts
    for row, explanation in zip(rows, expected, strict=True):
        assert row["label"] == explanation.label and row["pieces"] == explanation.pieces
        assert row["scores"] == pytest.approx(explanation.scores, abs=1e-5)
    html = page.read_text(encoding="utf-8")
    assert len(SPAN.findall(html)) == sum(len(row["pieces"]) for row in rows)
    assert "<script>" not in html


def test_explain_command_rejects_other_tasks_and_missing_texts(trained, tmp_path) -> None:
    import pytorch_lightning as pl
    from nlpkit_generation.task import CausalLMTask

    task, checkpoint = trained
    with pytest.raises(ConfigError, match="give at least one --text or a --texts_file"):
        run_explain("--ckpt_path", checkpoint)
    with pytest.raises(DataError, match=r"missing\.txt: texts file not found"):
        run_explain("--ckpt_path", checkpoint, "--texts_file", str(tmp_path / "missing.txt"))
    language_model = CausalLMTask(encoder=partial(LSTMEncoder, embedding_dim=8, hidden_size=8))
    language_model.bind(task.tokenizer, None)
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(language_model)
    trainer.save_checkpoint(tmp_path / "lm.ckpt")
    with pytest.raises(ConfigError, match="a CausalLMTask checkpoint is not a text classifier"):
        run_explain("--ckpt_path", str(tmp_path / "lm.ckpt"), "--text", "the film")


def test_nlpkit_explain_command_line(trained, tmp_path) -> None:
    _, checkpoint = trained
    command = [sys.executable, "-m", "nlpkit", "explain", "--ckpt_path", checkpoint, "--text", "a dreadful film"]
    result = subprocess.run([*command, "--output", str(tmp_path / "page.html")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == ["a dreadful film"]
    assert SPAN.search((tmp_path / "page.html").read_text(encoding="utf-8"))
    bad = subprocess.run([*command, "--method", "bogus"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "nlpkit: error: unknown attribution method 'bogus' (methods: integrated_gradients, gradient_x_input)"
    ]


def test_predict_with_explain_attributes_each_texts_own_label(trained, held_out) -> None:
    task, _ = trained
    texts = [row[0] for row in held_out[:6]]
    plain = task.predict(texts)
    explained = task.predict(texts, explain=True)
    for without, with_explanation, text in zip(plain, explained, texts, strict=True):
        assert without["label"] == with_explanation["label"]
        pieces = [piece for piece, _ in with_explanation["attributions"]]
        assert pieces == task.tokenizer.pieces(text)
        (reference,) = attribute(task, [text], target=with_explanation["label"])
        assert [score for _, score in with_explanation["attributions"]] == pytest.approx(reference.scores, abs=1e-5)
