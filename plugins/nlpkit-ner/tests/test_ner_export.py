"""Export of token classification: CRF Viterbi inside the ONNX graph decodes exactly the tags eager decoding does."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from nlpkit_ner.task import TokenClassificationTask

from nlpkit import LSTMEncoder, NGramEncoder, Tokenizer, TransformerEncoder
from nlpkit.testing import check_export, sentiment_corpus

TEXTS = [text for text, _ in sentiment_corpus(80, seed=5)]
LABELS = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]


def tagger(encoder, **options) -> TokenClassificationTask:
    torch.manual_seed(0)
    task = TokenClassificationTask(encoder=encoder, **options)
    task.bind(Tokenizer.train(TEXTS, vocab_size=80), LABELS)
    if task.crf is not None:
        with torch.no_grad():  # strong transitions, so that Viterbi's paths differ from each word's argmax
            task.crf.transitions.normal_(0, 3)
    if task.templates is not None:
        with torch.no_grad():  # template features that move the scores: an export that lost them would differ
            task.templates.embedding.weight.normal_(0, 1)
    return task.eval()


@pytest.mark.parametrize(
    ("encoder", "options"),
    [
        (partial(LSTMEncoder, embedding_dim=16, hidden_size=16, bidirectional=True), {"char_features": "cnn"}),
        (partial(TransformerEncoder, d_model=32, num_heads=2, num_layers=1, dim_feedforward=64), {}),
        (partial(LSTMEncoder, embedding_dim=16, hidden_size=16, bidirectional=True), {"crf": False}),
        (
            partial(NGramEncoder, dim=8, buckets=128, char_ngrams=[1, 3]),
            {"feature_templates": {"dim": 16, "buckets": 4096}, "char_features": "cnn"},
        ),
    ],
    ids=["lstm-crf-chars", "transformer-crf", "lstm-softmax", "ngram-crf-templates"],
)
@pytest.mark.parametrize("format", ["onnx", "torchscript"])
def test_exported_tags_and_entities_equal_eager(encoder, options, format, tmp_path) -> None:
    task = tagger(encoder, **options)
    inputs = [*TEXTS[:20], "", "x"]  # an empty text and a one-word one in the same padded batch
    loaded = check_export(task, inputs, tmp_path / format, format=format)
    eager, exported = task.predict(TEXTS), loaded.predict(TEXTS)
    assert sum(map(len, eager)) >= 5  # the random tagger finds entities to compare
    strip = [[(e["label"], e["start"], e["end"]) for e in row] for row in eager]
    assert [[(e["label"], e["start"], e["end"]) for e in row] for row in exported] == strip
    rows = zip(eager, exported, strict=True)
    assert max(abs(e["score"] - f["score"]) for row, other in rows for e, f in zip(row, other, strict=True)) < 1e-4


def test_viterbi_paths_differ_from_per_word_argmax_here(tmp_path) -> None:
    """The CRF test above would not notice a graph that took each word's argmax: here the two disagree."""
    task = tagger(partial(LSTMEncoder, embedding_dim=16, hidden_size=16, bidirectional=True))
    from nlpkit.deploy.export import batch_of

    with torch.inference_mode():
        batch = batch_of(task, TEXTS[:20])
        emissions = task(batch["tokens"], batch["mask"], batch["firsts"])
        viterbi = task.outputs_of(batch)["tags"]
    assert bool(((viterbi != emissions.argmax(-1)) & batch["word_mask"]).any())
