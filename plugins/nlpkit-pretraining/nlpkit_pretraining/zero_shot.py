"""Zero-shot classification: labels described in words, no training step.

Two ways, chosen by the model it is given: a sentence-embedding model (``contrastive`` or ``masked-lm``) compares
each text with each label's description; a causal language model scores the verbalised prompt of each label.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from nlpkit_generation.task import CausalLMTask
from torch import Tensor

from nlpkit import ConfigError, Record, StepOutput, Task, is_model_folder
from nlpkit_pretraining.contrastive import load_embedder
from nlpkit_pretraining.embedding import Embedder

Method = Literal["auto", "similarity", "prompt"]
TEMPLATE = "{text} It was {label}."


def _descriptions(labels: dict[str, str] | list[str]) -> dict[str, str]:
    """Label -> description (a list of labels describes each by its name); empty ones are refused."""
    described = dict(labels) if isinstance(labels, dict) else {label: label for label in labels}
    if len(described) < 2:
        raise ConfigError("zero-shot classification needs at least two labels")
    for label, description in described.items():
        if not isinstance(description, str) or not description.strip():
            raise ConfigError(f"label '{label}' has an empty description; describe it in a few words")
    return described


def load_scorer(path: str) -> Task:
    """The model a zero-shot classifier asks: a causal LM or sentence-embedding checkpoint, or a model folder."""
    from nlpkit import load

    return load_embedder(path) if is_model_folder(path) else load(path)


class ZeroShotTask(Task):
    """Classify texts into labels described in words, with a pretrained model and no training.

    ``similarity`` (a ``contrastive`` or ``masked-lm`` model): cosine similarity of the text's vector with each
    description's, divided by ``temperature``, through a softmax. ``prompt`` (a ``causal-lm``): each label's
    ``template`` with the text and the description filled in is scored by the language model, less the score of the
    same prompt without the text (so a description that is likely on its own does not win everywhere), and the
    scores go through a softmax. ``auto`` picks by the model.

    ``predict`` gives ``{"label", "probabilities"}`` like ``text-classification``; ``nlpkit validate``/``test`` on
    labelled data report accuracy and macro-F1 without any ``fit``.

    :param model: the pretrained checkpoint, or a Hugging Face model folder (a sentence-transformers model)
    :param labels: label -> description (``{"pos": "a good film", ...}``), or a list of labels that describe
        themselves
    :param method: ``auto``, ``similarity`` or ``prompt``
    :param template: the prompt of the ``prompt`` method, with ``{text}`` and ``{label}``
    :param temperature: the similarity method divides cosine similarities by it
    """

    def __init__(
        self,
        model: str,
        labels: dict[str, str] | list[str],
        method: Method = "auto",
        template: str = TEMPLATE,
        temperature: float = 0.05,
        metrics: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(None, metrics=["accuracy", "macro-f1"] if metrics is None else metrics, **kwargs)
        self.descriptions = _descriptions(labels)
        if "{text}" not in template or "{label}" not in template:
            raise ConfigError(f"template must contain {{text}} and {{label}}, got {template!r}")
        if temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {temperature}")
        self.scorer = load_scorer(model)
        self.scorer.requires_grad_(False)
        if method == "auto":
            method = "prompt" if isinstance(self.scorer, CausalLMTask) else "similarity"
        wanted = {"prompt": CausalLMTask, "similarity": Embedder}[method]
        if not isinstance(self.scorer, wanted):
            kind = "a causal-lm" if method == "prompt" else "a contrastive or masked-lm"
            raise ConfigError(
                f"zero-shot method '{method}' needs {kind} model; {model} is a {type(self.scorer).__name__}"
            )
        self.method = method
        self.template = template
        self.temperature = temperature
        self.bind(self.scorer.tokenizer, list(self.descriptions))

    def build(self) -> None:
        """The metrics; for the similarity method, the descriptions' vectors."""
        self.label_ids = {label: index for index, label in enumerate(self.descriptions)}
        self.build_metrics(num_classes=len(self.descriptions))
        if self.method == "similarity":
            vectors = torch.from_numpy(self.scorer.embed(list(self.descriptions.values())))  # type: ignore[operator]
            self.register_buffer("label_vectors", vectors, persistent=False)

    def encode(self, fields: dict[str, Any], labeled: bool, record: Record | None = None) -> dict[str, Any]:
        """The text (and the label's id when labelled); the scoring model tokenizes it."""
        example: dict[str, Any] = {"text": fields["text"], "length": len(fields["text"])}
        if labeled:
            label = fields["labels"][0]
            if label not in self.label_ids:
                message = f"label '{label}' is not one of the zero-shot labels ({', '.join(self.label_ids)})"
                raise record.error(message) if record else ConfigError(message)
            example["label"] = self.label_ids[label]
        return example

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        """Texts, input indices, and label ids when labelled."""
        batch: dict[str, Any] = {
            "text": [example["text"] for example in examples],
            "index": torch.tensor([example.get("index", 0) for example in examples]),
        }
        if "label" in examples[0]:
            batch["labels"] = torch.tensor([example["label"] for example in examples])
        return batch

    def logits(self, texts: list[str]) -> Tensor:
        """One score per text and label ``(B, L)``; a softmax of them gives the probabilities."""
        if self.method == "similarity":
            vectors = torch.from_numpy(self.scorer.embed(texts)).to(self.label_vectors)  # type: ignore[operator]
            return vectors @ self.label_vectors.T / self.temperature
        prompts = [self.template.format(text=text, label=d) for text in texts for d in self.descriptions.values()]
        alone = [self.template.format(text="", label=d).strip() for d in self.descriptions.values()]
        scores = self.scorer.score(prompts + alone)  # type: ignore[operator]
        likelihood = torch.tensor([score["log_likelihood"] for score in scores], device=self.device)
        labels = len(self.descriptions)
        return likelihood[:-labels].view(len(texts), labels) - likelihood[-labels:]

    def step(self, batch: dict[str, Any]) -> StepOutput:
        """Cross-entropy of the zero-shot scores, and the predicted label ids."""
        logits = self.logits(batch["text"])
        loss = F.cross_entropy(logits, batch["labels"])
        return StepOutput(loss, logits.argmax(-1), batch["labels"], len(logits))

    def predict_batch(self, batch: dict[str, Any]) -> list[dict[str, Any]]:
        """The best label and every label's probability, per text."""
        rows = self.logits(batch["text"]).softmax(-1).tolist()
        labels = list(self.descriptions)
        return [
            {
                "label": labels[max(range(len(row)), key=row.__getitem__)],
                "probabilities": dict(zip(labels, row, strict=True)),
            }
            for row in rows
        ]

    def configure_optimizers(self) -> Any:
        """Nothing to train."""
        raise ConfigError("zero-shot has nothing to train: use nlpkit predict, validate or test")
