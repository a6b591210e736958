"""nlpkit plugin: knowledge-graph link prediction (``link-prediction`` task, ``triples`` data, link scorers)."""

from __future__ import annotations

from nlpkit import Register, hookimpl


@hookimpl
def register_tasks(register: Register) -> None:
    """Link prediction over free or text-aware entity embeddings."""
    from nlpkit_kg.task import LinkPredictionTask

    register("link-prediction", LinkPredictionTask)


@hookimpl
def register_heads(register: Register) -> None:
    """The link scorers."""
    from nlpkit_kg.scorers import ComplEx, DistMult, RotatE, TransE

    register("transe", TransE)
    register("distmult", DistMult)
    register("complex", ComplEx)
    register("rotate", RotatE)


@hookimpl
def register_datasets(register: Register) -> None:
    """Triples files with optional entity texts."""
    from nlpkit_kg.data import TriplesData

    register("triples", TriplesData)


@hookimpl
def register_metrics(register: Register) -> None:
    """Filtered rank metrics (realistic ranks)."""
    from nlpkit_kg.ranking import hits_at, mean_rank, mrr

    register("mrr", mrr)
    for k in (1, 3, 10):
        register(f"hits@{k}", hits_at(k))
    register("mean-rank", mean_rank)
