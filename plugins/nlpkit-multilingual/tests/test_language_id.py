"""Language identification on the sample data: accuracy, script coverage of the tokenizer, both file forms."""

from __future__ import annotations

import csv
import json
import unicodedata
from functools import partial
from pathlib import Path

import pytest
import torch
from nlpkit_multilingual.language_id import LanguageIdData, LanguageIdTask
from nlpkit_multilingual.sample import SAMPLE_LANGUAGES, sample_texts, write_language_files

from nlpkit import ConfigError, DataError, GRUEncoder, TokenizerOptions
from nlpkit.testing import fit_tiny

HAND_WRITTEN = {
    "en": ["I read a new book today", "we always drink coffee with my friend", "the city is very big at night"],
    "de": ["ich trinke heute Kaffee mit meinem Freund", "das Haus ist sehr klein", "wir gehen morgen in die Schule"],
    "es": ["hoy bebo café con mi amigo", "la casa es muy pequeña", "mañana vamos a la escuela"],
    "ru": ["я читаю новую книгу", "сегодня мы пьём кофе", "этот дом очень большой"],
    "el": ["σήμερα πίνω καφέ με τον φίλο μου", "το σπίτι είναι πολύ μικρό", "διαβάζω ένα βιβλίο"],
    "zh": ["我今天喝咖啡", "我们明天去学校", "这本书很好"],
    "ar": ["أنا أشرب القهوة اليوم", "البيت كبير جدا", "نحن في المدرسة اليوم"],
}

SCRIPT_NAMES = {"Latin": "LATIN", "Cyrillic": "CYRILLIC", "Greek": "GREEK", "Han": "CJK", "Arabic": "ARABIC"}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """Sample files per split and language: 150 training and 50 validation texts a language, different seeds."""
    root = tmp_path_factory.mktemp("languages")
    return {
        split: {code: str(path) for code, path in write_language_files(root / split, size, seed).items()}
        for split, size, seed in (("train", 150, 1), ("val", 50, 2))
    }


def training_text(files: dict[str, str]) -> list[str]:
    """Every line of the given language files."""
    return [line for path in files.values() for line in Path(path).read_text(encoding="utf-8").splitlines()]


def test_sample_covers_six_languages_and_four_scripts() -> None:
    """Languages, scripts, deterministic texts of 3 to 8 words (Chinese without spaces), unknown codes."""
    assert len(SAMPLE_LANGUAGES) >= 6
    assert len({language.script for language in SAMPLE_LANGUAGES.values()}) >= 4
    for code, language in SAMPLE_LANGUAGES.items():  # every letter is in the language's script (no look-alikes)
        letters = {character for word in language.words for character in word}
        assert {unicodedata.name(letter).split()[0] for letter in letters} == {SCRIPT_NAMES[language.script]}, code
    texts = sample_texts("en", 50, seed=7)
    assert texts == sample_texts("en", 50, seed=7) != sample_texts("en", 50, seed=8)
    assert all(3 <= len(text.split()) <= 8 for text in texts)
    assert all(" " not in text for text in sample_texts("zh", 20, seed=7))
    with pytest.raises(ConfigError, match="no sample data for language 'xx'"):
        sample_texts("xx", 1, seed=0)


def test_identifies_languages(files: dict[str, dict[str, str]]) -> None:
    """A tiny BiGRU reaches 98% validation accuracy and labels hand-written sentences with their language."""
    torch.manual_seed(0)
    task = LanguageIdTask(partial(GRUEncoder, embedding_dim=32, hidden_size=32, dropout=0.2, bidirectional=True))
    data = LanguageIdData(languages=files["train"], val_languages=files["val"], batch_size=32)
    trainer = fit_tiny(task, data, max_steps=300, check_val_every_n_epoch=1000)  # validated once, below
    assert trainer.validate(task, datamodule=data, verbose=False)[0]["val/accuracy"] >= 0.98
    texts = [text for texts in HAND_WRITTEN.values() for text in texts]
    results = task.predict(texts)
    assert [result["label"] for result in results] == [code for code, texts in HAND_WRITTEN.items() for _ in texts]
    assert all(set(result["probabilities"]) == set(SAMPLE_LANGUAGES) for result in results)


def test_tokenizer_covers_every_script(files: dict[str, dict[str, str]]) -> None:
    """The default tokenizer encodes every training character and text of five scripts without ``<unk>``."""
    data = LanguageIdData(languages=files["train"])
    assert data.tokenizer_options.character_coverage == 1.0
    data.setup("fit")  # no task: trains the tokenizer and learns the labels only
    tokenizer, texts = data.tokenizer, training_text(files["train"])
    characters = sorted({character for text in texts for character in text if not character.isspace()})
    scripts = {unicodedata.name(character).split()[0] for character in characters if character.isalpha()}
    assert {"LATIN", "CYRILLIC", "GREEK", "CJK", "ARABIC"} <= scripts
    for ids in tokenizer.encode(characters) + tokenizer.encode(texts):
        assert tokenizer.unk_id not in ids
    assert data.labels == sorted(SAMPLE_LANGUAGES)


def test_rare_characters_are_unknown_without_full_coverage(files: dict[str, dict[str, str]]) -> None:
    """The coverage check above can fail: a tokenizer keeping 99% of characters maps rare ones to ``<unk>``."""
    data = LanguageIdData(
        languages=files["train"], tokenizer=TokenizerOptions(vocab_size=1000, character_coverage=0.99)
    )
    data.setup("fit")
    assert any(data.tokenizer.unk_id in ids for ids in data.tokenizer.encode(training_text(files["train"])))


def test_language_files_and_record_files_give_the_same_examples(
    files: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    """Per-language text files, csv and jsonl with a ``language`` field read as the same ``{text, labels}``."""
    rows = [(line, code) for code in files["train"] for line in training_text({code: files["train"][code]})]
    with (tmp_path / "train.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("text", "language"), *rows])
    (tmp_path / "train.jsonl").write_text(
        "".join(json.dumps({"text": text, "language": code}, ensure_ascii=False) + "\n" for text, code in rows),
        encoding="utf-8",
    )
    expected = [{"text": text, "labels": [code]} for text, code in rows]
    by_language = [fields for _, fields in LanguageIdData(languages=files["train"]).read("train")]
    assert by_language == expected
    for name in ("train.csv", "train.jsonl"):
        assert [fields for _, fields in LanguageIdData(train_path=str(tmp_path / name)).read("train")] == expected


def test_validation_language_missing_from_training_names_the_file(
    files: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    """A validation language the training data lacks is a DataError at its file's line."""
    french = tmp_path / "fr.txt"
    french.write_text("je bois du café aujourd'hui\n", encoding="utf-8")
    data = LanguageIdData(languages=files["train"], val_languages={**files["val"], "fr": str(french)})
    with pytest.raises(DataError, match="label 'fr' in the val data never occurs in the training data") as error:
        data.setup("fit")
    assert str(error.value).startswith(f"{french}:1: ")


def test_a_split_takes_a_path_or_language_files_not_both(files: dict[str, dict[str, str]]) -> None:
    """A split set both ways is a configuration error."""
    with pytest.raises(ConfigError, match=r"set data\.val_path or data\.val_languages, not both"):
        LanguageIdData(languages=files["train"], val_path="val.csv", val_languages=files["val"])
