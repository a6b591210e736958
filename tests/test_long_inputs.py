"""Inputs far longer than the model's max_length: every text task truncates them and answers, never raises.

(Token classification reads them in windows instead: plugins/nlpkit-ner/tests/test_long_inputs.py.)
"""

from __future__ import annotations

import json
from functools import partial

import pytest
import torch
from nlpkit_classification.data import ClassificationData
from nlpkit_classification.task import TextClassificationTask
from nlpkit_generation.data import LanguageModelingData
from nlpkit_generation.decoding import GenerationConfig
from nlpkit_generation.paired import PairedData
from nlpkit_generation.seq2seq import Seq2SeqTask
from nlpkit_generation.task import CausalLMTask

from nlpkit.models.encoders.transformer import CausalTransformerEncoder, TransformerEncoder
from nlpkit.models.tokenizers import TokenizerOptions
from nlpkit.testing import fit_tiny, story_corpus

MAX_LENGTH = 16  # learned positions: a 17th token would index past the position table
TINY = {"d_model": 16, "num_heads": 2, "num_layers": 1, "max_length": MAX_LENGTH, "positions": "learned"}
TOKENIZER = TokenizerOptions(vocab_size=60)


@pytest.fixture(scope="module")
def stories(tmp_path_factory):
    path = tmp_path_factory.mktemp("stories") / "stories.txt"
    path.write_text("\n".join(story_corpus(80)) + "\n")
    return path


def long_text(tokenizer, factor: int = 8) -> str:
    """Stories joined until the text is ``factor`` times the model's max_length in tokens."""
    text = " ".join(story_corpus(4 * factor, seed=1))
    assert len(tokenizer.encode([text], max_length=10**9)[0]) > factor * MAX_LENGTH
    return text


def test_text_classification_truncates_a_long_text(sentiment_files) -> None:
    torch.manual_seed(0)
    data = ClassificationData(train_path=str(sentiment_files["train"]), batch_size=16, tokenizer=TOKENIZER)
    task = TextClassificationTask(encoder=partial(TransformerEncoder, **TINY))
    fit_tiny(task, data, max_steps=3, limit_val_batches=0)
    text = " ".join(["the film was not great but the cast was superb"] * 20)
    (result,) = task.predict([text])
    assert result["label"] in task.labels and sum(result["probabilities"].values()) == pytest.approx(1)
    (explained,) = task.predict([text], explain="gradient_x_input")
    assert 0 < len(explained["attributions"]) <= MAX_LENGTH


def test_causal_lm_continues_scores_and_streams_a_long_prompt(stories) -> None:
    torch.manual_seed(0)
    data = LanguageModelingData(train_path=str(stories), batch_size=8, tokenizer=TOKENIZER)
    generation = GenerationConfig(max_new_tokens=4)
    task = CausalLMTask(encoder=partial(CausalTransformerEncoder, **TINY), generation=generation)
    fit_tiny(task, data, max_steps=3, limit_val_batches=0)
    prompt = long_text(task.tokenizer)
    (continued,) = task.predict([prompt])
    assert isinstance(continued["text"], str) and continued["score"] <= 0
    (beam,) = task.generate([prompt], strategy="beam", num_beams=2)
    assert len(beam.tokens) <= 4
    (scored,) = task.score([prompt])
    assert 0 < scored["tokens"] < MAX_LENGTH
    assert isinstance("".join(task.stream(prompt)), str)


def test_seq2seq_translates_a_long_source(stories, tmp_path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"source": s, "target": s.upper()}) + "\n" for s in story_corpus(40)))
    torch.manual_seed(0)
    data = PairedData(train_path=str(pairs), batch_size=8, tokenizer=TOKENIZER)
    task = Seq2SeqTask(
        d_model=16, num_heads=2, num_encoder_layers=1, num_decoder_layers=1, max_length=MAX_LENGTH,
        generation=GenerationConfig(max_new_tokens=4),
    )  # fmt: skip
    fit_tiny(task, data, max_steps=3, limit_val_batches=0)
    (translated,) = task.predict([long_text(task.tokenizer)])
    assert isinstance(translated["text"], str) and translated["score"] <= 0
