"""Seq2seq: cached decoding equals recomputation, beam row selection, padding, learning a translation, data."""

from __future__ import annotations

import json
import random

import pytest
import torch
from nlpkit_generation.decoding import GenerationConfig
from nlpkit_generation.paired import PairedData
from nlpkit_generation.seq2seq import Seq2SeqTask
from torchmetrics.text import BLEUScore, CHRFScore

from nlpkit import ConfigError, DataError, Seq2SeqTransformer, TokenizerOptions, TransformerEncoder, pad
from nlpkit.testing import fit_tiny

WORDS = ["red", "blue", "green", "cat", "dog", "bird", "runs", "sees", "eats", "big", "small", "old"]
SOURCES = [[2, 5, 6, 7, 8, 3], [2, 9, 3], [2, 10, 11, 12, 13, 14, 15, 16, 3]]  # mixed lengths, <s> ... </s>


def tiny_model(positions: str = "learned") -> Seq2SeqTransformer:
    torch.manual_seed(0)
    encoder = TransformerEncoder(40, d_model=32, num_heads=4, num_layers=2, max_length=32, positions=positions)
    return Seq2SeqTransformer(encoder, num_layers=2, bos_id=2).eval()


def incremental(model: Seq2SeqTransformer, sources: list[list[int]], prefix: torch.Tensor) -> torch.Tensor:
    """Logits (B, T, V) after ``<s>`` and each token of ``prefix[:, 1:]``, fed one at a time."""
    logits, state = model.start(sources, max_new_tokens=prefix.size(1))
    steps = [logits] + [model.extend(prefix[:, i], state) for i in range(1, prefix.size(1))]
    return torch.stack(steps, dim=1)


@pytest.mark.parametrize("positions", ["learned", "sinusoidal", "rotary"])
@torch.no_grad()
def test_cached_decoding_equals_teacher_forced_recomputation(positions) -> None:
    model = tiny_model(positions)
    prefix = torch.randint(4, 40, (len(SOURCES), 6))
    prefix[:, 0] = 2
    source, source_mask = pad(SOURCES)
    full = model(source, source_mask, prefix, torch.ones_like(prefix, dtype=torch.bool))
    torch.testing.assert_close(incremental(model, SOURCES, prefix), full, atol=1e-5, rtol=0)


@torch.no_grad()
def test_select_repeats_and_reorders_every_cached_row() -> None:
    model = tiny_model()
    first, then = torch.tensor([20, 21]), torch.tensor([30, 31, 32])
    _, state = model.start(SOURCES[:2], max_new_tokens=4)
    model.extend(first, state)
    state.select(torch.tensor([1, 1, 0]))
    selected = model.extend(then, state)
    _, fresh = model.start([SOURCES[1], SOURCES[1], SOURCES[0]], max_new_tokens=4)
    model.extend(first[[1, 1, 0]], fresh)
    torch.testing.assert_close(selected, model.extend(then, fresh), atol=1e-5, rtol=0)


@torch.no_grad()
def test_source_padding_changes_nothing() -> None:
    model = tiny_model()
    prefix = torch.tensor([[2, 20, 21, 22]])
    alone = incremental(model, SOURCES[1:2], prefix)
    batched = incremental(model, [SOURCES[1], SOURCES[2]], prefix.expand(2, -1))
    torch.testing.assert_close(batched[:1], alone, atol=1e-5, rtol=0)


def test_start_refuses_more_tokens_than_positions() -> None:
    with pytest.raises(ConfigError, match="max_new_tokens"):
        tiny_model().start(SOURCES, max_new_tokens=32)  # <s> and 32 tokens need 33 positions, the model has 32


