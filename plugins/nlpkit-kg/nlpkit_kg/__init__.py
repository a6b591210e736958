"""nlpkit plugin: knowledge-graph link prediction (``link-prediction`` task, ``triples`` data, link scorers)."""

from __future__ import annotations

from nlpkit import Register, hookimpl


@hookimpl
def register_tasks(register: Register) -> None:
    """Link prediction over free or text-aware entity embeddings."""
    register("link-prediction", "nlpkit_kg.task:LinkPredictionTask")


@hookimpl
def register_heads(register: Register) -> None:
    """The link scorers."""
    register("transe", "nlpkit_kg.scorers:TransE")
    register("distmult", "nlpkit_kg.scorers:DistMult")
    register("complex", "nlpkit_kg.scorers:ComplEx")
    register("rotate", "nlpkit_kg.scorers:RotatE")


@hookimpl
def register_datasets(register: Register) -> None:
    """Triples files with optional entity texts."""
    register("triples", "nlpkit_kg.data:TriplesData")


@hookimpl
def register_metrics(register: Register) -> None:
    """Filtered rank metrics (realistic ranks)."""
    register("mrr", "nlpkit_kg.ranking:mrr")
    for k in (1, 3, 10):
        register(f"hits@{k}", f"nlpkit_kg.ranking:hits_at_{k}")
    register("mean-rank", "nlpkit_kg.ranking:mean_rank")
