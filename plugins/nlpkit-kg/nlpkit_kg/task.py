"""Link prediction: entity representations (free, from text, or both), a link scorer, two training objectives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nlpkit import CheckpointError, ConfigError, EncoderFactory, Record, StepOutput, Task, pad
from nlpkit_kg.graph import AnswerIndex, Vocabulary, as_queries
from nlpkit_kg.ranking import filtered_cross_entropy, filtered_ranks
from nlpkit_kg.scorers import LinkScorer, LinkScorerFactory, RotatE

Objective = Literal["1-n", "negative-sampling"]
METRICS = ["mrr", "hits@1", "hits@3", "hits@10", "mean-rank"]


def bernoulli_head_probability(triples: Tensor, num_relations: int) -> Tensor:
    """Per relation, how often to corrupt the head (Wang et al., 2014): ``tph / (tph + hpt)``."""
    per_relation = torch.bincount(triples[:, 1], minlength=num_relations).double()
    heads = torch.bincount(torch.unique(triples[:, :2], dim=0)[:, 1], minlength=num_relations).double()
    tails = torch.bincount(torch.unique(triples[:, 1:], dim=0)[:, 0], minlength=num_relations).double()
    tails_per_head = per_relation / heads.clamp_min(1)
    heads_per_tail = per_relation / tails.clamp_min(1)
    return (tails_per_head / (tails_per_head + heads_per_tail).clamp_min(1e-9)).float()


class LinkPredictionTask(Task):
    """Knowledge-graph link prediction: rank every entity as the missing head or tail of ``(h, r, t)``.

    Validation and test report filtered MRR, Hits@1/3/10 and mean rank (realistic ranks), over head and tail
    queries together and per direction (``test/mrr/head``). ``predict`` returns the top ``k`` candidates.

    :param head: the link scorer: ``transe``, ``distmult``, ``complex``, ``rotate`` or a plugin's
    :param encoder: read each entity's text (name or description) with this sequence encoder, mean-pooled and
        projected; ``None`` uses free embeddings only
    :param free_embeddings: learn a free vector per entity (added to the text vector when an encoder is set)
    :param objective: ``1-n`` scores every entity for each training query (binary cross-entropy);
        ``negative-sampling`` scores each triple against ``num_negatives`` corrupted ones
    :param inverse_triples: learn an inverse of every relation and answer head queries as tail queries
    :param label_smoothing: 1-N targets become ``(1 - e) * y + e / num_entities``
    :param num_negatives: corrupted triples per training triple
    :param corruption: which side to corrupt: ``uniform`` (even odds) or ``bernoulli`` (by the relation's mapping)
    :param adversarial_temperature: weight negatives by ``softmax(temperature * score)`` (RotatE's
        self-adversarial sampling); ``None`` weighs them equally
    :param margin: added to scores before the sigmoid (default: the scorer's, 6 for distance models, else 0)
    :param regularizer: ``l2`` or ``n3`` (Lacroix et al., 2018) on the vectors of each batch, or ``none``
    :param regularization_weight: the regulariser's weight
    :param eval_chunk_size: queries ranked at once; peak memory is about ``12 * eval_chunk_size * num_entities``
        bytes (see :mod:`nlpkit_kg.ranking`)
    :param top_k: candidates ``nlpkit predict`` returns per query
    """

    def __init__(
        self,
        head: LinkScorerFactory = RotatE,
        encoder: EncoderFactory | None = None,
        free_embeddings: bool = True,
        objective: Objective = "1-n",
        inverse_triples: bool = True,
        label_smoothing: float = 0.1,
        num_negatives: int = 64,
        corruption: Literal["uniform", "bernoulli"] = "bernoulli",
        adversarial_temperature: float | None = 1.0,
        margin: float | None = None,
        regularizer: Literal["none", "l2", "n3"] = "none",
        regularization_weight: float = 0.0,
        eval_chunk_size: int = 256,
        top_k: int = 10,
        learning_rate: float = 1e-2,
        weight_decay: float = 0.0,
        metrics: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            encoder,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            metrics=METRICS if metrics is None else metrics,
            **kwargs,
        )
        if encoder is None and not free_embeddings:
            raise ConfigError("entities need free embeddings, an encoder for their texts, or both")
        if not 0 <= label_smoothing < 1:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        for name, value in (("num_negatives", num_negatives), ("eval_chunk_size", eval_chunk_size), ("top_k", top_k)):
            if value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")
        self.head_factory = head
        self.entity_texts: list[str] | None = None
        self.known: AnswerIndex | None = None  # every known answer, for filtered ranking
        self.training_answers: AnswerIndex | None = None  # the training graph's answers, for 1-N targets
        self._cached_entities: Tensor | None = None

    # -- building ----------------------------------------------------------------------------------------
    def build(self) -> None:
        """The scorer, the entity representations and the metrics, for the bound vocabularies."""
        if not isinstance(self.labels, dict) or set(self.labels) != {"entities", "relations"}:
            raise CheckpointError("a link-prediction model needs entity and relation vocabularies")
        self.entities = Vocabulary("entity", self.labels["entities"])
        self.relations = Vocabulary("relation", self.labels["relations"])
        hp = self.hparams
        scorer_relations = len(self.relations) * (2 if hp.inverse_triples else 1)
        self.head = self.head_factory(scorer_relations)
        if not isinstance(self.head, LinkScorer):
            raise ConfigError(f"model.head must be a link scorer (transe, distmult, complex, rotate), got {self.head}")
        self.margin = self.head.default_margin if hp.margin is None else hp.margin
        dim = self.head.entity_dim
        self.entity_embedding = nn.Embedding(len(self.entities), dim) if hp.free_embeddings else None
        if self.entity_embedding is not None:
            self.head.initialize_entities(self.entity_embedding.weight)
        if self.encoder is not None:
            self.text_projection = nn.Linear(self.encoder.output_dim, dim)
            texts = self.entity_texts or self.entities.names
            if len(texts) != len(self.entities):
                raise CheckpointError(f"{len(texts)} entity texts for {len(self.entities)} entities")
            tokens, mask = pad(self.tokenizer.encode_inputs(texts))  # type: ignore[union-attr]
            self.register_buffer("entity_tokens", tokens, persistent=False)
            self.register_buffer("entity_mask", mask, persistent=False)
        self.register_buffer("head_probability", torch.full((len(self.relations),), 0.5), persistent=False)
        self.build_metrics()
        self.direction_metrics = nn.ModuleDict(
            {
                f"{stage}_{side}": self.val_metrics.clone(prefix=f"{stage}/", postfix=f"/{side}")
                for stage in ("val", "test")
                for side in ("tail", "head")
            }
        )

    def attach_graph(self, train: Tensor | None, known: Tensor) -> None:
        """The data's triples: ``known`` (every split) filters rankings; ``train`` gives 1-N targets and the odds
        of corrupting heads."""
        relations = len(self.relations)
        self.known = AnswerIndex(as_queries(known, relations), 2 * relations).to(self.device)
        if train is not None:
            self.training_answers = AnswerIndex(as_queries(train, relations), 2 * relations).to(self.device)
            if self.hparams.corruption == "bernoulli":
                self.head_probability.copy_(bernoulli_head_probability(train, relations))

    def training_rows(self, train: Tensor) -> Tensor:
        """What a training batch samples: unique ``(anchor, query_relation)`` queries for 1-N, else triples."""
        if self.hparams.objective == "1-n":
            return torch.unique(as_queries(train, len(self.relations))[:, :2], dim=0)
        return train

    # -- representations ------------------------------------------------------------------------------------
    def entity_vectors(self, ids: Tensor | None = None) -> Tensor:
        """Entity representations ``(*ids.shape, entity_dim)`` (every entity when ``ids`` is None)."""
        if ids is None and self._cached_entities is not None:
            return self._cached_entities
        if ids is not None and ids.numel() >= len(self.entities):  # cheaper to build every entity once
            return self.entity_vectors()[ids]
        vectors = 0
        if self.entity_embedding is not None:
            vectors = self.entity_embedding.weight if ids is None else self.entity_embedding(ids)
        if self.encoder is not None:
            vectors = vectors + self._text_vectors(ids)
        return self.head.prepare(vectors)  # type: ignore[arg-type]

    def _text_vectors(self, ids: Tensor | None) -> Tensor:
        """Mean-pooled encoder states of the entities' texts, projected; each distinct entity encoded once."""
        all_ids = torch.arange(len(self.entities), device=self.device)
        unique, inverse = (all_ids, None) if ids is None else torch.unique(ids, return_inverse=True)
        pooled = []
        for start in range(0, len(unique), self.hparams.eval_chunk_size):
            rows = unique[start : start + self.hparams.eval_chunk_size]
            tokens, mask = self.entity_tokens[rows], self.entity_mask[rows]
            tokens, mask = tokens[:, : int(mask.sum(1).max())], mask[:, : int(mask.sum(1).max())]
            hidden = self.encoder(tokens, mask)  # type: ignore[misc]
            weights = mask.to(hidden.dtype)[..., None]
            pooled.append((hidden * weights).sum(1) / weights.sum(1))
        vectors = self.text_projection(torch.cat(pooled))
        return vectors if inverse is None else vectors[inverse]

    def query_vectors(self, anchor_vectors: Tensor, query_relations: Tensor) -> Tensor:
        """What each query's answer should resemble, for the anchors' vectors ``(B, D)`` and query relations
        ``(B,)`` (``r + R`` asks for the head)."""
        if self.hparams.inverse_triples:
            return self.head.tail_query(anchor_vectors, query_relations)
        relations = len(self.relations)
        is_head = query_relations >= relations
        relation_ids = query_relations % relations
        return torch.where(
            is_head[:, None],
            self.head.head_query(relation_ids, anchor_vectors),
            self.head.tail_query(anchor_vectors, relation_ids),
        )

    def _regularization(self, query_relations: Tensor, *entity_vectors: Tensor) -> Tensor | float:
        kind, weight = self.hparams.regularizer, self.hparams.regularization_weight
        if kind == "none" or weight == 0:
            return 0.0
        relation_ids = query_relations if self.hparams.inverse_triples else query_relations % len(self.relations)
        factors = [*entity_vectors, self.head.relations(relation_ids)]
        if kind == "l2":
            return weight * sum(factor.square().sum(-1).mean() for factor in factors)
        if self.head.is_complex:  # N3 on the moduli of the complex components
            factors = [torch.stack(factor.chunk(2, dim=-1)).square().sum(0).sqrt() for factor in factors]
        return weight * sum(factor.abs().pow(3).sum(-1).mean() for factor in factors)

    # -- training -------------------------------------------------------------------------------------------

    def _one_to_n(self, queries: Tensor) -> StepOutput:
        if self.training_answers is None:
            raise ConfigError("1-N training needs the training triples (data.train_path)")
        anchors, query_relations = queries.unbind(1)
        anchor_vectors = self.entity_vectors(anchors)
        scores = self.head.similarity(self.query_vectors(anchor_vectors, query_relations), self.entity_vectors())
        rows, answers = self.training_answers.to(self.device).lookup(anchors, query_relations)
        targets = torch.zeros_like(scores)
        targets[rows, answers] = 1.0
        smoothing = self.hparams.label_smoothing
        targets = (1 - smoothing) * targets + smoothing / targets.shape[1]
        loss = F.binary_cross_entropy_with_logits(scores + self.margin, targets)
        loss = loss + self._regularization(query_relations, anchor_vectors)
        return StepOutput(loss, None, None, len(queries))

    def _negative_sampling(self, triples: Tensor) -> StepOutput:
        queries = as_queries(triples, len(self.relations)).view(2, len(triples), 3)
        corrupt_head = torch.rand(len(triples), device=triples.device) < self.head_probability[triples[:, 1]]
        anchors, query_relations, answers = torch.where(corrupt_head[:, None], queries[1], queries[0]).unbind(1)
        anchor_vectors = self.entity_vectors(anchors)
        query = self.query_vectors(anchor_vectors, query_relations)
        answer_vectors = self.entity_vectors(answers)
        negatives = torch.randint(len(self.entities), (len(triples), self.hparams.num_negatives), device=triples.device)
        positive = self.head.pair_similarity(query, answer_vectors) + self.margin
        if len(self.entities) <= negatives.shape[1]:  # small graph: score every entity once, then pick
            negative = self.head.similarity(query, self.entity_vectors()).gather(1, negatives) + self.margin
        else:
            negative = self.head.pair_similarity(query[:, None], self.entity_vectors(negatives)) + self.margin
        temperature = self.hparams.adversarial_temperature
        if temperature is None:
            weights = torch.full_like(negative, 1 / negative.shape[1])
        else:
            weights = (temperature * negative).softmax(dim=1).detach()
        loss = -(F.logsigmoid(positive).mean() + (weights * F.logsigmoid(-negative)).sum(1).mean()) / 2
        loss = loss + self._regularization(query_relations, anchor_vectors, answer_vectors)
        return StepOutput(loss, None, None, len(triples))

    def training_output(self, batch: dict[str, Any]) -> StepOutput:
        """The objective's loss on a batch of training rows."""
        rows = batch["rows"]
        return self._one_to_n(rows) if self.hparams.objective == "1-n" else self._negative_sampling(rows)

    # -- evaluation -----------------------------------------------------------------------------------------
    def step(self, batch: dict[str, Any]) -> StepOutput:
        """Filtered cross-entropy and realistic ranks of every tail query, then every head query, of a triples batch."""
        triples = batch["rows"]
        if self.known is None:
            raise ConfigError("ranking needs the graph's known triples: evaluate through the triples data module")
        queries = as_queries(triples, len(self.relations))
        self.known.to(self.device)
        candidates = self.entity_vectors()
        ranks, losses = [], []
        for chunk in queries.split(self.hparams.eval_chunk_size):
            anchors, query_relations, answers = chunk.unbind(1)
            scores = self.head.similarity(self.query_vectors(candidates[anchors], query_relations), candidates)
            rows, known = self.known.lookup(anchors, query_relations)
            ranks.append(filtered_ranks(scores, answers, rows, known))
            losses.append(filtered_cross_entropy(scores, answers, rows, known) * len(chunk))
        loss = torch.stack(losses).sum() / len(queries)
        return StepOutput(loss, torch.cat(ranks), None, len(queries))

    def evaluated(self, stage: str, output: StepOutput) -> None:
        """Also log the metrics of tail queries and head queries apart."""
        half = len(output.predictions) // 2
        for side, ranks in (("tail", output.predictions[:half]), ("head", output.predictions[half:])):
            metrics = self.direction_metrics[f"{stage}_{side}"]
            metrics.update(ranks, None)
            self.log_dict(metrics, batch_size=half)

    def _cache_entities(self) -> None:
        """Build every entity's vector once for an evaluation or prediction epoch (an export holds its own)."""
        if self.runtime is not None:
            return
        with torch.no_grad():
            self._cached_entities = None  # so entity_vectors() computes afresh
            self._cached_entities = self.entity_vectors()

    def _drop_cache(self) -> None:
        self._cached_entities = None

    on_validation_epoch_start = on_test_epoch_start = on_predict_epoch_start = _cache_entities

    def on_validation_epoch_end(self) -> None:
        """Drop the entity cache (training changes the entities)."""
        super().on_validation_epoch_end()
        self._drop_cache()

    def on_test_epoch_end(self) -> None:
        """Drop the entity cache (training may follow)."""
        super().on_test_epoch_end()
        self._drop_cache()

    on_predict_epoch_end = _drop_cache

    # -- prediction -----------------------------------------------------------------------------------------
    def input_fields(self, item: Any) -> dict[str, Any]:
        """A query as ``(head, relation, tail)`` with one of head and tail ``None``, or a dict of those keys."""
        if isinstance(item, dict):
            item = (item.get("head"), item.get("relation"), item.get("tail"))
        if not isinstance(item, (tuple, list)) or len(item) != 3 or not isinstance(item[1], str):
            raise ConfigError(f"a link-prediction query is (head, relation, tail) with None to predict, got {item!r}")
        head, relation, tail = item
        if (head is None) == (tail is None):
            raise ConfigError(f"query {item!r}: exactly one of head and tail must be None (the entity to predict)")
        return {"head": head, "relation": relation, "tail": tail}

    def encode(self, fields: dict[str, Any], labeled: bool, record: Record | None = None) -> dict[str, Any]:
        """A query's row ``(head, relation, tail)`` of ids, ``-1`` for the side to predict."""
        head, tail = (fields[side] and self.entities.id(fields[side]) for side in ("head", "tail"))
        row = (-1 if head is None else head, self.relations.id(fields["relation"]), -1 if tail is None else tail)
        return {"row": row, "length": 1}

    def collate(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        """Query rows ``(B, 3)`` and input indices."""
        rows = torch.tensor([example["row"] for example in examples], dtype=torch.long).reshape(-1, 3)
        return {"rows": rows, "index": torch.tensor([example.get("index", 0) for example in examples])}

    def predict(self, inputs: Sequence[Any], batch_size: int = 256, k: int | None = None) -> list[list[dict[str, Any]]]:
        """The top ``k`` (default ``top_k``) entities with scores for each query ``(head, relation, tail)``."""
        if not self.is_built:
            raise ConfigError("this task has not been trained or loaded yet")
        rows = self.collate(self.encode_many(inputs))["rows"]
        results: list[list[dict[str, Any]]] = []
        with self.evaluating(), torch.inference_mode():
            self._cache_entities()
            try:
                for chunk in rows.to(self.device).split(batch_size):
                    results += self._top_candidates(chunk, k or self.hparams.top_k)
            finally:
                self._drop_cache()
        return results

    def predict_batch(self, batch: dict[str, Any]) -> list[list[dict[str, Any]]]:
        """Top ``top_k`` candidates of each query row of a batch."""
        return self._top_candidates(batch["rows"], self.hparams.top_k)

    def inference_inputs(self) -> tuple[str, ...]:
        """Exported forward: query rows ``(head, relation, tail)`` with ``-1`` for the side to predict."""
        return ("rows",)

    def infer(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Every entity's ``scores`` ``(B, num_entities)`` as the missing side of each query row. An export holds
        the entity vectors as they are (text-aware ones encoded once, when exporting)."""
        rows = inputs["rows"]
        head_missing = rows[:, 0] < 0
        anchors = torch.where(head_missing, rows[:, 2], rows[:, 0])
        query_relations = rows[:, 1] + head_missing.long() * len(self.relations)
        candidates = self.entity_vectors()
        return {"scores": self.head.similarity(self.query_vectors(candidates[anchors], query_relations), candidates)}

    def export_examples(self) -> list[Any]:
        """A tail query and a head query over the first relation."""
        entities, relation = self.entities.names, self.relations.names[0]
        return [(entities[0], relation, None), (None, relation, entities[-1])]

    def _top_candidates(self, rows: Tensor, k: int) -> list[list[dict[str, Any]]]:
        """Rows ``(head, relation, tail)`` with ``-1`` for the missing side, to ranked ``{"entity", "score"}``."""
        scores = self.outputs_of({"rows": rows})["scores"]
        top = scores.topk(min(k, scores.shape[1]), dim=1)
        names = self.entities.names
        return [
            [{"entity": names[i], "score": s} for i, s in zip(ids, values, strict=True)]
            for ids, values in zip(top.indices.tolist(), top.values.tolist(), strict=True)
        ]

    # -- checkpoints -----------------------------------------------------------------------------------------
    def artifacts(self) -> dict[str, Any]:
        """The entity texts, which text-aware entities are rebuilt from."""
        return {"entity_texts": self.entity_texts}

    def restore_artifacts(self, artifacts: dict[str, Any]) -> None:
        """Take back the entity texts before the vocabularies and tokenizer are bound."""
        self.entity_texts = artifacts.get("entity_texts")
