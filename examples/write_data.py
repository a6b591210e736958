"""Write the sample data under examples/data/ (the files are committed too; this regenerates them)."""

from __future__ import annotations

from pathlib import Path

from nlpkit_kg.sample import write_planted_graph
from nlpkit_multilingual.sentiment import write_multilingual_sentiment
from nlpkit_ner.sample import sample_sentences
from nlpkit_ner.words import write_conll

from nlpkit.testing import story_corpus, write_sentiment_files

DATA = Path(__file__).resolve().parent / "data"


def main() -> None:
    """Sentiment CSVs (English, and four languages), stories, CoNLL sentences, and a small knowledge graph."""
    write_sentiment_files(DATA / "sentiment", label_noise=0.1)  # annotation noise, as in real labels
    stories = DATA / "stories"
    stories.mkdir(parents=True, exist_ok=True)
    for split, size, seed in (("train", 2000, 0), ("val", 200, 1)):
        (stories / f"{split}.txt").write_text("\n".join(story_corpus(size, seed)) + "\n", encoding="utf-8")
    for split, size, seed in (("train", 600, 0), ("val", 150, 1)):
        write_conll(DATA / "ner" / f"{split}.conll", sample_sentences(size, seed))
    write_multilingual_sentiment(DATA / "multilingual", {"en": 400, "de": 300, "es": 150, "ru": 60})
    write_planted_graph(DATA / "kg")


if __name__ == "__main__":
    main()