def reversal_pairs(size: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    sentences = {" ".join(rng.choices(WORDS, k=rng.randint(3, 5))) for _ in range(size)}
    return [{"source": s, "target": " ".join(reversed(s.split()))} for s in sorted(sentences)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny task trained to reverse word order, its data module, trainer and pairs."""
    directory = tmp_path_factory.mktemp("seq2seq")
    pairs = reversal_pairs(100)
    path = directory / "pairs.jsonl"
    path.write_text("".join(json.dumps(pair) + "\n" for pair in pairs))
    data = PairedData(
        train_path=str(path), val_path=str(path), batch_size=16, tokenizer=TokenizerOptions(vocab_size=40)
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is faster, and unaffected by a busy machine
    torch.manual_seed(0)
    task = Seq2SeqTask(
        d_model=64,
        num_heads=4,
        num_encoder_layers=2,
        num_decoder_layers=2,
        dropout=0.0,
        max_length=32,
        metrics=[],
        learning_rate=2e-3,
        warmup_steps=20,
    )
    try:
        trainer = fit_tiny(task, data, max_steps=600, limit_val_batches=0)
        task.eval()
        yield task, data, trainer, pairs
    finally:
        torch.set_num_threads(threads)


def test_learns_to_reverse_word_order(trained) -> None:
    task, _, _, pairs = trained
    predictions = task.predict([pair["source"] for pair in pairs])
    exact = sum(p["text"] == pair["target"] for p, pair in zip(predictions, pairs, strict=True))
    assert exact / len(pairs) >= 0.9


@torch.no_grad()
def test_evaluation_step_yields_translations_the_metrics_score(trained) -> None:
    task, data, _, _ = trained
    bleu, chrf = BLEUScore(), CHRFScore()
    for batch in data.val_dataloader():
        output = task.step(batch)
        assert all(isinstance(text, str) for text in output.predictions)
        assert output.targets == [[text] for text in batch["reference"]]
        bleu.update(output.predictions, output.targets)
        chrf.update(output.predictions, output.targets)
    assert bleu.compute().item() == pytest.approx(1.0)
    assert chrf.compute().item() == pytest.approx(1.0)
    task.train()
    try:
        assert task.step(next(iter(data.train_dataloader()))).predictions == []  # training decodes nothing
    finally:
        task.eval()


def test_checkpoint_round_trip_predicts_the_same(trained, tmp_path) -> None:
    task, _, trainer, pairs = trained
    path = tmp_path / "seq2seq.ckpt"
    trainer.save_checkpoint(path)
    reloaded = Seq2SeqTask.load_from_checkpoint(path, weights_only=True).eval()
    assert reloaded.hparams.d_model == 64 and "encoder" not in reloaded.hparams
    sources = [pair["source"] for pair in pairs[:20]]
    assert reloaded.predict(sources) == task.predict(sources)
    inputs = [task.encode({"source": source}, labeled=False)["source"] for source in sources[:3]]
    with torch.no_grad():
        torch.testing.assert_close(reloaded.start(inputs, 4)[0], task.start(inputs, 4)[0])


def write_lines(path, lines: list[str]) -> str:
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def read_split(data: PairedData, split: str) -> list[dict]:
    return [fields for _, fields in data.read(split, labeled=split != "predict")]


def test_paired_data_from_two_aligned_text_files(tmp_path) -> None:
    data = PairedData(
        train_path=write_lines(tmp_path / "train.en", ["a cat", "", "the dog"]),
        train_target_path=write_lines(tmp_path / "train.de", ["eine katze", "", "der hund"]),
        predict_path=write_lines(tmp_path / "new.txt", ["a dog"]),
    )
    assert read_split(data, "train") == [
        {"source": "a cat", "target": "eine katze"},
        {"source": "the dog", "target": "der hund"},
    ]
    assert read_split(data, "predict") == [{"source": "a dog"}]
    assert list(data.texts(read_split(data, "train")[0])) == ["a cat", "eine katze"]


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (["eine katze"], r"train\.en: 2 lines, but its target file .*train\.de has 1"),
        (["", "eine katze", "der hund"], r"train\.en:1: pairs with line 2 of the target file .*train\.de"),
    ],
    ids=["count", "blank-lines"],
)
def test_paired_data_refuses_misaligned_files(tmp_path, targets, message) -> None:
    data = PairedData(
        train_path=write_lines(tmp_path / "train.en", ["a cat", "the dog", ""]),
        train_target_path=write_lines(tmp_path / "train.de", targets),
    )
    with pytest.raises(DataError, match=message):
        data.read("train")


def test_paired_data_plain_text_needs_targets_to_train(tmp_path) -> None:
    data = PairedData(train_path=write_lines(tmp_path / "train.txt", ["a cat"]))
    with pytest.raises(ConfigError, match="train_target_path"):
        data.read("train")


def test_paired_data_jsonl_with_custom_fields_and_a_missing_one(tmp_path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"en": "a cat", "de": "eine katze"}\n{"en": "the dog"}\n')
    data = PairedData(train_path=str(path), predict_path=str(path), source_field="en", target_field="de")
    assert read_split(data, "predict") == [{"source": "a cat"}, {"source": "the dog"}]
    with pytest.raises(DataError, match=r"pairs\.jsonl:2: expected a text field 'de' \(found: en\)"):
        data.read("train")


def test_registered_bleu_and_chrf_through_validate_and_beam_search(trained) -> None:
    import pytorch_lightning as pl

    task, data, _, pairs = trained
    names = task.metric_names
    task.metric_names = ["bleu", "chrf"]
    task.build_metrics()  # the names resolve through the generation plugin's registrations
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False)
    try:
        metrics = trainer.validate(task, datamodule=data, verbose=False)[0]
    finally:  # the fixture is shared: leave it as it was
        task.metric_names = names
        task.build_metrics()
        task.eval()
    assert metrics["val/bleu"] == pytest.approx(1.0) and metrics["val/chrf"] == pytest.approx(1.0)
    sources = [pair["source"] for pair in pairs[:10]]
    beams = task.generate(sources, strategy="beam", num_beams=3, num_return_sequences=2)
    assert [g.text for g in beams] == [pair["target"] for pair in pairs[:10]]
    assert all(g.score >= g.alternatives[0].score for g in beams)
    assert "".join(task.stream(sources[0])) == task.generate(sources[:1])[0].text


def test_validation_decodes_with_its_own_settings_and_test_with_generation(trained) -> None:
    """``validation_generation`` (here: one new token, so chrF collapses) applies to validation alone; test and
    predict keep decoding with ``generation``."""
    import pytorch_lightning as pl

    task, data, _, pairs = trained
    names, paths = task.metric_names, dict(data.paths)
    task.metric_names, data.paths["test"] = ["chrf"], data.paths["val"]
    task.build_metrics()
    task.validation_generation = GenerationConfig(max_new_tokens=1)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False)
    try:
        validated = trainer.validate(task, datamodule=data, verbose=False)[0]
        tested = trainer.test(task, datamodule=data, verbose=False)[0]
        predicted = task.predict([pair["source"] for pair in pairs[:10]])
    finally:  # the fixture is shared: leave it as it was
        task.metric_names, task.validation_generation = names, None
        data.paths.update(paths)
        task.build_metrics()
        task.eval()
    assert validated["val/chrf"] < 0.5
    assert tested["test/chrf"] == pytest.approx(1.0)
    assert [p["text"] for p in predicted] == [pair["target"] for pair in pairs[:10]]


def test_export_is_refused_naming_why(trained, tmp_path) -> None:
    from nlpkit import ExportError
    from nlpkit.deploy.export import export

    with pytest.raises(ExportError, match="seq2seq cannot be exported: it translates by decoding token by token"):
        export(trained[0], tmp_path / "export")
    assert not (tmp_path / "export").exists()
