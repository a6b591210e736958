"""The LightningCLI behind ``nlpkit fit/validate/test/predict``: nlpkit's defaults, callbacks and checkpoint IO."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from pytorch_lightning.callbacks import EarlyStopping, ProgressBar
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from pytorch_lightning.loggers import CSVLogger

from nlpkit.cli.short_names import PARSER_MODE
from nlpkit.data.module import TextDataModule
from nlpkit.plugin.configurable import class_path, names_class
from nlpkit.training.callbacks import Checkpoint, FitSummary, NlpkitProgressBar, PredictionWriter
from nlpkit.training.checkpoint_io import AtomicCheckpointIO
from nlpkit.training.task import Task

#: where runs go without a ``trainer.default_root_dir``
RUNS = "runs"


class FitConfigSaver(SaveConfigCallback):
    """Saves the run's config.yaml when training; evaluating a checkpoint writes nothing beside it."""

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        """Save only for ``fit``."""
        if stage == "fit":
            super().setup(trainer, pl_module, stage)


class NlpkitCLI(LightningCLI):
    """LightningCLI with registered short names, checkpoint-carried configs and nlpkit's defaults.

    :param checkpoint: the ``--ckpt_path`` checkpoint of validate/test/predict, already read by the command line:
        the task is restored from it, so Lightning never reads the file again
    """

    def __init__(self, *args: Any, checkpoint: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.checkpoint = checkpoint
        super().__init__(*args, **kwargs)

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        """Parsers that resolve short names in config files, raise instead of exiting, and take no abbreviated
        option (``--trainer.max_epoch`` is a mistake to point out, not ``--trainer.max_epochs``)."""
        kwargs.update(parser_mode=PARSER_MODE, exit_on_error=False, allow_abbrev=False)
        return super().init_parser(**kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Always checkpoints (best.ckpt by validation loss; last.ckpt every epoch and every 500 steps), early
        stopping on the validation loss (``--early_stopping.patience``) and a prediction writer."""
        parser.add_lightning_class_args(Checkpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.save_last": True,
                "checkpoint.dirpath": None,
                "checkpoint.monitor": "val/loss",
                "checkpoint.filename": "best",
                "checkpoint.enable_version_counter": False,  # a rerun of the same configuration replaces its own
            }
        )
        parser.add_lightning_class_args(EarlyStopping, "early_stopping")
        # strict=False: a run without validation data trains to the end
        parser.set_defaults({"early_stopping.monitor": "val/loss", "early_stopping.patience": 5,
                             "early_stopping.strict": False})  # fmt: skip
        parser.add_lightning_class_args(PredictionWriter, "predictions")

    def _parse_ckpt_path(self) -> None:
        """Replaced by ``nlpkit.cli.main._ckpt_config``, which also restores the data module's settings."""

    def before_instantiate_classes(self) -> None:
        """Checkpoints go to <default_root_dir or runs>/checkpoints, or stay beside the evaluated checkpoint; the
        default CSV log goes to <default_root_dir or runs>/lightning_logs."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        root = config.trainer.get("default_root_dir") or RUNS
        if config.get("checkpoint") is not None and config.checkpoint.get("dirpath") is None:
            ckpt_path = config.get("ckpt_path")
            if self.subcommand != "fit" and ckpt_path and Path(ckpt_path).is_file():
                config.checkpoint.dirpath = str(Path(ckpt_path).parent)
            else:
                config.checkpoint.dirpath = str(Path(root) / "checkpoints")
        logger = config.trainer.get("logger")
        arguments = logger.get("init_args") if hasattr(logger, "get") else None
        csv = arguments is not None and names_class(str(logger.get("class_path")), CSVLogger)
        if csv and arguments.get("save_dir") == RUNS:
            arguments.save_dir = root  # nlpkit's default logger, not one the config chose

    def before_validate(self) -> None:
        """Evaluate a checkpoint with its own tokenizer and labels (nothing is retrained, so the training
        callbacks whose state it carries, early stopping, a time budget, are not wanted: no warning for them)."""
        warnings.filterwarnings("ignore", message="Be aware that when using `ckpt_path`, callbacks used to create")
        if self.checkpoint is not None:
            self.model.restore(self.checkpoint, self.config[self.subcommand].ckpt_path)
            self.config_init[self.subcommand]["ckpt_path"] = None  # restored: Lightning must not read it again

    before_test = before_validate

    def before_predict(self) -> None:
        """Predict with a checkpoint, or with an export directory's graph (which Lightning must not load)."""
        from nlpkit.deploy.export import attach_export, is_export

        ckpt_path = self.config[self.subcommand].get("ckpt_path")
        if ckpt_path and is_export(ckpt_path):
            attach_export(self.model, ckpt_path)
            self.config_init[self.subcommand]["ckpt_path"] = None
            return
        self.before_validate()

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        """The Trainer, writing checkpoints atomically, with nlpkit's progress bar and, for ``fit``, its summary.

        A config that lists its own ``EarlyStopping`` or progress bar among ``trainer.callbacks`` replaces nlpkit's.
        """
        config = dict(self._get(self.config_init, "trainer", default={}))
        own = config.get("callbacks") or []
        own = list(own) if isinstance(own, list) else [own]
        added = [self._get(self.config_init, key) for key in self._parser(self.subcommand).callback_keys]
        if any(isinstance(callback, EarlyStopping) for callback in own):
            added = [callback for callback in added if not isinstance(callback, EarlyStopping)]
        if config.get("enable_progress_bar") is not False and not any(isinstance(c, ProgressBar) for c in own):
            # predictions may go to standard output: the bar of ``predict`` goes to standard error
            own.append(NlpkitProgressBar(console_kwargs={"stderr": True} if self.subcommand == "predict" else None))
        if self.subcommand == "fit":
            own.append(FitSummary())
        trainer = self._instantiate_trainer({**config, "callbacks": own, **kwargs}, added)
        if not isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO):
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        return trainer


def run(argv: list[str], verbose: bool = False, checkpoint: dict[str, Any] | None = None) -> None:
    """Run one subcommand (``argv[0]``) with nlpkit's trainer defaults; Lightning's own messages (devices, tips,
    the seed) only when ``verbose``. ``checkpoint`` is the ``--ckpt_path`` file, already read."""
    for name in ("pytorch_lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
    # predict logs nothing, so it leaves no empty runs/lightning_logs/version_N behind
    logger = False if argv[0] == "predict" else {"class_path": class_path(CSVLogger), "init_args": {"save_dir": RUNS}}
    NlpkitCLI(
        Task,
        TextDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        auto_configure_optimizers=False,
        save_config_callback=FitConfigSaver,
        save_config_kwargs={"overwrite": True},
        seed_everything_default=0,
        trainer_defaults={
            "logger": logger,
            "enable_model_summary": verbose,  # Lightning's layer table: with --verbose
            "gradient_clip_val": 1.0,
            "use_distributed_sampler": False,  # nlpkit's batch samplers shard by process themselves
            "log_every_n_steps": 10,
        },
        args=argv,
        checkpoint=checkpoint,
    )
