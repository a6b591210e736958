"""The link scorers against their papers' formulas (complex ones through torch's complex numbers)."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from nlpkit_kg import scorers
from nlpkit_kg.scorers import ComplEx, DistMult, LinkScorer, RotatE, TransE
from torch import Tensor


def as_complex(x: Tensor) -> Tensor:
    re, im = x.chunk(2, dim=-1)
    return torch.complex(re, im)


def reference_score(scorer: LinkScorer, h: Tensor, r: Tensor, t: Tensor) -> Tensor:
    """Each model's published score of triples, written directly."""
    if isinstance(scorer, TransE):
        return -(h + scorer.relation_embedding(r) - t).norm(p=scorer.p, dim=-1)
    if isinstance(scorer, RotatE):
        rotation = torch.polar(torch.ones_like(phase := scorer.relation_embedding(r)), phase)
        return -(as_complex(h) * rotation - as_complex(t)).abs().sum(-1)
    if isinstance(scorer, ComplEx):
        return (as_complex(h) * as_complex(scorer.relation_embedding(r)) * as_complex(t).conj()).sum(-1).real
    return (h * scorer.relation_embedding(r) * t).sum(-1)


SCORERS = [TransE, DistMult, ComplEx, RotatE]


@pytest.mark.parametrize("cls", SCORERS, ids=lambda c: c.__name__)
def test_scores_match_the_published_formulas_in_both_directions(cls: type[LinkScorer]) -> None:
    torch.manual_seed(0)
    scorer = cls(num_relations=5, dim=6)
    entities = torch.randn(9, scorer.entity_dim)
    h, r, t = torch.tensor([0, 3, 8, 2]), torch.tensor([1, 4, 0, 1]), torch.tensor([5, 3, 2, 7])
    expected = reference_score(scorer, entities[h], r, entities[t])
    torch.testing.assert_close(scorer(entities[h], r, entities[t]), expected)
    # ranking tails and ranking heads score the same triple the same way
    tails = scorer.similarity(scorer.tail_query(entities[h], r), entities)
    heads = scorer.similarity(scorer.head_query(r, entities[t]), entities)
    torch.testing.assert_close(tails[torch.arange(4), t], expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(heads[torch.arange(4), h], expected, rtol=1e-4, atol=1e-4)


def test_distmult_is_symmetric_and_complex_is_not() -> None:
    torch.manual_seed(0)
    for cls, symmetric in ((DistMult, True), (ComplEx, False), (RotatE, False), (TransE, False)):
        scorer = cls(num_relations=1, dim=4)
        a, b, r = torch.randn(1, scorer.entity_dim), torch.randn(1, scorer.entity_dim), torch.tensor([0])
        assert torch.allclose(scorer(a, r, b), scorer(b, r, a)) is symmetric, cls.__name__


def test_broadcast_similarity_in_chunks_equals_one_broadcast(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    scorer = RotatE(num_relations=2, dim=4)
    queries, candidates = torch.randn(3, 8), torch.randn(50, 8)
    whole = scorer.pair_similarity(queries[:, None], candidates[None])
    monkeypatch.setattr(scorers, "BROADCAST_ELEMENTS", 3 * 8 * 7)  # chunks of 7 candidates
    torch.testing.assert_close(scorer.similarity(queries, candidates), whole)


def test_rotate_relations_are_unit_rotations() -> None:
    scorer = RotatE(num_relations=3, dim=5)
    rotations = as_complex(scorer.relations(torch.arange(3)))
    torch.testing.assert_close(rotations.abs(), torch.ones(3, 5))


def test_transe_starts_and_reads_entities_on_the_unit_sphere() -> None:
    scorer = TransE(num_relations=2, dim=8)
    weight = torch.empty(10, 8)
    scorer.initialize_entities(weight)
    torch.testing.assert_close(weight.norm(dim=-1), torch.ones(10))
    torch.testing.assert_close(scorer.prepare(3 * weight).norm(dim=-1), torch.ones(10))


@pytest.mark.parametrize("scorer", [TransE, DistMult, ComplEx, RotatE])
def test_every_scorer_exports_its_ranking(scorer, tmp_path) -> None:
    from nlpkit_kg.task import LinkPredictionTask

    from nlpkit.testing import check_export

    torch.manual_seed(0)
    task = LinkPredictionTask(head=partial(scorer, dim=8), inverse_triples=scorer is not DistMult)
    entities = [f"e{i}" for i in range(30)]
    task.bind(None, {"entities": entities, "relations": ["r0", "r1"]})
    queries = [("e1", "r0", None), (None, "r1", "e2"), ("e29", "r1", None)]
    exported = check_export(task.eval(), queries, tmp_path / scorer.__name__)
    for eager, other in zip(task.predict(queries, k=5), exported.predict(queries, k=5), strict=True):
        assert [c["entity"] for c in other] == [c["entity"] for c in eager]
        assert [c["score"] for c in other] == pytest.approx([c["score"] for c in eager], abs=1e-4)
