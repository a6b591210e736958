"""The ``nlpkit`` command, in subprocesses and through ``main``: fit, predict, validate, resume, configs, plugins,
bad input."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys

import pytest
import torch

import nlpkit
from nlpkit.cli.main import main
from nlpkit.testing import write_sentiment_files
from tests.conftest import run_nlpkit

TINY_MODEL = [
    "--model", "text-classification",
    "--model.encoder", "lstm",
    "--model.encoder.embedding_dim", "16",
    "--model.encoder.hidden_size", "32",
]  # fmt: skip
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def tiny_data(files) -> list[str]:
    return [
        "--data", "classification",
        "--data.train_path", str(files["train"]),
        "--data.val_path", str(files["val"]),
        "--data.tokenizer.vocab_size", "100",
    ]  # fmt: skip


def assert_ok(result) -> None:
    assert result.returncode == 0, result.stderr[-3000:]


def run_in_process(*args: str, capsys: pytest.CaptureFixture) -> str:
    """``nlpkit ARGS`` through ``main`` in this process (what the console script calls): its standard output."""
    capsys.readouterr()
    status = main(list(args))
    out, err = capsys.readouterr()
    assert status == 0, err[-3000:]
    return out


def test_fit_predict_validate_and_resume(tmp_path, monkeypatch, capsys) -> None:
    """The fits run the console script in a subprocess; predict and validate go through ``main`` in-process."""
    sentiment_files = write_sentiment_files(tmp_path / "data", train=300, val=100)
    fit = ["fit", *TINY_MODEL, *tiny_data(sentiment_files), *QUIET, "--trainer.max_steps", "12"]
    assert_ok(run_nlpkit(*fit, cwd=tmp_path))
    last = tmp_path / "runs" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 12
    assert not list(last.parent.glob("*.tmp"))
    away = sentiment_files["train"].rename(tmp_path / "moved-away.csv")  # the checkpoint must be enough

    monkeypatch.chdir(tmp_path)
    predict = ["predict", "--ckpt_path", str(last), "--data.predict_path", str(sentiment_files["predict"]), *QUIET]
    printed = run_in_process(*predict, capsys=capsys)
    rows = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
    texts = sentiment_files["predict"].read_text(encoding="utf-8").splitlines()
    assert [(row["line"], row["input"]) for row in rows] == list(enumerate(texts, start=1))
    assert all(set(row) == {"line", "input", "label", "probabilities"} for row in rows)
    probabilities = [p for row in rows for p in row["probabilities"].values()]
    assert all(p == round(p, 4) for p in probabilities)  # rounded for people on the console

    output = tmp_path / "predictions.jsonl"
    run_in_process(*predict, "--predictions.output_path", str(output), capsys=capsys)
    written = [json.loads(line) for line in output.read_text().splitlines()]
    full = [json.loads(line) for line in run_in_process(*predict, "--json", capsys=capsys).splitlines()
            if line.startswith("{")]  # fmt: skip
    assert written == full and any(p != round(p, 4) for row in full for p in row["probabilities"].values())
    assert [p for row in full for p in row["probabilities"].values()] == pytest.approx(probabilities, abs=5e-5)

    assert "val/accuracy" in run_in_process("validate", "--ckpt_path", str(last), *QUIET, capsys=capsys)

    away.rename(sentiment_files["train"])
    resume = [*fit[:-1], "20", "--ckpt_path", "last"]
    assert_ok(run_nlpkit(*resume, cwd=tmp_path))
    assert torch.load(last, weights_only=True)["global_step"] == 20


def print_config(*args: str, capsys: pytest.CaptureFixture) -> str:
    """``nlpkit fit ARGS --print_config`` in-process (LightningCLI exits 0 after printing): the printed YAML."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *args, "--print_config"])
    assert exit_info.value.code in (0, None)
    return capsys.readouterr().out


def classification_config(directory, files, encoder: str, options: str):
    """A YAML config (``config.yaml`` in ``directory``) of a text classifier with the ``encoder`` block and the
    model ``options`` given (YAML lines), reading the sentiment ``files``."""
    config = directory / "config.yaml"
    config.write_text(
        "model:\n  class_path: text-classification\n  init_args:\n    encoder:\n" + encoder + options + "data:\n"
        f"  class_path: classification\n  init_args: {{train_path: {files['train']}, val_path: {files['val']}}}\n"
    )
    return config


