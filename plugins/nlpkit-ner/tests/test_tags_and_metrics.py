"""Tag schemes and entity metrics, checked by hand and against seqeval's strict mode on random corpora."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest
import torch
from nlpkit_ner.metrics import (
    EntityF1,
    EntityPrecision,
    EntityRecall,
    EntityScores,
    TokenAccuracy,
    entity_f1,
    entity_precision,
    entity_recall,
    token_accuracy,
)
from nlpkit_ner.tags import (
    allowed_transitions,
    check_tags,
    convert,
    detect_scheme,
    is_valid,
    labels_for,
    spans,
    validate_scheme,
)
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from seqeval.scheme import IOB1, IOB2, IOBES, Tokens

from nlpkit import ConfigError

TYPES = ["LOC", "ORG", "PER"]
SCHEMES = ["iob1", "iob2", "bioes"]
SEQEVAL = {"iob1": IOB1, "iob2": IOB2, "bioes": IOBES}


def random_entities(rng: random.Random, length: int, types: list[str] = TYPES) -> list[tuple[str, int, int]]:
    """Ordered, non-overlapping entities of 1-3 tokens, often adjacent to one another (also of the same type)."""
    entities, position = [], rng.randrange(3)
    while position < length:
        end = min(length, position + rng.randint(1, 3))
        entities.append((rng.choice(types), position, end))
        position = end + rng.choice([0, 0, 1, 2])
    return entities


def encode(entities: list[tuple[str, int, int]], length: int, scheme: str) -> list[str]:
    """The reference tagging of ordered entities, token by token."""
    tags = ["O"] * length
    for type_, start, end in entities:
        after_same_type = start > 0 and tags[start - 1][2:] == type_
        for position in range(start, end):
            first, last = position == start, position == end - 1
            if scheme == "bioes":
                prefix = "S" if first and last else "B" if first else "E" if last else "I"
            else:
                prefix = "B" if first and (scheme == "iob2" or after_same_type) else "I"
            tags[position] = f"{prefix}-{type_}"
    return tags


def corrupt(rng: random.Random, entities: list[tuple[str, int, int]], length: int, scheme: str) -> list[str]:
    """A prediction: entities dropped, boundaries shifted, types changed, then stray (mostly invalid) tags."""
    candidates = []
    for type_, start, end in entities:
        move = rng.random()
        if move < 0.15:
            continue
        if move < 0.3:
            start, end = (
                (start + rng.choice([-1, 1]), end) if rng.random() < 0.5 else (start, end + rng.choice([-1, 1]))
            )
        elif move < 0.45:
            type_ = rng.choice([other for other in TYPES if other != type_])
        if 0 <= start < end <= length:
            candidates.append((type_, start, end))
    kept: list[tuple[str, int, int]] = []
    for entity in sorted(candidates, key=lambda entity: entity[1]):
        if not kept or entity[1] >= kept[-1][2]:
            kept.append(entity)
    tags = encode(kept, length, scheme)
    outside = [position for position, tag in enumerate(tags) if tag == "O"]
    if outside and rng.random() < 0.3:
        tags[rng.choice(outside)] = f"I-{rng.choice(TYPES)}"
    if tags and rng.random() < 0.2:
        tags[rng.randrange(length)] = rng.choice(labels_for(TYPES, scheme))
    return tags


def corpus(scheme: str, size: int = 300, seed: int = 0) -> tuple[list[list[str]], list[list[str]]]:
    """Random valid gold sentences in the scheme and corrupted predictions for them."""
    rng = random.Random(seed)
    gold, predicted = [], []
    for _ in range(size):
        length = rng.randint(0, 14)
        entities = random_entities(rng, length)
        gold.append(encode(entities, length, scheme))
        predicted.append(corrupt(rng, entities, length, scheme))
    return gold, predicted


def seqeval_spans(tags: list[str], scheme: str) -> list[tuple[str, int, int]]:
    """seqeval's strict entities of one sentence."""
    return [(entity.tag, entity.start, entity.end) for entity in Tokens(tags, SEQEVAL[scheme]).entities]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_spans_equal_seqeval_strict_on_any_tag_sequence(scheme: str) -> None:
    rng = random.Random(1)
    labels = labels_for(["LOC", "PER"], scheme)
    for _ in range(600):
        tags = [rng.choice(labels) for _ in range(rng.randint(0, 10))]
        assert spans(tags, scheme) == seqeval_spans(tags, scheme), tags


def test_spans_by_hand() -> None:
    assert spans(["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-PER"], "iob2") == [("PER", 0, 2), ("LOC", 4, 5)]
    assert spans(["B-PER", "E-PER", "S-LOC", "B-LOC", "I-LOC", "O"], "bioes") == [("PER", 0, 2), ("LOC", 2, 3)]
    assert spans(["I-PER", "I-PER", "B-PER", "I-LOC"], "iob1") == [("PER", 0, 2), ("PER", 2, 3), ("LOC", 3, 4)]


