"""NER end to end: CoNLL files in every shape, scheme conversion, taggers that learn, entities with offsets."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from nlpkit_ner.data import ConllData
from nlpkit_ner.sample import sample_sentences
from nlpkit_ner.task import TokenClassificationTask
from nlpkit_ner.words import split_words, write_conll

import nlpkit
from nlpkit import DataError, LSTMEncoder, TokenizerOptions, TransformerEncoder, read_records
from nlpkit.plugin.loader import discover
from nlpkit.testing import fit_tiny

ENCODERS = {
    "bilstm-crf": (partial(LSTMEncoder, embedding_dim=48, hidden_size=64, bidirectional=True), True),
    "transformer-softmax": (partial(TransformerEncoder, d_model=64, num_heads=4, num_layers=2, dropout=0.0), False),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("ner")
    write_conll(directory / "train.conll", sample_sentences(400, seed=0))
    write_conll(directory / "val.conll", sample_sentences(100, seed=1))
    return directory


def conll_data(directory, **options) -> ConllData:
    options.setdefault("tokenizer", TokenizerOptions(vocab_size=120))
    return ConllData(
        train_path=str(directory / "train.conll"), val_path=str(directory / "val.conll"), batch_size=16, **options
    )


def test_registered_through_the_entry_point() -> None:
    plugins = discover()
    assert plugins["tasks"]["token-classification"] is TokenClassificationTask
    assert {"entity-f1", "entity-precision", "entity-recall", "token-accuracy"} <= set(plugins["metrics"])
    assert plugins["datasets"].entry("conll").plugin == "ner"


@pytest.fixture(scope="module", params=sorted(ENCODERS))
def trained(request, files):
    encoder, crf = ENCODERS[request.param]
    torch.manual_seed(0)
    task = TokenClassificationTask(encoder=encoder, crf=crf, learning_rate=5e-3, warmup_steps=20)
    data = conll_data(files)
    trainer = fit_tiny(task, data, max_steps=250)
    return task.eval(), trainer, data


def test_taggers_learn_the_synthetic_set(trained) -> None:
    task, trainer, data = trained
    metrics = trainer.validate(task, datamodule=data, verbose=False)[0]
    assert metrics["val/entity-f1"] >= 0.95
    assert 0 <= metrics["val/token-accuracy"] <= 1


def test_entities_come_with_character_offsets(trained) -> None:
    task, _, _ = trained
    text = "yesterday Marie Curie met Alan Turing near Buenos Aires."
    (entities,) = task.predict([text])
    found = [(e["text"], e["label"]) for e in entities]
    assert found == [("Marie Curie", "PER"), ("Alan Turing", "PER"), ("Buenos Aires", "LOC")]
    assert all(text[e["start"] : e["end"]] == e["text"] and 0 < e["score"] <= 1 for e in entities)
    (pretokenised,) = task.predict([{"tokens": ["Ada", "Lovelace", "visited", "Oslo", "."]}])
    assert [(e["text"], e["label"], e["start"]) for e in pretokenised] == [
        ("Ada Lovelace", "PER", 0),
        ("Oslo", "LOC", 21),
    ]


def test_checkpoint_round_trip(trained, tmp_path) -> None:
    task, trainer, _ = trained
    trainer.save_checkpoint(tmp_path / "ner.ckpt")
    loaded = nlpkit.load(tmp_path / "ner.ckpt")
    text = "Grace Hopper works for Siemens in Tokyo ."
    assert loaded.predict([text]) == task.predict([text])
    assert loaded.labels == task.labels


def test_word_rule_and_offsets() -> None:
    assert split_words("Angela Merkel visited Paris, didn't she?") == [
        ("Angela", 0, 6), ("Merkel", 7, 13), ("visited", 14, 21), ("Paris", 22, 27), (",", 27, 28),
        ("didn't", 29, 35), ("she", 36, 39), ("?", 39, 40),
    ]  # fmt: skip


def test_reader_columns_docstart_comments_crlf_bom_and_round_trip(tmp_path) -> None:
    content = (
        "\ufeff-DOCSTART- -X- -X- O\r\n\r\n# a comment\r\n"
        "EU NNP B-NP I-ORG\r\nrejects VBZ B-VP O\r\nGerman JJ B-NP I-MISC\r\n\r\n"
        "Peter NNP B-NP I-PER\r\nBlackburn NNP I-NP I-PER\r\n"
    )
    (tmp_path / "conll2003.txt").write_text(content, encoding="utf-8", newline="")
    records = read_records(tmp_path / "conll2003.txt", format="conll", token_column=0, tag_column=3)
    assert [r.fields for r in records] == [
        {"tokens": ["EU", "rejects", "German"], "tags": ["I-ORG", "O", "I-MISC"]},
        {"tokens": ["Peter", "Blackburn"], "tags": ["I-PER", "I-PER"]},
    ]
    data = ConllData(train_path=str(tmp_path / "conll2003.txt"), format="conll", tag_column=3)
    fields = [data.fields(record, labeled=True) for record in records]  # IOB1 in, BIOES out
    assert [f["tags"] for f in fields] == [["S-ORG", "O", "S-MISC"], ["B-PER", "E-PER"]]
    sentences = [(r.fields["tokens"], r.fields["tags"]) for r in records]
    write_conll(tmp_path / "again.conll", sentences)
    assert [(r.fields["tokens"], r.fields["tags"]) for r in read_records(tmp_path / "again.conll")] == sentences


def test_bad_tags_and_lines_name_the_file_and_line(tmp_path) -> None:
    (tmp_path / "bad.conll").write_text("Paris\tB-LOC\nis\tO\n\nBerlin\tB_LOC\n")
    data = ConllData(train_path=str(tmp_path / "bad.conll"))
    records = read_records(tmp_path / "bad.conll")
    with pytest.raises(DataError, match=r"bad.conll:4: .*B_LOC"):
        data.fields(records[1], labeled=True)
    (tmp_path / "short.conll").write_text("Paris\tB-LOC\nlonely\n")
    with pytest.raises(DataError, match=r"short.conll:2: expected at least 2 columns"):
        read_records(tmp_path / "short.conll")


@pytest.mark.parametrize("kind", ["cnn", "bilstm"])
def test_character_features_ignore_padding_and_train(kind, files) -> None:
    from nlpkit_ner.chars import CharEncoder, char_ids

    torch.manual_seed(0)
    encoder = CharEncoder(kind, dim=8).eval()
    word = torch.tensor([[char_ids("Lovelace")]])  # (1, 1, 8)
    padded = torch.nn.functional.pad(word, (0, 5))  # more padding characters
    batched = torch.nn.functional.pad(padded, (0, 0, 0, 1))  # and an all-padding word beside it
    torch.testing.assert_close(encoder(word)[0, 0], encoder(batched)[0, 0])
    assert torch.count_nonzero(encoder(batched)[0, 1]) == 0
    task = TokenClassificationTask(encoder=ENCODERS["bilstm-crf"][0], char_features=kind, learning_rate=5e-3)
    trainer = fit_tiny(task, conll_data(files), max_steps=150)
    assert trainer.validate(task, datamodule=conll_data(files), verbose=False)[0]["val/entity-f1"] >= 0.9
    assert task.predict(["Ada Lovelace visited Oslo ."])[0][0]["text"] == "Ada Lovelace"