def test_yaml_config_with_short_names_and_print_config(tmp_path, sentiment_files, capsys) -> None:
    encoder = "      class_path: transformer\n      init_args: {d_model: 16, num_heads: 2, num_layers: 1}\n"
    config = classification_config(tmp_path, sentiment_files, encoder, "    head: mlp\n    pooling: attention\n")
    printed = print_config("--config", str(config), capsys=capsys)
    assert "class_path: nlpkit.TransformerEncoder" in printed  # the published path of the registered class
    assert "class_path: nlpkit.models.heads.MLPHead" in printed
    assert_ok(run_nlpkit("fit", "--config", str(config), *QUIET, "--trainer.max_steps", "3", cwd=tmp_path))
    gru = '{"class_path": "gru", "init_args": {"hidden_size": 24}}'
    inline = print_config("--config", str(config), "--model.encoder", gru, capsys=capsys)
    assert "class_path: nlpkit.GRUEncoder" in inline and "hidden_size: 24" in inline


def test_third_party_plugin_extends_a_cli_fit(plugin_site, tmp_path, sentiment_files) -> None:
    plugin_site("nlpkit-toy", "toy", "nlpkit_toy")
    result = run_nlpkit(
        "fit", *TINY_MODEL, *tiny_data(sentiment_files), *QUIET,
        "--model.head", "scaled-linear", "--model.head.temperature", "3.0",
        "--model.metrics", "[accuracy, error-rate]",
        "--trainer.max_epochs", "1",
        cwd=tmp_path,
    )  # fmt: skip
    assert_ok(result)
    (metrics_file,) = (tmp_path / "runs").rglob("metrics.csv")
    rows = [row for row in csv.DictReader(metrics_file.open()) if row.get("val/error-rate")]
    assert rows and float(rows[-1]["val/error-rate"]) == pytest.approx(1 - float(rows[-1]["val/accuracy"]))
    hparams = torch.load(tmp_path / "runs/checkpoints/last.ckpt", weights_only=True)["hyper_parameters"]
    assert hparams["head"] == {"class_path": "nlpkit_toy.ScaledLinearHead", "init_args": {"temperature": 3.0}}


@pytest.fixture
def bad_files(tmp_path):
    (tmp_path / "empty.csv").write_text("text,label\n")
    (tmp_path / "bad.csv").write_text("text,label\nfine,pos\nbroken,pos,extra\n")
    (tmp_path / "nolabel.csv").write_text("text,sentiment\nfine,pos\n")
    (tmp_path / "typo.yaml").write_text("model:\n  class_path: text-classification\n  init_args:\n    poolng: max\n")
    (tmp_path / "notackpt.ckpt").write_text("hello")
    return tmp_path