@pytest.mark.parametrize("scheme", ["iob2", "bioes"])
def test_entity_scores_equal_seqeval_strict_and_accumulate(scheme: str) -> None:
    gold, predicted = corpus(scheme)
    assert not all(is_valid(tags, scheme) for tags in predicted)
    reference = {"mode": "strict", "scheme": SEQEVAL[scheme]}
    metrics = {
        name: factory(types=TYPES, scheme=scheme)
        for name, factory in [("f1", entity_f1), ("precision", entity_precision), ("recall", entity_recall)]
    }
    cuts = sorted(random.Random(2).sample(range(1, len(gold)), 5))
    for start, end in pairwise([0, *cuts, len(gold)]):
        for metric in metrics.values():
            metric.update(predicted[start:end], gold[start:end])

    f1 = f1_score(gold, predicted, **reference)
    assert 0.3 < f1 < 0.95
    assert f1 != pytest.approx(f1_score(gold, predicted))  # the corpus tells strict from lenient decoding
    assert float(metrics["f1"].compute()) == pytest.approx(f1, abs=1e-6)
    assert float(metrics["precision"].compute()) == pytest.approx(precision_score(gold, predicted, **reference))
    assert float(metrics["recall"].compute()) == pytest.approx(recall_score(gold, predicted, **reference))

    report = classification_report(gold, predicted, output_dict=True, **reference)
    per_type = metrics["f1"].per_type()
    assert set(per_type) == set(TYPES)
    for type_ in TYPES:
        expected = {name: report[type_][name] for name in ("precision", "recall", "support")}
        assert per_type[type_] == pytest.approx({**expected, "f1": report[type_]["f1-score"]}, abs=1e-6)

    whole = EntityScores(TYPES, scheme)
    whole.update(predicted, gold)
    for state in ("correct", "predicted", "gold"):
        assert torch.equal(getattr(whole, state), getattr(metrics["f1"], state))
    assert {name: float(value) for name, value in whole.compute().items()} == pytest.approx(
        {name: float(metric.compute()) for name, metric in metrics.items()}
    )


def test_undefined_scores_are_zero_as_in_seqeval() -> None:
    metric = EntityF1(["PER"], "iob2")
    metric.update([["O", "O"]], [["O", "B-PER"]])
    assert float(metric.compute()) == f1_score([["O", "B-PER"]], [["O", "O"]], mode="strict", scheme=IOB2) == 0.0
    assert metric.per_type() == {"PER": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1.0}}


def test_metric_errors() -> None:
    metric = EntityRecall(TYPES, "bioes")
    with pytest.raises(ValueError, match="2 predicted sentences but 1"):
        metric.update([["O"], ["O"]], [["O"]])
    with pytest.raises(ValueError, match="sentence 0 has 1 predicted tags but 2"):
        metric.update([["O"]], [["O", "O"]])
    with pytest.raises(ConfigError, match="'MISC' is not one of the metric's types"):
        metric.update([["S-MISC"]], [["O"]])
    with pytest.raises(ConfigError, match="'S-PER' is not in the iob2 scheme"):
        EntityPrecision(TYPES, "iob2").update([["O"]], [["S-PER"]])
    with pytest.raises(ConfigError, match="unknown tag scheme 'bio'"):
        EntityF1(TYPES, "bio")  # type: ignore[arg-type]


def test_token_accuracy() -> None:
    gold, predicted = corpus("bioes", size=100)
    metric = token_accuracy(types=TYPES, scheme="bioes")
    assert isinstance(metric, TokenAccuracy)
    metric.update(predicted[:40], gold[:40])
    metric.update(predicted[40:], gold[40:])
    pairs = [
        (tag, gold_tag)
        for tags, gold_tags in zip(predicted, gold, strict=True)
        for tag, gold_tag in zip(tags, gold_tags, strict=True)
    ]
    expected = sum(tag == gold_tag for tag, gold_tag in pairs) / len(pairs)
    assert 0.5 < expected < 1.0
    assert float(metric.compute()) == pytest.approx(expected)
    with pytest.raises(ValueError, match="predicted sentences"):
        metric.update([], [["O"]])


def test_conversions_round_trip_and_detection() -> None:
    rng = random.Random(3)
    sentences: dict[str, list[list[str]]] = {scheme: [] for scheme in SCHEMES}
    for _ in range(300):
        length = rng.randint(0, 14)
        entities = random_entities(rng, length)
        tags = {scheme: encode(entities, length, scheme) for scheme in SCHEMES}
        iob2 = convert(tags["iob1"], "iob1", "iob2")
        bioes = convert(iob2, "iob2", "bioes")
        assert (iob2, bioes) == (tags["iob2"], tags["bioes"])
        assert convert(bioes, "bioes", "iob2") == iob2
        assert convert(bioes, "bioes", "iob1") == tags["iob1"]
        for scheme in SCHEMES:
            assert spans(tags[scheme], scheme) == entities
            sentences[scheme].append(tags[scheme])
    for scheme in SCHEMES:
        assert detect_scheme(sentences[scheme]) == scheme
    assert detect_scheme([["O"], ["B-PER", "I-PER", "B-PER"]]) == "iob2"
    assert detect_scheme([["B-PER", "I-PER"], ["O", "B-LOC", "I-PER"]]) == "iob1"
    assert detect_scheme([["I-PER"], ["B-PER", "E-PER"]]) == "bioes"


