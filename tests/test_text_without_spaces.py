"""The default classifier (`examples/sentiment.yaml`, only the data paths changed) on generated Japanese and Chinese
sentences: text without spaces, thousands of possible characters, subjects it never saw in training."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import nlpkit
from nlpkit.cli.main import main as nlpkit_command

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "sentiment.yaml"
#: per language: subjects (the last three held out for the test), sentence patterns, and words of each sentiment
LANGUAGES = {
    "japanese": {
        "subjects": ["この映画", "あのレストラン", "この本", "新しい車", "先生の授業", "この町", "彼の歌", "今日の試合",
                     "駅前のカフェ", "その小説", "昨日の番組"],
        "patterns": ["{S}はとても{W}です。", "{S}は本当に{W}と思います。", "みんなが{S}は{W}と言っている。",
                     "正直に言うと{S}は{W}。"],
        "pos": ["素晴らしい", "楽しい", "面白い", "美しい", "最高だ"],
        "neg": ["つまらない", "ひどい", "退屈だ", "残念だ", "最低だ"],
    },
    "chinese": {
        "subjects": ["这部电影", "这家餐厅", "这本书", "这首歌", "那个演员", "他的新车", "我们的老师", "这个城市",
                     "楼下的咖啡馆", "那场比赛", "昨天的节目"],
        "patterns": ["{S}真的{W}。", "我觉得{S}很{W}。", "大家都说{S}非常{W}！", "说实话，{S}{W}极了。"],
        "pos": ["好看", "精彩", "优秀", "美丽", "有趣"],
        "neg": ["难看", "无聊", "糟糕", "失望", "差劲"],
    },
}  # fmt: skip


def sentences(language: dict[str, list[str]], subjects: list[str], size: int, seed: int) -> list[dict[str, str]]:
    """``size`` labelled sentences about ``subjects``."""
    rng = random.Random(seed)
    rows = []
    for _ in range(size):
        label = rng.choice(["pos", "neg"])
        pattern = rng.choice(language["patterns"])
        text = pattern.format(S=rng.choice(subjects), W=rng.choice(language[label]))
        rows.append({"text": text, "label": label})
    return rows


@pytest.mark.parametrize("name", sorted(LANGUAGES))
def test_the_default_classifier_reads_text_without_spaces(name: str, tmp_path: Path) -> None:
    language = LANGUAGES[name]
    seen, unseen = language["subjects"][:-3], language["subjects"][-3:]
    splits = {"train": sentences(language, seen, 400, seed=0), "val": sentences(language, seen, 64, seed=1)}
    for split, rows in splits.items():
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    status = nlpkit_command([
        "fit", "--config", str(CONFIG), "--data.train_path", str(tmp_path / "train.jsonl"),
        "--data.val_path", str(tmp_path / "val.jsonl"), "--trainer.default_root_dir", str(tmp_path / "run"),
        "--trainer.max_steps", "120", "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
    ])  # fmt: skip
    assert status == 0
    task = nlpkit.load(tmp_path / "run")
    # SentencePiece kept every character of the training text: nothing in it reads as unknown
    train_text = "".join(row["text"] for row in splits["train"])
    unknown = task.tokenizer.unk_id  # type: ignore[attr-defined]
    assert unknown not in {i for ids in task.tokenizer.encode([train_text]) for i in ids}  # type: ignore[attr-defined]
    test = sentences(language, unseen, 100, seed=2)
    predictions = task.predict([row["text"] for row in test])  # type: ignore[attr-defined]
    accuracy = sum(p["label"] == row["label"] for p, row in zip(predictions, test, strict=True)) / len(test)
    assert accuracy >= 0.95