BAD_INPUT = {
    "missing file": (["--data.train_path", "missing.csv"], r"missing.csv: file not found"),
    "empty file": (["--data.train_path", "empty.csv"], r"empty.csv: no records found \(expected csv data\)"),
    "malformed line": (["--data.train_path", "bad.csv"], r"bad.csv:3: expected 2 columns \(text, label\), found 3"),
    "missing field": (["--data.train_path", "nolabel.csv"], r"nolabel.csv:2: expected a label field 'label'"),
    "unknown name": (["--model.encoder", "lsmt"], r"unknown encoder 'lsmt'; did you mean 'lstm'\?"),
    "config typo": (
        ["--config", "typo.yaml"],
        r"typo.yaml:4: unknown option 'poolng' of TextClassificationTask; did you mean 'pooling'\?",
    ),
    "argument typo": (
        ["--trainer.max_stepz", "3"],
        r"--trainer.max_stepz: unknown option 'trainer.max_stepz' of Trainer; did you mean 'trainer.max_steps'\?",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_is_one_line_and_exit_status_2(case, bad_files, monkeypatch, capsys) -> None:
    """In-process (``main`` is what the console script calls); the subprocess tests below cover the script."""
    extra, expected = BAD_INPUT[case]
    monkeypatch.chdir(bad_files)
    args = ["fit", *TINY_MODEL, "--data", "classification", "--data.train_path", "bad.csv", *extra, *QUIET]
    status = main(args)
    stderr = capsys.readouterr().err
    assert status == 2, stderr[-2000:]
    last_line = stderr.strip().splitlines()[-1]
    assert last_line.startswith("nlpkit: error: ")
    assert re.search(expected, last_line), last_line
    assert "Traceback" not in stderr


def test_bad_checkpoint_and_unknown_command(bad_files, monkeypatch, capsys) -> None:
    result = run_nlpkit("predict", "--ckpt_path", "notackpt.ckpt", cwd=bad_files)  # the console script's status
    assert result.returncode == 2
    assert "notackpt.ckpt: not a loadable nlpkit checkpoint" in result.stderr
    monkeypatch.chdir(bad_files)
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_debug_shows_the_traceback(bad_files, monkeypatch, capsys) -> None:
    monkeypatch.chdir(bad_files)
    assert main(["fit", *TINY_MODEL, "--data", "classification", "--data.train_path", "x.csv", "--debug"]) == 2
    stderr = capsys.readouterr().err
    assert "Traceback" in stderr and "file not found" in stderr


def test_import_is_light() -> None:
    script = "import sys, nlpkit; print(sorted(m for m in ('torch', 'pytorch_lightning') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert result.stdout.strip() == b"[]", result.stderr


def test_best_checkpoint_has_the_lowest_validation_loss_and_load_takes_it(tmp_path, monkeypatch) -> None:
    from nlpkit.cli.main import main

    files = write_sentiment_files(tmp_path / "data", train=200, val=60, label_noise=0.2)
    monkeypatch.chdir(tmp_path)
    fit = ["fit", *TINY_MODEL, *tiny_data(files), *QUIET, "--model.learning_rate", "0.03", "--trainer.max_epochs", "5"]
    assert main(fit) == 0
    with open(next((tmp_path / "runs").rglob("metrics.csv")), newline="") as handle:
        validations = [(float(row["val/loss"]), int(row["step"])) for row in csv.DictReader(handle) if row["val/loss"]]
    assert len(validations) == 5
    best_loss, best_step = min(validations)
    assert best_step != validations[-1][1]  # the run overfits: the best is not the last
    best = torch.load(tmp_path / "runs" / "checkpoints" / "best.ckpt", weights_only=True)
    assert best["global_step"] == best_step + 1  # the CSV logs the step before Lightning counts it
    scores = [state["best_model_score"] for state in best["callbacks"].values() if "best_model_score" in state]
    assert scores == [pytest.approx(best_loss)]
    last = torch.load(tmp_path / "runs" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 4
    loaded = nlpkit.load(tmp_path / "runs")  # a run directory: its best checkpoint
    for name, value in loaded.state_dict().items():
        assert torch.equal(value, best["state_dict"][name]), name


def test_a_run_that_max_steps_ends_mid_epoch_validates_its_final_weights(tmp_path, monkeypatch) -> None:
    from nlpkit.cli.main import main

    files = write_sentiment_files(tmp_path / "data", train=100, val=40)  # 4 batches an epoch
    monkeypatch.chdir(tmp_path)
    assert main(["fit", *TINY_MODEL, *tiny_data(files), *QUIET, "--trainer.max_steps", "6"]) == 0
    with open(next((tmp_path / "runs").rglob("metrics.csv")), newline="") as handle:
        validated = [int(row["step"]) for row in csv.DictReader(handle) if row["val/loss"]]
    assert validated == [3, 5]  # the end of the first epoch, and the last step (Lightning alone: [3])


def test_early_stopping_ends_a_run_whose_validation_loss_stalls(tmp_path, monkeypatch) -> None:
    from nlpkit.cli.main import main

    files = write_sentiment_files(tmp_path / "data", train=100, val=40)
    monkeypatch.chdir(tmp_path)
    frozen = ["--model.learning_rate", "0", "--early_stopping.patience", "2", "--trainer.max_epochs", "20"]
    assert main(["fit", *TINY_MODEL, *tiny_data(files), *QUIET, *frozen]) == 0
    last = torch.load(tmp_path / "runs" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 2  # the first validation sets the best, two more without improvement stop the run


def test_a_configs_own_early_stopping_replaces_nlpkits(tmp_path, monkeypatch) -> None:
    from nlpkit.cli.main import main

    files = write_sentiment_files(tmp_path / "data", train=100, val=40)
    config = tmp_path / "config.yaml"  # one callback, not a list: the Trainer accepts both
    config.write_text("trainer:\n  callbacks:\n    class_path: EarlyStopping\n"
                      "    init_args: {monitor: val/loss, patience: 1}\n")  # fmt: skip
    monkeypatch.chdir(tmp_path)
    frozen = ["--model.learning_rate", "0", "--trainer.max_epochs", "20"]
    assert main(["fit", "--config", str(config), *TINY_MODEL, *tiny_data(files), *QUIET, *frozen]) == 0
    assert torch.load(tmp_path / "runs" / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1


def test_a_fresh_fit_leaves_no_checkpoint_of_an_earlier_run(tmp_path, monkeypatch) -> None:
    from nlpkit.cli.main import main

    files = write_sentiment_files(tmp_path / "data", train=100, val=40)
    monkeypatch.chdir(tmp_path)
    assert main(["fit", *TINY_MODEL, *tiny_data(files), *QUIET, "--trainer.max_epochs", "1"]) == 0
    checkpoints = tmp_path / "runs" / "checkpoints"
    assert (checkpoints / "best.ckpt").is_file()
    # the same configuration again, this time without validation: its last.ckpt alone, no stale best.ckpt
    assert main(["fit", *TINY_MODEL, *tiny_data(files), *QUIET, "--trainer.max_steps", "2",
                 "--trainer.limit_val_batches", "0"]) == 0  # fmt: skip
    assert sorted(path.name for path in checkpoints.iterdir()) == ["last.ckpt"]
    last = torch.load(checkpoints / "last.ckpt", weights_only=True)
    loaded = nlpkit.load(tmp_path / "runs")  # this run's last.ckpt: nothing else is there
    assert all(torch.equal(value, last["state_dict"][name]) for name, value in loaded.state_dict().items())


def test_a_run_of_another_configuration_never_replaces_checkpoints_silently(tmp_path, monkeypatch, capsys) -> None:
    files = write_sentiment_files(tmp_path / "data", train=100, val=40)
    monkeypatch.chdir(tmp_path)
    fit = ["fit", *TINY_MODEL, *tiny_data(files), *QUIET, "--trainer.max_steps", "2"]
    run_in_process(*fit, capsys=capsys)
    last = tmp_path / "runs" / "checkpoints" / "last.ckpt"
    written = last.read_bytes()
    assert main([*fit, "--model.encoder.hidden_size", "48"]) == 2
    assert capsys.readouterr().err.strip() == (
        "nlpkit: error: runs/checkpoints holds the checkpoints of another run (its model.encoder differs): give this "
        "run its own --trainer.default_root_dir, resume that one with --ckpt_path last, or delete runs/checkpoints "
        "to replace it"
    )
    assert last.read_bytes() == written
    assert main([*fit, "--model.encoder.hidden_size", "48", "--ckpt_path", "last"]) == 2  # resuming it, changed
    error = capsys.readouterr().err.strip()
    assert re.fullmatch(
        r"nlpkit: error: \S*runs/checkpoints/last\.ckpt: weights encoder\.\S+ are \(128, 16\) in the checkpoint "
        r"but \(192, 16\) in the model this configuration builds \(this run's model\.encoder differs from the "
        r"checkpoint's\)",
        error,
    ), error
    run_in_process(*fit, "--model.encoder.hidden_size", "48", "--trainer.default_root_dir", "runs/wider",
                   capsys=capsys)  # fmt: skip
    assert (tmp_path / "runs" / "wider" / "checkpoints" / "last.ckpt").is_file() and last.read_bytes() == written
    assert list((tmp_path / "runs" / "wider" / "lightning_logs").glob("version_0/metrics.csv"))  # its log there too


def test_several_kept_checkpoints_need_a_filename_placeholder(tmp_path, capsys) -> None:
    from nlpkit.cli.main import main

    files = write_sentiment_files(tmp_path / "data", train=40, val=20)
    status = main(["fit", *TINY_MODEL, *tiny_data(files), *QUIET, "--checkpoint.save_top_k", "3"])
    assert status == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("nlpkit: error: checkpoint.save_top_k 3 keeps several checkpoints") and "\n" not in error


BAG_PLUGIN = """
    from torch import nn

    from nlpkit import hookimpl
    from nlpkit import Encoder


    class BagEncoder(Encoder):
        def __init__(self, vocab_size: int, dim: int = 8) -> None:
            super().__init__()
            self.vocab_size, self.output_dim = vocab_size, dim
            self.token_embedding = nn.Embedding(vocab_size, dim, padding_idx=0)

        def forward(self, tokens, mask, features=None):
            return self.token_embedding(tokens).tanh()


    @hookimpl
    def register_encoders(register):
        register("bag", BagEncoder)
"""


def test_a_yaml_concat_composes_a_third_party_encoder_and_reloads(plugin_site, tmp_path, sentiment_files) -> None:
    """``concat`` of the core's ``ngram`` and a plugin's encoder, by short names in YAML, under mean+max pooling:
    it trains, its checkpoint rebuilds both parts, and the reloaded model predicts as the trained one."""
    plugin_site("nlpkit-bag", "bag", "nlpkit_bag", BAG_PLUGIN)
    encoder = (
        "      class_path: concat\n"
        "      init_args:\n"
        "        encoders:\n"
        "          - {class_path: ngram, init_args: {dim: 8, buckets: 512, char_ngrams: [2, 4]}}\n"
        "          - {class_path: bag, init_args: {dim: 6}}\n"
    )
    config = classification_config(tmp_path, sentiment_files, encoder, "    pooling: mean+max\n")
    assert_ok(run_nlpkit("fit", "--config", str(config), *QUIET, "--trainer.max_steps", "3", cwd=tmp_path))
    checkpoint = tmp_path / "runs" / "checkpoints" / "last.ckpt"
    encoder = torch.load(checkpoint, weights_only=True)["hyper_parameters"]["encoder"]
    assert [part["class_path"] for part in encoder["init_args"]["encoders"]] == [
        "nlpkit.NGramEncoder", "nlpkit_bag.BagEncoder"
    ]  # fmt: skip
    task = nlpkit.load(checkpoint)
    assert task.pool.output_dim == 2 * (8 + 6) and (task.encoder.parts[0].piece_ngrams >= 0).any()
    assert set(task.predict(["a fine film"])[0]["probabilities"]) == set(task.labels)
