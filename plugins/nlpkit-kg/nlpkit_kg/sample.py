"""A small knowledge graph with planted relation patterns, written by the project (examples and tests).

Each pattern has entities of its own, so a model's failure on one pattern does not spoil another.

- ``married_to`` is symmetric: the training graph holds both directions of most couples; the test asks the
  reverse of the others.
- ``precedes`` and ``follows`` are inverses of each other and antisymmetric (steps along chains): the test asks
  triples whose inverse is in training. A symmetric model (DistMult) cannot tell the two neighbours of a step apart.
- ``nationality`` is the composition of ``born_in`` and ``located_in``: the test asks people's nationality, known
  only through their birth city.
- Cities listed in the entity texts but absent from every triple (``unseen``) test text-aware entities:
  ``located_in`` of an unseen city can only be read from its description.
"""

from __future__ import annotations

import random
from itertools import pairwise
from pathlib import Path

Triple = tuple[str, str, str]
COUNTRIES = ["france", "spain", "italy", "norway", "japan", "peru"]
CITY_NAMES = {
    "france": ["paris", "lyon", "nantes", "lille", "nice"],
    "spain": ["madrid", "seville", "bilbao", "valencia", "malaga"],
    "italy": ["rome", "milan", "turin", "naples", "genoa"],
    "norway": ["oslo", "bergen", "tromso", "bodo", "molde"],
    "japan": ["tokyo", "osaka", "kyoto", "sapporo", "nagoya"],
    "peru": ["lima", "cusco", "arequipa", "piura", "trujillo"],
}
PATTERNS = ("symmetric", "inverse", "composition")


def planted_graph(
    people: int = 40, couples: int = 16, chains: int = 4, chain_length: int = 8, seed: int = 0
) -> tuple[dict[str, list[Triple]], dict[str, str]]:
    """The splits (``train``, one ``test_<pattern>`` per pattern, ``unseen``) and every entity's text."""
    rng = random.Random(seed)
    splits: dict[str, list[Triple]] = {name: [] for name in ("train", *(f"test_{p}" for p in PATTERNS), "unseen")}
    texts = {country: country for country in COUNTRIES}
    seen_cities = []
    for country, cities in CITY_NAMES.items():
        for index, city in enumerate(cities):
            texts[city] = f"{city} a city in {country}"
            if index == len(cities) - 1:  # the last city of each country appears in no training triple
                splits["unseen"].append((city, "located_in", country))
            else:
                seen_cities.append(city)
                splits["train"].append((city, "located_in", country))
    for person in (f"person_{i:02d}" for i in range(people)):
        city = rng.choice(seen_cities)
        texts[person] = person.replace("_", " ")
        splits["train"].append((person, "born_in", city))
        country = next(c for c, names in CITY_NAMES.items() if city in names)
        nationality = (person, "nationality", country)
        splits["test_composition" if rng.random() < 0.3 else "train"].append(nationality)
    for index in range(couples):
        a, b = f"partner_{2 * index:02d}", f"partner_{2 * index + 1:02d}"
        texts[a], texts[b] = a.replace("_", " "), b.replace("_", " ")
        splits["train"].append((a, "married_to", b))
        splits["test_symmetric" if index % 3 == 0 else "train"].append((b, "married_to", a))
    for chain in range(chains):
        steps = [f"step_{chain}_{i}" for i in range(chain_length)]
        for step in steps:
            texts[step] = step.replace("_", " ")
        for first, second in pairwise(steps):
            held_out = rng.random() < 0.3
            forward, backward = (first, "precedes", second), (second, "follows", first)
            held, kept = (forward, backward) if rng.random() < 0.5 else (backward, forward)
            splits["train"].append(kept)
            splits["test_inverse" if held_out else "train"].append(held)
    return splits, texts


def write_planted_graph(directory: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write ``train.tsv``, ``valid.tsv`` and ``test.tsv`` (the patterns' triples), one ``test_<pattern>.tsv``
    per pattern, ``unseen.tsv``, ``entities.tsv`` (texts) and ``queries.tsv``; returns the paths by name."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    splits, texts = planted_graph(seed=seed)
    held_out = [triple for pattern in PATTERNS for triple in splits[f"test_{pattern}"]]
    files = {name: rows for name, rows in splits.items()}
    files["valid"], files["test"] = held_out[::2], held_out[1::2]
    paths = {}
    for name, rows in files.items():
        paths[name] = directory / f"{name}.tsv"
        paths[name].write_text("".join(f"{h}\t{r}\t{t}\n" for h, r, t in rows), encoding="utf-8")
    paths["entities"] = directory / "entities.tsv"
    paths["entities"].write_text("".join(f"{e}\t{text}\n" for e, text in texts.items()), encoding="utf-8")
    paths["queries"] = directory / "queries.tsv"
    paths["queries"].write_text("person_00\tnationality\t?\n?\tlocated_in\tjapan\nstep_0_3\tprecedes\t?\n")
    return paths
