"""What the command line says to a person: one line per mistake (the file, the line, what was meant), help for a
class by its short name, and a progress bar that reads right without an epoch limit."""

from __future__ import annotations

import re

import pytest
import pytorch_lightning as pl

from nlpkit.cli.main import main
from nlpkit.testing import write_sentiment_files
from nlpkit.training.callbacks import NlpkitProgressBar

CONFIG = """\
trainer:
  max_epochs: 1
model:
  class_path: text-classification
  init_args:
    encoder:
      class_path: lstm
      init_args: {embedding_dim: 16, hidden_size: 16}
data:
  class_path: classification
  init_args:
    train_path: TRAIN
"""


@pytest.fixture
def config(tmp_path, monkeypatch):
    """A valid config in a fresh directory (the working directory), to be broken by each test."""
    files = write_sentiment_files(tmp_path / "data", train=20, val=10)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.replace("TRAIN", str(files["train"])), encoding="utf-8")
    return path


def error_of(args: list[str], capsys) -> str:
    """The one line ``nlpkit ARGS`` prints on standard error, after checking it exits with status 2."""
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("{embedding_dim: 16, hidden_size: 16}", "{embedding_dim: 16, hidden_size: 16",
         r"config\.yaml:9:5: not valid YAML: expected ',' or '}', but got ':' \(while parsing a flow mapping at "
         r"line 8\)"),
        ("hidden_size: 16", "hiden_size: 16",
         r"config\.yaml:8: unknown option 'hiden_size' of LSTMEncoder; did you mean 'hidden_size'\?"),
        ("max_epochs: 1", "max_epoch: 1",
         r"config\.yaml:2: unknown option 'trainer\.max_epoch' of Trainer; did you mean 'trainer\.max_epochs'\?"),
    ],
    ids=["yaml syntax", "encoder argument", "trainer key"],
)  # fmt: skip
def test_a_broken_config_is_one_line_naming_its_file_and_line(config, old, new, expected, capsys) -> None:
    config.write_text(config.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    assert re.fullmatch(rf"nlpkit: error: \S*{expected}", error_of(["fit", "--config", str(config)], capsys))


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("--trainr.max_epochs", "--trainr.max_epochs: unknown option 'trainr.max_epochs'; did you mean "
                                "'trainer.max_epochs'?"),
        ("--trainer.max_epochz", "--trainer.max_epochz: unknown option 'trainer.max_epochz' of Trainer; did you mean "
                                 "'trainer.max_epochs'?"),
        ("--model.encoder.hiden_size", "--model.encoder.hiden_size: unknown option 'hiden_size' of LSTMEncoder; did "
                                       "you mean 'hidden_size'?"),
        # an argument of the base Task, which the task takes through **kwargs
        ("--model.learnin_rate", "--model.learnin_rate: unknown option 'learnin_rate' of TextClassificationTask; did "
                                 "you mean 'learning_rate'?"),
    ],
)  # fmt: skip
def test_a_misspelled_option_is_one_line_with_the_closest_one(config, option, expected, capsys) -> None:
    assert error_of(["fit", "--config", str(config), option, "3"], capsys) == f"nlpkit: error: {expected}"


def test_a_plugin_command_mistake_is_one_line_with_the_closest_choice(capsys) -> None:
    error = error_of(["generate", "--ckpt_path", "lm.ckpt", "--prompt", "a", "--strategy", "beem"], capsys)
    assert error == (
        "nlpkit: error: nlpkit generate: argument --strategy: invalid choice 'beem'; did you mean 'beam'? "
        "(choices: greedy, sample, beam)"
    )
    assert error_of(["generate", "--prompt", "a"], capsys) == (
        "nlpkit: error: nlpkit generate: the following arguments are required: --ckpt_path (--help lists the options)"
    )


@pytest.mark.parametrize(
    ("args", "heading", "option"),
    [
        (["--model.help", "text-classification"], "Text classification over any registered encoder",
         "--model.pooling"),
        (["--model", "text-classification", "--model.encoder.help", "lstm"], "LSTM encoder", "--encoder.hidden_size"),
    ],
)  # fmt: skip
def test_help_for_a_class_takes_its_short_name(args, heading, option, capsys) -> None:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *args])
    assert exit_info.value.code in (0, None)
    out = capsys.readouterr().out
    assert heading in out and option in out and "--trainer.max_epochs" not in out


def test_the_progress_bar_counts_epochs_without_a_limit() -> None:
    bar = NlpkitProgressBar()
    for max_epochs, expected in ((-1, "Epoch 6"), (10, "Epoch 6/9")):
        trainer = pl.Trainer(max_epochs=max_epochs, logger=False, enable_checkpointing=False, callbacks=[bar])
        bar.setup(trainer, pl.LightningModule(), "fit")  # what Lightning calls when a run starts
        assert bar._get_train_description(6).strip() == expected
