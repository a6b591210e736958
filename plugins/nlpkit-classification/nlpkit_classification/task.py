"""Text classification: pooled encoder states, a registered head, cross-entropy, per-label probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from nlpkit import ConfigError, EncoderFactory, HeadFactory, LinearHead, Pool, Pooling, Record, StepOutput, Task, pad
from nlpkit_classification.explain import ExplainMethod, attribute
from nlpkit_classification.report import (
    calibration_error,
    fit_temperature,
    loss_of,
    print_report,
    probabilities,
    report_metrics,
    save_confusion_matrix,
)


class TextClassificationTask(Task):
    """Text classification over any registered encoder: one label per text (softmax) or a set (sigmoid).

    Probabilities are calibrated by temperature scaling fitted on the validation set after every validation
    epoch; ``nlpkit test`` reports the expected calibration error before and after it, a per-class table,
    and writes the confusion matrix as ``confusion_matrix.png`` in the log directory.

    :param head: the classifier on the pooled states (``linear``, ``mlp`` or a plugin's)
    :param pooling: how token states become one vector: mean, max, mean+max (both side by side), first (``<s>``,
        ``[CLS]``), attention, or auto (as a pretrained encoder was trained, else mean)
    :param multi_label: every text has a set of labels (sigmoid per label, binary cross-entropy)
    :param threshold: with ``multi_label``, a label is predicted when its probability reaches this
    :param class_weights: optional loss weight per label, in label order (``pos_weight`` when multi-label)
    :param calibrate: fit the temperature on the validation set
    """

    def __init__(
        self,
        encoder: EncoderFactory,
        head: HeadFactory = LinearHead,
        pooling: Pooling = "auto",
        multi_label: bool = False,
        threshold: float = 0.5,
        class_weights: list[float] | None = None,
        calibrate: bool = True,
        metrics: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(encoder, metrics=["accuracy", "macro-f1"] if metrics is None else metrics, **kwargs)
        if not 0 < threshold < 1:
            raise ConfigError(f"threshold must be between 0 and 1, got {threshold}")
        self.head_factory = head
        self.pooling = pooling
        self.multi_label = multi_label
        self.threshold = threshold
        self.class_weights = class_weights
        self.calibrate = calibrate
        self._validation: list[tuple[Tensor, Tensor]] = []

    def build(self) -> None:
        """Pooling, head, the temperature and the metrics for the learned labels."""
        assert self.labels is not None and self.encoder is not None
        if self.class_weights is not None and len(self.class_weights) != len(self.labels):
            raise ConfigError(f"class_weights has {len(self.class_weights)} values for {len(self.labels)} labels")
        self.label_ids = {label: index for index, label in enumerate(self.labels)}
        self.pool = Pool.of(self.pooling, self.encoder)
        self.head = self.head_factory(self.pool.output_dim, len(self.labels))
        weights = torch.tensor(self.class_weights) if self.class_weights else None
        self.register_buffer("loss_weights", weights, persistent=False)
        self.register_buffer("temperature", torch.ones(()))  # saved with the weights
        self.build_metrics(num_classes=len(self.labels), **({"multi_label": True} if self.multi_label else {}))
        self.test_report = report_metrics(len(self.labels), self.multi_label)
        self.test_ece = calibration_error(len(self.labels), self.multi_label)
        self.test_ece_uncalibrated = calibration_error(len(self.labels), self.multi_label)

    def encode_many(self, items: Sequence[Any], labeled: bool = False) -> list[dict[str, Any]]:
        """Unlabelled texts in one tokenizer call (its batch encoding runs on every core)."""
        if labeled:
            return super().encode_many(items, labeled)
        texts = [self.input_fields(item)["text"] for item in items]
        return [{"tokens": tokens, "length": len(tokens)} for tokens in self.text_tokenizer.encode_inputs(texts)]

    def encode(self, fields: dict[str, Any], labeled: bool, record: Record | None = None) -> dict[str, Any]:
        """Ids of the text as the encoder reads it (``<s> text``, ``[CLS] text [SEP]``), and the label id (or the set's
        multi-hot vector) when labelled."""
        if not labeled:
            return self.encode_many([fields])[0]
        tokens = self.text_tokenizer.encode_inputs([fields["text"]])[0]
        example: dict[str, Any] = {"tokens": tokens, "length": len(tokens)}
        labels = fields["labels"]
        if self.multi_label:
            example["label"] = [float(label in labels) for label in self.label_names]
        elif len(labels) != 1:
            message = f"expected one label, found {len(labels)} (set model.multi_label for sets of labels)"
            raise record.error(message) if record else ConfigError(message)
        else:
            example["label"] = self.label_ids[labels[0]]
        return example

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        """Padded ids, mask, labels and input indices."""
        tokens, mask = pad([example["tokens"] for example in examples])
        batch = {"tokens": tokens, "mask": mask, "index": torch.tensor([e["index"] for e in examples])}
        if "label" in examples[0]:
            batch["labels"] = torch.tensor([example["label"] for example in examples])
        return batch

    def forward(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """Uncalibrated class logits ``(B, num_labels)``."""
        return self.head(self.pool(self.encoder(tokens, mask), mask))

    def inference_inputs(self) -> tuple[str, ...]:
        """Exported forward: piece ids and mask."""
        return ("tokens", "mask")

    def infer(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Calibrated ``probabilities`` ``(B, num_labels)``: softmax, or a sigmoid per label when multi-label."""
        logits = self(inputs["tokens"], inputs["mask"]).float()
        return {"probabilities": probabilities(logits / self.temperature, self.multi_label)}

    def decide(self, logits: Tensor) -> Tensor:
        """Predicted class ids ``(B,)``, or 0/1 label decisions ``(B, num_labels)`` when multi-label."""
        if self.multi_label:
            return (probabilities(logits / self.temperature, True) >= self.threshold).long()
        return logits.argmax(dim=-1)

    def step(self, batch: dict[str, Any]) -> StepOutput:
        """The loss, the decisions and targets for the metrics, and the logits for calibration."""
        logits = self(batch["tokens"], batch["mask"]).float()
        loss = loss_of(logits, batch["labels"], self.multi_label, self.loss_weights)
        targets = batch["labels"].long()
        return StepOutput(loss, self.decide(logits), targets, len(logits), outputs=logits)

    # -- calibration and the test report ------------------------------------------------------------------
    def evaluated(self, stage: str, output: StepOutput) -> None:
        """Keep validation logits for calibration; update the test report and calibration errors."""
        assert output.outputs is not None, "step() returns the logits as outputs"
        logits, targets = output.outputs.detach(), output.targets
        if stage == "val":
            self._validation.append((logits.cpu(), targets.cpu()))
            return
        self.test_report.update(output.predictions, targets)
        flat = targets.flatten() if self.multi_label else targets
        uncalibrated = probabilities(logits, self.multi_label)
        calibrated = probabilities(logits / self.temperature, self.multi_label)
        if self.multi_label:
            uncalibrated, calibrated = uncalibrated.flatten(), calibrated.flatten()
        self.test_ece_uncalibrated.update(uncalibrated, flat)
        self.test_ece.update(calibrated, flat)

    def on_validation_epoch_end(self) -> None:
        """Fit the temperature on this epoch's validation logits (not during the sanity check)."""
        super().on_validation_epoch_end()
        collected, self._validation = self._validation, []
        if self.calibrate and collected and not self.trainer.sanity_checking:
            logits, targets = (torch.cat(parts) for parts in zip(*collected, strict=True))
            self.temperature.fill_(fit_temperature(logits, targets, self.multi_label))

    def on_test_epoch_end(self) -> None:
        """Log calibration errors and per-class figures, print the table, save the confusion matrix PNG."""
        super().on_test_epoch_end()
        values = self.test_report.compute()
        before, after = float(self.test_ece_uncalibrated.compute()), float(self.test_ece.compute())
        self.log_dict({"test/ece_uncalibrated": before, "test/ece": after, "test/temperature": self.temperature})
        for name in ("precision", "recall", "f1"):
            for label, value in zip(self.label_names, values[name], strict=True):
                self.log(f"test/{name}/{label}", value)
        if self.trainer.is_global_zero:
            directory = Path(self.trainer.log_dir or self.trainer.default_root_dir)
            picture = directory / "confusion_matrix.png"
            save_confusion_matrix(self.test_report["confusion"], self.label_names, picture)
            print_report(self.label_names, values, (before, after), picture)
        for metric in (self.test_report, self.test_ece, self.test_ece_uncalibrated):
            metric.reset()

    # -- prediction ------------------------------------------------------------------------------------------
    def predict(
        self, inputs: Sequence[Any], batch_size: int = 32, explain: bool | ExplainMethod = False
    ) -> list[dict[str, Any]]:
        """Label and calibrated probabilities per text; ``explain`` adds per-piece ``attributions``.

        ``explain=True`` uses integrated gradients; ``"gradient_x_input"`` is the faster approximation.
        Attributions explain the predicted label (the first one predicted, when multi-label).
        """
        if explain:
            self.require_weights("explain")
        results = super().predict(inputs, batch_size)
        if explain:
            method = "integrated_gradients" if explain is True else explain
            texts = [self.input_fields(item)["text"] for item in inputs]
            by_target: dict[str | None, list[int]] = {}  # one batched attribution pass per explained label
            for index, result in enumerate(results):
                label = result["label"] if "label" in result else (result["labels"] or [None])[0]
                by_target.setdefault(label, []).append(index)
            for target, indices in by_target.items():
                explanations = attribute(self, [texts[i] for i in indices], method=method, target=target)
                for index, explanation in zip(indices, explanations, strict=True):
                    pairs = zip(explanation.pieces, explanation.scores, strict=True)
                    results[index]["attributions"] = [[piece, score] for piece, score in pairs]
        return results

    def predict_batch(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        """The label (or label set) and the calibrated probability of every label."""
        probabilities = self.outputs_of(batch)["probabilities"]
        labels = self.label_names
        results: list[dict[str, Any]] = [
            {"probabilities": dict(zip(labels, row, strict=True))} for row in probabilities.tolist()
        ]
        if self.multi_label:
            for result, row in zip(results, (probabilities >= self.threshold).tolist(), strict=True):
                result["labels"] = [label for label, chosen in zip(labels, row, strict=True) if chosen]
        else:
            for result, best in zip(results, probabilities.argmax(dim=-1).tolist(), strict=True):
                result["label"] = labels[best]
        return results
