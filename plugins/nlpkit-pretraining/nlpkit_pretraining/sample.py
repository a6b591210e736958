"""Tiny generated data for tests and examples: sentences about a few topics, and paraphrase pairs."""

from __future__ import annotations

import random

#: topic -> (subjects, actions); a sentence joins one of each
TOPICS = {
    "sport": (
        ["the striker", "the goalkeeper", "the coach", "the team", "the runner"],
        ["scored a late goal", "won the match", "lost the final", "trained on the pitch", "broke the record"],
    ),
    "food": (
        ["the chef", "the baker", "my aunt", "the waiter", "the cook"],
        ["cooked a spicy soup", "baked fresh bread", "served the salad", "tasted the sauce", "fried some fish"],
    ),
    "music": (
        ["the singer", "the band", "the pianist", "the choir", "the drummer"],
        ["played a new song", "sang on stage", "recorded an album", "tuned the guitar", "rehearsed the concert"],
    ),
}

#: concepts, each with two wordings that mean the same
SUBJECTS = [
    ("the cat", "a kitten"),
    ("the old man", "an elderly gentleman"),
    ("the teacher", "an instructor"),
    ("the child", "a young kid"),
    ("the doctor", "a physician"),
    ("the farmer", "a grower of crops"),
]
ACTIONS = [
    ("fell asleep quickly", "dozed off fast"),
    ("ate a big meal", "had a large dinner"),
    ("walked to the shop", "went to the store on foot"),
    ("read a long book", "finished a thick novel"),
    ("repaired the car", "fixed the automobile"),
    ("lost the keys", "could not find the keys"),
]


def topic_sentences(size: int, seed: int = 0) -> list[tuple[str, str]]:
    """``(sentence, topic)`` pairs such as ``("the chef baked fresh bread .", "food")``."""
    rng = random.Random(seed)
    rows = []
    for _ in range(size):
        topic = rng.choice(sorted(TOPICS))
        subjects, actions = TOPICS[topic]
        rows.append((f"{rng.choice(subjects)} {rng.choice(actions)} .", topic))
    return rows


def paraphrase_pairs(size: int, seed: int = 0, concepts: range | None = None) -> list[tuple[str, str]]:
    """Pairs of sentences that mean the same in other words (subject and action each reworded at random).

    ``concepts`` limits the subjects to those indices (to hold combinations out of training).
    """
    rng = random.Random(seed)
    subjects = [SUBJECTS[i] for i in (concepts or range(len(SUBJECTS)))]
    pairs = []
    for _ in range(size):
        subject, action = rng.choice(subjects), rng.choice(ACTIONS)
        flip_subject, flip_action = rng.random() < 0.5, rng.random() < 0.5
        first = f"{subject[flip_subject]} {action[flip_action]}"
        second = f"{subject[not flip_subject]} {action[not flip_action]}"
        pairs.append((first, second))
    return pairs
