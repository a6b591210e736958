"""The project's own multilingual sample data: everyday words in seven languages and five scripts, as sentences."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from nlpkit import ConfigError


@dataclass(frozen=True)
class SampleLanguage:
    """Everyday words of one language, and how its sentences join and end them."""

    name: str
    script: str
    words: tuple[str, ...]
    separator: str = " "
    end: str = "."


SAMPLE_LANGUAGES: dict[str, SampleLanguage] = {
    "en": SampleLanguage(
        "English",
        "Latin",
        (
            "the", "a", "I", "you", "we", "they", "and", "not", "is", "house", "water", "good", "day", "night",
            "friend", "book", "small", "big", "city", "today", "tomorrow", "eat", "drink", "read", "see", "go",
            "come", "with", "very", "always", "family", "school", "coffee", "work", "happy", "old", "new", "bread",
        ),
    ),
    "de": SampleLanguage(
        "German",
        "Latin",
        (
            "der", "die", "das", "ich", "du", "wir", "sie", "und", "nicht", "ist", "Haus", "Wasser", "gut", "Tag",
            "Nacht", "Freund", "Buch", "klein", "groß", "Stadt", "heute", "morgen", "essen", "trinken", "lesen",
            "sehen", "gehen", "kommen", "mit", "sehr", "immer", "Familie", "Schule", "Kaffee", "Arbeit",
            "glücklich", "alt", "neu", "Brot",
        ),
    ),
    "es": SampleLanguage(
        "Spanish",
        "Latin",
        (
            "el", "la", "los", "yo", "tú", "nosotros", "ellos", "y", "no", "es", "casa", "agua", "bueno", "día",
            "noche", "amigo", "libro", "pequeño", "grande", "ciudad", "hoy", "mañana", "comer", "beber", "leer",
            "ver", "ir", "venir", "con", "muy", "siempre", "familia", "escuela", "café", "trabajo", "feliz",
            "viejo", "nuevo", "pan",
        ),
    ),
    "ru": SampleLanguage(
        "Russian",
        "Cyrillic",
        (
            "я", "ты", "мы", "они", "и", "не", "это", "дом", "вода", "хороший", "день", "ночь", "друг", "книга",
            "маленький", "большой", "город", "сегодня", "завтра", "есть", "пить", "читать", "видеть", "идти",
            "с", "очень", "всегда", "семья", "школа", "кофе", "работа", "счастливый", "старый", "новый", "хлеб",
            "мама",
        ),
    ),
    "el": SampleLanguage(
        "Greek",
        "Greek",
        (
            "εγώ", "εσύ", "εμείς", "αυτοί", "και", "δεν", "είναι", "σπίτι", "νερό", "καλός", "μέρα", "νύχτα",
            "φίλος", "βιβλίο", "μικρός", "μεγάλος", "πόλη", "σήμερα", "αύριο", "τρώω", "πίνω", "διαβάζω", "βλέπω",
            "πάω", "έρχομαι", "με", "πολύ", "πάντα", "οικογένεια", "σχολείο", "καφές", "δουλειά", "χαρούμενος",
            "παλιός", "καινούργιος", "ψωμί",
        ),
    ),
    "zh": SampleLanguage(
        "Chinese",
        "Han",
        (
            "我", "你", "我们", "他们", "和", "不", "是", "家", "水", "好", "天", "晚上", "朋友", "书", "小", "大",
            "城市", "今天", "明天", "吃", "喝", "看", "去", "来", "很", "总是", "家人", "学校", "咖啡", "工作",
            "高兴", "老", "新", "面包", "妈妈", "茶",
        ),
        separator="",
        end="。",
    ),
    "ar": SampleLanguage(
        "Arabic",
        "Arabic",
        (
            "أنا", "أنت", "نحن", "هم", "في", "لا", "هذا", "بيت", "ماء", "جيد", "يوم", "ليل", "صديق", "كتاب",
            "صغير", "كبير", "مدينة", "اليوم", "غدا", "يأكل", "يشرب", "يقرأ", "يرى", "يذهب", "مع", "جدا", "دائما",
            "عائلة", "مدرسة", "قهوة", "عمل", "سعيد", "قديم", "جديد", "خبز", "أم",
        ),
    ),
}  # fmt: skip


def sample_texts(language: str, size: int, seed: int) -> list[str]:
    """``size`` texts of 3 to 8 of the language's words, half as capitalized sentences; the same for the same seed."""
    if language not in SAMPLE_LANGUAGES:
        raise ConfigError(f"no sample data for language '{language}' (known: {', '.join(SAMPLE_LANGUAGES)})")
    sample = SAMPLE_LANGUAGES[language]
    rng = random.Random(f"{language}:{seed}")
    texts = []
    for _ in range(size):
        text = sample.separator.join(rng.choices(sample.words, k=rng.randint(3, 8)))
        if rng.random() < 0.5:  # half are written as sentences, half as lowercase fragments without the stop
            text = text[0].upper() + text[1:] + sample.end
        texts.append(text)
    return texts


def write_language_files(directory: str | Path, size_per_language: int, seed: int) -> dict[str, Path]:
    """Write ``<code>.txt`` (one sentence a line) for every sample language under ``directory``; code -> path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for language in SAMPLE_LANGUAGES:
        paths[language] = directory / f"{language}.txt"
        lines = sample_texts(language, size_per_language, seed)
        paths[language].write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return paths
