"""Write the sample data under examples/data/ (the files are committed too; this regenerates them)."""

from __future__ import annotations

from pathlib import Path

from nlpkit.testing import story_corpus, write_sentiment_files

DATA = Path(__file__).resolve().parent / "data"


def main() -> None:
    """Sentiment CSVs and one-line stories."""
    write_sentiment_files(DATA / "sentiment")
    stories = DATA / "stories"
    stories.mkdir(parents=True, exist_ok=True)
    for split, size, seed in (("train", 2000, 0), ("val", 200, 1)):
        (stories / f"{split}.txt").write_text("\n".join(story_corpus(size, seed)) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
