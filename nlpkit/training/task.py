"""``Task``: the LightningModule every task extends (encoder, loss, metrics, optimizer, self-contained checkpoints)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection

from nlpkit.data.readers import Record
from nlpkit.models.encoders.base import Encoder, EncoderFactory, LanguageModelHeadMixin, factory_tokenizer
from nlpkit.models.tokenizers import Tokenizer
from nlpkit.plugin.errors import CheckpointError, ConfigError, TrainingError
from nlpkit.plugin.loader import registry
from nlpkit.training.checkpoints import SelfContainedCheckpoints
from nlpkit.training.inference import Inference
from nlpkit.training.languages import LanguageEmbeddings, PerLanguageMetrics
from nlpkit.training.prediction import Prediction
from nlpkit.training.schedules import warmup_cosine
from nlpkit.training.transfer import Pretrained, learning_rate_scales, unfreeze_top

# Warnings a dependency raises about its own use of another one, nothing a user of nlpkit can act on: Lightning on
# torch's pytree, and Lightning's CLI (which also rebuilds the models of checkpoints it saved) on jsonargparse
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pytorch_lightning\.cli")

#: devices where torch's fused AdamW kernel runs (one kernel for every parameter; docs/performance.md has its speed)
FUSED_ADAMW_DEVICES = ("cpu", "cuda")

#: What a task learns from its training data: a label list, or named vocabularies (a graph's entities and relations)
Labels = list[str] | dict[str, list[str]] | None


@dataclass
class StepOutput:
    """What a task's :meth:`Task.step` returns: the loss, and predictions/targets for the metrics."""

    loss: Tensor
    predictions: Any  # whatever the task's metrics take: class ids, logits, decoded strings
    targets: Any
    batch_size: int
    outputs: Tensor | None = None  # the raw model outputs (logits), for tasks that evaluate more than metrics


