"""Languages: a learned vector per language added to every token embedding of its texts, and metrics per language.

A text's language is read from its ``<lang:xx>`` token (the multilingual plugin starts every text with one), so
this works with any encoder: a hook on the encoder's token embedding adds the vector, no encoder changes.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection

from nlpkit.models.tokenizers import Tokenizer
from nlpkit.plugin.errors import ConfigError

LANGUAGE_TOKEN = re.compile(r"<lang:[^>]+>")


class LanguageEmbeddings(nn.Module):
    """One learned vector per ``<lang:xx>`` token of the vocabulary, added at every position of a text holding it.

    Texts without a language token get nothing added. Incremental decoding does not see the token in later
    chunks, so tasks that decode step by step refuse this option.
    """

    def __init__(self, tokenizer: Tokenizer, token_embedding: nn.Embedding) -> None:
        super().__init__()
        ids = [i for i, piece in enumerate(tokenizer.vocabulary()) if LANGUAGE_TOKEN.fullmatch(piece)]
        if not ids:
            raise ConfigError("language_embeddings needs <lang:xx> tokens in the tokenizer (use multilingual data)")
        language_of_token = torch.full((tokenizer.vocab_size,), -1, dtype=torch.long)
        language_of_token[torch.tensor(ids)] = torch.arange(len(ids))
        self.register_buffer("language_of_token", language_of_token, persistent=False)
        self.embedding = nn.Embedding(len(ids), token_embedding.embedding_dim)
        nn.init.normal_(self.embedding.weight, std=0.02)
        token_embedding.register_forward_hook(self._add)

    def _add(self, module: nn.Module, inputs: tuple[Any, ...], output: Tensor) -> Tensor:
        languages = self.language_of_token[inputs[0]].amax(dim=1)  # (B,): the row's language, -1 if none
        vectors = self.embedding(languages.clamp(min=0)) * (languages >= 0)[:, None]  # (B, D)
        return output + vectors[:, None, :].to(output.dtype)


def _take(values: Any, rows: list[int]) -> Any:
    """The given rows of a batch's predictions or targets (a tensor or a list)."""
    if isinstance(values, Tensor):
        return values[torch.tensor(rows, device=values.device)]
    return [values[i] for i in rows]


class PerLanguageMetrics:
    """Mixin of :class:`nlpkit.Task`: every metric per language of mixed-language evaluation batches, macro
    averages over languages, and the zero-shot transfer gap between trained and untrained languages."""

    language_metrics: nn.ModuleDict  # "<stage>-<language>" -> the metrics of that language's examples
    trained_languages: set[str]
    metric_names: list[str]

    def _evaluate_languages(self, stage: str, metrics: MetricCollection, output: Any, languages: list) -> None:
        """Update each language's copy of the metrics with that language's rows of the batch."""
        for language in sorted(set(languages)):
            rows = [i for i, code in enumerate(languages) if code == language]
            key = f"{stage}-{language}"
            if key not in self.language_metrics:
                self.language_metrics[key] = metrics.clone(postfix=f"/{language}").to(self.device)
            self.language_metrics[key].update(_take(output.predictions, rows), _take(output.targets, rows))

    def _log_language_summary(self, stage: str) -> None:
        """``<stage>/<metric>/<language>``, macro averages over languages, and the zero-shot transfer gap."""
        by_language = {}
        for key, collection in self.language_metrics.items():
            if key.startswith(f"{stage}-"):
                by_language[key.split("-", 1)[1]] = {k: float(v) for k, v in collection.compute().items()}
                collection.reset()
        for result in by_language.values():
            self.log_dict(result)
        for name in self.metric_names:
            values = {code: result[f"{stage}/{name}/{code}"] for code, result in by_language.items()}
            if not values:
                continue
            self.log(f"{stage}/{name}/macro_languages", sum(values.values()) / len(values))
            seen = [v for code, v in values.items() if code in self.trained_languages]
            unseen = [v for code, v in values.items() if code not in self.trained_languages]
            if seen and unseen:
                self.log(f"{stage}/{name}/transfer_gap", sum(seen) / len(seen) - sum(unseen) / len(unseen))

    def on_validation_epoch_end(self) -> None:
        """Per-language summaries of the validation metrics."""
        if getattr(self, "language_metrics", None):
            self._log_language_summary("val")

    def on_test_epoch_end(self) -> None:
        """Per-language summaries of the test metrics."""
        if getattr(self, "language_metrics", None):
            self._log_language_summary("test")