def test_iob1_is_converted_leniently() -> None:
    # B- after O is not valid IOB1, and strict decoding drops it; conversion reads it the classic way
    tags = ["B-PER", "I-PER", "O", "B-LOC", "I-PER"]
    assert convert(tags, "iob1", "iob2") == ["B-PER", "I-PER", "O", "B-LOC", "B-PER"]
    assert spans(tags, "iob1") == [("PER", 1, 2), ("PER", 4, 5)]


def test_labels_for() -> None:
    assert labels_for(["PER", "LOC", "PER"], "iob2") == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert labels_for(["PER"], "bioes") == ["O", "B-PER", "E-PER", "I-PER", "S-PER"]
    with pytest.raises(ConfigError, match="bad entity type"):
        labels_for(["NEW YORK"], "iob1")


def forbidden(labels: list[str], scheme: str) -> tuple[set[tuple[str, str]], set[str], set[str]]:
    """The forbidden transitions, starts and ends by label name."""
    allowed, start, end = allowed_transitions(labels, scheme)
    assert allowed.dtype == start.dtype == end.dtype == torch.bool
    assert allowed.shape == (len(labels), len(labels)) and start.shape == end.shape == (len(labels),)
    pairs = {(labels[row], labels[column]) for row, column in (~allowed).nonzero().tolist()}
    return (
        pairs,
        {labels[i] for i in range(len(labels)) if not start[i]},
        {labels[i] for i in range(len(labels)) if not end[i]},
    )


def test_allowed_transitions_iob2_by_hand() -> None:
    pairs, starts, ends = forbidden(labels_for(["LOC", "PER"], "iob2"), "iob2")
    assert pairs == {
        ("O", "I-LOC"),
        ("B-PER", "I-LOC"),
        ("I-PER", "I-LOC"),
        ("O", "I-PER"),
        ("B-LOC", "I-PER"),
        ("I-LOC", "I-PER"),
    }
    assert (starts, ends) == ({"I-LOC", "I-PER"}, set())


def test_allowed_transitions_bioes_by_hand() -> None:
    labels = labels_for(["PER"], "bioes")  # O B E I S
    allowed, start, end = allowed_transitions(labels, "bioes")
    expected = [
        [1, 1, 0, 0, 1],  # O -> O, B, S
        [0, 0, 1, 1, 0],  # B -> E, I
        [1, 1, 0, 0, 1],  # E -> O, B, S
        [0, 0, 1, 1, 0],  # I -> E, I
        [1, 1, 0, 0, 1],  # S -> O, B, S
    ]
    assert allowed.tolist() == [[bool(flag) for flag in row] for row in expected]
    assert start.tolist() == [True, True, False, False, True]
    assert end.tolist() == [True, False, True, False, True]
    pairs, _, _ = forbidden(labels_for(["LOC", "PER"], "bioes"), "bioes")
    assert {("B-LOC", "I-PER"), ("I-LOC", "E-PER"), ("B-LOC", "O"), ("O", "E-LOC")} <= pairs
    assert not {("B-LOC", "E-LOC"), ("E-LOC", "B-PER"), ("S-LOC", "S-LOC")} & pairs


@pytest.mark.parametrize("scheme", SCHEMES)
def test_is_valid_agrees_with_the_tensors(scheme: str) -> None:
    rng = random.Random(4)
    types = ["LOC", "PER"]
    labels = labels_for(types, scheme)
    index = {label: position for position, label in enumerate(labels)}
    allowed, start, end = allowed_transitions(labels, scheme)
    outcomes = []
    for attempt in range(400):
        length = rng.randint(0, 8)
        if attempt % 2:
            tags = [rng.choice(labels) for _ in range(length)]
        else:
            tags = encode(random_entities(rng, length, types), length, scheme)
        ids = torch.tensor([index[tag] for tag in tags], dtype=torch.long)
        by_tensors = len(tags) == 0 or bool(start[ids[0]] and end[ids[-1]] and allowed[ids[:-1], ids[1:]].all())
        assert is_valid(tags, scheme) == by_tensors == (convert(tags, scheme, scheme) == tags), tags
        outcomes.append(by_tensors)
    assert 50 < sum(outcomes) < 350


def test_check_tags() -> None:
    for bad in ("B_PER", "X-PER", "B-"):
        problem = check_tags(["O", bad])
        assert problem is not None and repr(bad) in problem and "token 2" in problem
    assert check_tags(["O", "B-PER", "S-LOC"]) is None
    assert check_tags([]) is None
    with pytest.raises(ConfigError, match="malformed tag 'B_PER'"):
        spans(["B_PER"], "iob2")
    with pytest.raises(ConfigError, match="'S-PER' is not in the iob2 scheme"):
        spans(["S-PER"], "iob2")
    assert validate_scheme("bioes") == "bioes"
