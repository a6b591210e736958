"""A small synthetic NER corpus the project writes itself (tests, the example, the benchmark)."""

from __future__ import annotations

import random

NAMES = {
    "PER": [
        "Angela Merkel",
        "Marie Curie",
        "Ada Lovelace",
        "Alan Turing",
        "Nelson Mandela",
        "Grace Hopper",
        "Frida Kahlo",
    ],
    "LOC": ["Paris", "New York", "Berlin", "Buenos Aires", "Cape Town", "Tokyo", "Lake Victoria", "Oslo"],
    "ORG": ["Acme Corp", "United Nations", "Red Cross", "Siemens", "Apple", "World Bank", "Oxfam"],
}
TEMPLATES = [
    "{PER} visited {LOC} on Monday .",
    "{PER} works for {ORG} in {LOC} .",
    "the {ORG} office in {LOC} opened last year .",
    "yesterday {PER} met {PER} near {LOC} .",
    "{ORG} hired {PER} .",
    "people in {LOC} like {ORG} a lot .",
    "nobody expected the rain today .",
]


def sample_sentences(size: int = 300, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """``(tokens, IOB2 tags)`` sentences from templates filled with person, location and organisation names."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(size):
        tokens: list[str] = []
        tags: list[str] = []
        for part in rng.choice(TEMPLATES).split():
            if part.startswith("{"):
                kind = part[1:-1]
                words = rng.choice(NAMES[kind]).split()
                tokens += words
                tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)
            else:
                tokens.append(part)
                tags.append("O")
        sentences.append((tokens, tags))
    return sentences
