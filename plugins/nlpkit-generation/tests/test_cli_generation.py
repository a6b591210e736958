"""The generation plugin from the command line: fit a language model, predict a file of prompts, generate."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from nlpkit.cli.main import main
from nlpkit.testing import story_corpus


def nlpkit(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nlpkit", *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=os.environ
    )


def test_fit_then_predict_prompts_then_generate(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "train.txt").write_text("\n".join(story_corpus(200)) + "\n")
    (tmp_path / "prompts.txt").write_text("the baker\na young fox\n")
    fit = nlpkit(
        "fit", "--model", "causal-lm", "--model.encoder", "causal-transformer",
        "--model.encoder.d_model", "32", "--model.encoder.num_heads", "2", "--model.encoder.num_layers", "1",
        "--model.generation.max_new_tokens", "6",
        "--data", "text", "--data.train_path", "train.txt", "--data.block_size", "32",
        "--data.tokenizer.vocab_size", "80", "--trainer.max_steps", "5", "--trainer.enable_progress_bar", "false",
        cwd=tmp_path,
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr[-3000:]
    checkpoint = "runs/checkpoints/last.ckpt"
    # one table at the end, which says how a language model is used; no layer table without --verbose
    assert (
        f"nlpkit generate --ckpt_path {checkpoint} --prompt TEXT" in fit.stdout and "nlpkit predict" not in fit.stdout
    )
    assert "Trainable params" not in fit.stdout
    predict = nlpkit(
        "predict", "--ckpt_path", checkpoint, "--data.predict_path", "prompts.txt",
        "--model.generation.strategy", "beam", "--model.generation.num_beams", "2",
        "--trainer.enable_progress_bar", "false", cwd=tmp_path,
    )  # fmt: skip
    assert predict.returncode == 0, predict.stderr[-3000:]
    rows = [json.loads(line) for line in predict.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 2 and all(set(row) >= {"text", "score"} for row in rows)
    monkeypatch.chdir(tmp_path)  # the plugin command in-process: main() is what the console script runs
    capsys.readouterr()
    assert main(["generate", "--ckpt_path", checkpoint, "--prompts_file", "prompts.txt", "--json"]) == 0
    assert [json.loads(line)["prompt"] for line in capsys.readouterr().out.splitlines()] == ["the baker", "a young fox"]
    assert main(["generate", "--ckpt_path", checkpoint]) == 2
    assert "give at least one --prompt" in capsys.readouterr().err


def test_seq2seq_fits_and_translates_from_the_command_line(tmp_path) -> None:
    stories = story_corpus(60)
    pairs = [{"source": story, "target": " ".join(reversed(story.split()))} for story in stories]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(pair) + "\n" for pair in pairs))
    (tmp_path / "sources.txt").write_text("\n".join(stories[:3]) + "\n")
    fit = nlpkit(
        "fit", "--model", "seq2seq", "--model.d_model", "32", "--model.num_encoder_layers", "1",
        "--model.num_decoder_layers", "1", "--model.generation.max_new_tokens", "8",
        "--data", "paired", "--data.train_path", "pairs.jsonl", "--data.val_path", "pairs.jsonl",
        "--data.tokenizer.vocab_size", "80", "--trainer.max_steps", "3", "--trainer.enable_progress_bar", "false",
        cwd=tmp_path,
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr[-3000:]
    predict = nlpkit(
        "predict", "--ckpt_path", "runs/checkpoints/best.ckpt", "--data.predict_path", "sources.txt",
        "--trainer.enable_progress_bar", "false", cwd=tmp_path,
    )  # fmt: skip
    assert predict.returncode == 0, predict.stderr[-3000:]
    rows = [json.loads(line) for line in predict.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 3 and all(isinstance(row["text"], str) for row in rows)