class Task(Inference, Prediction, SelfContainedCheckpoints, PerLanguageMetrics, pl.LightningModule):
    """Base of every task: an encoder, the task's own layers, a loss and torchmetrics metrics.

    The modules are built once the tokenizer and labels are known (:meth:`bind`, called by the data module
    in ``setup`` or when a checkpoint is loaded). A checkpoint carries the tokenizer, the labels and the
    plugin versions, so ``nlpkit.load(path)`` needs nothing else.

    Subclasses implement :meth:`build`, :meth:`encode`, :meth:`collate`, :meth:`step` and :meth:`predict_batch`;
    an exportable task also its fixed forward (:meth:`inference_inputs`, :meth:`infer`), which ``predict_batch``
    reads through :meth:`outputs_of`.

    :param encoder: the sequence encoder, e.g. ``lstm`` or ``transformer`` with its arguments (None: the task reads
        no text and needs no tokenizer)
    :param learning_rate: peak learning rate
    :param weight_decay: weight decay (not applied to biases, norms and embeddings)
    :param warmup_steps: linear warm-up steps before cosine decay
    :param warmup_ratio: warm up over this fraction of all training steps instead (so the warm-up scales with the
        data: 0.1 is a common choice for fine-tuning pretrained weights)
    :param min_lr_ratio: the cosine schedule decays to ``learning_rate * min_lr_ratio`` by the last step or the end
        of ``trainer.max_time``, whichever comes first
    :param metrics: names of registered metrics to compute on validation and test
    :param init_from: a pretrained checkpoint (``masked-lm``, ``contrastive``, ``causal-lm``, ...) whose encoder
        weights and tokenizer start this model; the encoder must be of the same kind and sizes
    :param compile: compile the encoder with ``torch.compile`` (pays on GPU; measure before using it on CPU)
    :param freeze_encoder: train only the task's own layers (linear probing); the encoder stays in eval mode
    :param layer_decay: layer-wise learning-rate decay: the encoder's top layer trains at ``learning_rate *
        layer_decay``, the one below at ``layer_decay ** 2`` times, down to the embeddings (None: one rate)
    :param gradual_unfreezing: unfreeze the encoder from the top, one layer group every this many steps, while
        the task's own layers train from the start (0: the whole model trains from the start)
    :param language_embeddings: add a learned vector per language (from each text's ``<lang:xx>`` token)
    :param nonfinite_loss: on a NaN or infinite training loss, ``stop`` with an error naming the step (the last
        checkpoint stays as it was) or ``skip`` the batch (counted in ``train/skipped_batches``)
    :param optimizer: ``adamw``, or ``sgd``: plain SGD without momentum, fastText's, under which only the rows of an
        embedding table that a batch reads move (AdamW's momentum moves every row a recent batch read); the loss is a
        batch mean, so fastText's per-example rates of 0.1-1 become about the batch size times that (3-30 at 32)
    """

    #: the registry its subclasses are registered in (checked by the plugin loader)
    registry_kind: ClassVar[str] = "tasks"

    #: whether the task reads the encoder's next-token head (a causal language model); others drop it
    predicts_tokens: ClassVar[bool] = False
    #: the weights ``init_from`` copies (the first prefix must be in the checkpoint)
    transfer_prefixes: ClassVar[tuple[str, ...]] = ("encoder.",)
    #: the data module's settings stored with the checkpoint ``nlpkit.load`` read (an export keeps them)
    datamodule_hparams: dict[str, Any] | None = None
    #: how to use a trained checkpoint, as the summary at the end of ``fit`` shows it (``{checkpoint}``: its path)
    usage: ClassVar[dict[str, str]] = {
        "predict": "nlpkit predict --ckpt_path {checkpoint} --data.predict_path FILE",
        "python": 'nlpkit.load("{checkpoint}").predict(texts)',
    }

    def __init__(
        self,
        encoder: EncoderFactory | None,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_steps: int = 0,
        warmup_ratio: float = 0.0,
        min_lr_ratio: float = 0.1,
        metrics: list[str] | None = None,
        init_from: str | None = None,
        compile: bool = False,
        freeze_encoder: bool = False,
        layer_decay: float | None = None,
        gradual_unfreezing: int = 0,
        language_embeddings: bool = False,
        nonfinite_loss: Literal["stop", "skip"] = "stop",
        optimizer: Literal["adamw", "sgd"] = "adamw",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.encoder_factory = encoder
        self.metric_names = list(metrics or [])
        self.tokenizer: Tokenizer | None = None
        self.labels: Labels = None
        self.encoder: Encoder | None = None
        self._built = False
        self.skipped_batches = 0
        if not 0 <= warmup_ratio < 1 or (warmup_ratio and warmup_steps):
            raise ConfigError(
                f"warmup_ratio is a fraction of the training steps in [0, 1) that replaces warmup_steps; got "
                f"warmup_ratio {warmup_ratio} and warmup_steps {warmup_steps}"
            )
        if optimizer not in ("adamw", "sgd"):
            raise ConfigError(f"optimizer must be 'adamw' or 'sgd', got {optimizer!r}")
        if nonfinite_loss not in ("stop", "skip"):
            raise ConfigError(f"nonfinite_loss must be 'stop' or 'skip', got {nonfinite_loss!r}")
        if gradual_unfreezing < 0 or (gradual_unfreezing and freeze_encoder):
            raise ConfigError("gradual_unfreezing is a number of steps >= 0, and excludes freeze_encoder")
        self.pretrained: Pretrained | None = None
        self._open_groups: int | None = None  # encoder layer groups gradual unfreezing has opened so far
        #: where the tokenizer the task came with is from (pretrained weights only mean something with it)
        self.tokenizer_source: str | None = None
        if init_from:
            self.pretrained = Pretrained.read(init_from)
            self.tokenizer, self.tokenizer_source = self.pretrained.tokenizer, f"model.init_from {init_from}"
        elif (bundled := factory_tokenizer(encoder)) is not None:
            self.tokenizer, self.tokenizer_source = bundled, "the pretrained model.encoder"

    # -- subclass API ----------------------------------------------------------------------------------
    def build(self) -> None:
        """Create the task's layers and metrics; ``self.encoder``, ``tokenizer`` and ``labels`` are set."""
        raise NotImplementedError

    def encode(self, fields: dict[str, Any], labeled: bool, record: Record | None = None) -> dict[str, Any]:
        """One example's fields to ids; must include ``length``. ``record`` locates errors in files."""
        raise NotImplementedError

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        """Pad encoded examples into a batch of tensors (keeping each example's ``index``)."""
        raise NotImplementedError

    def encode_many(self, items: Sequence[Any], labeled: bool = False) -> list[dict[str, Any]]:
        """Encode raw inputs (see :meth:`input_fields`); a task that can tokenize them in one call overrides this."""
        return [self.encode(self.input_fields(item), labeled=labeled) for item in items]

    def step(self, batch: dict[str, Any]) -> StepOutput:
        """Loss, predictions and targets of a labelled batch."""
        raise NotImplementedError

    def predict_batch(self, batch: dict[str, Any]) -> list[Any]:
        """Plain Python results, one per example of the batch, in batch order."""
        raise NotImplementedError

    def training_output(self, batch: dict[str, Any]) -> StepOutput:
        """The training loss of a batch (default: :meth:`step`; a task with another objective overrides this)."""
        return self.step(batch)

    def encoder_features(self) -> int:
        """Width of the per-token input features the task gives its encoder beside the tokens (its ``feature_dim``;
        default 0: none). Called before :meth:`build`."""
        return 0

    def artifacts(self) -> dict[str, Any]:
        """Plain data besides the weights, tokenizer and labels that the task's modules are built from (a word
        vectors file's vocabulary, say); checkpoints and exports keep it (default: none)."""
        return {}

    def restore_artifacts(self, artifacts: dict[str, Any]) -> None:
        """Take back what :meth:`artifacts` gave, before a checkpoint or an export builds the modules."""

    def input_fields(self, item: Any) -> dict[str, Any]:
        """Fields of one raw input to :meth:`predict` (default: a text becomes ``{"text": item}``)."""
        if isinstance(item, str):
            return {"text": item}
        if isinstance(item, dict):
            return item
        raise ConfigError(f"{type(self).__name__}.predict takes texts or dicts of fields, got {type(item).__name__}")

    # -- building --------------------------------------------------------------------------------------
    @property
    def is_built(self) -> bool:
        """Whether the modules exist (after :meth:`bind`)."""
        return self._built

    @property
    def label_names(self) -> list[str]:
        """The labels of a task with one label set (a class per text, a tag per token), typed as such."""
        if not isinstance(self.labels, list):
            raise ConfigError(f"{type(self).__name__} has no label list (labels: {self.labels!r})")
        return self.labels

    @property
    def text_tokenizer(self) -> Tokenizer:
        """The tokenizer of a task that reads text, typed as such."""
        if self.tokenizer is None:
            raise ConfigError(f"{type(self).__name__} has no tokenizer: it has not been trained or loaded yet")
        return self.tokenizer

    def bind(self, tokenizer: Tokenizer | None, labels: Labels, fresh: bool = True) -> None:
        """Attach the tokenizer and labels and build the modules; a second call must agree with the first.

        A task without a sequence encoder (``encoder=None``, e.g. a graph's free embeddings) needs no tokenizer.
        ``fresh`` False says the weights come next from a checkpoint or an export, so nothing starting weights are
        made from (word vectors, a pretrained checkpoint) is read.
        """
        if self.is_built:
            if tokenizer != self.tokenizer or labels != self.labels:
                raise CheckpointError(
                    "the data's tokenizer or labels differ from the model's; "
                    "use the tokenizer and label set the model was trained with"
                )
            return
        self.labels = labels
        if self.encoder_factory is None:
            if self.pretrained is not None:
                raise ConfigError(f"init_from {self.pretrained.path}: this model has no encoder to start from it")
            self.tokenizer = tokenizer
            self.build()
            self._built = True
            return
        if tokenizer is None:
            raise ConfigError(f"{type(self).__name__} reads text with its encoder and needs a tokenizer")
        self.encoder = self._build_encoder(tokenizer.vocab_size)
        if not isinstance(self.encoder, Encoder):
            raise ConfigError(f"model.encoder built a {type(self.encoder).__name__}, not an nlpkit Encoder")
        if not self.predicts_tokens and isinstance(self.encoder, LanguageModelHeadMixin):
            self.encoder.remove_lm_head()
        if getattr(self.encoder.token_embedding, "padding_idx", None) == 0:  # the encoder's default: the tokenizer's
            self.encoder.token_embedding.padding_idx = tokenizer.pad_id  # (a RoBERTa <s> is 0, its padding 1)
        limit = getattr(self.encoder, "max_length", None)
        if limit is not None and tokenizer.max_length > limit:  # inputs are truncated to what the encoder can read
            tokenizer = tokenizer.with_max_length(limit)
        self.tokenizer = tokenizer
        if self.hparams.get("language_embeddings"):
            self.language_embeddings = LanguageEmbeddings(tokenizer, self.encoder.token_embedding)
        self.build()
        if self.hparams.get("compile"):
            self.encoder.compile()  # in place: parameter names, and so checkpoints, stay the same
        if self.pretrained is not None:
            self.pretrained.load_into(self, self.transfer_prefixes)
            self.pretrained = None
        elif fresh:
            self.encoder.initialize(tokenizer)
        if self.hparams.get("freeze_encoder"):
            self.encoder.requires_grad_(False)
            self.encoder.eval()
        self._built = True

    def _build_encoder(self, vocab_size: int) -> Encoder:
        """The encoder for ``vocab_size`` ids, given the task's input features when it has any."""
        features = self.encoder_features()
        if not features:
            return self.encoder_factory(vocab_size)  # type: ignore[misc]
        if self.hparams.get("freeze_encoder"):
            raise ConfigError(
                "freeze_encoder would keep the encoder's input-feature weights as they start: give the features to "
                "the task's own layers instead (token-classification: word_features: head)"
            )
        try:
            return self.encoder_factory(vocab_size, feature_dim=features)  # type: ignore[misc,call-arg]
        except TypeError as error:
            if "feature_dim" not in str(error):
                raise
            raise ConfigError(
                f"{type(self).__name__} gives its encoder {features} input features a token, and this encoder takes "
                "none (no feature_dim argument): use lstm, gru, rnn, cnn, transformer or pretrained"
            ) from error

    def train(self, mode: bool = True) -> Task:
        """Switch training mode; a frozen encoder stays in eval mode (no dropout) for linear probing."""
        super().train(mode)
        if self.hparams.get("freeze_encoder") and getattr(self, "encoder", None) is not None:
            self.encoder.eval()
        return self

    def build_metrics(self, **kwargs: Any) -> None:
        """Create ``val_metrics`` and ``test_metrics`` from the registered metric names, built with ``kwargs``."""
        metrics = registry("metrics")
        collection = MetricCollection({name: metrics[name](**kwargs) for name in self.metric_names})
        self.val_metrics = collection.clone(prefix="val/")
        self.test_metrics = collection.clone(prefix="test/")
        self.language_metrics = nn.ModuleDict()  # "<stage>-<language>" -> the metrics of that language's examples
        self.trained_languages: set[str] = set()

    def setup(self, stage: str) -> None:
        """Build from the data module's tokenizer and labels when the data module did not already."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if not self.is_built and datamodule is not None and getattr(datamodule, "tokenizer", None) is not None:
            self.bind(datamodule.tokenizer, datamodule.labels)
        if not self.is_built:
            raise ConfigError(f"{type(self).__name__} needs a data module that provides a tokenizer")

    # -- training --------------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor | None:
        """Loss of one batch, logged as ``train/loss``; a non-finite loss stops training or skips the batch."""
        output = self.training_output(batch)
        finite = bool(torch.isfinite(output.loss))
        if self.trainer.world_size > 1:  # every process must stop or skip together, or the others wait forever
            finite = self.trainer.strategy.reduce_boolean_decision(finite, all=True)
        if not finite:
            where = f"at step {self.global_step} (epoch {self.current_epoch}, batch {batch_idx})"
            if self.hparams.get("nonfinite_loss", "stop") == "stop":
                raise TrainingError(
                    f"the training loss is {output.loss.item()} {where}; nothing from this step was saved. "
                    "Lower model.learning_rate, or set model.nonfinite_loss: skip to skip such batches"
                )
            self.skipped_batches += 1
            self.log("train/skipped_batches", float(self.skipped_batches), batch_size=output.batch_size)
            return None  # Lightning then skips backward, and the optimizer, seeing no gradients, changes nothing
        self.log("train/loss", output.loss, prog_bar=True, batch_size=output.batch_size)
        if "language" in batch and hasattr(self, "trained_languages"):
            self.trained_languages.update(batch["language"])
        return output.loss

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """With ``gradual_unfreezing``, open the encoder's layer groups from the top as the steps go by."""
        every = self.hparams.get("gradual_unfreezing")
        if every and self.encoder is not None and self.global_step // every != self._open_groups:
            self._open_groups = self.global_step // every
            unfreeze_top(self, self._open_groups)

    def _evaluate(self, batch: dict[str, Any], stage: str) -> None:
        output = self.step(batch)
        self.log(f"{stage}/loss", output.loss, prog_bar=True, batch_size=output.batch_size, sync_dist=True)
        metrics = getattr(self, f"{stage}_metrics", None)
        if metrics:
            metrics.update(output.predictions, output.targets)
            self.log_dict(metrics, batch_size=output.batch_size)
            if "language" in batch:
                self._evaluate_languages(stage, metrics, output, batch["language"])
        self.evaluated(stage, output)

    def evaluated(self, stage: str, output: StepOutput) -> None:
        """Called after each validation or test batch with its step output (default: nothing more)."""

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Update validation loss and metrics."""
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Update test loss and metrics."""
        self._evaluate(batch, "test")

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> list[dict[str, Any]]:
        """Predictions of a batch, each tagged with its input's index in the file."""
        return [
            {"index": int(index), "prediction": result}
            for index, result in zip(batch["index"].tolist(), self.predict_batch(batch), strict=True)
        ]

    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW (fused where torch has the kernel) or plain SGD, no decay on biases, norms and embeddings, with
        linear warm-up then cosine decay per step, over the steps or the time budget
        (:func:`nlpkit.training.schedules.warmup_cosine`)."""
        hp = self.hparams
        scales = learning_rate_scales(self, hp.get("layer_decay"))
        groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
        for name, parameter in self.named_parameters():
            if parameter.requires_grad or hp.get("gradual_unfreezing"):  # gradually unfrozen ones train later
                decays = parameter.ndim >= 2 and "embedding" not in name
                groups.setdefault((scales.get(id(parameter), 1.0), decays), []).append(parameter)
        parameter_groups = [
            {"params": params, "lr": hp.learning_rate * scale, "weight_decay": hp.weight_decay if decays else 0.0}
            for (scale, decays), params in groups.items()
        ]
        if hp.get("optimizer", "adamw") == "sgd":
            optimizer: torch.optim.Optimizer = torch.optim.SGD(parameter_groups, lr=hp.learning_rate)
        else:
            parameters = [p for params in groups.values() for p in params]
            fused = all(p.device.type in FUSED_ADAMW_DEVICES and p.is_floating_point() for p in parameters)
            # Lightning refuses to clip the gradients of a fused optimizer under mixed precision (it would unscale
            # them itself), and nlpkit clips by default: such runs take the foreach AdamW
            trainer = self._trainer
            if trainer is not None and "mixed" in str(trainer.precision) and trainer.gradient_clip_val:
                fused = False
            optimizer = torch.optim.AdamW(parameter_groups, lr=hp.learning_rate, fused=fused or None)
        scheduler = warmup_cosine(
            optimizer, self.trainer, hp.warmup_steps, hp.get("warmup_ratio", 0.0), hp.min_lr_ratio
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
