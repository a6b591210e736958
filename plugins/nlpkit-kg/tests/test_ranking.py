"""Filtered ranking against brute-force loops: ranks with ties, the metrics, chunking, the answer index."""

from __future__ import annotations

import random

import pytest
import torch
from nlpkit_kg.graph import AnswerIndex, as_queries
from nlpkit_kg.ranking import RankMetric, filtered_cross_entropy, filtered_ranks, hits_at


def brute_force_rank(scores: list[float], target: int, known: set[int]) -> float:
    """The realistic filtered rank by counting, one candidate at a time."""
    higher = ties = 0
    for candidate, score in enumerate(scores):
        if candidate == target or candidate in known:
            continue
        higher += score > scores[target]
        ties += score == scores[target]
    return (1 + higher + 1 + higher + ties) / 2  # the mean of the optimistic and pessimistic ranks


def random_case(rng: random.Random, queries: int = 12, candidates: int = 9):
    scores = [[float(rng.randint(0, 4)) for _ in range(candidates)] for _ in range(queries)]  # many ties
    targets = [rng.randrange(candidates) for _ in range(queries)]
    known = [set(rng.sample(range(candidates), rng.randint(0, 4))) | {targets[q]} for q in range(queries)]
    return scores, targets, known


def as_tensors(scores, targets, known):
    pairs = [(q, c) for q, answers in enumerate(known) for c in sorted(answers)]
    rows, columns = (torch.tensor(column) for column in zip(*pairs, strict=True))
    return torch.tensor(scores), torch.tensor(targets), rows, columns


@pytest.mark.parametrize("seed", range(20))
def test_filtered_ranks_equal_a_brute_force_loop_with_ties(seed: int) -> None:
    scores, targets, known = random_case(random.Random(seed))
    ranks = filtered_ranks(*as_tensors(scores, targets, known))
    expected = [brute_force_rank(s, t, k) for s, t, k in zip(scores, targets, known, strict=True)]
    assert ranks.tolist() == expected


def test_a_tie_counts_half_and_filtered_answers_not_at_all() -> None:
    scores = torch.tensor([[3.0, 5.0, 3.0, 9.0, 3.0]])
    # target 0 ties with 2 and 4; 1 and 3 score higher but 3 is a known answer
    ranks = filtered_ranks(scores, torch.tensor([0]), torch.tensor([0]), torch.tensor([3]))
    assert ranks.tolist() == [(2 + 4) / 2]


def test_metrics_equal_their_definitions_over_batches() -> None:
    scores, targets, known = random_case(random.Random(7), queries=40)
    expected = [brute_force_rank(s, t, k) for s, t, k in zip(scores, targets, known, strict=True)]
    metrics = {"mrr": RankMetric("reciprocal_rank"), "mr": RankMetric("rank"), "h1": hits_at(1)(), "h3": hits_at(3)()}
    tensors = as_tensors(scores, targets, known)
    for start in range(0, 40, 15):  # three uneven batches
        rows = torch.arange(start, min(start + 15, 40))
        keep = (tensors[2] >= start) & (tensors[2] < start + 15)
        ranks = filtered_ranks(tensors[0][rows], tensors[1][rows], tensors[2][keep] - start, tensors[3][keep])
        for metric in metrics.values():
            metric.update(ranks)
    assert metrics["mrr"].compute().item() == pytest.approx(sum(1 / r for r in expected) / 40)
    assert metrics["mr"].compute().item() == pytest.approx(sum(expected) / 40)
    assert metrics["h1"].compute().item() == pytest.approx(sum(r <= 1 for r in expected) / 40)
    assert metrics["h3"].compute().item() == pytest.approx(sum(r <= 3 for r in expected) / 40)


def test_filtered_cross_entropy_leaves_other_answers_out() -> None:
    scores, targets, known = random_case(random.Random(3))
    loss = filtered_cross_entropy(*as_tensors(scores, targets, known))
    expected = 0.0
    for row, target, answers in zip(scores, targets, known, strict=True):
        kept = [s for c, s in enumerate(row) if c == target or c not in answers]
        expected += torch.tensor(kept).logsumexp(0).item() - row[target]
    assert loss.item() == pytest.approx(expected / len(scores), rel=1e-5)


def test_answer_index_finds_every_known_answer() -> None:
    rng = random.Random(0)
    triples = torch.tensor(sorted({(rng.randrange(6), rng.randrange(3), rng.randrange(6)) for _ in range(40)}))
    queries = as_queries(triples, 3)
    index = AnswerIndex(queries, 6)
    anchors, relations = torch.tensor([0, 1, 2, 5, 3]), torch.tensor([0, 4, 2, 5, 1])
    rows, answers = index.lookup(anchors, relations)
    found = {(int(r), int(a)) for r, a in zip(rows, answers, strict=True)}
    expected = {
        (row, int(answer))
        for row, (anchor, relation) in enumerate(zip(anchors.tolist(), relations.tolist(), strict=True))
        for q_anchor, q_relation, answer in queries.tolist()
        if (q_anchor, q_relation) == (anchor, relation)
    }
    assert found == expected and len(rows) == len(expected)
